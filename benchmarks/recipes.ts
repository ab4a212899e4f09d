/**
 * Recipes benchmark (issue 6): Mutex acquire+release per second under contention (1, 8 and 64
 * contenders, each with its own session), ReadWriteLock read-lock throughput, and leader-election
 * handover time (the leading LeaderLatch closes → the next one's isLeader; a LeaderSelector's
 * takeLeadership returns → the next one's starts). On one member, and on a 3-member ensemble over
 * the in-memory transport with sessions spread over the members.
 * Run: npm run bench:recipes [-- --quick]   (JSON on stdout and in benchmarks/results/recipes.json)
 */
import { LeaderLatch, LeaderSelector, Mutex, ReadWriteLock } from '../src/api/recipes/index.js';
import { memoryNetwork, startMember, type Member, type Session } from '../src/index.js';
import { distribution, measure, report, type Measurement } from './lib.js';

const quick = process.argv.includes('--quick');
const MAX_MS = quick ? 1_500 : 5_000;
const OPS = quick ? 5_000 : 50_000;
const HANDOVERS = quick ? 20 : 100;

interface Setup {
  name: string;
  members: Member[];
  session(i: number): Promise<Session>;
  stop(): Promise<void>;
}

async function singleMember(): Promise<Setup> {
  const m = await startMember({ id: 1, maxSessionsPerOrigin: 500, logLevel: 'warn' });
  return { name: 'single member', members: [m], session: () => m.session(), stop: () => m.stop() };
}

async function threeMembers(): Promise<Setup> {
  const net = memoryNetwork();
  const ensemble = { 1: 'm1', 2: 'm2', 3: 'm3' };
  const members = await Promise.all([1, 2, 3].map((id) => startMember({
    id, ensemble, transport: net.transport(id), tickMs: 50, maxSessionsPerOrigin: 500, logLevel: 'warn',
  })));
  await Promise.all(members.map((m) => m.ready(10_000)));
  return {
    name: '3 members (memoryNetwork)',
    members,
    session: (i) => members[i % 3]!.session(),
    stop: async () => {
      await Promise.all(members.map((m) => m.stop()));
    },
  };
}

async function sessions(setup: Setup, n: number): Promise<Session[]> {
  const out: Session[] = [];
  for (let i = 0; i < n; i++) out.push(await setup.session(i));
  return out;
}

async function closeAll(list: Session[]): Promise<void> {
  await Promise.all(list.map((s) => s.close().catch(() => undefined)));
}

async function mutexThroughput(setup: Setup, contenders: number, path: string): Promise<Measurement> {
  const ss = await sessions(setup, contenders);
  const locks = ss.map((s) => new Mutex(s, path));
  const m = await measure(`${setup.name}: mutex acquire+release`, contenders, OPS, MAX_MS, async (w) => {
    const lock = locks[w]!;
    if (!(await lock.acquire({ timeoutMs: 30_000 }))) throw new Error('not acquired');
    await lock.release();
  });
  await closeAll(ss);
  return m;
}

async function readLockThroughput(setup: Setup, readers: number, path: string): Promise<Measurement> {
  const ss = await sessions(setup, readers);
  const locks = ss.map((s) => new ReadWriteLock(s, path).readLock());
  const m = await measure(`${setup.name}: read lock acquire+release`, readers, OPS, MAX_MS, async (w) => {
    const lock = locks[w]!;
    if (!(await lock.acquire({ timeoutMs: 30_000 }))) throw new Error('not acquired');
    await lock.release();
  });
  await closeAll(ss);
  return m;
}

/** The leader closes its latch; how long until another latch is told isLeader. */
async function latchHandover(setup: Setup, path: string): Promise<ReturnType<typeof distribution>> {
  const ss = await sessions(setup, 3);
  const latches: LeaderLatch[] = [];
  const times: number[] = [];
  let waiting: ((l: LeaderLatch) => void) | undefined;
  const add = async (s: Session): Promise<void> => {
    const l = new LeaderLatch(s, path);
    l.on('isLeader', () => waiting?.(l));
    latches.push(l);
    await l.start();
  };
  for (const s of ss) await add(s);
  for (let k = 0; k < HANDOVERS; k++) {
    const leader = latches.find((l) => l.hasLeadership());
    if (!leader) throw new Error('no leader');
    const next = new Promise<LeaderLatch>((r) => {
      waiting = r;
    });
    const t0 = performance.now();
    await leader.close();
    await next;
    times.push(performance.now() - t0);
    waiting = undefined;
    latches.splice(latches.indexOf(leader), 1);
    await add(leader.session); // back in line, last
  }
  for (const l of latches) await l.close();
  await closeAll(ss);
  const d = distribution(times);
  process.stderr.write(`  ${setup.name}: latch handover p50 ${d.p50} ms, p90 ${d.p90} ms, max ${d.max} ms (${d.n})\n`);
  return d;
}

/** takeLeadership returns; how long until the next selector's takeLeadership starts. */
async function selectorHandover(setup: Setup, path: string): Promise<ReturnType<typeof distribution>> {
  const ss = await sessions(setup, 3);
  const times: number[] = [];
  let endedAt = 0;
  let turns = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => {
    done = r;
  });
  const selectors = ss.map((s) => new LeaderSelector(s, path, async () => {
    if (endedAt > 0) times.push(performance.now() - endedAt);
    if (++turns > HANDOVERS) {
      done();
      return;
    }
    endedAt = performance.now();
  }, { autoRequeue: true }));
  for (const s of selectors) s.start();
  await finished;
  await Promise.all(selectors.map((s) => s.close()));
  await closeAll(ss);
  const d = distribution(times);
  process.stderr.write(`  ${setup.name}: selector handover p50 ${d.p50} ms, p90 ${d.p90} ms, max ${d.max} ms (${d.n})\n`);
  return d;
}

const mutex: Measurement[] = [];
const readLocks: Measurement[] = [];
const handover: Record<string, unknown>[] = [];
process.stderr.write(`conclave recipes benchmark${quick ? ' (quick)' : ''}: up to ${OPS} ops or ${MAX_MS} ms per run\n`);
for (const make of [singleMember, threeMembers]) {
  const setup = await make();
  for (const c of [1, 8, 64]) mutex.push(await mutexThroughput(setup, c, `/bench/mutex-${c}`));
  readLocks.push(await readLockThroughput(setup, 8, '/bench/rw'));
  handover.push({ setup: setup.name, recipe: 'LeaderLatch (leader closes)', ms: await latchHandover(setup, '/bench/latch') });
  handover.push({ setup: setup.name, recipe: 'LeaderSelector (takeLeadership returns)', ms: await selectorHandover(setup, '/bench/selector') });
  await setup.stop();
}

report('recipes', {
  setup: 'in-process members, in-memory storage; each contender has its own session (spread over the members in the 3-member runs); mutex = one acquire followed by one release',
  mutex,
  readLocks,
  handover,
});
