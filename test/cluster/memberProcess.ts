/**
 * One ensemble member in its own OS process, driven over IPC by test/cluster/harness.ts (the
 * process-level tests and benchmarks/cluster.ts). Not a test file itself.
 *
 *   CONCLAVE_CLUSTER_MEMBER='{"id":1,"ensemble":{...},"transport":"tcp"|"libp2p",...}'
 *
 * The member runs with LevelDB in `dir`. Every load loop here is bounded in count and in time.
 * Parent → child: { req, cmd, args }; child → parent: { re, ok, result | error } and events
 * { ev: 'started' | 'serving' | 'ack' | 'warn' | 'fatal', ... }.
 * Commands: status, digest, session, writer.start, writer.stop, get, check, bench, firstWrite, stop.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import type { Member, Session, Stat, Transport } from '../../src/index.js';

/**
 * CONCLAVE_CLUSTER_DIST=1 runs the member on the compiled package (dist/, `npm run build`), as an
 * application that imports conclave does; otherwise on the TypeScript sources through tsx, whose
 * transform gives every named closure a name at run time (a defineProperty per closure created).
 */
/** Main-thread GC pause time (ms) by kind, for the write benchmarks' breakdown. */
const gcMs = { minor: 0, major: 0, other: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
    if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) gcMs.minor += e.duration;
    else if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) gcMs.major += e.duration;
    else gcMs.other += e.duration;
  }
}).observe({ entryTypes: ['gc'] });

const lib = process.env.CONCLAVE_CLUSTER_DIST ? '../../dist' : '../../src';
const { startMember } = (await import(`${lib}/index.js`)) as typeof import('../../src/index.js');
const { libp2pTransport } = (await import(`${lib}/transport/libp2p.js`)) as typeof import('../../src/transport/libp2p.js');

export interface MemberProcessConfig {
  id: number;
  ensemble: Record<number, string | { address: string; role?: 'participant' | 'observer' }>;
  /** tcp: startMember's automatic tcpTransport from ensemble + secret; libp2p: libp2pTransport. */
  transport: 'tcp' | 'libp2p';
  secret?: string;
  /** libp2p: this member's key (generatePeerKey()) and listen multiaddr. */
  peerKey?: string;
  listen?: string;
  dir: string;
  tickMs?: number;
  syncLimit?: number;
  forceSync?: boolean;
  sessionTimeoutMs?: number;
  /** Snapshot interval in txns (member default when absent). */
  snapCount?: number;
  logLevel?: 'silent' | 'error' | 'warn' | 'info' | 'debug';
}

interface Request {
  req: number;
  cmd: string;
  args?: Record<string, unknown>;
}

const cfg = JSON.parse(process.env.CONCLAVE_CLUSTER_MEMBER ?? 'null') as MemberProcessConfig | null;
if (!cfg || typeof process.send !== 'function') {
  process.stderr.write('memberProcess.ts runs under test/cluster/harness.ts (CONCLAVE_CLUSTER_MEMBER and an IPC channel)\n');
  process.exit(2);
}
const config = cfg;

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const hex = (z: bigint): string => '0x' + z.toString(16);
const text = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');

function send(msg: Record<string, unknown>): void {
  if (process.connected) process.send!(msg);
}

// The parent going away (test finished or crashed) ends this process: never outlive the harness.
process.on('disconnect', () => process.exit(0));

let member: Member;
let warns = 0;
const lastWarns: string[] = [];
let session: Session | undefined;

async function localSession(): Promise<Session> {
  if (session && session.state !== 'LOST' && session.state !== 'CLOSED') return session;
  session = await member.session({ sessionTimeoutMs: config.sessionTimeoutMs ?? 10_000 });
  return session;
}

function status(): Record<string, unknown> {
  const zab = member.zab as unknown as { epoch?: number } | undefined;
  return {
    id: member.id, pid: process.pid, state: member.state, serving: member.serving, leaderId: member.leaderId ?? null,
    epoch: zab?.epoch ?? null, lastZxid: hex(member.lastZxid), warns, lastWarns: lastWarns.slice(-5),
    connected: member.transport?.connected() ?? [],
  };
}

// ------------------------------------------------------------------ writer: acknowledged writes, reported

interface Writer {
  stop: boolean;
  acked: number;
  failed: number;
  lastError: string | undefined;
  done: Promise<void>;
}
let writer: Writer | undefined;

