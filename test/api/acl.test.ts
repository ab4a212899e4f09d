import assert from 'node:assert/strict';
import { digest, Ids, op, Perms, type ACL, type Session } from '../../src/index.js';
import { rejectsWith, singleMember, text } from './helpers.js';

const world = (perms: number): ACL[] => [{ perms, scheme: 'world', id: 'anyone' }];
const user = (name: string, perms: number): ACL => ({ perms, scheme: 'digest', id: digest(name, name + '-pw') });

describe('api/acl: schemes (SPEC §4)', () => {
  const ctx = singleMember();
  let owner: Session;
  let stranger: Session;
  beforeEach(async () => {
    owner = await ctx.member.session({ auth: [{ scheme: 'digest', credentials: 'alice:alice-pw' }] });
    stranger = await ctx.member.session();
  });

  it('world:anyone — the default ACL is OPEN_ACL_UNSAFE', async () => {
    await owner.create('/open', 'x');
    assert.deepEqual((await stranger.getACL('/open')).acl, [{ perms: 31, scheme: 'world', id: 'anyone' }]);
    await stranger.setData('/open', 'y');
    await stranger.create('/open/child');
    await stranger.delete('/open/child');
    await stranger.setACL('/open', Ids.READ_ACL_UNSAFE);
    assert.equal(text((await stranger.getData('/open')).data), 'y');
    await rejectsWith(stranger.setData('/open', 'z'), 'NOAUTH', '/open');
  });

  it('auth — CREATOR_ALL_ACL gives all rights to the creator\'s authenticated identity only', async () => {
    await owner.create('/mine', 'secret', { acl: Ids.CREATOR_ALL_ACL });
    assert.deepEqual((await owner.getACL('/mine')).acl, [user('alice', Perms.ALL)]);
    assert.equal(text((await owner.getData('/mine')).data), 'secret');
    await rejectsWith(stranger.getData('/mine'), 'NOAUTH', '/mine');
    await rejectsWith(stranger.setData('/mine', 'x'), 'NOAUTH', '/mine');
    // The same user in another session has the same rights.
    const alice2 = await ctx.member.session({ auth: [{ scheme: 'digest', credentials: 'alice:alice-pw' }] });
    assert.equal(text((await alice2.getData('/mine')).data), 'secret');
  });

  it('auth — without any authenticated identity it is INVALIDACL, and nothing is created', async () => {
    await rejectsWith(stranger.create('/nobody', '', { acl: Ids.CREATOR_ALL_ACL }), 'INVALIDACL', '/nobody');
    assert.equal(await stranger.exists('/nobody'), null);
    await owner.create('/n');
    await rejectsWith(stranger.setACL('/n', Ids.CREATOR_ALL_ACL), 'INVALIDACL', '/n');
  });

  it('digest — user:BASE64(SHA1(user:password)) matches addAuth(\'digest\', \'user:password\')', async () => {
    await owner.create('/bob', 'b', { acl: [user('bob', Perms.READ)] });
    await rejectsWith(stranger.getData('/bob'), 'NOAUTH');
    await stranger.addAuth('digest', 'bob:wrong');
    await rejectsWith(stranger.getData('/bob'), 'NOAUTH');
    await stranger.addAuth('digest', 'bob:bob-pw');
    assert.equal(text((await stranger.getData('/bob')).data), 'b');
    await rejectsWith(stranger.setData('/bob', 'x'), 'NOAUTH', '/bob'); // READ does not give WRITE
  });

  it('ip — local sessions are 127.0.0.1; exact addresses and CIDR ranges', async () => {
    await owner.create('/lo', 'x', { acl: [{ perms: Perms.ALL, scheme: 'ip', id: '127.0.0.1' }] });
    await owner.create('/lo8', 'x', { acl: [{ perms: Perms.ALL, scheme: 'ip', id: '127.0.0.0/8' }] });
    await owner.create('/ten', 'x', { acl: [{ perms: Perms.ALL, scheme: 'ip', id: '10.0.0.0/8' }] });
    await owner.create('/other', 'x', { acl: [{ perms: Perms.ALL, scheme: 'ip', id: '127.0.0.2' }] });
    assert.equal(text((await stranger.getData('/lo')).data), 'x');
    assert.equal(text((await stranger.getData('/lo8')).data), 'x');
    await rejectsWith(stranger.getData('/ten'), 'NOAUTH');
    await rejectsWith(stranger.getData('/other'), 'NOAUTH');
  });

  it('entries combine: any matching entry with the permission grants it', async () => {
    await owner.create('/mixed', 'x', { acl: [...world(Perms.READ), user('alice', Perms.ALL), { perms: Perms.WRITE, scheme: 'ip', id: '127.0.0.1' }] });
    assert.equal(text((await stranger.getData('/mixed')).data), 'x');
    await stranger.setData('/mixed', 'by ip');
    await rejectsWith(stranger.delete('/mixed/none'), 'NOAUTH');
    await rejectsWith(stranger.setACL('/mixed', world(Perms.ALL)), 'NOAUTH');
    await owner.setACL('/mixed', world(Perms.ALL));
  });

  it('INVALIDACL for bad entries and an empty list', async () => {
    for (const acl of [
      [],
      [{ perms: 31, scheme: 'world', id: 'someone' }],
      [{ perms: 31, scheme: 'digest', id: 'alice:not-a-hash' }],
      [{ perms: 31, scheme: 'ip', id: '300.1.1.1' }],
      [{ perms: 31, scheme: 'nosuchscheme', id: 'x' }],
      [{ perms: 99, scheme: 'world', id: 'anyone' }],
    ]) {
      await rejectsWith(owner.create('/bad', '', { acl }), 'INVALIDACL', '/bad');
    }
    await owner.create('/good');
    await rejectsWith(owner.setACL('/good', []), 'INVALIDACL', '/good');
    assert.equal(await owner.exists('/bad'), null);
    assert.equal((await owner.exists('/good'))!.aversion, 0);
  });
});

