/**
 * The remote-session half of benchmarks/cluster.ts: a process that is not a member opens a session
 * with connect() and drives reads and writes through it. Config in CONCLAVE_BENCH_CLIENT (JSON);
 * prints one JSON line { results: Measurement[] } on stdout. Not meant to be run by hand.
 */
import type * as Conclave from '../src/index.js';
import { measure, type Measurement } from './lib.js';

interface ClientConfig {
  addresses: string[];
  tag: string;
  writes: number;
  reads: number;
  maxMs: number;
  concurrency: number[];
}

const cfg = JSON.parse(process.env.CONCLAVE_BENCH_CLIENT ?? 'null') as ClientConfig | null;
if (!cfg) {
  process.stderr.write('clusterClient.ts is started by benchmarks/cluster.ts\n');
  process.exit(2);
}

// The compiled package when benchmarks/cluster.ts built it (CONCLAVE_CLUSTER_DIST), else the sources.
const { connect } = (await import(`${process.env.CONCLAVE_CLUSTER_DIST ? '../dist' : '../src'}/index.js`)) as typeof Conclave;
const session = await connect(cfg.addresses, { sessionTimeoutMs: 10_000 });
const payload = new Uint8Array(100).fill(120);
const results: Measurement[] = [];
for (const c of cfg.concurrency) {
  const dir = `/remote-${cfg.tag}-c${c}`;
  await session.create(dir, '');
  const w = await measure(`remote session create`, c, cfg.writes, cfg.maxMs, (_w, i) => session.create(`${dir}/n${i}`, payload));
  results.push(w);
  const existing = Math.max(1, w.ops);
  results.push(await measure(`remote session setData`, c, cfg.writes, cfg.maxMs, (_w, i) => session.setData(`${dir}/n${i % existing}`, payload)));
  results.push(await measure(`remote session getData`, c, cfg.reads, cfg.maxMs, (_w, i) => session.getData(`${dir}/n${i % existing}`)));
}
await session.close();
process.stdout.write(JSON.stringify({ results }) + '\n');
process.exit(0);
