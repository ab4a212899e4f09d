import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { checkACL, digest, fixupACL, Ids, ipMatches, parsePerms, Perms, permsToString, type ACL, type AuthId } from '../../src/core/acl.js';
import { KeeperError } from '../../src/core/errors.js';
import { Core, check, create, del, fails, multi, ok, set, setAcl } from './harness.js';

const isCode = (code: string) => (e: unknown) => e instanceof KeeperError && e.code === code;

const ALICE = digest('alice', 'pw');
const BOB = digest('bob', 'pw');
const alice: AuthId[] = [{ scheme: 'ip', id: '127.0.0.1' }, { scheme: 'digest', id: ALICE }];
const bob: AuthId[] = [{ scheme: 'ip', id: '127.0.0.1' }, { scheme: 'digest', id: BOB }];
const anon: AuthId[] = [{ scheme: 'ip', id: '127.0.0.1' }];
const superId: AuthId[] = [{ scheme: 'ip', id: '10.9.9.9' }, { scheme: 'super', id: 'super' }];

describe('core/acl: identities and entries (SPEC §4)', () => {
  it('digest(user, pw) is user:BASE64(SHA1(user:pw))', () => {
    const expected = 'alice:' + createHash('sha1').update('alice:pw').digest('base64');
    assert.equal(ALICE, expected);
    // ZooKeeper's DigestAuthenticationProvider documentation example.
    assert.equal(digest('super', 'test'), 'super:D/InIHSb7yEEbrWz8b9l71RjZJU=');
  });

  it('perms are cdrwa bits as ZooKeeper\'s ZooDefs.Perms', () => {
    assert.deepEqual(Perms, { READ: 1, WRITE: 2, CREATE: 4, DELETE: 8, ADMIN: 16, ALL: 31 });
    assert.equal(permsToString(Perms.ALL), 'cdrwa');
    assert.equal(permsToString(Perms.READ | Perms.ADMIN), 'ra');
    assert.equal(parsePerms('cdrwa'), 31);
    assert.equal(parsePerms('rw'), 3);
    assert.throws(() => parsePerms('x'), isCode('BADARGUMENTS'));
  });

  it('Ids are ZooKeeper\'s', () => {
    assert.deepEqual(Ids.OPEN_ACL_UNSAFE, [{ perms: 31, scheme: 'world', id: 'anyone' }]);
    assert.deepEqual(Ids.CREATOR_ALL_ACL, [{ perms: 31, scheme: 'auth', id: '' }]);
    assert.deepEqual(Ids.READ_ACL_UNSAFE, [{ perms: 1, scheme: 'world', id: 'anyone' }]);
  });

  it('ip matching with CIDR, IPv4 and IPv6', () => {
    assert.ok(ipMatches('127.0.0.1', '127.0.0.1'));
    assert.ok(ipMatches('127.0.0.1', '127.0.0.0/8'));
    assert.ok(ipMatches('10.1.2.3', '10.1.0.0/16'));
    assert.ok(!ipMatches('10.2.2.3', '10.1.0.0/16'));
    assert.ok(ipMatches('192.168.1.130', '192.168.1.128/25'));
    assert.ok(!ipMatches('192.168.1.127', '192.168.1.128/25'));
    assert.ok(ipMatches('8.8.8.8', '0.0.0.0/0'));
    assert.ok(!ipMatches('127.0.0.2', '127.0.0.1'));
    assert.ok(ipMatches('::ffff:127.0.0.1', '127.0.0.1'));
    assert.ok(ipMatches('::1', '::1'));
    assert.ok(ipMatches('fe80::1234', 'fe80::/10'));
    assert.ok(!ipMatches('::1', '127.0.0.1'));
    assert.ok(!ipMatches('not-an-ip', '127.0.0.1'));
  });
});