describe('api/acl: which permission each operation needs (SPEC §4)', () => {
  const ctx = singleMember();
  let admin: Session;
  let s: Session;
  /** Creates `path` whose ACL gives everyone exactly `perms`. */
  const node = async (path: string, perms: number): Promise<void> => {
    await admin.create(path, 'data', { acl: [...world(perms), user('root', Perms.ALL)] });
  };
  beforeEach(async () => {
    admin = await ctx.member.session({ auth: [{ scheme: 'digest', credentials: 'root:root-pw' }] });
    s = await ctx.member.session();
  });

  it('create needs CREATE on the parent', async () => {
    await node('/nocreate', Perms.ALL & ~Perms.CREATE);
    await node('/create', Perms.CREATE);
    await rejectsWith(s.create('/nocreate/c'), 'NOAUTH', '/nocreate/c');
    await s.create('/create/c', '', { acl: world(0) });
    assert.ok(await s.exists('/create/c'));
  });

  it('delete needs DELETE on the parent, not on the node', async () => {
    await node('/nodelete', Perms.ALL & ~Perms.DELETE);
    await admin.create('/nodelete/c', '', { acl: world(Perms.ALL) });
    await rejectsWith(s.delete('/nodelete/c'), 'NOAUTH', '/nodelete/c');
    await node('/delete', Perms.DELETE);
    await admin.create('/delete/c', '', { acl: world(0) });
    await s.delete('/delete/c');
    assert.equal(await s.exists('/delete/c'), null);
  });

  it('getData and getChildren need READ', async () => {
    await node('/noread', Perms.ALL & ~Perms.READ);
    await node('/read', Perms.READ);
    await rejectsWith(s.getData('/noread'), 'NOAUTH', '/noread');
    await rejectsWith(s.getChildren('/noread'), 'NOAUTH', '/noread');
    await rejectsWith(s.getChildrenAndStat('/noread'), 'NOAUTH', '/noread');
    await rejectsWith(s.getAllChildrenNumber('/noread'), 'NOAUTH', '/noread');
    assert.equal(text((await s.getData('/read')).data), 'data');
    assert.deepEqual(await s.getChildren('/read'), []);
  });

  it('setData needs WRITE', async () => {
    await node('/nowrite', Perms.ALL & ~Perms.WRITE);
    await node('/write', Perms.WRITE);
    await rejectsWith(s.setData('/nowrite', 'x'), 'NOAUTH', '/nowrite');
    await rejectsWith(s.multi([op.setData('/nowrite', 'x')]), 'NOAUTH');
    await s.setData('/write', 'x');
    assert.equal(text((await admin.getData('/write')).data), 'x');
  });

  it('setACL needs ADMIN', async () => {
    await node('/noadmin', Perms.ALL & ~Perms.ADMIN);
    await node('/admin', Perms.ADMIN);
    await rejectsWith(s.setACL('/noadmin', world(Perms.ALL)), 'NOAUTH', '/noadmin');
    const st = await s.setACL('/admin', world(Perms.ALL));
    assert.equal(st.aversion, 1);
  });

  it('exists needs nothing', async () => {
    await node('/nothing', 0);
    const st = await s.exists('/nothing');
    assert.ok(st);
    assert.equal(st.dataLength, 4);
  });

  it('getACL needs READ or ADMIN; without ADMIN digest ids are hidden (ZOOKEEPER-1392)', async () => {
    await node('/none', 0);
    await node('/r', Perms.READ);
    await node('/a', Perms.ADMIN);
    await rejectsWith(s.getACL('/none'), 'NOAUTH', '/none');
    const withRead = await s.getACL('/r');
    assert.deepEqual(withRead.acl, [...world(Perms.READ), { perms: Perms.ALL, scheme: 'digest', id: 'root:x' }]);
    const withAdmin = await s.getACL('/a');
    assert.deepEqual(withAdmin.acl, [...world(Perms.ADMIN), user('root', Perms.ALL)]);
    assert.deepEqual((await admin.getACL('/none')).acl, [...world(0), user('root', Perms.ALL)]);
  });

  it('check in a multi needs READ', async () => {
    await node('/noread', Perms.ALL & ~Perms.READ);
    await rejectsWith(s.multi([op.check('/noread', 0)]), 'NOAUTH');
  });

  it('ACLs are not recursive: a closed parent does not close an open child', async () => {
    await admin.create('/closed', '', { acl: [user('root', Perms.ALL)] });
    await admin.create('/closed/open', 'o', { acl: world(Perms.ALL) });
    assert.equal(text((await s.getData('/closed/open')).data), 'o');
    await s.setData('/closed/open', 'changed');
    await s.create('/closed/open/deeper');
    await rejectsWith(s.getChildren('/closed'), 'NOAUTH');
    await rejectsWith(s.create('/closed/new'), 'NOAUTH');
  });

  it('and an open parent does not open a closed child', async () => {
    await admin.create('/opened', '', { acl: world(Perms.ALL) });
    await admin.create('/opened/shut', 's', { acl: [user('root', Perms.ALL)] });
    await rejectsWith(s.getData('/opened/shut'), 'NOAUTH');
    await s.delete('/opened/shut'); // DELETE on the parent is what counts
    assert.equal(await s.exists('/opened/shut'), null);
  });
});

