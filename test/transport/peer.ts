/**
 * A transport in its own OS process, for the compliance suite (not a test file itself).
 *   CONCLAVE_PEER='{"mode":"echo",...}'      listens, prints {"ready": address}, reads the peers map
 *                                            as one JSON line on stdin, starts, and answers every
 *                                            message m with { t: 'echo', n: m.n }; stops when stdin ends.
 *   CONCLAVE_PEER='{"mode":"lifecycle",...}' two transports start, exchange messages, stop, print
 *                                            {"stopped": true} and then must let the process exit.
 */
import { createInterface } from 'node:readline';
import type { Transport } from '../../src/transport/types.js';

interface PeerConfig {
  mode: 'echo' | 'lifecycle';
  kind: 'memory' | 'tcp' | 'libp2p';
  id?: number;
  listen?: string;
  secret?: string;
  peerKey?: string;
  /** For lifecycle with libp2p: the two keys. */
  peerKeys?: string[];
  maxQueueBytes?: number;
  handshakeTimeoutMs?: number;
}

const cfg = JSON.parse(process.env.CONCLAVE_PEER ?? '{}') as PeerConfig;

async function make(kind: string, listen: string | undefined, key: string | undefined): Promise<Transport> {
  if (kind === 'tcp') {
    const { tcpTransport } = await import('../../src/transport/tcp.js');
    return tcpTransport({ listen: listen ?? '127.0.0.1:0', secret: cfg.secret ?? 'test-secret', maxQueueBytes: cfg.maxQueueBytes, handshakeTimeoutMs: cfg.handshakeTimeoutMs });
  }
  if (kind === 'libp2p') {
    const { libp2pTransport } = await import('../../src/transport/libp2p.js');
    return libp2pTransport({ listen: listen ?? '/ip4/127.0.0.1/tcp/0', peerKey: key!, maxQueueBytes: cfg.maxQueueBytes, handshakeTimeoutMs: cfg.handshakeTimeoutMs });
  }
  throw new Error(`no standalone ${kind} transport`);
}

async function echo(): Promise<void> {
  const t = await make(cfg.kind, cfg.listen, cfg.peerKey);
  const address = await t.listen!();
  process.stdout.write(`${JSON.stringify({ ready: address })}\n`);
  const rl = createInterface({ input: process.stdin });
  let started = false;
  rl.on('line', (line) => {
    if (started) return;
    started = true;
    const peers = new Map<number, string>(JSON.parse(line) as [number, string][]);
    t.on('message', (from, msg) => t.send(from, { t: 'echo', n: (msg as unknown as { n?: number }).n } as { t: string }));
    t.start(cfg.id!, peers).catch((e: unknown) => {
      process.stderr.write(`start failed: ${String(e)}\n`);
      process.exit(2);
    });
  });
  rl.on('close', () => {
    void t.stop().then(() => process.exit(0));
  });
}

async function lifecycle(): Promise<void> {
  let a: Transport;
  let b: Transport;
  if (cfg.kind === 'memory') {
    const { memoryNetwork } = await import('../../src/transport/memory.js');
    const net = memoryNetwork();
    a = net.transport(1);
    b = net.transport(2);
  } else {
    a = await make(cfg.kind, undefined, cfg.peerKeys?.[0]);
    b = await make(cfg.kind, undefined, cfg.peerKeys?.[1]);
  }
  const peers = new Map([[1, await a.listen!()], [2, await b.listen!()]]);
  let got = 0;
  b.on('message', (_from, msg) => {
    got++;
    b.send(1, msg);
  });
  let echoed = 0;
  a.on('message', () => echoed++);
  await Promise.all([a.start(1, peers), b.start(2, peers)]);
  const deadline = Date.now() + 15_000;
  while (!(a.connected().includes(2) && b.connected().includes(1))) {
    if (Date.now() > deadline) throw new Error('not connected');
    await new Promise((r) => setTimeout(r, 5));
  }
  for (let i = 0; i < 100; i++) a.send(2, { t: 'x', n: i } as { t: string });
  while (echoed < 100) {
    if (Date.now() > deadline) throw new Error(`only ${got}/${echoed} messages`);
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all([a.stop(), b.stop()]);
  process.stdout.write(`${JSON.stringify({ stopped: true })}\n`);
}

if (cfg.mode === 'echo') void echo();
else if (cfg.mode === 'lifecycle') {
  lifecycle().catch((e: unknown) => {
    process.stderr.write(`lifecycle failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(3);
  });
} else {
  process.stderr.write('CONCLAVE_PEER.mode must be echo or lifecycle\n');
  process.exit(1);
}
