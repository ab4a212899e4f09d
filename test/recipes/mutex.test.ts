import assert from 'node:assert/strict';
import { Mutex, MultiLock, SemaphoreMutex, Semaphore, createProtected, protectedGuid } from '../../src/api/recipes/index.js';
import { KeeperError } from '../../src/core/errors.js';
import { countNotifications, eventually, isKeeper, loseNextWrite, sessionsOf, single, sleep, type Single } from './helpers.js';

describe('recipes/Mutex (InterProcessMutex)', function () {
  this.timeout(30_000);
  let env: Single;
  beforeEach(async () => {
    env = await single();
  });
  afterEach(async () => {
    await env.stop();
  });

  it('never has two holders: 12 sessions × 8 acquisitions on a shared counter; fencing tokens only grow', async () => {
    const sessions = await sessionsOf(env, 12);
    let holders = 0;
    let maxHolders = 0;
    let total = 0;
    const tokens: bigint[] = [];
    await Promise.all(sessions.map(async (s) => {
      const m = new Mutex(s, '/locks/counter');
      for (let i = 0; i < 8; i++) {
        assert.equal(await m.acquire(), true);
        holders++;
        maxHolders = Math.max(maxHolders, holders);
        tokens.push(m.fencingToken);
        await sleep(Math.random() < 0.5 ? 0 : 1);
        total++;
        holders--;
        await m.release();
      }
    }));
    assert.equal(maxHolders, 1);
    assert.equal(total, 96);
    for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]! > tokens[i - 1]!, `fencing token ${i} did not grow`);
    const left = await sessions[0]!.getChildren('/locks/counter');
    assert.deepEqual(left, [], 'every lock node was deleted');
  });

  it('is fair: waiters acquire in the order they queued', async () => {
    const sessions = await sessionsOf(env, 6);
    const holder = new Mutex(sessions[0]!, '/locks/fifo');
    assert.ok(await holder.acquire());
    const order: number[] = [];
    const done: Promise<void>[] = [];
    for (let i = 1; i < sessions.length; i++) {
      const m = new Mutex(sessions[i]!, '/locks/fifo');
      done.push(m.acquire().then(async (ok) => {
        assert.ok(ok);
        order.push(i);
        await sleep(2);
        await m.release();
      }));
      await eventually(async () => (await holder.getParticipantNodes()).length === i + 1, `waiter ${i} queued`);
    }
    await holder.release();
    await Promise.all(done);
    assert.deepEqual(order, [1, 2, 3, 4, 5]);
  });

  it('has no herd: each release wakes exactly one waiter, and each waiter watches a different node', async () => {
    const sessions = await sessionsOf(env, 9);
    const holder = new Mutex(sessions[0]!, '/locks/herd');
    assert.ok(await holder.acquire());
    const waiters = sessions.slice(1).map((s) => ({ s, m: new Mutex(s, '/locks/herd'), counter: countNotifications(s) }));
    const acquired: Promise<boolean>[] = [];
    for (const w of waiters) {
      acquired.push(w.m.acquire());
      await eventually(async () => (await holder.getParticipantNodes()).length === acquired.length + 1, 'queued');
    }
    await sleep(20);
    // Server side: 8 waiters, 8 distinct watched paths, one session each (the predecessor of each waiter).
    const wchp = (await env.member.admin('wchp')) as { paths: Record<string, string[]> };
    const watched = Object.entries(wchp.paths).filter(([p]) => p.startsWith('/locks/herd/'));
    assert.equal(watched.length, 8);
    for (const [, sids] of watched) assert.equal(sids.length, 1);
    assert.equal(waiters.reduce((n, w) => n + w.counter.count, 0), 0);
    let released = holder as Mutex;
    for (let k = 0; k < waiters.length; k++) {
      const before = waiters.reduce((n, w) => n + w.counter.count, 0);
      await released.release();
      const next = waiters[k]!;
      assert.equal(await acquired[k], true);
      await sleep(10);
      const after = waiters.reduce((n, w) => n + w.counter.count, 0);
      assert.equal(after - before, 1, `release ${k} woke ${after - before} waiters`);
      assert.equal(next.counter.count, 1, `waiter ${k} got the one notification`);
      released = next.m;
    }
    await released.release();
  });

  it('is reentrant per object, and a second object of the same session is a different owner', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const m = new Mutex(a!, '/locks/re');
    assert.ok(await m.acquire());
    assert.ok(await m.acquire());
    const token = m.fencingToken;
    const other = new Mutex(a!, '/locks/re');
    assert.equal(await other.acquire({ timeoutMs: 100 }), false);
    assert.equal(await new Mutex(b!, '/locks/re').acquire({ timeoutMs: 100 }), false);
    await m.release();
    assert.ok(m.isAcquiredInThisProcess());
    assert.equal(m.fencingToken, token);
    assert.equal((await m.getParticipantNodes()).length, 1, 'timed-out waiters removed their nodes');
    await m.release();
    assert.ok(!m.isAcquiredInThisProcess());
    const m2 = new Mutex(b!, '/locks/re');
    assert.ok(await m2.acquire({ timeoutMs: 1000 }));
    assert.ok(m2.fencingToken > token);
    await m2.release();
    await assert.rejects(m2.release(), isKeeper('BADARGUMENTS'));
  });

  it('times out with false and leaves no node behind', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const holder = new Mutex(a!, '/locks/t');
    assert.ok(await holder.acquire());
    const t0 = Date.now();
    assert.equal(await new Mutex(b!, '/locks/t').acquire({ timeoutMs: 150 }), false);
    const dt = Date.now() - t0;
    assert.ok(dt >= 140 && dt < 1000, `waited ${dt} ms`);
    await eventually(async () => (await holder.getParticipantNodes()).length === 1, 'waiter node removed');
    assert.equal(await new Mutex(b!, '/locks/t').acquire({ timeoutMs: 0 }), false);
    await holder.release();
  });

  it('rejects with the abort reason when the signal aborts, and cleans up its node', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const holder = new Mutex(a!, '/locks/abort');
    assert.ok(await holder.acquire());
    const ac = new AbortController();
    const p = new Mutex(b!, '/locks/abort').acquire({ signal: ac.signal });
    await eventually(async () => (await holder.getParticipantNodes()).length === 2, 'queued');
    const reason = new Error('shutting down');
    ac.abort(reason);
    await assert.rejects(p, (e) => e === reason);
    await eventually(async () => (await holder.getParticipantNodes()).length === 1, 'aborted node removed');
    const pre = new AbortController();
    pre.abort();
    await assert.rejects(new Mutex(b!, '/locks/abort').acquire({ signal: pre.signal }), (e) => (e as Error).name === 'AbortError');
    await holder.release();
  });

  it('emits lost when the holder session expires; only then does the next contender acquire, with a larger token', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const holder = new Mutex(a!, '/locks/lost');
    assert.ok(await holder.acquire());
    const token = holder.fencingToken;
    const lost: string[] = [];
    holder.on('lost', (s) => lost.push(s));
    const next = new Mutex(b!, '/locks/lost');
    let acquiredAt = 0;
    const p = next.acquire().then((ok) => {
      acquiredAt = Date.now();
      return ok;
    });
    await sleep(50);
    assert.equal(acquiredAt, 0);
    const expiredAt = Date.now();
    await env.member.expireSession(a!.id);
    assert.equal(await p, true);
    assert.deepEqual(lost, ['LOST']);
    assert.ok(acquiredAt >= expiredAt);
    assert.ok(!holder.isAcquiredInThisProcess());
    assert.throws(() => holder.fencingToken, isKeeper('BADARGUMENTS'));
    await holder.release(); // owed release after a loss is a no-op
    assert.ok(next.fencingToken > token);
    await next.release();
  });

  it('a held lock exposes a holdSignal that aborts when the lock is lost', async () => {
    const [a] = await sessionsOf(env, 1);
    const m = new Mutex(a!, '/locks/sig');
    const result = await m.withLock(async (signal, token) => {
      assert.equal(signal.aborted, false);
      assert.equal(typeof token, 'bigint');
      const p = new Promise<unknown>((r) => signal.addEventListener('abort', () => r(signal.reason)));
      await env.member.expireSession(a!.id);
      return p;
    }).catch((e: unknown) => e);
    assert.ok(result instanceof KeeperError && result.code === 'SESSIONEXPIRED');
  });

  it('protected creation: a lost create response does not leave a second node (found again by GUID)', async () => {
    const [a] = await sessionsOf(env, 1);
    const injected = loseNextWrite(a!, 'after', (op) => op.type === 'create' && (op.path ?? '').startsWith('/prot/'));
    const node = await createProtected(a!, '/prot', 'n-', { data: 'x' });
    assert.ok(injected.fired);
    assert.ok(node);
    const children = await a!.getChildren('/prot');
    assert.equal(children.length, 1, `children: ${children.join(',')}`);
    assert.equal(protectedGuid(children[0]!), node.guid);
    assert.equal(node.path, '/prot/' + children[0]);
  });

  it('protected creation: a create lost before it was applied is made once', async () => {
    const [a] = await sessionsOf(env, 1);
    await a!.create('/prot2');
    const injected = loseNextWrite(a!, 'before', (op) => op.type === 'create' && (op.path ?? '').startsWith('/prot2/'));
    const node = await createProtected(a!, '/prot2', 'n-');
    assert.ok(injected.fired && node);
    assert.deepEqual(await a!.getChildren('/prot2'), [node.name]);
  });

  it('a Mutex whose create response is lost still acquires once and leaves exactly one node', async () => {
    const [a, b] = await sessionsOf(env, 2);
    loseNextWrite(a!, 'after', (op) => op.type === 'create');
    const m = new Mutex(a!, '/locks/prot');
    assert.ok(await m.acquire({ timeoutMs: 2000 }));
    assert.equal((await m.getParticipantNodes()).length, 1);
    await m.release();
    const other = new Mutex(b!, '/locks/prot');
    assert.ok(await other.acquire({ timeoutMs: 1000 }), 'no orphan blocks the next contender');
    await other.release();
  });
});

