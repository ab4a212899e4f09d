import assert from 'node:assert/strict';
import { ConsistentHashStrategy, ServiceDiscovery, type ServiceInstance } from '../../src/api/recipes/index.js';
import { eventually, isKeeper, sessionsOf, single, type Single } from './helpers.js';

type Payload = { zone: string };

describe('recipes/ServiceDiscovery', function () {
  this.timeout(30_000);
  let env: Single;
  beforeEach(async () => {
    env = await single();
  });
  afterEach(async () => {
    await env.stop();
  });

  it('registers ephemeral instances, queries them, and follows them live', async () => {
    const [p1, p2, consumer] = await sessionsOf(env, 3);
    const d1 = new ServiceDiscovery<Payload>(p1!);
    const d2 = new ServiceDiscovery<Payload>(p2!);
    const dc = new ServiceDiscovery<Payload>(consumer!);
    await dc.start();
    const a = await d1.registerService({ name: 'api', id: 'a', address: '10.0.0.1', port: 8080, payload: { zone: 'eu' } });
    const b = await d2.registerService({ name: 'api', id: 'b', address: '10.0.0.2', port: 8080, payload: { zone: 'us' } });
    await d2.registerService({ name: 'billing', address: '10.0.0.9' });
    assert.deepEqual(await dc.queryForNames(), ['api', 'billing']);
    assert.deepEqual((await dc.queryForInstances('api')).map((i) => i.id), ['a', 'b']);
    assert.equal((await dc.queryForInstance('api', 'a'))!.payload!.zone, 'eu');
    assert.equal((await consumer!.exists('/services/api/a'))!.ephemeralOwner, p1!.id);
    const cache = dc.serviceCache('api');
    const changes: string[][] = [];
    cache.on('cacheChanged', (list) => changes.push(list.map((i) => i.id)));
    await cache.start();
    assert.deepEqual(cache.getInstances().map((i) => i.id), ['a', 'b']);
    await d1.updateService({ ...a, port: 9090 });
    await eventually(() => cache.getInstances().find((i) => i.id === 'a')!.port === 9090, 'update seen');
    await p2!.close(); // b's session ends: its instance disappears
    await eventually(() => cache.getInstances().length === 1, 'b gone');
    assert.deepEqual(cache.getInstances().map((i) => i.id), ['a']);
    await d1.unregisterService(a);
    await eventually(() => cache.getInstances().length === 0, 'a gone');
    assert.deepEqual(changes.at(-1), []);
    assert.equal(b.serviceType, 'DYNAMIC');
    await dc.close();
    await d1.close();
  });

  it('provider strategies: round-robin, random, least-active, consistent-hash; down instances skipped', async () => {
    const [p, c] = await sessionsOf(env, 2);
    const reg = new ServiceDiscovery(p!);
    for (const id of ['i1', 'i2', 'i3']) await reg.registerService({ name: 'web', id });
    const dc = new ServiceDiscovery(c!);

    const rr = dc.serviceProvider('web', { strategy: 'round-robin' });
    await rr.start();
    assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => rr.getInstance()!.id), ['i1', 'i2', 'i3', 'i1', 'i2', 'i3']);

    const rnd = dc.serviceProvider('web', { strategy: 'random' });
    await rnd.start();
    const counts = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const id = rnd.getInstance()!.id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    assert.equal(counts.size, 3);
    for (const n of counts.values()) assert.ok(n > 50, `random is roughly uniform: ${[...counts.values()].join(',')}`);

    const la = dc.serviceProvider('web', { strategy: 'least-active' });
    await la.start();
    const ends = [la.begin(la.getInstance()!), la.begin(la.getInstance()!)];
    const third = la.getInstance()!;
    assert.equal(third.id, 'i3', 'the idle instance');
    ends[0]!();
    assert.equal(la.getInstance()!.id, 'i1');
    ends[1]!();
    let inFlightSeen = '';
    await la.use(async (inst) => {
      inFlightSeen = inst.id;
      assert.notEqual(la.getInstance()!.id, inst.id, 'a busy instance is not picked while others are idle');
    });
    assert.ok(inFlightSeen);

    const ch = dc.serviceProvider('web', { strategy: 'consistent-hash' });
    await ch.start();
    const keys = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    const before = new Map(keys.map((k) => [k, ch.getInstance(k)!.id]));
    for (const k of keys) assert.equal(ch.getInstance(k)!.id, before.get(k), 'stable');
    await reg.unregisterService({ name: 'web', id: 'i2' });
    await eventually(() => ch.getAllInstances().length === 2, 'i2 gone');
    let moved = 0;
    for (const k of keys) {
      const now = ch.getInstance(k)!.id;
      if (before.get(k) === 'i2') assert.notEqual(now, 'i2');
      else if (now !== before.get(k)) moved++;
    }
    assert.equal(moved, 0, 'keys of the surviving instances stay where they were');
    assert.throws(() => ch.getInstance(), isKeeper('BADARGUMENTS'));

    const down = dc.serviceProvider('web', { strategy: 'round-robin', errorThreshold: 1, downTimeMs: 60_000 });
    await down.start();
    down.noteError({ name: 'web', id: 'i1' } as ServiceInstance);
    for (let i = 0; i < 4; i++) assert.equal(down.getInstance()!.id, 'i3');
    await dc.close();
    await reg.close();
  });

  it('consistent-hash spreads keys over instances', () => {
    const s = new ConsistentHashStrategy();
    const inst = ['a', 'b', 'c', 'd'].map((id) => ({ name: 'x', id, registrationTimeUTC: 0, serviceType: 'DYNAMIC' as const }));
    const counts = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const id = s.select(inst, { key: `k${i}`, active: () => 0 })!.id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    for (const n of counts.values()) assert.ok(n > 600 && n < 1400, `balanced: ${[...counts.values()].join(',')}`);
  });
});
