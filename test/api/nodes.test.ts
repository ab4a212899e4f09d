import assert from 'node:assert/strict';
import { CreateMode, op, type Session, type Stat } from '../../src/index.js';
import { recorder, rejectsWith, singleMember, text } from './helpers.js';

const STAT_FIELDS = ['aversion', 'ctime', 'cversion', 'czxid', 'dataLength', 'ephemeralOwner', 'mtime', 'mzxid', 'numChildren', 'pzxid', 'version'];

describe('api/stat: Stat fields after each operation (SPEC §1)', () => {
  const ctx = singleMember();
  let s: Session;
  beforeEach(async () => {
    s = await ctx.member.session();
  });

  it('a Stat has exactly ZooKeeper\'s eleven fields, zxids and ephemeralOwner as bigint', async () => {
    await s.create('/a', 'x');
    const st = (await s.exists('/a'))!;
    assert.deepEqual(Object.keys(st).sort(), STAT_FIELDS);
    for (const k of ['czxid', 'mzxid', 'pzxid', 'ephemeralOwner'] as const) assert.equal(typeof st[k], 'bigint', k);
    for (const k of ['ctime', 'mtime', 'version', 'cversion', 'aversion', 'dataLength', 'numChildren'] as const) assert.equal(typeof st[k], 'number', k);
  });

  it('after create: czxid = mzxid = pzxid (the member\'s last zxid), ctime = mtime ≈ now, versions 0', async () => {
    const t0 = Date.now();
    await s.create('/a', 'hello');
    const t1 = Date.now();
    const { data, stat } = await s.getData('/a');
    assert.equal(text(data), 'hello');
    assert.equal(stat.czxid, ctx.member.lastZxid);
    assert.equal(stat.mzxid, stat.czxid);
    assert.equal(stat.pzxid, stat.czxid);
    assert.equal(stat.ctime, stat.mtime);
    assert.ok(stat.ctime >= t0 && stat.ctime <= t1, `ctime ${stat.ctime} within [${t0}, ${t1}]`);
    assert.deepEqual(
      { version: stat.version, cversion: stat.cversion, aversion: stat.aversion, ephemeralOwner: stat.ephemeralOwner, dataLength: stat.dataLength, numChildren: stat.numChildren },
      { version: 0, cversion: 0, aversion: 0, ephemeralOwner: 0n, dataLength: 5, numChildren: 0 },
    );
  });

  it('zxids grow with every write; the epoch is in the high 32 bits', async () => {
    await s.create('/a');
    const z1 = (await s.exists('/a'))!.czxid;
    await s.create('/b');
    const z2 = (await s.exists('/b'))!.czxid;
    assert.ok(z2 > z1);
    assert.ok(z1 >> 32n >= 1n, 'epoch ≥ 1');
    assert.equal(z2 >> 32n, z1 >> 32n, 'same epoch');
  });

  it('after setData: version+1, new mzxid and mtime, dataLength; czxid/ctime/pzxid/cversion unchanged', async () => {
    await s.create('/a', 'x');
    const before = (await s.exists('/a'))!;
    await new Promise((r) => setTimeout(r, 5));
    const returned = await s.setData('/a', 'twelve bytes');
    const after = (await s.exists('/a'))!;
    assert.deepEqual(returned, after, 'setData returns the new Stat');
    assert.equal(after.version, 1);
    assert.equal(after.mzxid, ctx.member.lastZxid);
    assert.ok(after.mzxid > before.mzxid);
    assert.ok(after.mtime > before.mtime);
    assert.equal(after.dataLength, 12);
    assert.equal(after.czxid, before.czxid);
    assert.equal(after.ctime, before.ctime);
    assert.equal(after.pzxid, before.pzxid);
    assert.equal(after.cversion, 0);
  });

  it('dataLength counts bytes (UTF-8), not characters', async () => {
    await s.create('/u', 'ü€');
    assert.equal((await s.exists('/u'))!.dataLength, 5);
    await s.setData('/u', new Uint8Array([1, 2, 3]));
    assert.equal((await s.exists('/u'))!.dataLength, 3);
  });

  it('create and delete of a child: the parent\'s cversion, pzxid and numChildren', async () => {
    await s.create('/p', 'p');
    const p0 = (await s.exists('/p'))!;
    await s.create('/p/a');
    const p1 = (await s.exists('/p'))!;
    assert.equal(p1.cversion, 1);
    assert.equal(p1.numChildren, 1);
    assert.equal(p1.pzxid, (await s.exists('/p/a'))!.czxid);
    assert.equal(p1.mzxid, p0.mzxid, 'a child create is not a data change');
    assert.equal(p1.version, 0);
    await s.create('/p/b');
    await s.delete('/p/a');
    const p2 = (await s.exists('/p'))!;
    assert.equal(p2.cversion, 3);
    assert.equal(p2.numChildren, 1);
    assert.equal(p2.pzxid, ctx.member.lastZxid);
    assert.equal(p2.mtime, p0.mtime);
    assert.deepEqual(await s.getChildren('/p'), ['b']);
  });

  it('getChildrenAndStat returns the parent\'s stat with the sorted children', async () => {
    await s.create('/p');
    for (const n of ['c', 'a', 'b']) await s.create('/p/' + n);
    const { children, stat } = await s.getChildrenAndStat('/p');
    assert.deepEqual(children, ['a', 'b', 'c']);
    assert.equal(stat.numChildren, 3);
    assert.equal(stat.cversion, 3);
  });

  it('setACL bumps aversion only', async () => {
    await s.create('/a', 'x');
    const before = (await s.exists('/a'))!;
    const returned = await s.setACL('/a', [{ perms: 31, scheme: 'world', id: 'anyone' }]);
    assert.deepEqual(returned, { ...before, aversion: 1 });
    assert.deepEqual((await s.getACL('/a')).stat, returned);
  });

  it('multi: every op gets the same zxid', async () => {
    await s.create('/a', 'x');
    const results = await s.multi([op.create('/m', 'm'), op.create('/m/c'), op.setData('/a', 'y'), op.check('/a', 1)]);
    const z = ctx.member.lastZxid;
    assert.equal((await s.exists('/m'))!.czxid, z);
    assert.equal((await s.exists('/m/c'))!.czxid, z);
    assert.equal((await s.exists('/m'))!.pzxid, z);
    assert.equal((await s.exists('/a'))!.mzxid, z);
    assert.deepEqual(results[2], { type: 'setData', stat: (await s.exists('/a'))! });
  });

  it('ephemeralOwner is the session id for ephemerals, 0n for every other mode', async () => {
    await s.create('/e', '', { mode: CreateMode.EPHEMERAL });
    const seq = await s.create('/es-', '', { mode: CreateMode.EPHEMERAL_SEQUENTIAL });
    await s.create('/p', '', { mode: CreateMode.PERSISTENT });
    const ps = await s.create('/ps-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL });
    await s.create('/c', '', { mode: CreateMode.CONTAINER });
    await s.create('/t', '', { mode: CreateMode.PERSISTENT_WITH_TTL, ttlMs: 60_000 });
    assert.equal((await s.exists('/e'))!.ephemeralOwner, s.id);
    assert.equal((await s.exists(seq))!.ephemeralOwner, s.id);
    for (const p of ['/p', ps, '/c', '/t']) assert.equal((await s.exists(p))!.ephemeralOwner, 0n, p);
  });

  it('the root and /zookeeper exist from the start', async () => {
    const root = (await s.exists('/'))!;
    assert.equal(root.czxid, 0n);
    assert.deepEqual(await s.getChildren('/'), ['zookeeper']);
    assert.ok(await s.exists('/zookeeper'));
  });

  it('a Stat handed out is a copy: mutating it changes nothing', async () => {
    await s.create('/a', 'x');
    const st = (await s.exists('/a'))! as Stat;
    st.version = 99;
    const { data } = await s.getData('/a');
    data[0] = 0;
    assert.equal((await s.exists('/a'))!.version, 0);
    assert.equal(text((await s.getData('/a')).data), 'x');
  });

  it('data passed in is copied: reusing the caller\'s buffer changes nothing', async () => {
    const buf = new Uint8Array([1, 2, 3]);
    await s.create('/a', buf);
    buf[0] = 9;
    assert.deepEqual([...(await s.getData('/a')).data], [1, 2, 3]);
  });

  it('a Node Buffer passed in is copied too (Buffer#slice would share memory)', async () => {
    const buf = Buffer.from('abc');
    await s.create('/b', buf);
    await s.multi([op.create('/c', buf), op.setData('/b', buf)]);
    buf.write('XYZ');
    assert.equal(text((await s.getData('/b')).data), 'abc');
    assert.equal(text((await s.getData('/c')).data), 'abc');
  });

  it('conditional writes: setData/delete/setACL with a stale version fail with BADVERSION, -1 means any', async () => {
    await s.create('/a', 'v0');
    await s.setData('/a', 'v1', { version: 0 });
    await rejectsWith(s.setData('/a', 'v2', { version: 0 }), 'BADVERSION', '/a');
    await s.setData('/a', 'v2', { version: -1 });
    await rejectsWith(s.setACL('/a', [{ perms: 31, scheme: 'world', id: 'anyone' }], { version: 3 }), 'BADVERSION', '/a');
    await s.setACL('/a', [{ perms: 31, scheme: 'world', id: 'anyone' }], { version: 0 });
    await rejectsWith(s.delete('/a', { version: 1 }), 'BADVERSION', '/a');
    await s.delete('/a', { version: 2 });
    assert.equal(await s.exists('/a'), null);
  });
});

describe('api/sequential: names (SPEC §1)', () => {
  const ctx = singleMember();
  let s: Session;
  beforeEach(async () => {
    s = await ctx.member.session();
    await s.create('/q');
  });

  it('10 digits, zero padded, increasing per parent', async () => {
    const names: string[] = [];
    for (let i = 0; i < 12; i++) names.push(await s.create('/q/n-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL }));
    assert.deepEqual(names, Array.from({ length: 12 }, (_, i) => `/q/n-${String(i).padStart(10, '0')}`));
    await s.create('/r');
    assert.equal(await s.create('/r/n-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL }), '/r/n-0000000000');
  });

  it('never reused across deletes', async () => {
    const a = await s.create('/q/n-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL });
    const b = await s.create('/q/n-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL });
    await s.delete(b);
    await s.delete(a);
    assert.equal(await s.create('/q/n-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL }), '/q/n-0000000002');
  });

  it('derived from the parent\'s child-create counter: plain creates advance it too', async () => {
    await s.create('/q/plain');
    await s.create('/q/plain2', '', { mode: CreateMode.EPHEMERAL });
    assert.equal(await s.create('/q/n-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL }), '/q/n-0000000002');
  });

  it('shared by all prefixes and modes under one parent', async () => {
    assert.equal(await s.create('/q/a-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL }), '/q/a-0000000000');
    assert.equal(await s.create('/q/b-', '', { mode: CreateMode.EPHEMERAL_SEQUENTIAL }), '/q/b-0000000001');
    assert.equal(await s.create('/q/c-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL, ttlMs: 60_000 }), '/q/c-0000000002');
  });

  it('a sequential create on the root names a child of the root', async () => {
    const p = await s.create('/', 'x', { mode: CreateMode.PERSISTENT_SEQUENTIAL });
    assert.match(p, /^\/\d{10}$/);
    assert.equal(text((await s.getData(p)).data), 'x');
  });

  it('a trailing slash names the node by the counter alone: /q/ → /q/0000000000', async () => {
    assert.equal(await s.create('/q/', 'x', { mode: CreateMode.PERSISTENT_SEQUENTIAL }), '/q/0000000000');
    assert.equal(await s.create('/q/', 'x', { mode: CreateMode.EPHEMERAL_SEQUENTIAL }), '/q/0000000001');
    assert.deepEqual(await s.getChildren('/q'), ['0000000000', '0000000001']);
  });

  it('EPHEMERAL_SEQUENTIAL nodes are ephemeral', async () => {
    const p = await s.create('/q/lock-', '', { mode: CreateMode.EPHEMERAL_SEQUENTIAL });
    assert.equal(p, '/q/lock-0000000000');
    assert.equal((await s.exists(p))!.ephemeralOwner, s.id);
    await s.close();
    const o = await ctx.member.session();
    assert.equal(await o.exists(p), null);
  });

  it('pipelined sequential creates from two sessions get distinct increasing names', async () => {
    const o = await ctx.member.session();
    const ps: Promise<string>[] = [];
    for (let i = 0; i < 20; i++) ps.push((i % 2 ? s : o).create('/q/x-', '', { mode: CreateMode.EPHEMERAL_SEQUENTIAL }));
    const names = await Promise.all(ps);
    assert.deepEqual(names, Array.from({ length: 20 }, (_, i) => `/q/x-${String(i).padStart(10, '0')}`));
  });

  it('sequential creates with parents: true start at 0 under the new parent', async () => {
    assert.equal(await s.create('/new/deep/n-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL, parents: true }), '/new/deep/n-0000000000');
  });
});

describe('api/ephemeral: rules (SPEC §1, §3)', () => {
  const ctx = singleMember();
  let s: Session;
  let other: Session;
  beforeEach(async () => {
    s = await ctx.member.session();
    other = await ctx.member.session();
  });

  it('owned by the creating session', async () => {
    await s.create('/e', '', { mode: CreateMode.EPHEMERAL });
    assert.equal((await other.exists('/e'))!.ephemeralOwner, s.id);
    assert.deepEqual(await s.getEphemerals(), ['/e']);
    assert.deepEqual(await other.getEphemerals(), []);
  });

  it('cannot have children: NOCHILDRENFOREPHEMERALS, whatever the child\'s mode or session', async () => {
    await s.create('/e', '', { mode: CreateMode.EPHEMERAL });
    await rejectsWith(s.create('/e/c'), 'NOCHILDRENFOREPHEMERALS', '/e/c');
    await rejectsWith(other.create('/e/c', '', { mode: CreateMode.EPHEMERAL }), 'NOCHILDRENFOREPHEMERALS');
    await rejectsWith(s.create('/e/s-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL }), 'NOCHILDRENFOREPHEMERALS');
    assert.equal((await s.exists('/e'))!.numChildren, 0);
  });

  it('removed when the session closes; others see NodeDeleted; their own ephemerals stay', async () => {
    await s.create('/p');
    await s.create('/p/e1', '', { mode: CreateMode.EPHEMERAL });
    await s.create('/e2', 'x', { mode: CreateMode.EPHEMERAL });
    await other.create('/mine', '', { mode: CreateMode.EPHEMERAL });
    const w1 = recorder();
    const w2 = recorder();
    await other.exists('/p/e1', { watch: w1 });
    await other.getData('/e2', { watch: w2 });
    await s.close();
    assert.equal(await other.exists('/p/e1'), null);
    assert.equal(await other.exists('/e2'), null);
    assert.ok(await other.exists('/mine'));
    assert.ok(await other.exists('/p'), 'persistent nodes of the session stay');
    assert.deepEqual(w1.list(), ['NodeDeleted /p/e1']);
    assert.deepEqual(w2.list(), ['NodeDeleted /e2']);
    assert.equal((await other.exists('/p'))!.numChildren, 0);
  });

  it('removed when the session expires (leader-decided), others see NodeDeleted, the owner sees LOST', async () => {
    await s.create('/e', '', { mode: CreateMode.EPHEMERAL });
    const w = recorder();
    await other.exists('/e', { watch: w });
    const states: string[] = [];
    s.on('state', (st) => states.push(st));
    await ctx.member.expireSession(s.id);
    for (let i = 0; i < 100 && s.state !== 'LOST'; i++) await new Promise((r) => setTimeout(r, 1));
    assert.equal(s.state, 'LOST');
    assert.deepEqual(states, ['LOST']);
    assert.equal(await other.exists('/e'), null);
    assert.deepEqual(w.list(), ['NodeDeleted /e']);
    await rejectsWith(s.exists('/e'), 'SESSIONEXPIRED');
    await rejectsWith(s.create('/again', '', { mode: CreateMode.EPHEMERAL }), 'SESSIONEXPIRED');
    assert.equal(await other.exists('/again'), null);
  });

  it('an ephemeral deleted explicitly is no longer the session\'s', async () => {
    await s.create('/e', '', { mode: CreateMode.EPHEMERAL });
    await s.delete('/e');
    assert.deepEqual(await s.getEphemerals(), []);
    await s.close();
  });

  it('another session may delete someone else\'s ephemeral (ACL permitting)', async () => {
    await s.create('/e', '', { mode: CreateMode.EPHEMERAL });
    await other.delete('/e');
    assert.deepEqual(await s.getEphemerals(), []);
  });

  it('getEphemerals(prefix) matches on the path string, sorted', async () => {
    await s.create('/app');
    await s.create('/app/b', '', { mode: CreateMode.EPHEMERAL });
    await s.create('/app/a', '', { mode: CreateMode.EPHEMERAL });
    await s.create('/apple', '', { mode: CreateMode.EPHEMERAL });
    await s.create('/other', '', { mode: CreateMode.EPHEMERAL });
    await s.create('/app/persistent');
    assert.deepEqual(await s.getEphemerals(), ['/app/a', '/app/b', '/apple', '/other']);
    assert.deepEqual(await s.getEphemerals('/'), ['/app/a', '/app/b', '/apple', '/other']);
    assert.deepEqual(await s.getEphemerals('/app'), ['/app/a', '/app/b', '/apple']);
    assert.deepEqual(await s.getEphemerals('/app/'), ['/app/a', '/app/b']);
    assert.deepEqual(await s.getEphemerals('/nothing'), []);
  });
});
