/**
 * The recipes part of the demo: a 3-member ensemble in this process (in-memory transport), one
 * session per member as three replicas of a service would have, running a short real scenario
 * of each recipe — leader election, a lock with fencing tokens, a read-write lock, a tree cache,
 * a work queue, service discovery and a configuration store — then stopping everything.
 *
 *   npx tsx examples/recipes-demo.ts      (or import { runRecipesDemo } from it)
 */
import { fileURLToPath } from 'node:url';
import {
  ConfigStore, LeaderLatch, LeaderSelector, Mutex, Queue, ReadWriteLock, ServiceDiscovery, TreeCache, jsonCodec,
} from '../src/api/recipes/index.js';
import { memoryNetwork, startMember, type Member, type Session } from '../src/index.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runRecipesDemo(log: (msg: string) => void = console.log): Promise<void> {
  const net = memoryNetwork();
  const ensemble = { 1: 'member-1', 2: 'member-2', 3: 'member-3' };
  const members: Member[] = await Promise.all([1, 2, 3].map((id) => startMember({ id, ensemble, transport: net.transport(id), tickMs: 50, logLevel: 'warn' })));
  await Promise.all(members.map((m) => m.ready(10_000)));
  log(`recipes: 3 members up, ZAB leader is member ${members.find((m) => m.state === 'leading')!.id}`);
  const sessions: Session[] = [];
  for (const m of members) sessions.push(await m.session({ sessionTimeoutMs: 2000 }));
  const [s1, s2, s3] = sessions as [Session, Session, Session];
  try {
    // ---------------------------------------------------------------- leader election
    const latches = sessions.map((s, i) => new LeaderLatch(s, '/demo/election', { id: `replica-${i + 1}` }));
    for (const l of latches) await l.start();
    const leader = latches.find((l) => l.hasLeadership())!;
    log(`election: ${leader.id} leads (fencing token ${leader.fencingToken}); in line: ${(await leader.getParticipants()).map((p) => p.id).join(', ')}`);
    const next = latches.find((l) => l !== leader)!;
    const handover = new Promise<void>((r) => next.once('isLeader', () => r()));
    const t = performance.now();
    await leader.close();
    await handover;
    log(`election: ${leader.id} stepped down, ${next.id} leads after ${(performance.now() - t).toFixed(1)} ms`);
    for (const l of latches) await l.close();

    let turns = 0;
    const done = new Promise<void>((resolve) => {
      const selectors = sessions.map((s, i) => new LeaderSelector(s, '/demo/scheduler', async (signal) => {
        if (signal.aborted) return;
        log(`election: scheduler turn ${++turns} taken by replica-${i + 1} (leadership ends when the callback returns)`);
        await sleep(5);
        if (turns >= 3) {
          resolve();
          void Promise.all(selectors.map((x) => x.close()));
        }
      }, { autoRequeue: true }));
      for (const x of selectors) x.start();
    });
    await done;

    // ---------------------------------------------------------------- lock
    let balance = 0;
    await Promise.all(sessions.map(async (s, i) => {
      const lock = new Mutex(s, '/demo/locks/account');
      for (let k = 0; k < 3; k++) {
        await lock.withLock(async (_signal, token) => {
          const before = balance;
          await sleep(1); // a read-modify-write that would lose updates without the lock
          balance = before + 10;
          if (k === 0) log(`lock: replica-${i + 1} holds the account lock, fencing token ${token}`);
        }, { timeoutMs: 5000 });
      }
    }));
    log(`lock: 9 guarded deposits of 10 → balance ${balance}`);

    const rw = [new ReadWriteLock(s1, '/demo/locks/catalog'), new ReadWriteLock(s2, '/demo/locks/catalog')];
    await rw[0]!.readLock().acquire();
    await rw[1]!.readLock().acquire();
    log('read-write lock: two readers hold the read lock at once');
    const writer = new ReadWriteLock(s3, '/demo/locks/catalog').writeLock();
    const w = writer.acquire({ timeoutMs: 5000 });
    await sleep(20);
    log(`read-write lock: the writer waits while readers hold it (held: ${writer.isAcquiredInThisProcess()})`);
    await rw[0]!.readLock().release();
    await rw[1]!.readLock().release();
    await w;
    log(`read-write lock: readers gone, the writer holds it (token ${writer.fencingToken})`);
    await writer.release();

    // ---------------------------------------------------------------- cache
    await s1.create('/demo/config/feature-x', 'off', { parents: true });
    const cache = new TreeCache(s3, '/demo/config');
    const seen: string[] = [];
    cache.on('event', (e) => {
      if (e.type.startsWith('NODE_') && e.data) seen.push(`${e.type} ${e.data.path}=${new TextDecoder().decode(e.data.data)}`);
    });
    await cache.start();
    seen.length = 0;
    await s2.setData('/demo/config/feature-x', 'on');
    await s1.create('/demo/config/feature-y', 'beta');
    await s2.delete('/demo/config/feature-x');
    for (let i = 0; i < 200 && seen.length < 3; i++) await sleep(5);
    log(`cache: member 3's TreeCache saw ${seen.join('; ')}`);
    await cache.close();

    // ---------------------------------------------------------------- queue
    type Job = { id: number };
    const producer = new Queue<Job>(s1, '/demo/jobs', { codec: jsonCodec<Job>() });
    for (let i = 1; i <= 12; i++) await producer.put({ id: i });
    const byWorker = new Map<string, number[]>();
    await Promise.all([s2, s3].map(async (s, i) => {
      const q = new Queue<Job>(s, '/demo/jobs', { codec: jsonCodec<Job>() });
      for (;;) {
        const job = await q.take({ timeoutMs: 100 });
        if (!job) break;
        byWorker.set(`worker-${i + 2}`, [...(byWorker.get(`worker-${i + 2}`) ?? []), job.id]);
        await sleep(3); // the work itself
      }
      await q.close();
    }));
    log(`queue: 12 jobs, each taken once: ${[...byWorker].map(([k, v]) => `${k} took [${v.join(',')}]`).join('; ')}`);

    // ---------------------------------------------------------------- discovery
    const registry = sessions.map((s) => new ServiceDiscovery<{ version: string }>(s));
    for (const [i, d] of registry.entries()) await d.registerService({ name: 'api', id: `api-${i + 1}`, address: '127.0.0.1', port: 8080 + i, payload: { version: '1.0' } });
    const client = new ServiceDiscovery<{ version: string }>(s1);
    const provider = client.serviceProvider('api', { strategy: 'round-robin' });
    await provider.start();
    log(`discovery: round-robin picks ${[1, 2, 3, 4].map(() => provider.getInstance()!.port).join(', ')}`);
    const hash = client.serviceProvider('api', { strategy: 'consistent-hash' });
    await hash.start();
    log(`discovery: consistent-hash routes ${['user-7', 'user-42', 'user-99', 'user-1234'].map((u) => `${u}→${hash.getInstance(u)!.id}`).join(', ')}`);
    await registry[2]!.close();
    for (let i = 0; i < 200 && provider.getAllInstances().length !== 2; i++) await sleep(5);
    log(`discovery: api-3 unregistered; live instances: ${provider.getAllInstances().map((x) => x.id).join(', ')}`);
    await client.close();
    for (const d of registry) await d.close();

    // ---------------------------------------------------------------- config
    type AppConfig = { maxConnections: number; regions: string[] };
    const admin = new ConfigStore<AppConfig>(s1, '/demo/settings');
    const app = new ConfigStore<AppConfig>(s2, '/demo/settings');
    await admin.start();
    await app.start();
    const changes: string[] = [];
    app.onChange('maxConnections', (v, prev) => changes.push(`${String(prev)}→${String(v)}`));
    await admin.set('maxConnections', 100);
    await admin.set('regions', ['eu-west']);
    await admin.update('maxConnections', (n) => (n ?? 0) * 2);
    for (let i = 0; i < 200 && app.get('maxConnections') !== 200; i++) await sleep(5);
    log(`config: member 2 sees maxConnections=${app.get('maxConnections')} regions=${JSON.stringify(app.get('regions'))}; its listener saw ${changes.join(', ')}`);
    await admin.close();
    await app.close();
  } finally {
    for (const s of sessions) await s.close().catch(() => undefined);
    await Promise.all(members.map((m) => m.stop()));
  }
  log('recipes: done, members stopped');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t0 = performance.now();
  await runRecipesDemo((m) => console.log(`[${((performance.now() - t0) / 1000).toFixed(3)}s] ${m}`));
}