describe('api/acl: super and addAuth (SPEC §4)', () => {
  const superDigest = digest('super', 'superpw');
  const ctx = singleMember({ superDigest });

  it('the super identity bypasses every check', async () => {
    const alice = await ctx.member.session({ auth: [{ scheme: 'digest', credentials: 'alice:alice-pw' }] });
    await alice.create('/locked', 'x', { acl: [user('alice', Perms.CREATE)] });
    await alice.create('/locked/c', 'c', { acl: [user('alice', 0)] });
    const root = await ctx.member.session();
    await rejectsWith(root.getData('/locked'), 'NOAUTH');
    await root.addAuth('digest', 'super:superpw');
    assert.equal(text((await root.getData('/locked')).data), 'x');
    assert.deepEqual(await root.getChildren('/locked'), ['c']);
    await root.setData('/locked/c', 'y');
    assert.deepEqual((await root.getACL('/locked/c')).acl, [user('alice', 0)]);
    await root.setACL('/locked/c', world(Perms.ALL));
    await root.delete('/locked/c');
    await root.create('/locked/new');
    await root.delete('/locked/new');
  });

  it('CREATOR_ALL_ACL of a super session names its digest identity (the super marker is not an ACL identity)', async () => {
    const root = await ctx.member.session({ auth: [{ scheme: 'digest', credentials: 'super:superpw' }] });
    await root.create('/bysuper', '', { acl: Ids.CREATOR_ALL_ACL });
    assert.deepEqual((await root.getACL('/bysuper')).acl, [{ perms: Perms.ALL, scheme: 'digest', id: superDigest }]);
    await rejectsWith(root.create('/s', '', { acl: [{ perms: Perms.ALL, scheme: 'super', id: 'super' }] }), 'INVALIDACL');
  });

  it('a wrong super password is just another digest identity', async () => {
    const alice = await ctx.member.session({ auth: [{ scheme: 'digest', credentials: 'alice:alice-pw' }] });
    await alice.create('/locked', 'x', { acl: [user('alice', Perms.ALL)] });
    const s = await ctx.member.session();
    await s.addAuth('digest', 'super:wrong');
    await rejectsWith(s.getData('/locked'), 'NOAUTH');
  });

  it('addAuth mid-session takes effect for the next operation', async () => {
    const alice = await ctx.member.session({ auth: [{ scheme: 'digest', credentials: 'alice:alice-pw' }] });
    await alice.create('/n', 'x', { acl: [user('bob', Perms.ALL)] });
    const s = await ctx.member.session();
    await rejectsWith(s.setData('/n', 'y'), 'NOAUTH');
    await s.addAuth('digest', 'bob:bob-pw');
    await s.setData('/n', 'y');
    // The identities accumulate: the session is now bob and still 127.0.0.1.
    await s.create('/mine', '', { acl: Ids.CREATOR_ALL_ACL });
    assert.deepEqual((await s.getACL('/mine')).acl, [user('bob', Perms.ALL)]);
  });

  it('addAuth with an unknown scheme or malformed credentials fails', async () => {
    const s = await ctx.member.session();
    await assert.rejects(s.addAuth('kerberos', 'x'));
    await assert.rejects(s.addAuth('digest', 'no-colon'));
  });
});

describe('api/acl: without superDigest configured', () => {
  const ctx = singleMember();
  it('super:password gives no special rights', async () => {
    const alice = await ctx.member.session({ auth: [{ scheme: 'digest', credentials: 'alice:alice-pw' }] });
    await alice.create('/locked', 'x', { acl: [user('alice', Perms.ALL)] });
    const s = await ctx.member.session({ auth: [{ scheme: 'digest', credentials: 'super:superpw' }] });
    await rejectsWith(s.getData('/locked'), 'NOAUTH');
  });
});
