/**
 * The replicated write path in one process, without the network or the disk: decoding PROPOSAL
 * txn lists (what every follower does per write) and applying decoded creates to a DataTree (what
 * every member does per write), in ns per txn. For A/B comparisons of codec and tree changes,
 * where the cluster benchmarks are too noisy to see a few hundred ns.
 *
 *   npx tsx benchmarks/codec.ts [--rounds 5] [--lists 3000]
 *   npm run bench:codec
 *
 * Each round decodes and applies `lists` lists of 64 creates of 100 bytes (the shape of a group
 * commit under load) into a fresh tree. JSON goes to stdout and to benchmarks/results/codec.json;
 * progress goes to stderr. Every loop is bounded by count.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Ids } from '../src/core/acl.js';
import { DataTree } from '../src/core/tree.js';
import { NodeKind, type Txn } from '../src/core/txn.js';
import { decodeTxnList, encodeTxnList } from '../src/core/txnCodec.js';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, lists: { type: 'string', default: '3000' } } });
const ROUNDS = Number(args.rounds);
const LISTS = Number(args.lists);
if (!(ROUNDS >= 1 && ROUNDS <= 100) || !(LISTS >= 1 && LISTS <= 100_000)) throw new Error('--rounds takes 1–100, --lists 1–100000');
const PER_LIST = 64;

function createTxn(zxid: bigint, path: string, pcv: number): Txn {
  return {
    zxid, sessionId: 0x1234n, cxid: 0, time: 1_765_000_000_000,
    op: { type: 'create', path, data: new Uint8Array(100), acl: [...Ids.OPEN_ACL_UNSAFE], ephemeralOwner: 0n, kind: NodeKind.Persistent, ttl: 0, pcv, pseq: pcv },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const decodeNs: number[] = [];
const applyNs: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const tree = new DataTree();
  tree.apply(createTxn(1n, '/bench', 1), false);
  let zxid = 2n;
  const lists: Buffer[] = [];
  for (let l = 0; l < LISTS; l++) {
    const txns: Txn[] = [];
    for (let i = 0; i < PER_LIST; i++, zxid++) txns.push(createTxn(zxid, `/bench/n-${zxid}`, Number(zxid)));
    lists.push(encodeTxnList(txns));
  }
  let t0 = process.hrtime.bigint();
  const decoded = lists.map((b) => decodeTxnList(b));
  const n = LISTS * PER_LIST;
  decodeNs.push(Number(process.hrtime.bigint() - t0) / n);
  t0 = process.hrtime.bigint();
  for (const d of decoded) for (const t of d) tree.apply(t, false);
  applyNs.push(Number(process.hrtime.bigint() - t0) / n);
  process.stderr.write(`[bench:codec] round ${round + 1}/${ROUNDS}: decode ${decodeNs.at(-1)!.toFixed(0)} ns/txn, apply ${applyNs.at(-1)!.toFixed(0)} ns/create (${tree.nodeCount} nodes)\n`);
}

const round = (xs: number[]): number[] => xs.map((x) => Math.round(x));
const result = {
  benchmark: 'codec',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
  setup: `${ROUNDS} rounds; each decodes ${LISTS} lists of ${PER_LIST} creates (100-byte values, open ACL) and applies them to a fresh tree`,
  decodeNsPerTxn: { median: Math.round(median(decodeNs)), rounds: round(decodeNs) },
  applyNsPerCreate: { median: Math.round(median(applyNs)), rounds: round(applyNs) },
};
const json = JSON.stringify(result, null, 2);
process.stdout.write(json + '\n');
const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'codec.json'), json + '\n');
