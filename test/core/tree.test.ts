import assert from 'node:assert/strict';
import { CreateMode } from '../../src/core/createMode.js';
import type { SnapshotNode } from '../../src/core/tree.js';
import { makeZxid } from '../../src/core/zxid.js';
import { Core, check, create, dec, del, enc, fails, multi, ok, set, setAcl } from './harness.js';

const S1 = 0x100n;
const S2 = 0x200n;

function stat(c: Core, path: string) {
  const n = c.tree.get(path);
  assert.ok(n, `${path} should exist`);
  return n.stat;
}

describe('core/tree: Stat bookkeeping (SPEC §1)', () => {
  let c: Core;
  beforeEach(() => {
    c = new Core();
    c.openSession(S1);
  });

  it('create sets czxid = mzxid = pzxid = the txn zxid, ctime = mtime = the txn time, versions 0', () => {
    const z = c.nextZxid;
    ok(c.run(S1, create('/a', 'hello')));
    const s = stat(c, '/a');
    assert.deepEqual(s, {
      czxid: z, mzxid: z, pzxid: z, ctime: c.now, mtime: c.now,
      version: 0, cversion: 0, aversion: 0, ephemeralOwner: 0n, dataLength: 5, numChildren: 0,
    });
    assert.equal(dec(c.tree.get('/a')!.data), 'hello');
  });

  it('create bumps the parent\'s cversion, numChildren and pzxid, but not its mzxid/version', () => {
    ok(c.run(S1, create('/p')));
    const before = { ...stat(c, '/p') };
    const z = c.nextZxid;
    ok(c.run(S1, create('/p/a')));
    ok(c.run(S1, create('/p/b')));
    const after = stat(c, '/p');
    assert.equal(after.cversion, 2);
    assert.equal(after.numChildren, 2);
    assert.equal(after.pzxid, z + 1n);
    assert.equal(after.mzxid, before.mzxid);
    assert.equal(after.version, 0);
    assert.equal(after.mtime, before.mtime);
  });

  it('setData bumps version, mzxid, mtime and dataLength; ctime/czxid/pzxid unchanged', () => {
    ok(c.run(S1, create('/a', 'x')));
    const before = { ...stat(c, '/a') };
    const z = c.nextZxid;
    const r = ok(c.run(S1, set('/a', 'longer data')));
    const after = stat(c, '/a');
    assert.equal(after.version, 1);
    assert.equal(after.mzxid, z);
    assert.equal(after.mtime, c.now);
    assert.notEqual(after.mtime, before.mtime);
    assert.equal(after.dataLength, 11);
    assert.equal(after.czxid, before.czxid);
    assert.equal(after.ctime, before.ctime);
    assert.equal(after.pzxid, before.pzxid);
    assert.equal(after.cversion, 0);
    assert.equal(after.aversion, 0);
    assert.equal(r.op, 'setData');
    assert.deepEqual((r as { stat: unknown }).stat, after);
  });

  it('setData with empty data sets dataLength 0', () => {
    ok(c.run(S1, create('/a', 'x')));
    ok(c.run(S1, set('/a', '')));
    assert.equal(stat(c, '/a').dataLength, 0);
  });

  it('delete of a child bumps the parent\'s cversion and pzxid and lowers numChildren', () => {
    ok(c.run(S1, create('/p')));
    ok(c.run(S1, create('/p/a')));
    ok(c.run(S1, create('/p/b')));
    const z = c.nextZxid;
    ok(c.run(S1, del('/p/a')));
    const p = stat(c, '/p');
    assert.equal(p.cversion, 3);
    assert.equal(p.numChildren, 1);
    assert.equal(p.pzxid, z);
    assert.equal(c.tree.get('/p/a'), undefined);
    assert.deepEqual(c.tree.sortedChildren(c.tree.get('/p')!), ['b']);
  });

  it('setACL bumps aversion only', () => {
    ok(c.run(S1, create('/a', 'x')));
    const before = { ...stat(c, '/a') };
    const r = ok(c.run(S1, setAcl('/a', [{ perms: 31, scheme: 'world', id: 'anyone' }])));
    const after = stat(c, '/a');
    assert.deepEqual(after, { ...before, aversion: 1 });
    assert.deepEqual((r as { stat: unknown }).stat, after);
  });

  it('multi gives every op the same zxid', () => {
    ok(c.run(S1, create('/a', 'x')));
    const z = c.nextZxid;
    const r = ok(c.run(S1, multi(create('/m'), create('/m/c'), set('/a', 'y'))));
    assert.equal(r.op, 'multi');
    assert.equal(stat(c, '/m').czxid, z);
    assert.equal(stat(c, '/m/c').czxid, z);
    assert.equal(stat(c, '/m').pzxid, z);
    assert.equal(stat(c, '/a').mzxid, z);
    assert.equal(c.tree.lastZxid, z);
  });

  it('ephemeralOwner is the session id for ephemerals and 0n otherwise', () => {
    ok(c.run(S1, create('/e', '', { mode: CreateMode.EPHEMERAL })));
    ok(c.run(S1, create('/p', '', { mode: CreateMode.PERSISTENT })));
    ok(c.run(S1, create('/c', '', { mode: CreateMode.CONTAINER })));
    ok(c.run(S1, create('/t', '', { mode: CreateMode.PERSISTENT_WITH_TTL, ttl: 1000 })));
    assert.equal(stat(c, '/e').ephemeralOwner, S1);
    assert.equal(stat(c, '/p').ephemeralOwner, 0n);
    assert.equal(stat(c, '/c').ephemeralOwner, 0n);
    assert.equal(stat(c, '/t').ephemeralOwner, 0n);
  });

  it('every txn advances lastZxid, including failed ones (error txns keep the order)', () => {
    const z = c.nextZxid;
    fails(c.run(S1, del('/nope')), 'NONODE');
    assert.equal(c.tree.lastZxid, z);
    assert.equal(c.log.at(-1)!.op.type, 'error');
  });

  it('a failed op changes nothing in the tree', () => {
    ok(c.run(S1, create('/a', 'x')));
    const digest = c.tree.digest();
    fails(c.run(S1, set('/a', 'y', 7)), 'BADVERSION');
    fails(c.run(S1, create('/a')), 'NODEEXISTS');
    fails(c.run(S1, create('/x/y')), 'NONODE');
    fails(c.run(S1, del('/a', 3)), 'BADVERSION');
    assert.equal(c.tree.digest(), digest);
  });
});

