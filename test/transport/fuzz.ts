import { createHmac, randomBytes } from 'node:crypto';
import net from 'node:net';
import { encode } from '../../src/core/codec.js';
import { decodePayload, FrameDecoder } from '../../src/transport/frame.js';
import type { PeerMessage } from '../../src/transport/types.js';
import { mulberry32 as prng } from '../../src/testing/random.js';

/**
 * Hostile-input harness for a live TCP listener (a bare tcpTransport or a member's): throws random
 * and mutated frames at `address` over real sockets — garbage bytes, truncated frames, oversized
 * and zero length prefixes, undecodable msgpack, valid msgpack of the wrong shape, mutated
 * handshakes, protocol messages before the handshake, and (given the secret and a member id the
 * target accepts) streams of mutated protocol messages after a genuine handshake, each connection
 * ending in a random framing fault. Reusable for ensemble-level fuzzing: pass the ensemble's
 * secret, a member id the target lists, and a corpus of real messages to mutate.
 *
 * The target keeps one channel per member id: authenticating as a member that is running replaces
 * that member's channel each session ('down'/'up' churn the layer above must survive too); to keep
 * a real member's channel intact, list an extra id in the target's peers that no process uses.
 * The fuzz identity must be lower than the target's id to get a data channel (see links.ts).
 *
 * The authenticated part re-implements the dialer side of the handshake from its specification in
 * src/transport/tcp.ts (an independent implementation is also a check of that spec).
 */

export interface FuzzOptions {
  /** Frames to throw in total (default 100 000). */
  frames?: number;
  /** PRNG seed (default random; printed in the report so a failure can be replayed). */
  seed?: number;
  /** Parallel connections (default 24). */
  concurrency?: number;
  /** Stop after this long even if fewer frames were thrown (default 60 000 ms). */
  maxMs?: number;
  /** Share of frames sent after a genuine handshake (default 0.75 when `member` is given, else 0). */
  authenticatedShare?: number;
  /** Credentials for the authenticated part: the ensemble secret and a member id the target lists. */
  member?: { secret: string | Uint8Array; id: number; targetId: number };
  /** Well-formed messages to mutate (default: ZAB-shaped samples). */
  corpus?: PeerMessage[];
  /** Frames per authenticated connection (default 1000). */
  framesPerSession?: number;
}

export interface FuzzReport {
  seed: number;
  frames: number;
  connections: number;
  /** Connections that completed a genuine handshake. */
  authenticated: number;
  /** Frames the target answered with { t: 'refused' } (unauthenticated part). */
  refusals: number;
  byKind: Record<string, number>;
  ms: number;
}


class Gen {
  constructor(readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  /** A random msgpack-encodable value, biased to edge cases. */
  value(depth = 0): unknown {
    const k = this.int(depth > 3 ? 9 : 13);
    switch (k) {
      case 0: return this.pick([0, -1, 1, 0xffffffff, 2 ** 53 - 1, -(2 ** 53), 0.5, NaN, Infinity, -0]);
      case 1: return this.pick([0n, 1n, 2n ** 63n, 2n ** 64n - 1n, -(2n ** 63n), 5n << 32n]);
      case 2: return this.pick(['', 't', '__proto__', 'constructor', '\u0000', 'x'.repeat(this.int(300)), 'ü路径', '/zk/a']);
      case 3: return this.bytes(this.int(64));
      case 4: return null;
      case 5: return this.r() < 0.5;
      case 6: return undefined;
      case 7: return this.int(1 << 30);
      case 8: return String(this.int(1e6));
      case 9:
      case 10: return Array.from({ length: this.int(6) }, () => this.value(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = this.int(6); i > 0; i--) setOwn(o, this.pick(['t', 'epoch', 'zxid', 'txn', 'from', 'to', 'nonce', 'proof', '__proto__', 'a', String(i)]), this.value(depth + 1));
        return o;
      }
    }
  }
}

/** An own enumerable property, also for '__proto__' (what a hostile encoder would put on the wire). */
function setOwn(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, configurable: true, writable: true });
}

const INTERESTING = [0x00, 0xff, 0x7f, 0x80, 0xc0, 0xc1, 0xc4, 0xc6, 0xcf, 0xd3, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xc7, 0xc9, 0xd4, 0xd8];

