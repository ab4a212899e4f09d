/**
 * The write part of benchmarks/cluster.ts alone, for iterating on the replicated write path: a
 * 3-process TCP ensemble with LevelDB (fsync on), create and setData with 256 callers on the
 * leader (and on a follower with --follower), several rounds, CPU µs and minor page faults per op for each process.
 *
 *   npx tsx benchmarks/clusterWrites.ts [--ops 20000] [--rounds 3] [--follower] [--concurrency 256] [--no-snapshots] [--prefill N]
 *
 * Member flags come from CONCLAVE_CLUSTER_NODE_ARGS (e.g. '--cpu-prof --cpu-prof-dir=/tmp/p').
 * With CONCLAVE_CLUSTER_DIST=1 the members run the compiled package (build it first: npm run build),
 * as bench:cluster does; otherwise the sources through tsx.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { agreedLeader, freePorts, killAll, spawnMember, type MemberProcess, type MemberProcessConfig } from '../test/cluster/harness.js';

const { values: args } = parseArgs({
  options: {
    ops: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '256' },
    follower: { type: 'boolean', default: false },
    threads: { type: 'boolean', default: false },
    'no-snapshots': { type: 'boolean', default: false },
    prefill: { type: 'string', default: '0' },
  },
});
const OPS = Number(args.ops);
const ROUNDS = Number(args.rounds);
const CONC = Number(args.concurrency);

interface Stats { cpu: { user: number; system: number }; gcMs: { minor: number; major: number; other: number }; fsyncBatches: number; fsyncTxns: number; packetsSent: number; packetsReceived: number; snapshotsTaken: number }
/** The fields of a /proc stat line after the command name (which may hold spaces and parentheses). */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU µs per thread name of one process (Linux /proc), to tell the main thread from LevelDB's and V8's. */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  const tick = 1e6 / 100; // USER_HZ
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      // Node 20 leaves every thread named 'node': the main thread is the one whose id is the pid.
      const comm = stat.slice(stat.indexOf('(') + 1, close).replace(/\d+$/, '#');
      const name = tid === String(pid) ? 'main' : comm === 'node' ? (process.env.CLUSTER_WRITES_TIDS ? `t${tid}` : 'other threads') : comm;
      const f = statFields(stat);
      const us = (Number(f[11]) + Number(f[12])) * tick;
      out.set(name, (out.get(name) ?? 0) + us);
    } catch {
      // thread exited
    }
  }
  return out;
}

/** Minor page faults of one process so far, all threads (Linux /proc; field 10 of stat). */
function minorFaults(pid: number): number {
  try {
    return Number(statFields(readFileSync(`/proc/${pid}/stat`, 'utf8'))[7]);
  } catch {
    return 0;
  }
}

interface Measurement { ops: number; opsPerSec: number; p50Ms: number; p99Ms: number; errors: number }