describe('core/acl: fixupACL validates and expands (SPEC §4, ZooKeeper fixupACL)', () => {
  it('refuses an empty list, or a non-array', () => {
    assert.throws(() => fixupACL('/a', [], anon), isCode('INVALIDACL'));
    assert.throws(() => fixupACL('/a', undefined, anon), isCode('INVALIDACL'));
  });

  const bad: [string, unknown][] = [
    ['world with an id other than anyone', { perms: 31, scheme: 'world', id: 'someone' }],
    ['an unknown scheme', { perms: 31, scheme: 'kerberos', id: 'x' }],
    ['digest without a hash', { perms: 31, scheme: 'digest', id: 'alice' }],
    ['digest with a bad hash', { perms: 31, scheme: 'digest', id: 'alice:short' }],
    ['ip that is not an address', { perms: 31, scheme: 'ip', id: 'localhost' }],
    ['ip with a CIDR beyond 32 bits', { perms: 31, scheme: 'ip', id: '10.0.0.0/33' }],
    ['perms out of range', { perms: 64, scheme: 'world', id: 'anyone' }],
    ['perms not an integer', { perms: 'all', scheme: 'world', id: 'anyone' }],
    ['a null entry', null],
    ['the super scheme (no provider in ZooKeeper)', { perms: 31, scheme: 'super', id: 'super' }],
  ];
  for (const [what, entry] of bad) {
    it(`refuses ${what} with INVALIDACL`, () => {
      assert.throws(() => fixupACL('/a', [entry as ACL], alice), isCode('INVALIDACL'));
    });
  }

  it('auth without any authenticated identity is INVALIDACL (ip and the super marker do not count)', () => {
    assert.throws(() => fixupACL('/a', Ids.CREATOR_ALL_ACL, anon), isCode('INVALIDACL'));
    assert.throws(() => fixupACL('/a', Ids.CREATOR_ALL_ACL, [{ scheme: 'super', id: 'super' }]), isCode('INVALIDACL'));
    assert.deepEqual(fixupACL('/a', Ids.CREATOR_ALL_ACL, [...superId, { scheme: 'digest', id: ALICE }]), [{ perms: 31, scheme: 'digest', id: ALICE }]);
  });

  it('auth expands to every authenticated identity of the session', () => {
    const both: AuthId[] = [...alice, { scheme: 'digest', id: BOB }];
    assert.deepEqual(fixupACL('/a', [{ perms: Perms.READ | Perms.WRITE, scheme: 'auth', id: '' }], both), [
      { perms: 3, scheme: 'digest', id: ALICE },
      { perms: 3, scheme: 'digest', id: BOB },
    ]);
  });

  it('accepts valid world, digest and ip (with CIDR) entries and drops duplicates', () => {
    const acl: ACL[] = [
      { perms: 1, scheme: 'world', id: 'anyone' },
      { perms: 31, scheme: 'digest', id: ALICE },
      { perms: 31, scheme: 'ip', id: '10.0.0.0/8' },
      { perms: 31, scheme: 'ip', id: '10.0.0.0/8' },
    ];
    assert.deepEqual(fixupACL('/a', acl, anon), acl.slice(0, 3));
  });
});

describe('core/acl: checkACL (SPEC §4, ZooKeeper checkACL)', () => {
  const acl: ACL[] = [
    { perms: Perms.READ, scheme: 'world', id: 'anyone' },
    { perms: Perms.ALL, scheme: 'digest', id: ALICE },
    { perms: Perms.WRITE, scheme: 'ip', id: '127.0.0.0/8' },
  ];

  it('grants a permission when any entry with that bit matches an identity', () => {
    checkACL(acl, Perms.READ, [], '/a'); // world
    checkACL(acl, Perms.ADMIN, alice, '/a'); // digest
    checkACL(acl, Perms.WRITE, anon, '/a'); // ip in range
  });

  it('refuses with NOAUTH otherwise', () => {
    assert.throws(() => checkACL(acl, Perms.ADMIN, bob, '/a'), isCode('NOAUTH'));
    assert.throws(() => checkACL(acl, Perms.WRITE, [{ scheme: 'ip', id: '10.0.0.1' }], '/a'), isCode('NOAUTH'));
    assert.throws(() => checkACL(acl, Perms.DELETE, anon, '/a'), isCode('NOAUTH'));
  });

  it('an identity of another scheme with the same id does not match', () => {
    assert.throws(
      () => checkACL([{ perms: 31, scheme: 'digest', id: ALICE }], Perms.READ, [{ scheme: 'ip', id: ALICE }], '/a'),
      isCode('NOAUTH'),
    );
  });

  it('super bypasses every check', () => {
    checkACL([{ perms: 0, scheme: 'digest', id: ALICE }], Perms.ADMIN, superId, '/a');
    checkACL([{ perms: Perms.READ, scheme: 'digest', id: ALICE }], Perms.WRITE, superId, '/a');
  });

  it('an entry with perms 0 grants nothing, even to its identity', () => {
    assert.throws(() => checkACL([{ perms: 0, scheme: 'digest', id: ALICE }], Perms.READ, alice, '/a'), isCode('NOAUTH'));
  });
});