/** Byte-level mutation of an encoded payload (bit flips, interesting bytes, huge length claims, splices). */
function mutate(g: Gen, payload: Uint8Array): Buffer {
  let b: Buffer = Buffer.from(payload);
  for (let n = 1 + g.int(4); n > 0; n--) {
    if (b.length === 0) b = g.bytes(1 + g.int(8));
    const i = g.int(b.length);
    switch (g.int(7)) {
      case 0: b[i] = b[i]! ^ (1 << g.int(8)); break;
      case 1: b[i] = g.pick(INTERESTING); break;
      case 2: b = Buffer.concat([b.subarray(0, i), g.bytes(1 + g.int(8)), b.subarray(i)]); break;
      case 3: b = Buffer.concat([b.subarray(0, i), b.subarray(Math.min(b.length, i + 1 + g.int(8)))]); break;
      case 4: b = b.subarray(0, i); break;
      case 5: {
        // A container or binary header claiming an enormous length.
        const hdr = Buffer.from([g.pick([0xdd, 0xdf, 0xc6, 0xdb, 0xc9]), 0xff, 0xff, 0xff, g.int(256)]);
        b = Buffer.concat([b.subarray(0, i), hdr, b.subarray(i)]);
        break;
      }
      default: b = Buffer.concat([b, b.subarray(g.int(b.length))]);
    }
  }
  return b;
}

function frame(payload: Uint8Array): Buffer {
  const f = Buffer.allocUnsafe(4 + payload.length);
  f.writeUInt32BE(payload.length, 0);
  f.set(payload, 4);
  return f;
}

/** Default corpus: messages shaped like ZAB's (src/zab/messages.ts). */
export function zabLikeCorpus(): PeerMessage[] {
  const txn = { zxid: (3n << 32n) | 9n, time: 1_700_000_000_000, sessionId: 0x100n, cxid: 4, op: { type: 'create', path: '/a', data: new Uint8Array([1, 2]), acl: [{ perms: 31, scheme: 'world', id: 'anyone' }], ephemeralOwner: 0n, kind: 0, ttl: 0, pcv: 1, pseq: 1 } };
  return [
    { t: 'vote', leader: 2, zxid: (3n << 32n) | 9n, peerEpoch: 3, round: 7, state: 'looking' },
    { t: 'finfo', acceptedEpoch: 3, observer: false },
    { t: 'linfo', epoch: 4 },
    { t: 'ackepoch', epoch: 4, currentEpoch: 3, lastZxid: (3n << 32n) | 9n, epochs: [[3, (3n << 32n) | 9n]] },
    { t: 'trunc', epoch: 4, zxid: 3n << 32n },
    { t: 'diff', epoch: 4, txns: [txn] },
    { t: 'proposal', epoch: 4, txn },
    { t: 'ack', epoch: 4, zxid: (4n << 32n) | 1n, newleader: false },
    { t: 'commit', epoch: 4, zxid: (4n << 32n) | 1n },
    { t: 'inform', epoch: 4, txn },
    { t: 'newleader', epoch: 4, zxid: 4n << 32n },
    { t: 'uptodate', epoch: 4, committed: (4n << 32n) | 1n },
    { t: 'ping', epoch: 4, touches: [[0x100n, 5000]] },
    { t: 'sync', epoch: 4, id: 1 },
    { t: 'syncreply', epoch: 4, id: 1 },
    { t: 'snap', epoch: 4, zxid: 4n << 32n, time: 1, sessions: [], count: 1 },
  ] as unknown as PeerMessage[];
}

/** One message-bearing payload for an authenticated stream: mutated corpus entries, random values, garbage. */
function sessionPayload(g: Gen, corpus: PeerMessage[]): { kind: string; bytes: Uint8Array } {
  const k = g.int(10);
  if (k < 4) {
    // A corpus message with one field replaced by a random value (type confusion).
    const base = { ...(g.pick(corpus) as unknown as Record<string, unknown>) };
    const keys = Object.keys(base);
    setOwn(base, g.pick([...keys, 'extra', '__proto__']), g.value());
    return { kind: 'auth:field-swap', bytes: encode(base) };
  }
  if (k < 6) return { kind: 'auth:mutated-bytes', bytes: mutate(g, encode(g.pick(corpus))) };
  if (k < 7) return { kind: 'auth:random-value', bytes: encode(g.value()) };
  if (k < 8) return { kind: 'auth:random-t', bytes: encode({ t: g.pick(['', 'vote', 'hello', 'auth', 'x'.repeat(40)]), ...(g.value() as object) }) };
  if (k < 9) return { kind: 'auth:garbage', bytes: g.bytes(1 + g.int(200)) };
  return { kind: 'auth:empty', bytes: new Uint8Array(0) };
}

