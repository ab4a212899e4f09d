/**
 * Single-member, in-memory, in-process throughput and latency (issue 2): create, getData,
 * setData, exists, getChildren with 1 and 256 concurrent callers on one session.
 * Run: npm run bench:core   (JSON on stdout and in benchmarks/results/core.json)
 */
import { startMember } from '../src/index.js';
import { measure, report, type Measurement } from './lib.js';

const quick = process.argv.includes('--quick');
const N = quick ? 20_000 : 200_000;
const MAX_MS = quick ? 3_000 : 15_000;

const member = await startMember({ id: 1, logLevel: 'warn' });
const session = await member.session();
await session.create('/bench', '');
const payload = new Uint8Array(100).fill(7);
const results: Measurement[] = [];
process.stderr.write(`conclave core benchmark: single member, in-memory, ${N} ops per run (max ${MAX_MS} ms)\n`);

for (const c of [1, 256]) {
  const base = `/bench/c${c}`;
  await session.create(base, '');
  // Paths built once, as an application keeps its paths; the loop measures the operations.
  const paths = Array.from({ length: N }, (_, i) => `${base}/n${i}`);
  results.push(await measure('create', c, N, MAX_MS, (w, i) => session.create(paths[i]!, payload)));
  const created = results[results.length - 1]!.ops;
  results.push(await measure('getData', c, N * 5, MAX_MS, (w, i) => session.getData(paths[i % created]!)));
  results.push(await measure('exists', c, N * 5, MAX_MS, (w, i) => session.exists(paths[i % created]!)));
  results.push(await measure('setData', c, N, MAX_MS, (w, i) => session.setData(paths[i % created]!, payload)));
  results.push(await measure('getChildren', c, N, MAX_MS, () => session.getChildren('/bench')));
}

await session.close();
await member.stop();
report('core', {
  setup: 'one member, in-memory storage, one session, 100-byte values, no network',
  results,
});
