/**
 * Shared benchmark helpers: bounded load loops (by op count AND wall time), latency percentiles,
 * JSON results. Progress goes to stderr, results to stdout and benchmarks/results/<name>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Measurement {
  name: string;
  concurrency: number;
  ops: number;
  seconds: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  /** Failed ops by error code (KeeperError.code, else the error's name). */
  errorCodes?: Record<string, number>;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[i]! * 1000) / 1000;
}

/**
 * Runs `op(worker, i)` from `concurrency` async workers until `totalOps` are done or `maxMs`
 * elapsed, whichever comes first. Latency is sampled on one op in four (timing every op would
 * cost sub-microsecond reads a measurable share of their own time); throughput counts every op.
 */
export async function measure(
  name: string,
  concurrency: number,
  totalOps: number,
  maxMs: number,
  op: (worker: number, i: number) => Promise<unknown>,
): Promise<Measurement> {
  const lat = new Float64Array(Math.ceil(totalOps / 4));
  let next = 0;
  let done = 0;
  let sampled = 0;
  let errors = 0;
  const errorCodes: Record<string, number> = {};
  const failed = (e: unknown): void => {
    errors++;
    const code = (e as { code?: unknown }).code;
    const k = typeof code === 'string' ? code : e instanceof Error ? e.name : 'unknown';
    errorCodes[k] = (errorCodes[k] ?? 0) + 1;
  };
  const start = performance.now();
  const deadline = start + maxMs;
  const worker = async (w: number): Promise<void> => {
    for (;;) {
      // The deadline is checked before an index is taken, so that the ops done are exactly
      // 0..done-1 (a later measurement may address what this one created by index).
      if ((next & 3) === 0 && performance.now() > deadline) return;
      const i = next++;
      if (i >= totalOps) return;
      if ((i & 3) === 0) {
        const t = performance.now();
        try {
          await op(w, i);
        } catch (e) {
          failed(e);
        }
        lat[sampled++] = performance.now() - t;
      } else {
        try {
          await op(w, i);
        } catch (e) {
          failed(e);
        }
      }
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const seconds = (performance.now() - start) / 1000;
  const sorted = lat.subarray(0, sampled).sort();
  const m: Measurement = {
    name, concurrency, ops: done, seconds: Math.round(seconds * 1000) / 1000,
    opsPerSec: Math.round(done / seconds), p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99),
    maxMs: percentile(sorted, 100), errors, ...(errors > 0 ? { errorCodes } : {}),
  };
  const failures = Object.entries(errorCodes).map(([k, v]) => `${v} ${k}`).join(', ');
  process.stderr.write(`  ${name} ×${concurrency}: ${m.opsPerSec.toLocaleString('en')} ops/s, p50 ${m.p50Ms} ms, p99 ${m.p99Ms} ms (${done} ops${errors ? `, ${errors} errors: ${failures}` : ''})\n`);
  return m;
}

/** Summary statistics of a list of durations (ms). */
export function distribution(values: number[]): { n: number; min: number; p50: number; p90: number; max: number; mean: number } {
  const s = Float64Array.from(values).sort();
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  return { n: s.length, min: percentile(s, 0), p50: percentile(s, 50), p90: percentile(s, 90), max: percentile(s, 100), mean: Math.round(mean * 10) / 10 };
}

export function machine(): Record<string, unknown> {
  return { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.type()} ${os.release()}` };
}

/** Prints the result as JSON on stdout and writes benchmarks/results/<name>.json. */
export function report(name: string, result: Record<string, unknown>): void {
  const out = { benchmark: name, date: new Date().toISOString(), machine: machine(), ...result };
  const json = JSON.stringify(out, null, 2);
  process.stdout.write(json + '\n');
  const file = join(dirname(fileURLToPath(import.meta.url)), 'results', `${name}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, json + '\n');
  process.stderr.write(`results written to ${file}\n`);
}