function startWriter(args: { prefix: string; concurrency?: number; maxOps?: number; maxMs?: number; pauseMs?: number }): void {
  if (writer && !writer.stop) throw new Error('a writer is already running');
  const w: Writer = { stop: false, acked: 0, failed: 0, lastError: undefined, done: Promise.resolve() };
  writer = w;
  const maxOps = args.maxOps ?? 100_000;
  const deadline = now() + (args.maxMs ?? 60_000);
  const pauseMs = args.pauseMs ?? 0;
  const salt = randomBytes(4).toString('hex');
  const counter = `${args.prefix}counter`;
  let next = 0;
  let counterVersion = -1;
  const loop = async (lane: number): Promise<void> => {
    while (!w.stop && next < maxOps && now() < deadline) {
      let s: Session;
      try {
        s = await localSession();
      } catch (e) {
        w.failed++;
        w.lastError = (e as Error).message;
        await sleep(20);
        continue;
      }
      const i = next++;
      try {
        if (lane === 0 && i % 8 === 7) {
          // A conditional setData on one node: its acknowledged versions must survive too.
          if (counterVersion < 0) {
            try {
              await s.create(counter, 'v-init');
            } catch (e) {
              if ((e as { code?: string }).code !== 'NODEEXISTS') throw e;
            }
            counterVersion = 0;
          }
          const value = `v${i}:${salt}`;
          const st: Stat = await s.setData(counter, value);
          counterVersion = st.version;
          w.acked++;
          send({ ev: 'ack', kind: 'setData', path: counter, value, version: st.version, zxid: hex(st.mzxid) });
        } else {
          const path = `${args.prefix}${i}`;
          const value = `${config.id}:${i}:${salt}`;
          await s.create(path, value);
          w.acked++;
          const st = await s.exists(path);
          send({ ev: 'ack', kind: 'create', path, value, version: 0, zxid: st ? hex(st.czxid) : null });
        }
      } catch (e) {
        w.lastError = (e as Error).message;
        // Not acknowledged (CONNECTIONLOSS during failover, …): it may or may not have been applied,
        // so it is not reported; the next write uses a new path.
        w.failed++;
        await sleep(5);
      }
      if (pauseMs > 0) await sleep(pauseMs);
    }
  };
  w.done = Promise.all(Array.from({ length: Math.max(1, args.concurrency ?? 1) }, (_, l) => loop(l))).then(() => undefined);
}

// ------------------------------------------------------------------ bench: load driven inside this process

interface Measurement {
  name: string;
  concurrency: number;
  ops: number;
  seconds: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[i]! * 1000) / 1000;
}

async function bench(args: { op: 'create' | 'setData' | 'getData'; dir: string; concurrency: number; ops: number; maxMs: number; existing?: number; name?: string; valueBytes?: number; yieldEveryMs?: number }): Promise<Measurement> {
  const s = await localSession();
  const payload = new Uint8Array(args.valueBytes ?? 100).fill(120);
  if (args.op === 'create') {
    for (let attempt = 1; ; attempt++) {
      try {
        await s.create(args.dir, '', { parents: true });
        break;
      } catch (e) {
        if ((e as { code?: string }).code === 'NODEEXISTS') break;
        if (attempt >= 50) throw e;
        await sleep(100);
      }
    }
  }
  const existing = Math.max(1, args.existing ?? 1);
  const run = args.op === 'create'
    ? (i: number) => s.create(`${args.dir}/n${i}`, payload)
    : args.op === 'setData'
      ? (i: number) => s.setData(`${args.dir}/n${i % existing}`, payload)
      : (i: number) => s.getData(`${args.dir}/n${i % existing}`);
  const lat = new Float64Array(args.ops);
  let next = 0;
  let done = 0;
  let errors = 0;
  const errorCodes: Record<string, number> = {};
  const start = performance.now();
  const deadline = start + args.maxMs;
  let lastYield = performance.now();
  const yieldMs = args.yieldEveryMs ?? 4;
  const worker = async (): Promise<void> => {
    for (;;) {
      // The deadline is checked before an index is taken: the ops done are exactly 0..done-1,
      // which a later setData/getData measurement addresses by index.
      if (performance.now() > deadline) return;
      const i = next++;
      if (i >= args.ops) return;
      // Local reads resolve without I/O: a loop of them would starve the member's own timers and
      // sockets (its followers would drop it after syncLimit ticks). Yield every few ms, as any
      // application sharing its event loop with a member must.
      if (yieldMs > 0 && performance.now() - lastYield > yieldMs) {
        await new Promise((r) => setImmediate(r));
        lastYield = performance.now();
      }
      const t = performance.now();
      try {
        await run(i);
      } catch (e) {
        errors++;
        const code = (e as { code?: unknown }).code;
        const k = typeof code === 'string' ? code : e instanceof Error ? e.name : 'unknown';
        errorCodes[k] = (errorCodes[k] ?? 0) + 1;
      }
      lat[done++] = performance.now() - t;
    }
  };
  await Promise.all(Array.from({ length: args.concurrency }, () => worker()));
  const seconds = (performance.now() - start) / 1000;
  const sorted = lat.subarray(0, done).sort();
  return {
    name: args.name ?? `${args.op} on member ${config.id}`, concurrency: args.concurrency, ops: done, seconds: Math.round(seconds * 1000) / 1000,
    opsPerSec: Math.round(done / seconds), p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: percentile(sorted, 100), errors,
    ...(errors > 0 ? { errorCodes } : {}),
  };
}

