/**
 * A 3-member ensemble in one process over memoryNetwork (issue 4): write and read throughput and
 * latency with 1 and 256 concurrent callers on the leader and on a follower, with in-memory and
 * with LevelDB storage (fsync on), and failover time (leader crash → first committed write) at the
 * default tick, for a crash the transport sees (connection closed) and a silent one (partition).
 * Run: npm run bench:ensemble [-- --quick]   (JSON on stdout and in benchmarks/results/ensemble.json)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { startMember, type Member, type Session } from '../src/index.js';
import { memoryNetwork, type MemoryNetwork } from '../src/transport/memory.js';
import { distribution, measure, report, type Measurement } from './lib.js';

const quick = process.argv.includes('--quick');
const N = quick ? 5_000 : 50_000;
const MAX_MS = quick ? 3_000 : 10_000;
const TRIALS = quick ? 3 : 10;
const ids = [1, 2, 3];
const ensemble = { 1: 'm1', 2: 'm2', 3: 'm3' };

interface Cluster {
  net: MemoryNetwork;
  members: Map<number, Member>;
  storage: (id: number) => string | undefined;
}

async function startCluster(kind: 'memory' | 'leveldb', dirs: Map<number, string>): Promise<Cluster> {
  const net = memoryNetwork();
  const storage = (id: number): string | undefined => (kind === 'leveldb' ? dirs.get(id) : undefined);
  const members = new Map<number, Member>();
  await Promise.all(ids.map(async (id) => {
    members.set(id, await startMember({ id, ensemble, transport: net.transport(id), storage: storage(id), logLevel: 'warn' }));
  }));
  await Promise.all([...members.values()].map((m) => m.ready(10_000)));
  return { net, members, storage };
}

function leaderOf(c: Cluster): Member {
  const l = [...c.members.values()].find((m) => m.state === 'leading' && m.serving);
  if (!l) throw new Error('no leader');
  return l;
}

async function throughput(c: Cluster, kind: string): Promise<Measurement[]> {
  const out: Measurement[] = [];
  const leader = leaderOf(c);
  const follower = [...c.members.values()].find((m) => m !== leader)!;
  const payload = new Uint8Array(100).fill(1);
  for (const [role, m] of [['leader', leader], ['follower', follower]] as const) {
    const s = await m.session();
    const base = `/${kind}-${role}`;
    await s.create(base, '');
    for (const conc of [1, 256]) {
      const dir = `${base}/c${conc}`;
      await s.create(dir, '');
      const w = await measure(`${kind} write (create) on ${role}`, conc, N, MAX_MS, (_w, i) => s.create(`${dir}/n${i}`, payload));
      out.push(w);
      out.push(await measure(`${kind} write (setData) on ${role}`, conc, N, MAX_MS, (_w, i) => s.setData(`${dir}/n${i % w.ops}`, payload)));
      out.push(await measure(`${kind} read (getData) on ${role}`, conc, N * 10, MAX_MS, (_w, i) => s.getData(`${dir}/n${i % w.ops}`)));
    }
    await s.close();
  }
  return out;
}

async function firstCommittedWrite(s: Session, path: string, t0: number, limitMs: number): Promise<number> {
  for (;;) {
    try {
      await s.create(path, '');
      return performance.now() - t0;
    } catch {
      if (performance.now() - t0 > limitMs) throw new Error(`no write committed within ${limitMs} ms`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }
}

async function failover(c: Cluster, silent: boolean): Promise<number[]> {
  const times: number[] = [];
  for (let t = 0; t < TRIALS; t++) {
    const leader = leaderOf(c);
    const survivor = [...c.members.values()].find((m) => m !== leader)!;
    const s = await survivor.session({ sessionTimeoutMs: 30_000 });
    const t0 = performance.now();
    if (silent) c.net.isolate(leader.id);
    else await leader.halt();
    times.push(await firstCommittedWrite(s, `/failover-${silent ? 's' : 'v'}-${t}-${Date.now()}`, t0, 30_000));
    process.stderr.write(`  failover (${silent ? 'silent partition' : 'crash, connection closed'}) trial ${t + 1}: ${times[times.length - 1]!.toFixed(1)} ms\n`);
    await s.close().catch(() => undefined);
    if (silent) {
      c.net.heal();
    } else {
      c.members.set(leader.id, await startMember({ id: leader.id, ensemble, transport: c.net.transport(leader.id), storage: c.storage(leader.id), logLevel: 'warn' }));
    }
    await Promise.all([...c.members.values()].map((m) => m.ready(15_000)));
    await new Promise((r) => setTimeout(r, 200));
  }
  return times;
}

async function stopCluster(c: Cluster): Promise<void> {
  for (const m of c.members.values()) await m.stop();
}

const results: Record<string, unknown> = {};
for (const kind of ['memory', 'leveldb'] as const) {
  process.stderr.write(`ensemble benchmark: 3 members over memoryNetwork, ${kind} storage\n`);
  const root = mkdtempSync(join(os.tmpdir(), 'conclave-bench-'));
  const dirs = new Map(ids.map((id) => [id, join(root, `m${id}`)]));
  const c = await startCluster(kind, dirs);
  const tput = await throughput(c, kind);
  const visible = await failover(c, false);
  const silent = kind === 'memory' ? await failover(c, true) : [];
  await stopCluster(c);
  rmSync(root, { recursive: true, force: true });
  results[kind] = {
    throughput: tput,
    failoverCrashMs: distribution(visible),
    ...(silent.length > 0 ? { failoverPartitionMs: distribution(silent) } : {}),
  };
}
report('ensemble', {
  setup: '3 members in one process over memoryNetwork; default tickMs 100, syncLimit 10; one session per role; 100-byte values',
  ...results,
});
