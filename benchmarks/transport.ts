/**
 * Transport micro-benchmark: two members in this process, over memory, TCP loopback and libp2p.
 *   npx tsx benchmarks/transport.ts [--messages 200000]
 * Prints JSON: one-way throughput for small ZAB-like messages (an ACK) and 1 KiB proposals, and
 * sequential round-trip latency (p50/p99). Not a test; numbers depend on the machine.
 */
import { memoryNetwork } from '../src/transport/memory.js';
import { generatePeerKey, libp2pTransport } from '../src/transport/libp2p.js';
import { tcpTransport } from '../src/transport/tcp.js';
import type { PeerMessage, Transport } from '../src/transport/types.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('messages', 200_000);

async function pair(kind: string): Promise<[Transport, Transport]> {
  let a: Transport;
  let b: Transport;
  if (kind === 'memory') {
    const net = memoryNetwork();
    a = net.transport(1);
    b = net.transport(2);
  } else if (kind === 'tcp') {
    a = tcpTransport({ listen: '127.0.0.1:0', secret: 'bench-secret' });
    b = tcpTransport({ listen: '127.0.0.1:0', secret: 'bench-secret' });
  } else {
    a = libp2pTransport({ listen: '/ip4/127.0.0.1/tcp/0', peerKey: await generatePeerKey() });
    b = libp2pTransport({ listen: '/ip4/127.0.0.1/tcp/0', peerKey: await generatePeerKey() });
  }
  const peers = new Map([[1, await a.listen!()], [2, await b.listen!()]]);
  await Promise.all([a.start(1, peers), b.start(2, peers)]);
  while (!(a.connected().includes(2) && b.connected().includes(1))) await new Promise((r) => setTimeout(r, 5));
  return [a, b];
}

async function throughput(a: Transport, b: Transport, make: (i: number) => PeerMessage, n: number): Promise<number> {
  let got = 0;
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const onMsg = (): void => {
    if (++got === n) resolve();
  };
  b.on('message', onMsg);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    a.send(2, make(i));
    // Yield now and then, as a member's event loop does between ZAB pumps.
    if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
  }
  await done;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  b.off('message', onMsg);
  return Math.round(n / s);
}

async function latency(a: Transport, b: Transport, rounds: number): Promise<{ p50: number; p99: number }> {
  const echo = (from: number, msg: PeerMessage): void => b.send(from, msg);
  b.on('message', echo);
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      a.once('message', () => resolve());
      a.send(2, { t: 'ping', epoch: 1, touches: [] } as PeerMessage);
    });
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  b.off('message', echo);
  samples.sort((x, y) => x - y);
  const q = (p: number): number => Math.round(samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]! * 1000) / 1000;
  return { p50: q(0.5), p99: q(0.99) };
}

const results: Record<string, unknown> = { messages: N, node: process.version };
const data = new Uint8Array(1024).fill(1);
for (const kind of ['memory', 'tcp', 'libp2p']) {
  const [a, b] = await pair(kind);
  const ackPerSec = await throughput(a, b, (i) => ({ t: 'ack', epoch: 7, zxid: (7n << 32n) | BigInt(i), newleader: false }) as PeerMessage, N);
  const proposalPerSec = await throughput(a, b, (i) => ({ t: 'proposal', epoch: 7, txn: { zxid: (7n << 32n) | BigInt(i), path: '/bench/node', data } }) as PeerMessage, Math.floor(N / 4));
  const rtt = await latency(a, b, 2000);
  results[kind] = { ackPerSec, proposal1KiBPerSec: proposalPerSec, roundTripMs: rtt };
  await Promise.all([a.stop(), b.stop()]);
}
console.log(JSON.stringify(results, null, 2));