describe('recipes/SemaphoreMutex, Semaphore, MultiLock', function () {
  this.timeout(30_000);
  let env: Single;
  beforeEach(async () => {
    env = await single();
  });
  afterEach(async () => {
    await env.stop();
  });

  it('SemaphoreMutex is exclusive and not reentrant', async () => {
    const sessions = await sessionsOf(env, 6);
    let holders = 0;
    let max = 0;
    await Promise.all(sessions.map(async (s) => {
      const m = new SemaphoreMutex(s, '/sm/a');
      for (let i = 0; i < 4; i++) {
        assert.ok(await m.acquire());
        holders++;
        max = Math.max(max, holders);
        await sleep(1);
        holders--;
        await m.release();
      }
    }));
    assert.equal(max, 1);
    const m = new SemaphoreMutex(sessions[0]!, '/sm/b');
    assert.ok(await m.acquire());
    assert.equal(typeof m.fencingToken, 'bigint');
    assert.equal(await m.acquire({ timeoutMs: 100 }), false, 'a second acquire by the holder waits like anyone');
    await m.release();
    assert.ok(await m.acquire({ timeoutMs: 1000 }));
    await m.release();
  });

  it('Semaphore hands out at most maxLeases leases at once', async () => {
    const sessions = await sessionsOf(env, 8);
    let out = 0;
    let max = 0;
    await Promise.all(sessions.map(async (s) => {
      const sem = new Semaphore(s, '/sem/three', 3);
      for (let i = 0; i < 3; i++) {
        const lease = await sem.acquire();
        assert.ok(lease);
        out++;
        max = Math.max(max, out);
        await sleep(3);
        out--;
        await lease.release();
      }
    }));
    assert.equal(max, 3);
    const sem = new Semaphore(sessions[0]!, '/sem/three', 3);
    const leases = await sem.acquireMany(3);
    assert.ok(leases && leases.length === 3);
    assert.equal(await new Semaphore(sessions[1]!, '/sem/three', 3).acquire({ timeoutMs: 100 }), null);
    assert.equal((await sem.getParticipantNodes()).length, 3);
    await sem.returnAll(leases);
    assert.equal((await sem.getParticipantNodes()).length, 0);
  });

  it('Semaphore leases are lost with their session and handed to the next waiter', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const lease = await new Semaphore(a!, '/sem/lost', 1).acquire();
    assert.ok(lease);
    const lost: string[] = [];
    lease.on('lost', (s) => lost.push(s));
    const next = new Semaphore(b!, '/sem/lost', 1).acquire({ timeoutMs: 5000 });
    await sleep(30);
    await env.member.expireSession(a!.id);
    const l2 = await next;
    assert.ok(l2);
    assert.deepEqual(lost, ['LOST']);
    assert.ok(l2.fencingToken > lease.fencingToken);
    await l2.release();
  });

  it('MultiLock takes all locks or none', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const blocker = new Mutex(b!, '/ml/2');
    assert.ok(await blocker.acquire());
    const multi = new MultiLock(a!, ['/ml/1', '/ml/2']);
    assert.equal(await multi.acquire({ timeoutMs: 150 }), false);
    assert.deepEqual(await a!.getChildren('/ml/1'), [], 'the first lock was given back');
    await blocker.release();
    assert.ok(await multi.acquire({ timeoutMs: 1000 }));
    assert.equal(multi.fencingTokens.length, 2);
    assert.equal(await new Mutex(b!, '/ml/1').acquire({ timeoutMs: 50 }), false);
    const lost: string[] = [];
    multi.on('lost', (s) => lost.push(s));
    await env.member.expireSession(a!.id);
    await eventually(() => lost.length === 1, 'lost');
    assert.ok(!multi.isAcquiredInThisProcess());
    assert.ok(await new Mutex(b!, '/ml/1').acquire({ timeoutMs: 1000 }));
  });
});
