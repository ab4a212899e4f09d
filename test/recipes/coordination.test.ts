import assert from 'node:assert/strict';
import {
  AtomicLong, Barrier, ConfigStore, DoubleBarrier, ExponentialBackoffRetry, PersistentNode, RetryNTimes, RetryOneTime,
  RetryUntilElapsed, SharedCount, addConnectionStateListener, jsonCodec, msgpackCodec, typed,
} from '../../src/api/recipes/index.js';
import * as root from '../../src/index.js';
import { CreateMode } from '../../src/core/createMode.js';
import type { SessionState } from '../../src/api/types.js';
import { eventually, isKeeper, loseNextWrite, sessionsOf, single, sleep, type Single } from './helpers.js';

describe('recipes/retry policies', () => {
  it('ExponentialBackoffRetry: randomized growing sleeps within [base, base·2^(n+1)), capped, then gives up', () => {
    const r = new ExponentialBackoffRetry(10, 5, 100);
    for (let n = 0; n < 5; n++) {
      for (let k = 0; k < 50; k++) {
        const d = r.allowRetry(n, 0);
        assert.ok(d !== false && d >= 10 && d <= Math.min(100, 10 * 2 ** (n + 1)), `retry ${n}: ${String(d)}`);
      }
    }
    assert.equal(r.allowRetry(5, 0), false);
    const max = new ExponentialBackoffRetry(10, 29, 1000, () => 0.999999);
    assert.equal(max.allowRetry(20, 0), 1000);
    assert.equal(new ExponentialBackoffRetry(10, 3, undefined, () => 0).allowRetry(2, 0), 10);
    assert.throws(() => new ExponentialBackoffRetry(-1, 3), isKeeper('BADARGUMENTS'));
  });

  it('RetryNTimes, RetryOneTime, RetryUntilElapsed', () => {
    const n = new RetryNTimes(3, 25);
    assert.deepEqual([0, 1, 2, 3].map((i) => n.allowRetry(i, 0)), [25, 25, 25, false]);
    const one = new RetryOneTime(7);
    assert.deepEqual([one.allowRetry(0, 0), one.allowRetry(1, 0)], [7, false]);
    const u = new RetryUntilElapsed(100, 30);
    assert.equal(u.allowRetry(0, 0), 30);
    assert.equal(u.allowRetry(9, 90), 10, 'never sleeps past the deadline');
    assert.equal(u.allowRetry(10, 100), false);
    assert.throws(() => new RetryNTimes(1.5, 1), isKeeper('BADARGUMENTS'));
  });

  it('a session retries CONNECTIONLOSS by its policy', async () => {
    const env = await single();
    try {
      const s = await env.session({ retry: new RetryNTimes(3, 5) });
      loseNextWrite(s, 'before', (op) => op.type === 'setData');
      await s.create('/r', 'a');
      await s.setData('/r', 'b');
      assert.equal(new TextDecoder().decode((await s.getData('/r')).data), 'b');
      const noRetry = await env.session();
      loseNextWrite(noRetry, 'before', (op) => op.type === 'setData');
      await assert.rejects(noRetry.setData('/r', 'c'), isKeeper('CONNECTIONLOSS'));
    } finally {
      await env.stop();
    }
  });
});

describe('recipes/connection-state listener', () => {
  it('reports every transition with the previous state; unsubscribes', async () => {
    const env = await single();
    try {
      const s = await env.session();
      const seen: string[] = [];
      const off = addConnectionStateListener(s, (state, info) => seen.push(`${info.previous}->${state}:${info.isConnected}`), { initial: true });
      const set = (x: SessionState): void => (s as unknown as { _setState(v: SessionState): void })._setState(x);
      set('SUSPENDED');
      set('RECONNECTED');
      off();
      set('SUSPENDED');
      assert.deepEqual(seen, ['CONNECTED->CONNECTED:true', 'CONNECTED->SUSPENDED:false', 'SUSPENDED->RECONNECTED:true']);
    } finally {
      await env.stop();
    }
  });
});

