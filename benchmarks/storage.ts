/**
 * Storage benchmark: durable single-member writes beside the raw fsync rate of the same disk, and
 * recovery time of large trees.
 *
 *   npx tsx benchmarks/storage.ts [--writers 1,16,64,256] [--seconds 3] [--sizes 100000,1000000] [--dir DIR]
 *   npm run bench:storage
 *
 * JSON goes to stdout and to benchmarks/results/storage.json; progress goes to stderr. Every loop
 * is bounded (by time and by count).
 */
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMember, type Member } from '../src/api/member.js';
import { silentLogger } from '../src/api/log.js';
import { op } from '../src/api/session.js';
import { LevelStorage } from '../src/storage/level.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}

const WRITERS = arg('writers', '1,16,64,256').split(',').map(Number);
const SECONDS = Number(arg('seconds', '3'));
const SIZES = arg('sizes', '100000,1000000').split(',').filter(Boolean).map(Number);
const BASE = arg('dir', tmpdir());
for (const n of [...WRITERS, SECONDS, ...SIZES]) {
  if (!Number.isFinite(n) || n <= 0) throw new Error('--writers, --seconds and --sizes take positive numbers');
}

function progress(msg: string): void {
  process.stderr.write(`[bench:storage] ${msg}\n`);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

/** The raw rate of the disk: append 128 bytes and fsync, one at a time, as a single writer would. */
function rawFsync(dir: string, seconds: number): { fsyncsPerSec: number; p50Ms: number; p99Ms: number; count: number } {
  const file = join(dir, 'fsync-probe');
  const fd = openSync(file, 'w');
  const buf = Buffer.alloc(128, 0x61);
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < 200_000 && performance.now() - t0 < seconds * 1000; i++) {
    const a = performance.now();
    writeSync(fd, buf);
    fsyncSync(fd);
    lat.push(performance.now() - a);
  }
  const dt = (performance.now() - t0) / 1000;
  closeSync(fd);
  unlinkSync(file);
  lat.sort((a, b) => a - b);
  return { fsyncsPerSec: Math.round(lat.length / dt), p50Ms: round(percentile(lat, 0.5), 3), p99Ms: round(percentile(lat, 0.99), 3), count: lat.length };
}

async function durableWrites(dir: string, writers: number): Promise<Record<string, number>> {
  const storage = new LevelStorage(dir);
  const m = await startMember({ id: 1, storage, logger: silentLogger, maxSessionsPerOrigin: writers + 10 });
  try {
    // One session per writer, each with one write in flight at a time (like independent clients).
    const sessions = await Promise.all(Array.from({ length: writers }, () => m.session()));
    await Promise.all(sessions.map((s, i) => s.create(`/w${i}`, '')));
    const payload = 'x'.repeat(64);
    const lat: number[] = [];
    const before = storage.stats();
    const t0 = performance.now();
    const deadline = t0 + SECONDS * 1000;
    const cap = 2_000_000;
    await Promise.all(sessions.map(async (s, i) => {
      const path = `/w${i}`;
      while (performance.now() < deadline && lat.length < cap) {
        const a = performance.now();
        await s.setData(path, payload);
        lat.push(performance.now() - a);
      }
    }));
    const dt = (performance.now() - t0) / 1000;
    const after = storage.stats();
    lat.sort((a, b) => a - b);
    const batches = after.batches - before.batches;
    return {
      writers,
      writes: lat.length,
      seconds: round(dt),
      writesPerSec: Math.round(lat.length / dt),
      p50Ms: round(percentile(lat, 0.5), 3),
      p99Ms: round(percentile(lat, 0.99), 3),
      syncedBatches: batches,
      syncedBatchesPerSec: Math.round(batches / dt),
      txnsPerSyncedBatch: round((after.txns - before.txns) / Math.max(1, batches), 1),
    };
  } finally {
    await m.stop();
  }
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) n += statSync(join(dir, f)).size;
  return n;
}

