import assert from 'node:assert/strict';
import { CreateMode, op, startMember, type Session, type SessionState } from '../../src/index.js';
import { recorder, rejectsWith, settle, singleMember, text } from './helpers.js';

/** Polls `cond` every few ms until it holds or `ms` pass. */
async function eventually(cond: () => Promise<boolean> | boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error('condition not reached in time');
    await settle(5);
  }
}

describe('api/session: lifecycle (SPEC §3)', () => {
  describe('negotiated timeout', () => {
    const ctx = singleMember({ minSessionTimeoutMs: 1000, maxSessionTimeoutMs: 5000 });
    it('is clamped to the member\'s min and max', async () => {
      assert.equal((await ctx.member.session({ sessionTimeoutMs: 100 })).timeoutMs, 1000);
      assert.equal((await ctx.member.session({ sessionTimeoutMs: 3000 })).timeoutMs, 3000);
      assert.equal((await ctx.member.session({ sessionTimeoutMs: 60_000 })).timeoutMs, 5000);
      assert.equal((await ctx.member.session()).timeoutMs, 5000, 'the default 10 s, clamped');
    });
    it('refuses a nonsensical request', async () => {
      await rejectsWith(ctx.member.session({ sessionTimeoutMs: -1 }), 'BADARGUMENTS');
      await rejectsWith(ctx.member.session({ sessionTimeoutMs: 'long' as never }), 'BADARGUMENTS');
    });
  });

  describe('defaults', () => {
    const ctx = singleMember();
    it('a session starts CONNECTED with a unique non-zero id and the default 10 s timeout', async () => {
      const a = await ctx.member.session();
      const b = await ctx.member.session();
      assert.equal(a.state, 'CONNECTED');
      assert.equal(typeof a.id, 'bigint');
      assert.notEqual(a.id, 0n);
      assert.notEqual(a.id, b.id);
      assert.equal(a.timeoutMs, 10_000);
    });
  });

  describe('state events and ending', () => {
    const ctx = singleMember();

    it('close(): emits CLOSED once, removes ephemerals, is idempotent', async () => {
      const s = await ctx.member.session();
      const states: SessionState[] = [];
      s.on('state', (st) => states.push(st));
      await s.create('/e', '', { mode: CreateMode.EPHEMERAL });
      await s.close();
      await s.close();
      assert.equal(s.state, 'CLOSED');
      assert.deepEqual(states, ['CLOSED']);
      const o = await ctx.member.session();
      assert.equal(await o.exists('/e'), null);
      const dump = await ctx.member.admin('dump');
      assert.equal((dump.sessions as Record<string, unknown>)['0x' + s.id.toString(16)], undefined, 'the session is gone from the replicated table');
    });

    it('expiry (decided by the leader): emits LOST, removes ephemerals, later calls fail with SESSIONEXPIRED', async () => {
      const s = await ctx.member.session();
      const states: SessionState[] = [];
      s.on('state', (st) => states.push(st));
      await s.create('/e', '', { mode: CreateMode.EPHEMERAL });
      await ctx.member.expireSession(s.id);
      await eventually(() => s.state === 'LOST');
      assert.deepEqual(states, ['LOST']);
      const o = await ctx.member.session();
      assert.equal(await o.exists('/e'), null);
      await rejectsWith(s.getData('/'), 'SESSIONEXPIRED');
      await s.close(); // harmless
      assert.deepEqual(states, ['LOST', 'CLOSED']);
    });

    it('operations in flight when the session closes settle (none hangs)', async () => {
      const s = await ctx.member.session();
      const ps = [s.create('/x'), s.setData('/x', '1'), s.getData('/x')];
      const closing = s.close();
      const settled = await Promise.allSettled(ps);
      await closing;
      assert.deepEqual(settled.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled']);
    });

    it('the member stopping ends its sessions: LOST, then CONNECTIONLOSS', async () => {
      const member = await startMember({ id: 1 });
      const s = await member.session();
      const states: SessionState[] = [];
      s.on('state', (st) => states.push(st));
      await s.create('/e', '', { mode: CreateMode.EPHEMERAL });
      await member.stop();
      assert.deepEqual(states, ['LOST']);
      await rejectsWith(s.getData('/e'), 'CONNECTIONLOSS');
    });
  });

  describe('maxSessionsPerOrigin', () => {
    const ctx = singleMember({ maxSessionsPerOrigin: 3 });
    it('bounds the sessions per origin (like maxClientCnxns); closing one frees a slot', async () => {
      const s1 = await ctx.member.session();
      await ctx.member.session();
      await ctx.member.session();
      await rejectsWith(ctx.member.session(), 'CONNECTIONLOSS');
      await s1.close();
      const s4 = await ctx.member.session();
      assert.equal(s4.state, 'CONNECTED');
    });
  });
});

describe('api/session: operations (SPEC §1, §3)', () => {
  const ctx = singleMember();
  let s: Session;
  beforeEach(async () => {
    s = await ctx.member.session();
  });

  it('reads your own writes without awaiting them', async () => {
    const created = s.create('/a', 'one');
    const read = s.getData('/a');
    const set = s.setData('/a', 'two');
    const exists = s.exists('/a');
    const kids = s.getChildren('/');
    const del = s.delete('/a');
    const gone = s.exists('/a');
    assert.equal(await created, '/a');
    assert.equal(text((await read).data), 'one');
    assert.equal((await set).version, 1);
    assert.equal((await exists)!.version, 1);
    assert.deepEqual(await kids, ['a', 'zookeeper']);
    await del;
    assert.equal(await gone, null);
  });

  it('FIFO: a read issued between two writes sees the first and not the second', async () => {
    await s.create('/n', 'v0');
    const w1 = s.setData('/n', 'v1');
    const r = s.getData('/n');
    const w2 = s.setData('/n', 'v2');
    const r2 = s.getData('/n');
    assert.equal(text((await r).data), 'v1');
    assert.equal(text((await r2).data), 'v2');
    assert.equal((await w1).version, 1);
    assert.equal((await w2).version, 2);
  });

  it('results arrive in the order operations were issued', async () => {
    const order: string[] = [];
    const track = <T>(name: string, p: Promise<T>): Promise<unknown> => p.then(() => order.push(name), () => order.push(name + '!'));
    await Promise.all([
      track('create', s.create('/o')),
      track('exists', s.exists('/o')),
      track('set', s.setData('/o', 'x')),
      track('badversion', s.setData('/o', 'y', { version: 0 })),
      track('get', s.getData('/o')),
      track('multi', s.multi([op.check('/o', 1)])),
      track('children', s.getChildren('/o')),
      track('delete', s.delete('/o')),
    ]);
    assert.deepEqual(order, ['create', 'exists', 'set', 'badversion!', 'get', 'multi', 'children', 'delete']);
  });

  it('sync() then read sees everything committed before the sync', async () => {
    const o = await ctx.member.session();
    await o.create('/synced', 'x');
    await s.sync('/synced');
    assert.equal(text((await s.getData('/synced')).data), 'x');
    await s.sync();
  });

  it('getAllChildrenNumber counts all descendants, not the node itself', async () => {
    await s.create('/t');
    assert.equal(await s.getAllChildrenNumber('/t'), 0);
    await s.create('/t/a');
    await s.create('/t/a/b');
    await s.create('/t/a/b/c');
    await s.create('/t/d');
    assert.equal(await s.getAllChildrenNumber('/t'), 4);
    assert.equal(await s.getAllChildrenNumber('/t/a'), 2);
    // The root counts the system nodes too, as ZooKeeper's does (/zookeeper, /zookeeper/quota, /zookeeper/config).
    assert.equal(await s.getAllChildrenNumber('/'), 5 + 3);
  });

  it('deleteAll removes a subtree bottom-up, fires the watches, and NONODE when missing', async () => {
    await s.create('/d/x/y', '', { parents: true });
    await s.create('/d/z');
    const o = await ctx.member.session();
    await o.create('/d/x/eph', '', { mode: CreateMode.EPHEMERAL });
    const w = recorder();
    await o.exists('/d', { watch: w });
    await s.deleteAll('/d');
    assert.equal(await s.exists('/d'), null);
    assert.deepEqual(w.list(), ['NodeDeleted /d']);
    await rejectsWith(s.deleteAll('/d'), 'NONODE', '/d');
    await s.create('/single');
    await s.deleteAll('/single');
    assert.equal(await s.exists('/single'), null);
  });

  it('create with parents: true creates missing ancestors as PERSISTENT with the open ACL', async () => {
    assert.equal(await s.create('/p1/p2/p3/leaf', 'data', { parents: true, mode: CreateMode.EPHEMERAL }), '/p1/p2/p3/leaf');
    for (const p of ['/p1', '/p1/p2', '/p1/p2/p3']) {
      const st = (await s.exists(p))!;
      assert.equal(st.ephemeralOwner, 0n, p);
      assert.equal(st.dataLength, 0, p);
      assert.deepEqual((await s.getACL(p)).acl, [{ perms: 31, scheme: 'world', id: 'anyone' }]);
    }
    assert.equal((await s.exists('/p1/p2/p3/leaf'))!.ephemeralOwner, s.id);
    assert.equal(text((await s.getData('/p1/p2/p3/leaf')).data), 'data');
    // Existing ancestors are fine; an existing leaf is still NODEEXISTS.
    assert.equal(await s.create('/p1/p2/other', '', { parents: true }), '/p1/p2/other');
    await rejectsWith(s.create('/p1/p2/other', '', { parents: true }), 'NODEEXISTS');
  });

  it('ZooKeeper-style positional arguments: a CreateMode, a watcher function, a version number', async () => {
    assert.equal(await s.create('/pos', 'x', CreateMode.EPHEMERAL), '/pos');
    assert.equal((await s.exists('/pos'))!.ephemeralOwner, s.id);
    assert.equal(await s.create('/pos-', '', CreateMode.PERSISTENT_SEQUENTIAL), '/pos-0000000001');
    const w = recorder();
    await s.getData('/pos', w);
    await rejectsWith(s.setData('/pos', 'y', 5), 'BADVERSION');
    await s.setData('/pos', 'y', 0);
    assert.deepEqual(w.list(), ['NodeDataChanged /pos']);
    await rejectsWith(s.delete('/pos', 0), 'BADVERSION');
    await s.delete('/pos', 1);
  });

  it('without parents: true a missing parent is NONODE', async () => {
    await rejectsWith(s.create('/m1/m2'), 'NONODE', '/m1');
    assert.equal(await s.exists('/m1'), null);
  });
});

describe('api/session: CONTAINER and TTL nodes (SPEC §1 beyond)', () => {
  const ctx = singleMember({ containerCheckIntervalMs: 20 });
  let s: Session;
  beforeEach(async () => {
    s = await ctx.member.session();
  });

  it('a container is deleted once its last child goes', async () => {
    await s.create('/c', '', { mode: CreateMode.CONTAINER });
    await s.create('/c/a');
    await s.create('/c/b');
    await s.delete('/c/a');
    await settle(60);
    assert.ok(await s.exists('/c'), 'still has a child');
    const w = recorder();
    await s.exists('/c', { watch: w });
    await s.delete('/c/b');
    await eventually(async () => (await s.exists('/c')) === null);
    assert.deepEqual(w.list(), ['NodeDeleted /c']);
  });

  it('a container also goes when its last child was an ephemeral whose session ended', async () => {
    await s.create('/c', '', { mode: CreateMode.CONTAINER });
    const o = await ctx.member.session();
    await o.create('/c/e', '', { mode: CreateMode.EPHEMERAL });
    await o.close();
    await eventually(async () => (await s.exists('/c')) === null);
  });

  it('a container that never had children stays', async () => {
    await s.create('/c', '', { mode: CreateMode.CONTAINER });
    await settle(100);
    assert.ok(await s.exists('/c'));
  });

  it('a TTL node is deleted once ttl passed without changes and it has no children', async () => {
    await s.create('/t', '', { mode: CreateMode.PERSISTENT_WITH_TTL, ttlMs: 60 });
    assert.ok(await s.exists('/t'));
    await eventually(async () => (await s.exists('/t')) === null);
  });

  it('a TTL node with children stays; it goes after the last child does', async () => {
    await s.create('/t', '', { mode: CreateMode.PERSISTENT_WITH_TTL, ttlMs: 40 });
    await s.create('/t/child');
    await settle(120);
    assert.ok(await s.exists('/t'));
    await s.delete('/t/child');
    await eventually(async () => (await s.exists('/t')) === null);
  });

  it('a sequential TTL node has a sequential name and expires too', async () => {
    const p = await s.create('/ts-', '', { mode: CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL, ttlMs: 40 });
    assert.match(p, /^\/ts-\d{10}$/);
    await eventually(async () => (await s.exists(p)) === null);
  });

  it('a TTL node far from its ttl stays', async () => {
    await s.create('/long', '', { mode: CreateMode.PERSISTENT_WITH_TTL, ttlMs: 60_000 });
    await settle(80);
    assert.ok(await s.exists('/long'));
  });
});
