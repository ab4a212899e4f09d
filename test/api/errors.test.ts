import assert from 'node:assert/strict';
import { CreateMode, KeeperError, isKeeperError, op, startMember, type Session } from '../../src/index.js';
import { rejectsWith, singleMember } from './helpers.js';

const MiB = 1024 * 1024;

describe('api/errors: every error code reachable on a single member (SPEC §1, API KeeperError)', () => {
  const ctx = singleMember();
  let s: Session;
  beforeEach(async () => {
    s = await ctx.member.session();
    await s.create('/a', 'x');
  });

  it('KeeperError has a stable code, the path, and a message naming both', async () => {
    const e = await rejectsWith(s.getData('/missing'), 'NONODE', '/missing');
    assert.ok(e instanceof Error);
    assert.ok(e instanceof KeeperError);
    assert.ok(isKeeperError(e, 'NONODE'));
    assert.equal(isKeeperError(e, 'NOAUTH'), false);
    assert.equal(e.name, 'KeeperError');
    assert.match(e.message, /NONODE/);
    assert.match(e.message, /\/missing/);
    assert.ok(typeof e.stack === 'string');
    const noPath = await rejectsWith(s.multi('x' as never), 'BADARGUMENTS');
    assert.equal('path' in noPath, false, 'no path key when the error has no path');
  });

  it('NONODE: reads and writes of a missing node, and creates under a missing parent', async () => {
    await rejectsWith(s.getData('/nope'), 'NONODE', '/nope');
    await rejectsWith(s.getChildren('/nope'), 'NONODE', '/nope');
    await rejectsWith(s.getChildrenAndStat('/nope'), 'NONODE', '/nope');
    await rejectsWith(s.getACL('/nope'), 'NONODE', '/nope');
    await rejectsWith(s.getAllChildrenNumber('/nope'), 'NONODE', '/nope');
    await rejectsWith(s.setData('/nope', 'x'), 'NONODE', '/nope');
    await rejectsWith(s.setACL('/nope', [{ perms: 31, scheme: 'world', id: 'anyone' }]), 'NONODE', '/nope');
    await rejectsWith(s.delete('/nope'), 'NONODE', '/nope');
    await rejectsWith(s.deleteAll('/nope'), 'NONODE', '/nope');
    await rejectsWith(s.create('/nope/child'), 'NONODE', '/nope');
    assert.equal(await s.exists('/nope'), null, 'exists answers null, not NONODE');
  });

  it('NODEEXISTS', async () => {
    await rejectsWith(s.create('/a'), 'NODEEXISTS', '/a');
    await rejectsWith(s.create('/a', '', { mode: CreateMode.EPHEMERAL }), 'NODEEXISTS', '/a');
    await rejectsWith(s.create('/'), 'NODEEXISTS');
  });

  it('NOTEMPTY', async () => {
    await s.create('/a/b');
    await rejectsWith(s.delete('/a'), 'NOTEMPTY', '/a');
  });

  it('BADVERSION', async () => {
    await rejectsWith(s.setData('/a', 'y', { version: 5 }), 'BADVERSION', '/a');
    await rejectsWith(s.delete('/a', { version: 5 }), 'BADVERSION', '/a');
    await rejectsWith(s.setACL('/a', [{ perms: 31, scheme: 'world', id: 'anyone' }], { version: 5 }), 'BADVERSION', '/a');
    await rejectsWith(s.multi([op.check('/a', 5)]), 'BADVERSION');
  });

  it('NOCHILDRENFOREPHEMERALS', async () => {
    await s.create('/e', '', { mode: CreateMode.EPHEMERAL });
    await rejectsWith(s.create('/e/c'), 'NOCHILDRENFOREPHEMERALS', '/e/c');
  });

  it('NOAUTH', async () => {
    await s.create('/closed', 'x', { acl: [{ perms: 0, scheme: 'world', id: 'anyone' }] });
    await rejectsWith(s.getData('/closed'), 'NOAUTH', '/closed');
  });

  it('INVALIDACL', async () => {
    await rejectsWith(s.create('/b', '', { acl: [] }), 'INVALIDACL', '/b');
    await rejectsWith(s.create('/b', '', { acl: [{ perms: 31, scheme: 'world', id: 'nobody' }] }), 'INVALIDACL');
    await rejectsWith(s.setACL('/a', []), 'INVALIDACL', '/a');
    assert.equal(await s.exists('/b'), null);
  });

  it('BADARGUMENTS', async () => {
    await rejectsWith(s.create('relative'), 'BADARGUMENTS');
  });

  it('SESSIONEXPIRED: any use after close()', async () => {
    await s.close();
    assert.equal(s.state, 'CLOSED');
    await rejectsWith(s.getData('/a'), 'SESSIONEXPIRED');
    await rejectsWith(s.exists('/a'), 'SESSIONEXPIRED');
    await rejectsWith(s.getChildren('/'), 'SESSIONEXPIRED');
    await rejectsWith(s.create('/b'), 'SESSIONEXPIRED');
    await rejectsWith(s.setData('/a', 'y'), 'SESSIONEXPIRED');
    await rejectsWith(s.delete('/a'), 'SESSIONEXPIRED');
    await rejectsWith(s.multi([op.check('/a', -1)]), 'SESSIONEXPIRED');
    await rejectsWith(s.sync(), 'SESSIONEXPIRED');
    await rejectsWith(s.addAuth('digest', 'a:b'), 'SESSIONEXPIRED');
    await rejectsWith(s.addWatch('/a', () => undefined), 'SESSIONEXPIRED');
    await rejectsWith(s.getEphemerals(), 'SESSIONEXPIRED');
    await s.close(); // closing twice is harmless
    const o = await ctx.member.session();
    assert.equal((await o.getData('/a')).stat.version, 0, 'nothing was applied');
  });

  it('SESSIONEXPIRED: any use after expiry', async () => {
    await ctx.member.expireSession(s.id);
    for (let i = 0; i < 100 && s.state !== 'LOST'; i++) await new Promise((r) => setTimeout(r, 1));
    await rejectsWith(s.getData('/a'), 'SESSIONEXPIRED');
    await rejectsWith(s.setData('/a', 'y'), 'SESSIONEXPIRED');
  });
});

