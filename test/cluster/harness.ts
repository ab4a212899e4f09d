/**
 * Real member processes for the process-level tests and benchmarks/cluster.ts: spawns
 * test/cluster/memberProcess.ts with `node --import tsx` and an IPC channel, sends it commands,
 * collects its events (acknowledged writes, serving changes), and kills it with SIGKILL by PID.
 * Every process spawned here is remembered, and killAll() (call it from `after` hooks) ends the
 * ones still running — only those, by their PID. Not a test file itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MemberProcessConfig } from './memberProcess.js';

const SCRIPT = fileURLToPath(new URL('./memberProcess.ts', import.meta.url));

export type { MemberProcessConfig };

export interface Ack {
  kind: 'create' | 'setData';
  path: string;
  value: string;
  version: number;
  zxid: string | null;
  /** Position in this harness's receive order (all members). */
  seq: number;
}

export interface MemberStatus {
  id: number;
  pid: number;
  state: string;
  serving: boolean;
  leaderId: number | null;
  epoch: number | null;
  lastZxid: string;
  warns: number;
  lastWarns: string[];
  connected: number[];
}

const live = new Set<MemberProcess>();
let ackSeq = 0;

/** Ends every member process this harness started and that is still running (SIGKILL by PID). */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill9()));
}

/**
 * Mocha hooks for a suite of member processes: a temporary directory (`root`), the processes
 * killed by PID after each test (`killAfter: 'each'`) or once at the end, the directory removed.
 */
export function processSuite(prefix: string, options: { killAfter?: 'each' | 'all' } = {}): { readonly root: string } {
  const ctx = { root: '' };
  before(() => {
    ctx.root = mkdtempSync(join(os.tmpdir(), prefix));
  });
  if (options.killAfter === 'each') afterEach(killAll);
  after(async () => {
    await killAll();
    rmSync(ctx.root, { recursive: true, force: true });
  });
  return ctx;
}

process.once('exit', () => {
  for (const p of live) p.child.kill('SIGKILL');
});

export class MemberProcess extends EventEmitter {
  readonly acks: Ack[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderr = '';
  private nextReq = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(readonly config: MemberProcessConfig, readonly child: ChildProcess) {
    super();
    this.setMaxListeners(50);
    live.add(this);
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      if (this.stderr.length > 128 * 1024) this.stderr = this.stderr.slice(-64 * 1024);
      if (process.env.CONCLAVE_CLUSTER_VERBOSE) process.stderr.write(`[m${config.id}] ${d.toString()}`);
    });
    child.stdout!.on('data', (d: Buffer) => {
      if (process.env.CONCLAVE_CLUSTER_VERBOSE) process.stderr.write(`[m${config.id} out] ${d.toString()}`);
    });
    child.on('message', (m: Record<string, unknown>) => {
      if (typeof m.re === 'number') {
        const p = this.pending.get(m.re);
        if (!p) return;
        this.pending.delete(m.re);
        clearTimeout(p.timer);
        if (m.ok) p.resolve(m.result);
        else p.reject(new Error(`member ${config.id}: ${String(m.error)}`));
        return;
      }
      if (m.ev === 'ack') this.acks.push({ ...(m as unknown as Ack), seq: ackSeq++ });
      this.emit(String(m.ev), m);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        for (const [, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(new Error(`member ${config.id} (pid ${child.pid}) exited (${signal ?? code}) before answering; stderr: ${this.stderrTail()}`));
        }
        this.pending.clear();
        resolve({ code, signal });
      });
    });
  }

  get id(): number {
    return this.config.id;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  stderrTail(chars = 2000): string {
    return this.stderr.slice(-chars);
  }

  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 20_000): Promise<T> {
    if (!this.running || !this.child.connected) return Promise.reject(new Error(`member ${this.id} is not running`));
    const req = this.nextReq++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(req);
        reject(new Error(`member ${this.id}: '${cmd}' got no answer within ${timeoutMs} ms; stderr: ${this.stderrTail()}`));
      }, timeoutMs);
      this.pending.set(req, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.send({ req, cmd, args });
    });
  }

  status(): Promise<MemberStatus> {
    return this.call<MemberStatus>('status', {}, 10_000);
  }

  digest(): Promise<{ lastZxid: string; digest: string; nodes: number; state: string }> {
    return this.call('digest', {}, 20_000);
  }

  /** kill -9 by PID; resolves once the process is gone. */
  async kill9(): Promise<void> {
    if (!this.running) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await this.exited;
  }

  /** Graceful stop (member.stop()); SIGKILL if it does not exit within `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.running) return;
    const timer = setTimeout(() => void this.kill9(), timeoutMs);
    await this.call('stop', {}, timeoutMs).catch(() => undefined);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Starts a member process; resolves once the member started (recovered, transport up, electing). */