describe('recipes/Barrier and DoubleBarrier', function () {
  this.timeout(30_000);
  let env: Single;
  beforeEach(async () => {
    env = await single();
  });
  afterEach(async () => {
    await env.stop();
  });

  it('Barrier holds waiters until removed', async () => {
    const [a, b, c] = await sessionsOf(env, 3);
    const owner = new Barrier(a!, '/barrier/x');
    await owner.setBarrier();
    await owner.setBarrier();
    let passed = 0;
    const waits = [b!, c!].map((s) => new Barrier(s, '/barrier/x').waitOnBarrier().then((ok) => {
      passed++;
      return ok;
    }));
    assert.equal(await new Barrier(b!, '/barrier/x').waitOnBarrier({ timeoutMs: 50 }), false);
    assert.equal(passed, 0);
    await owner.removeBarrier();
    assert.deepEqual(await Promise.all(waits), [true, true]);
    assert.equal(await new Barrier(c!, '/barrier/x').waitOnBarrier({ timeoutMs: 10 }), true);
  });

  it('DoubleBarrier: nobody enters before N arrive, nobody leaves before all left; reusable', async () => {
    const sessions = await sessionsOf(env, 4);
    for (let round = 0; round < 2; round++) {
      const log: string[] = [];
      await Promise.all(sessions.map(async (s, i) => {
        await sleep(i * 15);
        const b = new DoubleBarrier(s, '/dbarrier', 4);
        log.push(`arrive${i}`);
        assert.ok(await b.enter({ timeoutMs: 5000 }));
        log.push(`in${i}`);
        await sleep((3 - i) * 10);
        log.push(`leaving${i}`);
        assert.ok(await b.leave({ timeoutMs: 5000 }));
        log.push(`out${i}`);
      }));
      const lastArrive = Math.max(...[0, 1, 2, 3].map((i) => log.indexOf(`arrive${i}`)));
      const firstIn = Math.min(...[0, 1, 2, 3].map((i) => log.indexOf(`in${i}`)));
      const lastLeaving = Math.max(...[0, 1, 2, 3].map((i) => log.indexOf(`leaving${i}`)));
      const firstOut = Math.min(...[0, 1, 2, 3].map((i) => log.indexOf(`out${i}`)));
      assert.ok(lastArrive < firstIn, `round ${round}: entered before all arrived: ${log.join(' ')}`);
      assert.ok(lastLeaving < firstOut, `round ${round}: left before all were leaving: ${log.join(' ')}`);
      assert.deepEqual(await sessions[0]!.getChildren('/dbarrier'), []);
    }
  });

  it('DoubleBarrier.enter times out (and withdraws) when too few arrive', async () => {
    const [a, b] = await sessionsOf(env, 2);
    assert.equal(await new DoubleBarrier(a!, '/db2', 3).enter({ timeoutMs: 100 }), false);
    assert.deepEqual(await b!.getChildren('/db2'), []);
  });
});

describe('recipes/SharedCount and AtomicLong', function () {
  this.timeout(30_000);
  let env: Single;
  beforeEach(async () => {
    env = await single();
  });
  afterEach(async () => {
    await env.stop();
  });

  it('SharedCount: seeded once, changes seen by every client, trySetCount is a CAS', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const ca = new SharedCount(a!, '/counts/x', 5);
    const cb = new SharedCount(b!, '/counts/x', 99);
    await ca.start();
    await cb.start();
    assert.equal(cb.getCount(), 5, 'the first seed wins');
    const seen: number[] = [];
    cb.on('countChanged', (n) => seen.push(n));
    await ca.setCount(7);
    await eventually(() => cb.getCount() === 7, 'b sees 7');
    const v = cb.getVersionedValue();
    assert.equal(await ca.trySetCount(ca.getVersionedValue(), 8), true);
    assert.equal(await cb.trySetCount(v, 100), false, 'stale version');
    await eventually(() => cb.getCount() === 8, 'b sees 8');
    assert.deepEqual(seen, [7, 8]);
    await ca.close();
    await cb.close();
  });

  it('AtomicLong: 10 sessions × 30 increments under contention end at exactly 300', async () => {
    const sessions = await sessionsOf(env, 10);
    const posts = new Set<bigint>();
    await Promise.all(sessions.map(async (s) => {
      const n = new AtomicLong(s, '/counts/atomic');
      for (let i = 0; i < 30; i++) {
        const r = await n.increment();
        assert.ok(r.succeeded);
        assert.equal(r.postValue, r.preValue + 1n);
        posts.add(r.postValue);
      }
    }));
    const r = await new AtomicLong(sessions[0]!, '/counts/atomic').get();
    assert.equal(r.postValue, 300n);
    assert.equal(posts.size, 300, 'every increment saw a distinct value');
  });

  it('AtomicLong: compareAndSet, subtract, forceSet, initialize; big values', async () => {
    const [a] = await sessionsOf(env, 1);
    const n = new AtomicLong(a!, '/counts/cas');
    assert.equal(await n.initialize(10n), true);
    assert.equal(await n.initialize(11n), false);
    assert.deepEqual(await n.compareAndSet(9n, 1n), { succeeded: false, preValue: 10n, postValue: 10n });
    assert.deepEqual(await n.compareAndSet(10n, 2n ** 62n), { succeeded: true, preValue: 10n, postValue: 2n ** 62n });
    assert.equal((await n.subtract(2n ** 62n)).postValue, 0n);
    await n.forceSet(-5);
    assert.equal((await n.get()).postValue, -5n);
    assert.equal((await new AtomicLong(a!, '/counts/missing').get()).postValue, 0n);
  });

  it('AtomicLong: a lost response is never applied twice, even with a session retry policy', async () => {
    const env2 = env;
    const s = await env2.session({ retry: new RetryNTimes(3, 1) });
    const n = new AtomicLong(s, '/counts/lost');
    await n.forceSet(0);
    loseNextWrite(s, 'after', (op) => op.type === 'setData');
    const r = await n.increment();
    assert.ok(r.succeeded);
    assert.equal((await n.get()).postValue, 1n);
    const plain = await env2.session();
    const m = new AtomicLong(plain, '/counts/lost');
    loseNextWrite(plain, 'after', (op) => op.type === 'setData');
    assert.equal((await m.increment()).postValue, 2n);
    assert.equal((await m.get()).postValue, 2n);
  });
});