async function recovery(dir: string, znodes: number): Promise<Record<string, number>> {
  progress(`recovery ${znodes}: building ${znodes} znodes (multi of 1000 creates each)`);
  let m: Member = await startMember({ id: 1, storage: dir, logger: silentLogger, snapCount: 10_000_000 });
  const t0 = performance.now();
  const s = await m.session();
  const dirs = Math.ceil(znodes / 10_000);
  for (let d = 0; d < dirs; d++) await s.create(`/d${d}`, '');
  const data = new Uint8Array(16);
  let made = dirs;
  const inflight: Promise<unknown>[] = [];
  for (let i = 0; made < znodes; i++) {
    const ops = [];
    for (let k = 0; k < 1000 && made < znodes; k++, made++) ops.push(op.create(`/d${made % dirs}/n${made}`, data));
    inflight.push(s.multi(ops));
    if (inflight.length >= 16) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
  const buildSeconds = (performance.now() - t0) / 1000;
  progress(`recovery ${znodes}: built in ${round(buildSeconds, 1)} s; snapshot`);
  const t1 = performance.now();
  await m.snapshot();
  const snapshotSeconds = (performance.now() - t1) / 1000;
  // Some txns after the snapshot, so that recovery also replays a log.
  for (let i = 0; i < 2000; i++) await s.setData(`/d${i % dirs}`, `after ${i}`);
  const nodeCount = m.tree.nodeCount;
  await m.halt();
  const bytes = dirBytes(dir);
  progress(`recovery ${znodes}: snapshot in ${round(snapshotSeconds, 1)} s; ${Math.round(bytes / 2 ** 20)} MiB on disk; timing startMember`);
  const t2 = performance.now();
  m = await startMember({ id: 1, storage: dir, logger: silentLogger, snapCount: 10_000_000 });
  const recoverySeconds = (performance.now() - t2) / 1000;
  const recovered = m.tree.nodeCount;
  await m.halt();
  if (recovered !== nodeCount) throw new Error(`recovered ${recovered} nodes, expected ${nodeCount}`);
  progress(`recovery ${znodes}: ${round(recoverySeconds, 2)} s`);
  return {
    znodes: nodeCount,
    buildSeconds: round(buildSeconds, 1),
    snapshotSeconds: round(snapshotSeconds, 2),
    replayedTxns: 2000,
    diskMiB: round(bytes / 2 ** 20, 1),
    recoverySeconds: round(recoverySeconds, 2),
  };
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(BASE, 'conclave-bench-storage-'));
  try {
    // The disk's fsync rate drifts (shared machines, caches): probe it right before and right after
    // every durable run, and compare each run with the mean of its two probes.
    const probeSeconds = Math.max(1, SECONDS / 2);
    progress(`directory ${root}; raw fsync probes: write 128 B + fsync, one writer, ${probeSeconds} s, before and after each run`);
    const probes: ReturnType<typeof rawFsync>[] = [];
    const durable: Record<string, number>[] = [];
    for (const w of WRITERS) {
      const dir = join(root, `writers-${w}`);
      const before = rawFsync(root, probeSeconds);
      progress(`durable writes with ${w} concurrent writer(s), ${SECONDS} s (raw fsync just before: ${before.fsyncsPerSec}/s)`);
      const r = await durableWrites(dir, w);
      const after = rawFsync(root, probeSeconds);
      probes.push(before, after);
      const raw = Math.round((before.fsyncsPerSec + after.fsyncsPerSec) / 2);
      progress(`  ${r.writesPerSec} writes/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${r.txnsPerSyncedBatch} txns per synced batch; raw fsync ${before.fsyncsPerSec} → ${after.fsyncsPerSec}/s; ${round(r.writesPerSec! / raw, 1)}× raw`);
      durable.push({ ...r, rawFsyncsPerSec: raw, timesRawFsync: round(r.writesPerSec! / raw, 2) });
      rmSync(dir, { recursive: true, force: true });
    }
    const rates = probes.map((p) => p.fsyncsPerSec).sort((a, b) => a - b);
    const fsync = { probes: probes.length, probeSeconds, medianFsyncsPerSec: rates[Math.floor(rates.length / 2)]!, minFsyncsPerSec: rates[0]!, maxFsyncsPerSec: rates[rates.length - 1]!, medianP50Ms: probes.map((p) => p.p50Ms).sort((a, b) => a - b)[Math.floor(probes.length / 2)]! };
    const rec: Record<string, number>[] = [];
    for (const n of SIZES) {
      const dir = join(root, `recovery-${n}`);
      rec.push(await recovery(dir, n));
      rmSync(dir, { recursive: true, force: true });
    }
    const at64 = durable.filter((d) => d.writers! >= 64);
    const best = at64.sort((a, b) => b.timesRawFsync! - a.timesRawFsync!)[0];
    const oneM = rec.find((r) => r.znodes! >= 1_000_000);
    const result = {
      benchmark: 'storage',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, platform: process.platform, dir: BASE },
      rawFsync: fsync,
      durableWrites: durable.sort((a, b) => a.writers! - b.writers!),
      recovery: rec,
      acceptance: {
        bestAt64PlusWriters: best ? { writers: best.writers, writesPerSec: best.writesPerSec, rawFsyncsPerSec: best.rawFsyncsPerSec, timesRawFsync: best.timesRawFsync } : null,
        durableOver20xRawFsync: best ? best.timesRawFsync! >= 20 : null,
        recovery1MSeconds: oneM?.recoverySeconds ?? null,
        recovery1MUnder10s: oneM ? oneM.recoverySeconds! <= 10 : null,
      },
    };
    const json = JSON.stringify(result, null, 2);
    process.stdout.write(json + '\n');
    const out = join(import.meta.dirname, 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'storage.json'), json + '\n');
    progress(`written to ${join(out, 'storage.json')}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