export async function spawnMember(config: MemberProcessConfig, timeoutMs = 30_000): Promise<MemberProcess> {
  // CONCLAVE_CLUSTER_NODE_ARGS: extra node flags for member processes (e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof').
  const extra = (process.env.CONCLAVE_CLUSTER_NODE_ARGS ?? '').split(' ').filter((a) => a.length > 0);
  const child = spawn(process.execPath, [...extra, '--import', 'tsx', SCRIPT], {
    env: { ...process.env, CONCLAVE_CLUSTER_MEMBER: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const p = new MemberProcess(config, child);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`member ${config.id} did not start within ${timeoutMs} ms; stderr: ${p.stderrTail()}`)), timeoutMs);
      p.once('started', () => {
        clearTimeout(timer);
        resolve();
      });
      p.once('startFailed', (m: { error: string }) => {
        clearTimeout(timer);
        reject(new Error(`member ${config.id} failed to start: ${m.error}`));
      });
      void p.exited.then((x) => {
        clearTimeout(timer);
        reject(new Error(`member ${config.id} exited (${x.signal ?? x.code}) while starting; stderr: ${p.stderrTail()}`));
      });
    });
  } catch (e) {
    await p.kill9();
    throw e;
  }
  return p;
}

/** `n` distinct free TCP ports on 127.0.0.1 (bound with port 0, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve());
      });
      ports.push((s.address() as net.AddressInfo).port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

export async function waitFor<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, what: string, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The established leader among `members`, once every running one agrees on it and serves. */
export async function agreedLeader(members: MemberProcess[], timeoutMs = 20_000): Promise<MemberProcess> {
  return waitFor(async () => {
    const running = members.filter((m) => m.running);
    const st = await Promise.all(running.map((m) => m.status()));
    const leader = st[0]?.leaderId;
    if (leader === null || leader === undefined || !st.every((s) => s.serving && s.leaderId === leader)) return undefined;
    return running.find((m) => m.id === leader);
  }, timeoutMs, `an agreed leader among members ${members.filter((m) => m.running).map((m) => m.id).join(', ')}`, 25);
}

/**
 * Waits until every running member has applied the same last zxid and it stays put, then returns
 * their digests (all equal, or the test fails on the returned values).
 */
export async function settledDigests(members: MemberProcess[], timeoutMs = 30_000): Promise<{ id: number; lastZxid: string; digest: string; nodes: number }[]> {
  return waitFor(async () => {
    const ds = await Promise.all(members.map(async (m) => ({ id: m.id, ...(await m.digest()) })));
    if (!ds.every((d) => d.lastZxid === ds[0]!.lastZxid)) return undefined;
    await new Promise((r) => setTimeout(r, 150));
    const again = await Promise.all(members.map((m) => m.digest()));
    if (!again.every((d) => d.lastZxid === ds[0]!.lastZxid)) return undefined;
    return ds;
  }, timeoutMs, 'members to apply the same last zxid', 100);
}

/** Checks acknowledged writes against what `member` has: every one present, with the right value. */
export async function missingAcks(member: MemberProcess, acks: Ack[]): Promise<string[]> {
  const creates = acks.filter((a) => a.kind === 'create');
  const problems: string[] = [];
  for (let i = 0; i < creates.length; i += 500) {
    const chunk = creates.slice(i, i + 500);
    const got = await member.call<(null | { value: string; version: number })[]>('get', { paths: chunk.map((a) => a.path) }, 30_000);
    chunk.forEach((a, j) => {
      const g = got[j];
      if (!g) problems.push(`${a.path} (zxid ${a.zxid}) missing on member ${member.id}`);
      else if (g.value !== a.value) problems.push(`${a.path} on member ${member.id} is '${g.value}', acknowledged '${a.value}'`);
    });
  }
  // setData: the node's version never goes below an acknowledged one; at that version the value is the acknowledged one.
  const byPath = new Map<string, Ack>();
  for (const a of acks) if (a.kind === 'setData' && (byPath.get(a.path)?.version ?? -1) < a.version) byPath.set(a.path, a);
  if (byPath.size > 0) {
    const paths = [...byPath.keys()];
    const got = await member.call<(null | { value: string; version: number })[]>('get', { paths }, 30_000);
    paths.forEach((p, j) => {
      const a = byPath.get(p)!;
      const g = got[j];
      if (!g) problems.push(`${p} missing on member ${member.id}`);
      else if (g.version < a.version) problems.push(`${p} on member ${member.id} at version ${g.version}, below the acknowledged ${a.version}`);
      else if (g.version === a.version && g.value !== a.value) problems.push(`${p} v${a.version} on member ${member.id} is '${g.value}', acknowledged '${a.value}'`);
    });
  }
  return problems;
}

/** Fresh libp2p keys and their peer ids. */
export async function libp2pIdentities(n: number): Promise<{ key: string; peerId: string }[]> {
  const { generatePeerKey, peerIdFromKey } = await import('../../src/transport/libp2p.js');
  return Promise.all(Array.from({ length: n }, async () => {
    const key = await generatePeerKey();
    return { key, peerId: await peerIdFromKey(key) };
  }));
}