describe('core/prep: which permission each write needs, on which node (SPEC §4)', () => {
  let c: Core;
  const S = 0x100n;
  const onlyAlice = (perms: number): ACL[] => [{ perms, scheme: 'digest', id: ALICE }];

  beforeEach(() => {
    c = new Core();
    c.openSession(S);
  });

  it('create needs CREATE on the parent (not on the node)', () => {
    ok(c.run(S, create('/p', '', { acl: onlyAlice(Perms.ALL & ~Perms.CREATE) })));
    fails(c.run(S, create('/p/c'), alice), 'NOAUTH');
    ok(c.run(S, setAcl('/p', onlyAlice(Perms.CREATE)), superId));
    ok(c.run(S, create('/p/c', '', { acl: onlyAlice(0) }), alice));
    fails(c.run(S, create('/p/d'), bob), 'NOAUTH');
  });

  it('delete needs DELETE on the parent (not on the node); NOAUTH comes before NONODE', () => {
    ok(c.run(S, create('/p', '', { acl: onlyAlice(Perms.CREATE) })));
    ok(c.run(S, create('/p/c', '', { acl: onlyAlice(Perms.ALL) }), alice));
    fails(c.run(S, del('/p/c'), alice), 'NOAUTH');
    fails(c.run(S, del('/p/missing'), alice), 'NOAUTH');
    ok(c.run(S, create('/q', '', { acl: onlyAlice(Perms.DELETE | Perms.CREATE) })));
    ok(c.run(S, create('/q/c', '', { acl: onlyAlice(0) }), alice));
    ok(c.run(S, del('/q/c'), alice));
  });

  it('setData needs WRITE on the node', () => {
    ok(c.run(S, create('/n', '', { acl: onlyAlice(Perms.ALL & ~Perms.WRITE) })));
    fails(c.run(S, set('/n', 'x'), alice), 'NOAUTH');
    ok(c.run(S, create('/w', '', { acl: onlyAlice(Perms.WRITE) })));
    ok(c.run(S, set('/w', 'x'), alice));
    fails(c.run(S, set('/w', 'x'), bob), 'NOAUTH');
  });

  it('setACL needs ADMIN on the node; NOAUTH is checked before the version', () => {
    ok(c.run(S, create('/n', '', { acl: onlyAlice(Perms.ALL & ~Perms.ADMIN) })));
    fails(c.run(S, setAcl('/n', Ids.OPEN_ACL_UNSAFE as ACL[], 99), alice), 'NOAUTH');
    ok(c.run(S, create('/a', '', { acl: onlyAlice(Perms.ADMIN) })));
    ok(c.run(S, setAcl('/a', Ids.OPEN_ACL_UNSAFE as ACL[]), alice));
    ok(c.run(S, set('/a', 'now open'), bob));
  });

  it('check (in multi) needs READ on the node', () => {
    ok(c.run(S, create('/n', '', { acl: onlyAlice(Perms.ALL & ~Perms.READ) })));
    fails(c.run(S, multi(check('/n', 0)), alice), 'NOAUTH');
    ok(c.run(S, setAcl('/n', onlyAlice(Perms.READ)), superId));
    ok(c.run(S, multi(check('/n', 0)), alice));
  });

  it('ACLs are not recursive: an open child under a closed parent stays open', () => {
    ok(c.run(S, create('/p')));
    ok(c.run(S, create('/p/c')));
    ok(c.run(S, setAcl('/p', onlyAlice(Perms.READ))));
    ok(c.run(S, set('/p/c', 'x'), bob));
    fails(c.run(S, create('/p/d'), bob), 'NOAUTH');
  });

  it('a setACL that is prepared but not applied already governs the next request', () => {
    ok(c.run(S, create('/n')));
    const t1 = c.prepareOnly(S, setAcl('/n', onlyAlice(Perms.ALL)));
    const t2 = c.prepareOnly(S, set('/n', 'x'), bob);
    assert.deepEqual(t2.op, { type: 'error', code: 'NOAUTH', path: '/n' });
    c.applyPrepared(t1);
    c.applyPrepared(t2);
  });

  it('CREATOR_ALL_ACL becomes the creator\'s digest identities', () => {
    ok(c.run(S, create('/mine', '', { acl: Ids.CREATOR_ALL_ACL as ACL[] }), alice));
    assert.deepEqual(c.tree.get('/mine')!.acl, [{ perms: 31, scheme: 'digest', id: ALICE }]);
    fails(c.run(S, create('/anon', '', { acl: Ids.CREATOR_ALL_ACL as ACL[] }), anon), 'INVALIDACL');
    assert.equal(c.tree.get('/anon'), undefined);
  });

  it('INVALIDACL is reported before NONODE (ZooKeeper: fixupACL precedes the parent lookup)', () => {
    fails(c.run(S, create('/nope/x', '', { acl: [{ perms: 31, scheme: 'world', id: 'x' }] })), 'INVALIDACL');
  });
});