describe('core/tree: sequential names (SPEC §1)', () => {
  let c: Core;
  beforeEach(() => {
    c = new Core();
    c.openSession(S1);
    ok(c.run(S1, create('/q')));
  });

  const seqCreate = (p: string, mode: CreateMode = CreateMode.PERSISTENT_SEQUENTIAL): string => {
    const r = ok(c.run(S1, create(p, '', { mode })));
    return (r as { path: string }).path;
  };

  it('appends a 10-digit zero-padded counter starting at 0', () => {
    assert.equal(seqCreate('/q/n-'), '/q/n-0000000000');
    assert.equal(seqCreate('/q/n-'), '/q/n-0000000001');
    assert.equal(seqCreate('/q/other-'), '/q/other-0000000002');
  });

  it('is per parent', () => {
    ok(c.run(S1, create('/r')));
    assert.equal(seqCreate('/q/n-'), '/q/n-0000000000');
    assert.equal(seqCreate('/r/n-'), '/r/n-0000000000');
    assert.equal(seqCreate('/q/n-'), '/q/n-0000000001');
  });

  it('is never reused across deletes', () => {
    const a = seqCreate('/q/n-');
    const b = seqCreate('/q/n-');
    ok(c.run(S1, del(b)));
    ok(c.run(S1, del(a)));
    assert.equal(seqCreate('/q/n-'), '/q/n-0000000002');
  });

  it('is advanced by non-sequential creates under the same parent (child-create counter)', () => {
    ok(c.run(S1, create('/q/plain')));
    assert.equal(seqCreate('/q/n-'), '/q/n-0000000001');
    ok(c.run(S1, del('/q/plain')));
    // Deletes do not advance it (unlike ZooKeeper's cversion, which SPEC §1 does not use).
    assert.equal(seqCreate('/q/n-'), '/q/n-0000000002');
  });

  it('is not advanced by failed creates', () => {
    ok(c.run(S1, create('/q/x')));
    fails(c.run(S1, create('/q/x')), 'NODEEXISTS');
    assert.equal(seqCreate('/q/n-'), '/q/n-0000000001');
  });

  it('completes a trailing slash: /q/ → /q/0000000000', () => {
    assert.equal(seqCreate('/q/'), '/q/0000000000');
    assert.equal(seqCreate('/q/'), '/q/0000000001');
  });

  it('works for EPHEMERAL_SEQUENTIAL and the TTL variant', () => {
    assert.equal(seqCreate('/q/e-', CreateMode.EPHEMERAL_SEQUENTIAL), '/q/e-0000000000');
    assert.equal(stat(c, '/q/e-0000000000').ephemeralOwner, S1);
    const r = ok(c.run(S1, create('/q/t-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL, ttl: 5000 })));
    assert.equal((r as { path: string }).path, '/q/t-0000000001');
  });

  it('counts creates of a multi in order', () => {
    const r = ok(c.run(S1, multi(create('/q/a-', '', { mode: 2 }), create('/q/b-', '', { mode: 2 }))));
    assert.deepEqual((r as { results: unknown }).results, [
      { type: 'create', path: '/q/a-0000000000' },
      { type: 'create', path: '/q/b-0000000001' },
    ]);
  });

  it('survives in the snapshot (records carry the counter)', () => {
    seqCreate('/q/n-');
    seqCreate('/q/n-');
    const rec = [...c.tree.records()].find((r) => r.path === '/q')!;
    assert.equal(rec.seq, 2);
  });
});

describe('core/tree: ephemerals (SPEC §1)', () => {
  let c: Core;
  beforeEach(() => {
    c = new Core();
    c.openSession(S1);
    c.openSession(S2);
  });

  it('cannot have children: NOCHILDRENFOREPHEMERALS, also for sequential children', () => {
    ok(c.run(S1, create('/e', '', { mode: CreateMode.EPHEMERAL })));
    fails(c.run(S1, create('/e/c')), 'NOCHILDRENFOREPHEMERALS');
    fails(c.run(S2, create('/e/c-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL })), 'NOCHILDRENFOREPHEMERALS');
    fails(c.run(S1, create('/e/c', '', { mode: CreateMode.EPHEMERAL })), 'NOCHILDRENFOREPHEMERALS');
    assert.equal(stat(c, '/e').numChildren, 0);
  });

  it('are removed by closeSession, with the parent\'s counters bumped, and other sessions\' stay', () => {
    ok(c.run(S1, create('/p')));
    ok(c.run(S1, create('/p/e1', '', { mode: CreateMode.EPHEMERAL })));
    ok(c.run(S1, create('/e2', '', { mode: CreateMode.EPHEMERAL })));
    ok(c.run(S2, create('/p/f', '', { mode: CreateMode.EPHEMERAL })));
    const cv = stat(c, '/p').cversion;
    const z = c.nextZxid;
    ok(c.closeSession(S1));
    assert.equal(c.tree.get('/p/e1'), undefined);
    assert.equal(c.tree.get('/e2'), undefined);
    assert.ok(c.tree.get('/p/f'));
    assert.equal(stat(c, '/p').cversion, cv + 1);
    assert.equal(stat(c, '/p').pzxid, z);
    assert.equal(c.tree.sessions.has(S1), false);
    assert.equal(c.tree.ephemerals.has(S1), false);
    assert.deepEqual([...c.tree.ephemerals.get(S2)!], ['/p/f']);
  });

  it('created by a prepared-but-unapplied txn are still deleted by a closeSession prepared after it', () => {
    const t1 = c.prepareOnly(S1, create('/late', '', { mode: CreateMode.EPHEMERAL }));
    const t2 = c.prepareOnly(S1, { type: 'closeSession', reason: 'close' });
    assert.equal(t2.op.type, 'closeSession');
    assert.deepEqual((t2.op as { deletes: { path: string }[] }).deletes.map((d) => d.path), ['/late']);
    ok(c.applyPrepared(t1));
    ok(c.applyPrepared(t2));
    assert.equal(c.tree.get('/late'), undefined);
  });

  it('a closed session can no longer write: SESSIONEXPIRED', () => {
    ok(c.closeSession(S1));
    fails(c.run(S1, create('/x')), 'SESSIONEXPIRED');
    fails(c.closeSession(S1), 'SESSIONEXPIRED');
  });

  it('a write prepared after a closeSession is refused even before the close is applied', () => {
    const t1 = c.prepareOnly(S1, { type: 'closeSession', reason: 'close' });
    const t2 = c.prepareOnly(S1, create('/x', '', { mode: CreateMode.EPHEMERAL }));
    assert.deepEqual(t2.op, { type: 'error', code: 'SESSIONEXPIRED' });
    ok(c.applyPrepared(t1));
    fails(c.applyPrepared(t2), 'SESSIONEXPIRED');
    assert.equal(c.tree.get('/x'), undefined);
  });

  it('an unknown session cannot write', () => {
    fails(c.run(0x999n, create('/x')), 'SESSIONEXPIRED');
  });
});

describe('core/prep: conditional versions and error codes (SPEC §1)', () => {
  let c: Core;
  beforeEach(() => {
    c = new Core();
    c.openSession(S1);
    ok(c.run(S1, create('/a', 'v0')));
  });

  it('setData with the current version succeeds, with another fails BADVERSION, -1 means any', () => {
    ok(c.run(S1, set('/a', 'v1', 0)));
    fails(c.run(S1, set('/a', 'v2', 0)), 'BADVERSION');
    ok(c.run(S1, set('/a', 'v2', 1)));
    ok(c.run(S1, set('/a', 'v3', -1)));
    assert.equal(stat(c, '/a').version, 3);
  });

  it('delete and setACL check their version (setACL against aversion)', () => {
    fails(c.run(S1, del('/a', 1)), 'BADVERSION');
    ok(c.run(S1, set('/a', 'x')));
    fails(c.run(S1, setAcl('/a', [{ perms: 31, scheme: 'world', id: 'anyone' }], 1)), 'BADVERSION');
    ok(c.run(S1, setAcl('/a', [{ perms: 31, scheme: 'world', id: 'anyone' }], 0)));
    fails(c.run(S1, setAcl('/a', [{ perms: 31, scheme: 'world', id: 'anyone' }], 0)), 'BADVERSION');
    ok(c.run(S1, del('/a', 1)));
  });

  it('NONODE for missing nodes and missing parents, with the path', () => {
    assert.deepEqual(fails(c.run(S1, set('/nope', 'x')), 'NONODE').path, '/nope');
    assert.deepEqual(fails(c.run(S1, create('/nope/child')), 'NONODE').path, '/nope');
    fails(c.run(S1, del('/nope')), 'NONODE');
    fails(c.run(S1, setAcl('/nope', [{ perms: 31, scheme: 'world', id: 'anyone' }])), 'NONODE');
  });

  it('NODEEXISTS and NOTEMPTY', () => {
    assert.equal(fails(c.run(S1, create('/a')), 'NODEEXISTS').path, '/a');
    ok(c.run(S1, create('/a/b')));
    assert.equal(fails(c.run(S1, del('/a')), 'NOTEMPTY').path, '/a');
  });

  it('prep sees outstanding (prepared, unapplied) changes: two pipelined creates of one path', () => {
    const t1 = c.prepareOnly(S1, create('/p'));
    const t2 = c.prepareOnly(S1, create('/p/c'));
    const t3 = c.prepareOnly(S1, create('/p'));
    assert.equal(t1.op.type, 'create');
    assert.equal(t2.op.type, 'create');
    assert.deepEqual(t3.op, { type: 'error', code: 'NODEEXISTS', path: '/p' });
    const t4 = c.prepareOnly(S1, set('/p', 'x', 0));
    const t5 = c.prepareOnly(S1, set('/p', 'y', 0));
    assert.equal(t4.op.type, 'setData');
    assert.equal(t5.op.type, 'error');
    for (const t of [t1, t2, t3, t4, t5]) c.applyPrepared(t);
    assert.equal(stat(c, '/p').version, 1);
    assert.equal(dec(c.tree.get('/p')!.data), 'x');
  });
});

describe('core/tree: multi (SPEC §1)', () => {
  let c: Core;
  beforeEach(() => {
    c = new Core();
    c.openSession(S1);
    ok(c.run(S1, create('/a', 'v0')));
  });

  it('returns per-op results', () => {
    const r = ok(c.run(S1, multi(create('/b', 'x'), set('/a', 'v1', 0), check('/a', 1), del('/b'))));
    const results = (r as { results: { type: string }[] }).results;
    assert.deepEqual(results.map((x) => x.type), ['create', 'setData', 'check', 'delete']);
    assert.deepEqual(results[0], { type: 'create', path: '/b' });
    assert.equal((results[1] as unknown as { stat: { version: number } }).stat.version, 1);
    assert.equal(c.tree.get('/b'), undefined);
  });

  it('is all or nothing: a failing op leaves the tree as it was, results OK / code / RUNTIMEINCONSISTENCY', () => {
    const digest = c.tree.digest();
    const z = c.nextZxid;
    const r = fails(c.run(S1, multi(create('/b'), set('/a', 'x'), check('/a', 5), create('/c'))), 'BADVERSION');
    assert.deepEqual(r.results, [
      { type: 'error', code: 'OK' },
      { type: 'error', code: 'OK' },
      { type: 'error', code: 'BADVERSION' },
      { type: 'error', code: 'RUNTIMEINCONSISTENCY' },
    ]);
    assert.equal(c.tree.get('/b'), undefined);
    assert.equal(stat(c, '/a').version, 0);
    assert.equal(c.tree.lastZxid, z);
    // Only lastZxid moved.
    assert.equal(c.tree.digest(), digest);
  });

  it('a failed multi leaves no trace in prep: the same ops succeed afterwards', () => {
    fails(c.run(S1, multi(create('/b'), create('/b/c'), check('/a', 9))), 'BADVERSION');
    const r = ok(c.run(S1, multi(create('/b'), create('/b/c'))));
    assert.equal(r.op, 'multi');
    assert.equal(stat(c, '/b').numChildren, 1);
    assert.equal(stat(c, '/').cversion, 2 /* /a and /b */);
  });

  it('later ops see earlier ones: create parent then child; delete then re-create', () => {
    ok(c.run(S1, multi(create('/p'), create('/p/c'))));
    assert.ok(c.tree.get('/p/c'));
    const z = c.nextZxid;
    ok(c.run(S1, multi(del('/a', 0), create('/a', 'again'))));
    assert.equal(dec(c.tree.get('/a')!.data), 'again');
    assert.equal(stat(c, '/a').czxid, z);
    assert.equal(stat(c, '/a').version, 0);
  });

  it('later ops see earlier ones: setData then check of the new version; delete children then parent', () => {
    ok(c.run(S1, create('/p')));
    ok(c.run(S1, create('/p/c')));
    ok(c.run(S1, multi(set('/a', 'x', 0), check('/a', 1), del('/p/c'), del('/p'))));
    assert.equal(c.tree.get('/p'), undefined);
    fails(c.run(S1, multi(create('/p'), create('/p/c'), del('/p'))), 'NOTEMPTY');
  });

  it('an empty multi succeeds with no results', () => {
    const r = ok(c.run(S1, multi()));
    assert.deepEqual((r as { results: unknown[] }).results, []);
  });

  it('sequential creates in a failed multi do not consume the counter', () => {
    fails(c.run(S1, multi(create('/s-', '', { mode: 2 }), check('/nope', -1))), 'NONODE');
    const r = ok(c.run(S1, create('/s-', '', { mode: 2 })));
    // '/' has /zookeeper (system) and /a; the counter counts creates through txns: /a only.
    assert.equal((r as { path: string }).path, '/s-0000000001');
  });
});

describe('core/tree: replay idempotence (fuzzy snapshots)', () => {
  it('re-applying the txn log on a copy reaches the same digest', () => {
    const c = new Core();
    c.openSession(S1);
    c.run(S1, create('/a', 'x'));
    c.run(S1, create('/a/s-', '', { mode: 2 }));
    c.run(S1, create('/e', '', { mode: 1 }));
    c.run(S1, set('/a', 'y'));
    c.run(S1, del('/a/s-0000000000'));
    c.closeSession(S1);
    const replica = new Core();
    for (const t of c.log) replica.tree.apply(t);
    assert.equal(replica.tree.digest(), c.tree.digest());
    assert.equal(replica.tree.lastZxid, makeZxid(1, c.log.length));
    void enc;
  });
});

describe('core/tree: records() for snapshots', () => {
  it('a fuzzy snapshot (the tree changes while records are taken) plus replay of the log after it gives the exact tree', () => {
    const c = new Core();
    c.openSession(S1);
    for (const p of ['/a', '/a/x', '/a/y', '/b', '/b/z', '/c', '/d']) ok(c.run(S1, create(p, p)));
    const start = c.tree.lastZxid;
    const startIndex = c.log.length;
    const it = c.tree.records();
    const taken: SnapshotNode[] = [];
    const seen = new Set<string>();
    const take = (n: number): void => {
      for (let i = 0; i < n; i++) {
        const r = it.next();
        if (r.done) return;
        const path = r.value.path;
        if (path !== '/') assert.ok(seen.has(path.slice(0, path.lastIndexOf('/')) || '/'), `${path} comes after its parent`);
        assert.ok(!seen.has(path), `${path} written twice`);
        seen.add(path);
        taken.push(r.value);
      }
    };
    take(6); // '/', the system nodes, '/a', '/a/x'
    assert.ok(seen.has('/a/x'));
    // Meanwhile: a visited subtree goes and comes back with a new child, a node not yet reached is
    // deleted, new nodes appear under visited and unvisited parents, data changes.
    ok(c.run(S1, del('/a/x')));
    ok(c.run(S1, del('/a/y')));
    ok(c.run(S1, del('/a')));
    ok(c.run(S1, create('/a', 'again')));
    ok(c.run(S1, create('/a/new', '')));
    ok(c.run(S1, del('/c')));
    ok(c.run(S1, create('/b/late', '')));
    ok(c.run(S1, set('/d', 'changed')));
    take(1000);
    assert.ok(!seen.has('/a/new') && !seen.has('/b/late') && !seen.has('/c'), 'created after the start or deleted before being reached: left out');
    assert.ok(seen.has('/b/z') && seen.has('/d'));
    // Recovery: the records as the snapshot at `start` (and the session table), then the log after it.
    const replica = new Core();
    for (const r of taken) replica.tree.loadRecord(r);
    for (const [id, e] of c.tree.sessions) replica.tree.sessions.set(id, { ...e });
    replica.tree.lastZxid = start;
    for (const t of c.log.slice(startIndex)) replica.tree.apply(t);
    assert.equal(replica.tree.digest(), c.tree.digest());
  });
});