/** How an authenticated stream ends. */
function sessionEnding(g: Gen, max: number): { kind: string; bytes: Buffer } {
  switch (g.int(5)) {
    case 0: {
      const h = Buffer.allocUnsafe(4);
      h.writeUInt32BE(max + 1 + g.int(0x7fffffff), 0);
      return { kind: 'auth:oversize-length', bytes: h };
    }
    case 1: {
      const full = frame(encode(g.value()));
      return { kind: 'auth:truncated', bytes: full.subarray(0, 1 + g.int(Math.max(1, full.length - 1))) };
    }
    case 2: return { kind: 'auth:header-only', bytes: Buffer.from([0, 0, 1, 0]) };
    default: return { kind: 'auth:clean-close', bytes: Buffer.alloc(0) };
  }
}

/** Frames for one unauthenticated connection. */
function unauthenticated(g: Gen, corpus: PeerMessage[]): { kind: string; bytes: Buffer; frames: number } {
  const hello = { t: 'hello', v: 2, role: 'member', from: 1 + g.int(9), to: 1 + g.int(9), nonce: g.bytes(32) };
  switch (g.int(11)) {
    case 0: return { kind: 'garbage-bytes', bytes: g.bytes(1 + g.int(2048)), frames: 1 };
    case 1: {
      const f = frame(encode(hello));
      return { kind: 'truncated', bytes: f.subarray(0, g.int(f.length)), frames: 1 };
    }
    case 2: {
      const h = Buffer.allocUnsafe(4);
      h.writeUInt32BE(g.pick([0xffffffff, 0x7fffffff, 4097, 64 * 1024 * 1024 + 1]), 0);
      return { kind: 'oversize-length', bytes: Buffer.concat([h, g.bytes(g.int(64))]), frames: 1 };
    }
    case 3: return { kind: 'zero-length', bytes: Buffer.from([0, 0, 0, 0]), frames: 1 };
    case 4: return { kind: 'garbage-msgpack', bytes: frame(g.bytes(1 + g.int(300))), frames: 1 };
    case 5: return { kind: 'wrong-shape', bytes: frame(encode(g.value())), frames: 1 };
    case 6: return { kind: 'mutated-hello', bytes: frame(mutate(g, encode(hello))), frames: 1 };
    case 7: {
      const n = 1 + g.int(4);
      return { kind: 'protocol-before-handshake', bytes: Buffer.concat(Array.from({ length: n }, () => frame(encode(g.pick(corpus))))), frames: n };
    }
    case 8: {
      // A plausible hello followed by a forged auth and protocol messages.
      const parts = [frame(encode(hello)), frame(encode({ t: 'auth', proof: g.bytes(32) })), frame(encode(g.pick(corpus)))];
      return { kind: 'forged-auth', bytes: Buffer.concat(parts), frames: parts.length };
    }
    case 9: {
      const fields = { ...hello, ...(g.value() as object) };
      return { kind: 'hello-field-swap', bytes: frame(encode(fields)), frames: 1 };
    }
    default: {
      const parts = [frame(encode({ t: 'hello', v: 1, role: 'client' })), frame(mutate(g, encode(g.pick(corpus)))), frame(g.bytes(g.int(40)))];
      return { kind: 'client-then-garbage', bytes: Buffer.concat(parts), frames: parts.length };
    }
  }
}

/** Writes `bytes`, half-closes, and resolves when the target closes (or after `timeoutMs`). */
function blast(address: { host: string; port: number }, bytes: Buffer, timeoutMs: number): Promise<{ refused: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(address);
    const decoder = new FrameDecoder(1 << 16);
    let refused = false;
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ refused });
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('error', done);
    socket.on('close', done);
    socket.on('data', (c) => {
      try {
        decoder.push(c);
        for (let p = decoder.next(); p; p = decoder.next()) {
          const m = decodePayload(p) as { t?: unknown };
          if (m?.t === 'refused') refused = true;
        }
      } catch {
        // the target's replies are not under test here
      }
    });
    socket.once('connect', () => {
      if (bytes.length > 0) socket.write(bytes);
      socket.end();
    });
  });
}