/** Tries a write every millisecond until one commits; returns ms since `t0` (epoch ms, e.g. just before a kill -9). */
async function firstWrite(args: { t0: number; limitMs?: number; path: string }): Promise<{ ms: number; attempts: number }> {
  const limit = args.limitMs ?? 30_000;
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      const s = await Promise.race([localSession(), sleep(limit).then(() => { throw new Error('no session'); })]);
      await s.create(`${args.path}-${attempts}`, '');
      return { ms: Math.round((now() - args.t0) * 1000) / 1000, attempts };
    } catch {
      if (now() - args.t0 > limit) throw new Error(`no write committed within ${limit} ms after the kill (${attempts} attempts); member state ${member.state}`);
      await sleep(1);
    }
  }
}

// ------------------------------------------------------------------ commands

async function handle(r: Request): Promise<unknown> {
  const a = (r.args ?? {}) as Record<string, unknown>;
  switch (r.cmd) {
    case 'status':
      return status();
    case 'ready':
      await member.ready(Number(a.timeoutMs ?? 20_000));
      return status();
    case 'digest':
      return { lastZxid: hex(member.lastZxid), digest: member.tree.digest(), nodes: member.tree.nodeCount, state: member.state };
    case 'session':
      await localSession();
      return { id: hex(session!.id) };
    case 'writer.start':
      startWriter(a as Parameters<typeof startWriter>[0]);
      return {};
    case 'writer.status':
      return writer ? { acked: writer.acked, failed: writer.failed, lastError: writer.lastError, stopped: writer.stop } : null;
    case 'writer.stop': {
      if (!writer) return { acked: 0, failed: 0 };
      writer.stop = true;
      await writer.done;
      return { acked: writer.acked, failed: writer.failed, lastError: writer.lastError };
    }
    case 'get': {
      // Values as this member has them (local reads after a sync with the leader).
      const s = await localSession();
      await s.sync('/');
      const out: (null | { value: string; version: number })[] = [];
      for (const p of a.paths as string[]) {
        try {
          const { data, stat } = await s.getData(p);
          out.push({ value: text(data), version: stat.version });
        } catch (e) {
          if ((e as { code?: string }).code !== 'NONODE') throw e;
          out.push(null);
        }
      }
      return out;
    }
    case 'write': {
      const s = await localSession();
      const st = await s.exists(String(a.path));
      if (st) return hex((await s.setData(String(a.path), String(a.value))).mzxid);
      await s.create(String(a.path), String(a.value), { parents: true });
      return hex((await s.exists(String(a.path)))!.czxid);
    }
    case 'admin':
      return JSON.parse(JSON.stringify(await member.admin(String(a.command ?? 'mntr') as 'mntr'), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
    case 'stats':
      return { ...member.stats, latencyMin: Number.isFinite(member.stats.latencyMin) ? member.stats.latencyMin : null, cpu: process.cpuUsage(), gcMs: { ...gcMs }, lastZxid: hex(member.lastZxid) };
    case 'bench':
      return bench(a as unknown as Parameters<typeof bench>[0]);
    case 'firstWrite':
      return firstWrite(a as unknown as Parameters<typeof firstWrite>[0]);
    case 'closeSession':
      if (session) await session.close().catch(() => undefined);
      session = undefined;
      return {};
    case 'stop':
      if (writer) writer.stop = true;
      await member.stop();
      setTimeout(() => process.exit(0), 10);
      return {};
    default:
      throw new Error(`unknown command ${r.cmd}`);
  }
}

async function main(): Promise<void> {
  mkdirSync(config.dir, { recursive: true });
  let transport: Transport | undefined;
  if (config.transport === 'libp2p') {
    if (!config.peerKey || !config.listen) throw new Error('libp2p needs peerKey and listen');
    transport = libp2pTransport({ listen: config.listen, peerKey: config.peerKey });
  }
  member = await startMember({
    id: config.id, ensemble: config.ensemble, transport, secret: config.secret, storage: config.dir,
    tickMs: config.tickMs, syncLimit: config.syncLimit, forceSync: config.forceSync ?? true, snapCount: config.snapCount, logLevel: config.logLevel ?? 'warn',
  });
  member.transport?.on('warn', (m) => {
    warns++;
    lastWarns.push(m.slice(0, 200));
    if (lastWarns.length > 20) lastWarns.shift();
  });
  member.on('serving', (serving) => send({ ev: 'serving', serving, state: member.state, leaderId: member.leaderId ?? null }));
  member.on('error', (e) => send({ ev: 'fatal', error: e.message }));
  process.on('message', (m: Request) => {
    handle(m).then(
      (result) => send({ re: m.req, ok: true, result }),
      (e: unknown) => send({ re: m.req, ok: false, error: e instanceof Error ? e.message : String(e) }),
    );
  });
  send({ ev: 'started', pid: process.pid, status: status() });
}

main().catch((e: unknown) => {
  send({ ev: 'startFailed', error: e instanceof Error ? e.message : String(e) });
  process.stderr.write(`member ${config.id} failed to start: ${e instanceof Error ? e.stack : String(e)}\n`);
  setTimeout(() => process.exit(1), 50);
});