describe('api/errors: CONNECTIONLOSS when the member is gone (SPEC §1, §3)', () => {
  it('operations of a session whose member stopped fail with CONNECTIONLOSS', async () => {
    const member = await startMember({ id: 1 });
    const s = await member.session();
    await s.create('/a', 'x');
    await member.stop();
    await rejectsWith(s.getData('/a'), 'CONNECTIONLOSS');
    await rejectsWith(s.exists('/a'), 'CONNECTIONLOSS');
    await rejectsWith(s.setData('/a', 'y'), 'CONNECTIONLOSS');
    await rejectsWith(s.create('/b'), 'CONNECTIONLOSS');
    await rejectsWith(s.sync(), 'CONNECTIONLOSS');
    await s.close();
  });

  it('a new session on a stopped member fails with CONNECTIONLOSS', async () => {
    const member = await startMember({ id: 1 });
    await member.stop();
    await rejectsWith(member.session(), 'CONNECTIONLOSS');
  });
});

describe('api/validation: bad input is refused with BADARGUMENTS and nothing changes (SPEC §1)', () => {
  const ctx = singleMember();
  let s: Session;
  let before: { zxid: bigint; digest: string };
  beforeEach(async () => {
    s = await ctx.member.session();
    await s.create('/a', 'x');
    await s.create('/q');
    before = { zxid: ctx.member.lastZxid, digest: ctx.member.tree.digest() };
  });
  /** Checked at the end of every test here (an afterEach would run after the member stopped). */
  const unchanged = (): void => {
    assert.equal(ctx.member.lastZxid, before.zxid, 'no txn was proposed');
    assert.equal(ctx.member.tree.digest(), before.digest, 'the tree is unchanged');
  };

  const badPaths: [string, unknown][] = [
    ['empty', ''],
    ['relative', 'a'],
    ['relative with slash', 'a/b'],
    ['trailing slash', '/a/'],
    ['double slash', '/a//b'],
    ['only slashes', '//'],
    ['a . segment', '/a/.'],
    ['a .. segment', '/a/../b'],
    ['NUL', '/a\u0000b'],
    ['a control character', '/a\u0001'],
    ['a newline', '/a\nb'],
    ['DEL', '/a\u007f'],
    ['not a string', 42],
    ['undefined', undefined],
  ];
  for (const [what, path] of badPaths) {
    it(`path ${what} (${JSON.stringify(path)}): every operation refuses it`, async () => {
      const p = path as string;
      await rejectsWith(s.create(p, 'x'), 'BADARGUMENTS');
      await rejectsWith(s.create(p, 'x', { mode: CreateMode.EPHEMERAL }), 'BADARGUMENTS');
      await rejectsWith(s.setData(p, 'x'), 'BADARGUMENTS');
      await rejectsWith(s.delete(p), 'BADARGUMENTS');
      await rejectsWith(s.deleteAll(p), 'BADARGUMENTS');
      await rejectsWith(s.setACL(p, [{ perms: 31, scheme: 'world', id: 'anyone' }]), 'BADARGUMENTS');
      await rejectsWith(s.getData(p), 'BADARGUMENTS');
      await rejectsWith(s.exists(p), 'BADARGUMENTS');
      await rejectsWith(s.getChildren(p), 'BADARGUMENTS');
      await rejectsWith(s.getACL(p), 'BADARGUMENTS');
      await rejectsWith(s.getAllChildrenNumber(p), 'BADARGUMENTS');
      await rejectsWith(s.addWatch(p, () => undefined), 'BADARGUMENTS');
      if (path !== undefined) await rejectsWith(s.sync(p), 'BADARGUMENTS'); // sync() defaults to '/'
      await rejectsWith(s.multi([op.create(p)]), 'BADARGUMENTS');
      unchanged();
    });
  }

  it('a trailing slash is only allowed for sequential creates', async () => {
    await rejectsWith(s.create('/q/', 'x'), 'BADARGUMENTS');
    await rejectsWith(s.create('/q/', 'x', { mode: CreateMode.EPHEMERAL }), 'BADARGUMENTS');
    unchanged();
  });

  it('data over maxDataBytes (1 MiB by default) is refused for create, setData and in multi', async () => {
    const big = new Uint8Array(MiB + 1);
    const e = await rejectsWith(s.create('/big', big), 'BADARGUMENTS', '/big');
    assert.match(e.message, /1048577/);
    await rejectsWith(s.setData('/a', big), 'BADARGUMENTS', '/a');
    await rejectsWith(s.multi([op.setData('/a', big)]), 'BADARGUMENTS');
    await rejectsWith(s.create('/big', 'ü'.repeat(MiB / 2 + 1)), 'BADARGUMENTS');
    unchanged();
  });

  it('bad argument types: data as a number, version as a string, acl not an array, invalid mode, bad ttl', async () => {
    await rejectsWith(s.create('/b', 42 as unknown as string), 'BADARGUMENTS');
    await rejectsWith(s.create('/b', { x: 1 } as unknown as string), 'BADARGUMENTS');
    await rejectsWith(s.setData('/a', 42 as unknown as string), 'BADARGUMENTS');
    await rejectsWith(s.setData('/a', 'y', { version: '0' as unknown as number }), 'BADARGUMENTS');
    await rejectsWith(s.setData('/a', 'y', { version: 0.5 }), 'BADARGUMENTS');
    await rejectsWith(s.delete('/a', { version: '0' as unknown as number }), 'BADARGUMENTS');
    await rejectsWith(s.setACL('/a', [{ perms: 31, scheme: 'world', id: 'anyone' }], { version: 'x' as unknown as number }), 'BADARGUMENTS');
    await rejectsWith(s.create('/b', 'x', { acl: 'world:anyone' as never }), 'BADARGUMENTS');
    await rejectsWith(s.setACL('/a', { perms: 31, scheme: 'world', id: 'anyone' } as never), 'BADARGUMENTS');
    await rejectsWith(s.create('/b', 'x', { mode: 42 as never }), 'BADARGUMENTS');
    await rejectsWith(s.create('/b', 'x', { mode: 'PERSISTENT' as never }), 'BADARGUMENTS');
    await rejectsWith(s.create('/b', 'x', { ttlMs: 1000 }), 'BADARGUMENTS');
    await rejectsWith(s.create('/b', 'x', { mode: CreateMode.PERSISTENT_WITH_TTL }), 'BADARGUMENTS');
    await rejectsWith(s.create('/b', 'x', { mode: CreateMode.PERSISTENT_WITH_TTL, ttlMs: -1 }), 'BADARGUMENTS');
    await rejectsWith(s.multi('nope' as never), 'BADARGUMENTS');
    await rejectsWith(s.multi([{ type: 'setACL', path: '/a' } as never]), 'BADARGUMENTS');
    await rejectsWith(s.getData('/a', { watch: 'not a function' as never }), 'BADARGUMENTS');
    await rejectsWith(s.getData('/a', true as never), 'BADARGUMENTS');
    await rejectsWith(s.exists('/a', 'w' as never), 'BADARGUMENTS');
    await rejectsWith(s.create('/b', 'x', 'EPHEMERAL' as never), 'BADARGUMENTS');
    await rejectsWith(s.addWatch('/a', 'not a function' as never), 'BADARGUMENTS');
    await rejectsWith(s.getEphemerals('no-slash'), 'BADARGUMENTS');
    unchanged();
  });

  it('the reserved /zookeeper subtree is readable but not writable', async () => {
    await rejectsWith(s.create('/zookeeper/x'), 'BADARGUMENTS');
    await rejectsWith(s.create('/zookeeper'), 'BADARGUMENTS');
    await rejectsWith(s.setData('/zookeeper', 'x'), 'BADARGUMENTS');
    await rejectsWith(s.delete('/zookeeper/quota'), 'BADARGUMENTS');
    await rejectsWith(s.deleteAll('/zookeeper'), 'BADARGUMENTS');
    await rejectsWith(s.setACL('/zookeeper', [{ perms: 1, scheme: 'world', id: 'anyone' }]), 'BADARGUMENTS');
    await rejectsWith(s.multi([op.create('/zookeeper/y')]), 'BADARGUMENTS');
    assert.ok(await s.exists('/zookeeper'));
    assert.deepEqual((await s.getChildren('/zookeeper')).sort(), ['config', 'quota']);
    unchanged();
  });

  it('the root cannot be deleted', async () => {
    await rejectsWith(s.delete('/'), 'BADARGUMENTS');
    unchanged();
  });
});

describe('api/validation: data size limits (SPEC §1)', () => {
  const ctx = singleMember();

  it('exactly 1 MiB is accepted and stored', async () => {
    const s = await ctx.member.session();
    const data = new Uint8Array(MiB).fill(7);
    await s.create('/big', data);
    const got = await s.getData('/big');
    assert.equal(got.stat.dataLength, MiB);
    assert.equal(got.data[MiB - 1], 7);
    await s.setData('/big', data);
  });

  describe('with maxDataBytes: 10', () => {
    const small = singleMember({ maxDataBytes: 10 });
    it('10 bytes pass, 11 bytes are refused, nothing changes', async () => {
      const s = await small.member.session();
      await s.create('/ten', '0123456789');
      const zxid = small.member.lastZxid;
      await rejectsWith(s.create('/eleven', '0123456789A'), 'BADARGUMENTS');
      await rejectsWith(s.setData('/ten', '0123456789A'), 'BADARGUMENTS');
      assert.equal(small.member.lastZxid, zxid);
      assert.equal(await s.exists('/eleven'), null);
      assert.equal((await s.exists('/ten'))!.version, 0);
    });
  });
});