/** A genuine dialer handshake as member `id`, then `frames` (and the ending) on the same connection. */
function session(address: { host: string; port: number }, m: NonNullable<FuzzOptions['member']>, payloads: Buffer, timeoutMs: number): Promise<boolean> {
  const key = createHmac('sha256', typeof m.secret === 'string' ? Buffer.from(m.secret, 'utf8') : Buffer.from(m.secret)).update('conclave ensemble key v1').digest();
  return new Promise((resolve) => {
    const socket = net.connect(address);
    const decoder = new FrameDecoder(1 << 16);
    const nd = randomBytes(32);
    let authenticated = false;
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(authenticated);
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('error', done);
    socket.on('close', done);
    socket.on('data', (c) => {
      decoder.push(c);
      try {
        for (let p = decoder.next(); p; p = decoder.next()) {
          const msg = decodePayload(p) as Record<string, unknown>;
          if (msg.t === 'challenge' && msg.nonce instanceof Uint8Array) {
            const proof = createHmac('sha256', key).update(encode(['conclave/tcp/1', 'dialer', m.id, m.targetId, nd, msg.nonce])).digest();
            socket.write(frame(encode({ t: 'auth', proof })));
          } else if (msg.t === 'welcome' && !authenticated) {
            authenticated = msg.accept === true;
            if (!authenticated) return done();
            socket.write(payloads);
            socket.end();
          }
        }
      } catch {
        done();
      }
    });
    socket.once('connect', () => socket.write(frame(encode({ t: 'hello', v: 2, role: 'member', from: m.id, to: m.targetId, nonce: nd }))));
  });
}

/** Throws random and mutated frames at `address` ('host:port'); see the module comment. */
export async function fuzzAddress(address: string, options: FuzzOptions = {}): Promise<FuzzReport> {
  const [host, portText] = [address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, ''), address.slice(address.lastIndexOf(':') + 1)];
  const target = { host, port: Number(portText) };
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const g = new Gen(prng(seed));
  const total = options.frames ?? 100_000;
  const corpus = options.corpus ?? zabLikeCorpus();
  const concurrency = options.concurrency ?? 24;
  const maxMs = options.maxMs ?? 60_000;
  const share = options.member ? (options.authenticatedShare ?? 0.75) : 0;
  const perSession = options.framesPerSession ?? 1000;
  const report: FuzzReport = { seed, frames: 0, connections: 0, authenticated: 0, refusals: 0, byKind: {}, ms: 0 };
  const count = (kind: string, n = 1): void => {
    report.byKind[kind] = (report.byKind[kind] ?? 0) + n;
    report.frames += n;
  };
  const authTarget = Math.floor(total * share);
  let authThrown = 0;
  const t0 = Date.now();

  // The target keeps one channel per member id, so authenticated sessions run one after another
  // (a second one as the same member would replace the first); unauthenticated ones run in parallel.
  const authWorker = async (): Promise<void> => {
    const m = options.member;
    if (!m) return;
    while (authThrown < authTarget && Date.now() - t0 < maxMs) {
      report.connections++;
      const n = Math.min(perSession, authTarget - authThrown + 1);
      const parts: Buffer[] = [];
      const kinds: string[] = [];
      for (let i = 0; i < n - 1; i++) {
        const p = sessionPayload(g, corpus);
        parts.push(frame(p.bytes));
        kinds.push(p.kind);
      }
      const end = sessionEnding(g, 64 * 1024 * 1024);
      if (end.bytes.length > 0) {
        parts.push(end.bytes);
        kinds.push(end.kind);
      }
      authThrown += kinds.length;
      if (await session(target, m, Buffer.concat(parts), 5000)) {
        report.authenticated++;
        for (const k of kinds) count(k);
      } else {
        count('auth:handshake-failed');
      }
    }
  };
  let unauthThrown = 0;
  const unauthTarget = total - authTarget;
  const worker = async (): Promise<void> => {
    while (unauthThrown < unauthTarget && Date.now() - t0 < maxMs) {
      report.connections++;
      const u = unauthenticated(g, corpus);
      unauthThrown += u.frames;
      const r = await blast(target, u.bytes, 3000);
      if (r.refused) report.refusals++;
      count(u.kind, u.frames);
    }
  };
  await Promise.all([authWorker(), ...Array.from({ length: concurrency }, worker)]);
  report.ms = Date.now() - t0;
  return report;
}