describe('recipes/ConfigStore', function () {
  this.timeout(30_000);
  let env: Single;
  beforeEach(async () => {
    env = await single();
  });
  afterEach(async () => {
    await env.stop();
  });

  type Cfg = { timeoutMs: number; features: string[]; limits: { rps: bigint } };

  it('typed values, change listeners, CAS update, versions, delete', async () => {
    const [a, b] = await sessionsOf(env, 2);
    const writer = new ConfigStore<Cfg>(a!, '/config/app');
    const reader = new ConfigStore<Cfg>(b!, '/config/app');
    await writer.start();
    await reader.start();
    const changes: string[] = [];
    reader.on('change', (k, v, prev) => changes.push(`${k}:${JSON.stringify(prev)}->${JSON.stringify(v)}`));
    const timeouts: (number | undefined)[] = [];
    const off = reader.onChange('timeoutMs', (v) => timeouts.push(v));
    await writer.set('timeoutMs', 1000);
    await writer.set('features', ['a']);
    await eventually(() => reader.get('features')?.[0] === 'a', 'features');
    assert.equal(reader.get('timeoutMs'), 1000);
    const v = reader.getVersioned('timeoutMs')!;
    await writer.set('timeoutMs', 2000, { version: v.version });
    await assert.rejects(reader.set('timeoutMs', 3000, { version: v.version }), isKeeper('BADVERSION'));
    await Promise.all([0, 1, 2, 3, 4].map(() => reader.update('features', (f) => [...(f ?? []), 'x'])));
    assert.deepEqual(await reader.read('features'), ['a', 'x', 'x', 'x', 'x', 'x']);
    await eventually(() => writer.get('features')?.length === 6, 'writer sees the updates');
    assert.equal(await writer.delete('timeoutMs'), true);
    assert.equal(await writer.delete('timeoutMs'), false);
    await eventually(() => reader.get('timeoutMs') === undefined, 'deleted');
    off();
    assert.deepEqual(timeouts, [1000, 2000, undefined]);
    assert.ok(changes.includes('timeoutMs:undefined->1000') && changes.includes('timeoutMs:2000->undefined'));
    assert.deepEqual(reader.keys(), ['features']);
    assert.deepEqual(reader.entries(), { features: ['a', 'x', 'x', 'x', 'x', 'x'] });
    assert.throws(() => reader.get('a/b' as 'timeoutMs'), isKeeper('BADARGUMENTS'));
    await writer.close();
    await reader.close();
  });

  it('a msgpack codec keeps bigint and bytes', async () => {
    const [a] = await sessionsOf(env, 1);
    const store = new ConfigStore<{ limits: { rps: bigint; blob: Uint8Array } }>(a!, '/config/mp', { codec: msgpackCodec() });
    await store.start();
    await store.set('limits', { rps: 2n ** 60n, blob: new Uint8Array([1, 2, 3]) });
    await eventually(() => store.get('limits') !== undefined, 'cached');
    const v = store.get('limits')!;
    assert.equal(v.rps, 2n ** 60n);
    assert.deepEqual([...v.blob], [1, 2, 3]);
    await store.close();
  });
});