async function main(): Promise<void> {
  const root = mkdtempSync(join(os.tmpdir(), 'conclave-bench-writes-'));
  const ports = await freePorts(3);
  const ids = [1, 2, 3];
  const ensemble = Object.fromEntries(ids.map((id, i) => [id, `127.0.0.1:${ports[i]}`]));
  const cfgs: MemberProcessConfig[] = ids.map((id) => ({
    id, ensemble, transport: 'tcp', secret: 'bench-cluster-secret-0123456789', dir: join(root, `m${id}`),
    sessionTimeoutMs: 10_000, forceSync: true, logLevel: 'error',
    ...(args['no-snapshots'] ? { snapCount: 1_000_000_000 } : {}),
  }));
  const members = await Promise.all(cfgs.map((c) => spawnMember(c)));
  try {
    const leader = await agreedLeader(members, 30_000);
    const target = args.follower ? members.find((m) => m !== leader)! : leader;
    const order = [leader, ...members.filter((m) => m !== leader)];
    const stats = (): Promise<Stats[]> => Promise.all(order.map((m) => m.call<Stats>('stats')));
    const run = async (op: string, dir: string, existing?: number): Promise<Measurement> => {
      const threadsBefore = order.map((m) => threadCpu(m.pid));
      const faultsBefore = order.map((m) => minorFaults(m.pid));
      const before = await stats();
      const r = await target.call<Measurement>('bench', { op, dir, concurrency: CONC, ops: OPS, maxMs: 60_000, existing }, 180_000);
      const after = await stats();
      const threadsAfter = order.map((m) => threadCpu(m.pid));
      const faultsAfter = order.map((m) => minorFaults(m.pid));
      const cpu = after.map((s, i) => (s.cpu.user + s.cpu.system - before[i]!.cpu.user - before[i]!.cpu.system) / Math.max(1, r.ops));
      const perFsync = (after[0]!.fsyncTxns - before[0]!.fsyncTxns) / Math.max(1, after[0]!.fsyncBatches - before[0]!.fsyncBatches);
      const total = cpu.reduce((a, b) => a + b, 0);
      const sys = after.map((s, i) => (s.cpu.system - before[i]!.cpu.system) / Math.max(1, r.ops));
      const fsyncs = after.map((s, i) => (s.fsyncBatches - before[i]!.fsyncBatches) / ((r.ops / r.opsPerSec) || 1));
      const sent = after.map((s, i) => (s.packetsSent - before[i]!.packetsSent) / Math.max(1, r.ops));
      const snaps = after.map((s, i) => s.snapshotsTaken - before[i]!.snapshotsTaken);
      process.stdout.write(`${op.padEnd(8)} ${String(r.opsPerSec).padStart(6)} ops/s  p50 ${r.p50Ms} p99 ${r.p99Ms}  CPU µs/op total ${total.toFixed(1)} (leader ${cpu[0]!.toFixed(1)}, followers ${cpu[1]!.toFixed(1)} ${cpu[2]!.toFixed(1)}; system ${sys.map((x) => x.toFixed(1)).join(' ')})  ${perFsync.toFixed(0)} txns/fsync  fsyncs/s ${fsyncs.map((x) => x.toFixed(0)).join(' ')}  msgs sent/op ${sent.map((x) => x.toFixed(3)).join(' ')}  snapshots ${snaps.join(' ')}${r.errors ? `  ${r.errors} errors` : ''}\n`);
      const gc = after.map((s, i) => ['minor', 'major', 'other'].map((k) => (s.gcMs[k as 'minor'] - before[i]!.gcMs[k as 'minor']) * 1000 / Math.max(1, r.ops)));
      process.stdout.write(`    main-thread GC µs/op (minor/major/other): ${gc.map((g) => g.map((x) => x.toFixed(1)).join('/')).join('  ')}\n`);
      const faults = faultsAfter.map((f, i) => (f - faultsBefore[i]!) / Math.max(1, r.ops));
      process.stdout.write(`    page faults per op (minor): ${faults.map((x) => x.toFixed(3)).join(' ')}\n`);
      if (args.threads) {
        order.forEach((m, i) => {
          const parts = [...threadsAfter[i]!].map(([name, us]) => [name, (us - (threadsBefore[i]!.get(name) ?? 0)) / Math.max(1, r.ops)] as const)
            .filter(([, v]) => v >= 0.5).sort((a, b) => b[1] - a[1]);
          process.stdout.write(`    ${i === 0 ? 'leader  ' : 'follower'} threads µs/op: ${parts.map(([n, v]) => `${n} ${v.toFixed(1)}`).join(', ')}\n`);
        });
      }
      return r;
    };
    await target.call('bench', { op: 'create', dir: '/warmup', concurrency: 64, ops: 5000, maxMs: 30_000 }, 60_000);
    // A bigger tree first (bench:cluster's later workloads run on ~200k znodes): snapshots and GC scale with it.
    const prefill = Number(args.prefill);
    if (prefill > 0) {
      await target.call('bench', { op: 'create', dir: '/prefill', concurrency: 256, ops: prefill, maxMs: 600_000 }, 900_000);
      process.stdout.write(`prefilled ${prefill} znodes\n`);
    }
    process.stdout.write(`${args.follower ? 'follower' : 'leader'} ×${CONC}, ${OPS} ops per measurement\n`);
    for (let round = 0; round < ROUNDS; round++) {
      const c = await run('create', `/r${round}`);
      await run('setData', `/r${round}`, c.ops);
    }
  } finally {
    await Promise.all(members.map((m: MemberProcess) => m.stop()));
    await killAll();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