describe('recipes/PersistentNode', function () {
  this.timeout(30_000);
  let env: Single;
  beforeEach(async () => {
    env = await single();
  });
  afterEach(async () => {
    await env.stop();
  });

  it('re-creates its ephemeral node after it is deleted, with the current data', async () => {
    const [a, admin] = await sessionsOf(env, 2);
    const node = new PersistentNode(a!, '/pn/me', 'v1');
    const created: string[] = [];
    node.on('created', (p) => created.push(p));
    node.start();
    assert.ok(await node.waitForInitialCreate({ timeoutMs: 2000 }));
    assert.equal((await admin!.exists('/pn/me'))!.ephemeralOwner, a!.id);
    await node.setData('v2');
    await admin!.delete('/pn/me');
    await eventually(() => created.length === 2, 're-created');
    assert.equal(new TextDecoder().decode((await admin!.getData('/pn/me')).data), 'v2');
    await node.close();
    assert.equal(await admin!.exists('/pn/me'), null);
  });

  it('comes back with a new session after the old one is LOST (sessionFactory)', async () => {
    const [a, admin] = await sessionsOf(env, 2);
    const node = new PersistentNode(a!, '/pn/svc', 'x', { sessionFactory: () => env.session() });
    let replaced = 0;
    node.on('sessionReplaced', () => replaced++);
    node.start();
    assert.ok(await node.waitForInitialCreate({ timeoutMs: 2000 }));
    await env.member.expireSession(a!.id);
    await eventually(async () => {
      const st = await admin!.exists('/pn/svc');
      return st !== null && st.ephemeralOwner !== a!.id;
    }, 'node back with another session');
    assert.equal(replaced, 1);
    assert.equal((await admin!.exists('/pn/svc'))!.ephemeralOwner, node.session.id);
    await node.close();
  });

  it('waits out a node of the same name held by another session, then takes over', async () => {
    const [a, other, admin] = await sessionsOf(env, 3);
    await other!.create('/pn/held', 'theirs', { mode: CreateMode.EPHEMERAL, parents: true });
    const node = new PersistentNode(a!, '/pn/held', 'mine');
    node.start();
    assert.equal(await node.waitForInitialCreate({ timeoutMs: 100 }), false);
    await other!.close();
    assert.ok(await node.waitForInitialCreate({ timeoutMs: 2000 }));
    assert.equal(new TextDecoder().decode((await admin!.getData('/pn/held')).data), 'mine');
    await node.close();
  });

  it('sequential mode: protected names, a new sequence after re-creation', async () => {
    const [a, admin] = await sessionsOf(env, 2);
    const node = new PersistentNode(a!, '/pn/seq/member-', 'm', { mode: CreateMode.EPHEMERAL_SEQUENTIAL });
    node.start();
    assert.ok(await node.waitForInitialCreate({ timeoutMs: 2000 }));
    const first = node.getActualPath()!;
    assert.match(first, /^\/pn\/seq\/_c_[0-9a-f-]{36}-member-\d{10}$/);
    await admin!.delete(first);
    await eventually(() => node.getActualPath() !== undefined && node.getActualPath() !== first, 'new path');
    assert.equal((await admin!.getChildren('/pn/seq')).length, 1);
    await node.close();
    assert.deepEqual(await admin!.getChildren('/pn/seq'), []);
  });
});

describe('recipes/typed sessions and exports', () => {
  it('typed(): msgpack by default, JSON on request, CAS update', async () => {
    const env = await single();
    try {
      const s = await env.session();
      const t = typed<{ n: number; big: bigint }>(s);
      await t.create('/typed', { n: 1, big: 2n ** 63n - 1n });
      assert.deepEqual((await t.getData('/typed')).value, { n: 1, big: 2n ** 63n - 1n });
      await Promise.all([0, 1, 2, 3].map(() => t.update('/typed', (v) => ({ ...v, n: v.n + 1 }))));
      const read = await t.getData('/typed');
      assert.equal(read.value.n, 5);
      assert.equal(read.data, read.value, 'data names the decoded value too, like Session.getData');
      assert.equal(read.stat.version, 4);
      assert.equal((await t.exists('/typed'))!.version, 4);
      assert.deepEqual(await t.getChildren('/'), (await s.getChildren('/')));
      await assert.rejects(t.delete('/typed', { version: 3 }), (e: Error & { code?: string }) => e.code === 'BADVERSION');
      await t.delete('/typed', { version: 4 });
      assert.equal(await t.exists('/typed'), null);
      const j = typed<string[]>(s, jsonCodec());
      await j.create('/typed-json', ['a']);
      assert.equal(new TextDecoder().decode((await s.getData('/typed-json')).data), '["a"]');
    } finally {
      await env.stop();
    }
  });

  it('the package root exports the recipes and retry policies', () => {
    for (const name of ['LeaderLatch', 'LeaderSelector', 'Mutex', 'SemaphoreMutex', 'ReadWriteLock', 'Semaphore', 'MultiLock', 'NodeCache',
      'PathChildrenCache', 'TreeCache', 'Barrier', 'DoubleBarrier', 'Queue', 'PriorityQueue', 'DelayQueue', 'SharedCount', 'AtomicLong',
      'ServiceDiscovery', 'ConfigStore', 'PersistentNode', 'ExponentialBackoffRetry', 'RetryNTimes', 'RetryOneTime', 'RetryUntilElapsed', 'typed']) {
      assert.equal(typeof (root as Record<string, unknown>)[name], 'function', name);
    }
  });
});
