import type { Logger } from '../api/log.js';
import { silentLogger } from '../api/log.js';
import { startMember, type Member, type MemberConfig } from '../api/member.js';
import type { Session } from '../api/session.js';
import type { SessionOptions } from '../api/types.js';
import type { Txn } from '../core/txn.js';
import { formatZxid } from '../core/zxid.js';
import { MemoryStorage } from '../storage/memory.js';
import type { Storage } from '../storage/types.js';
import type { PeerMessage } from '../transport/types.js';
import { Rng } from './random.js';
import { SimNetwork } from './simNetwork.js';
import { VirtualClock } from './virtualClock.js';

export interface SimClusterOptions {
  seed?: number;
  voters?: number;
  observers?: number;
  tickMs?: number;
  initLimit?: number;
  syncLimit?: number;
  /** Range of the virtual fsync latency in ms (default [0, 2]). */
  fsyncMs?: [number, number];
  snapCount?: number;
  logWindow?: number;
  logger?: Logger;
  verbose?: boolean;
  /** Extra member configuration (applied to every member). */
  member?: Partial<MemberConfig>;
  /** Wraps a member's storage (fault injection at the disk, e.g. a failing append). */
  wrapStorage?: (id: number, storage: MemoryStorage) => Storage;
}

/** What a message filter decides for one message. */
export type MessageVerdict = 'deliver' | 'drop' | 'hold';

const drain = (): Promise<void> => new Promise<void>((r) => setImmediate(r));

/**
 * An ensemble of real `Member`s in one process on virtual time: deterministic for a seed, with
 * crash/restart (losing what was not durable), partitions, message faults and a per-message
 * filter for scenario tests — and continuous checks of ZAB's invariants (one leader per epoch,
 * members agree on every zxid, each member applies in zxid order). Exported as `conclave/testing`
 * so that applications can test their own coordination logic the same way.
 */
export class SimCluster {
  readonly rng: Rng;
  readonly clock = new VirtualClock();
  readonly net: SimNetwork;
  readonly storages = new Map<number, MemoryStorage>();
  readonly members = new Map<number, Member | undefined>();
  readonly ids: number[];
  readonly voterIds: number[];
  readonly violations: string[] = [];
  readonly events: string[] = [];
  readonly options: SimClusterOptions;
  /** epoch → leader that established it. */
  readonly leaders = new Map<number, number>();
  /** zxid → a digest of the txn first applied with it. */
  readonly applied = new Map<bigint, string>();
  private readonly lastApplied = new Map<number, bigint>();
  private readonly lastNotified = new Map<string, bigint>();
  private held: { from: number; to: number; msg: PeerMessage }[] = [];
  crashes = 0;
  elections = 0;

  constructor(options: SimClusterOptions = {}) {
    this.options = options;
    this.rng = new Rng(options.seed ?? 1);
    this.net = new SimNetwork(this.clock, this.rng.fork());
    const voters = options.voters ?? 3;
    const n = voters + (options.observers ?? 0);
    this.ids = Array.from({ length: n }, (_, i) => i + 1);
    this.voterIds = this.ids.slice(0, voters);
    const [lo, hi] = options.fsyncMs ?? [0, 2];
    for (const id of this.ids) {
      const fsyncRng = this.rng.fork();
      this.storages.set(id, new MemoryStorage({ schedule: (fire) => this.clock.setTimeout(fire, fsyncRng.int(lo, hi)) }));
    }
  }

  note(s: string): void {
    const line = `${this.clock.now() - 1_700_000_000_000}ms ${s}`;
    this.events.push(line);
    if (this.options.verbose) console.error(line);
  }

  violation(s: string): void {
    this.note(`VIOLATION ${s}`);
    this.violations.push(s);
  }

  // ------------------------------------------------------------------ time

  private driving = 0;

  /**
   * Runs every timer due within the next `ms` virtual milliseconds. Called from code that time is
   * already being driven for (a workload loop, a fault schedule), it just waits `ms` instead.
   */
  async runFor(ms: number): Promise<void> {
    if (this.driving > 0) {
      await this.sleep(ms);
      return;
    }
    this.driving++;
    try {
      const until = this.clock.now() + ms;
      await drain();
      while (this.clock.runNext(until)) await drain();
      this.clock.advanceTo(until);
    } finally {
      this.driving--;
    }
  }

  /** Runs until `predicate` holds (checked every `stepMs`), at most `maxMs`; returns whether it held. */
  async until(predicate: () => boolean, maxMs = 10_000, stepMs = 10): Promise<boolean> {
    for (let t = 0; t <= maxMs; t += stepMs) {
      if (predicate()) return true;
      await this.runFor(stepMs);
    }
    return predicate();
  }

  /** Drives virtual time until the promise settles (at most `maxMs`). */
  async settle<T>(p: Promise<T>, maxMs = 10_000): Promise<T> {
    let done = false;
    let value: T | undefined;
    let error: unknown;
    let failed = false;
    void p.then((v) => {
      done = true;
      value = v;
    }, (e: unknown) => {
      done = true;
      failed = true;
      error = e;
    });
    await this.until(() => done, maxMs, 5);
    if (!done) throw new Error(`not settled within ${maxMs} virtual ms`);
    if (failed) throw error;
    return value as T;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.clock.setTimeout(r, ms));
  }

  // ------------------------------------------------------------------ members

  private ensemble(): Record<number, { address: string; role: 'participant' | 'observer' }> {
    const e: Record<number, { address: string; role: 'participant' | 'observer' }> = {};
    for (const id of this.ids) e[id] = { address: `sim-${id}`, role: this.voterIds.includes(id) ? 'participant' : 'observer' };
    return e;
  }

  /** Starts (or restarts, on its surviving storage) member `id`. */
  async start(id: number): Promise<Member> {
    if (this.members.get(id)) throw new Error(`member ${id} is running`);
    const randomRng = this.rng.fork();
    const tickMs = this.options.tickMs ?? 50;
    const m = await startMember({
      id,
      ensemble: this.ensemble(),
      transport: this.net.transport(id),
      storage: this.options.wrapStorage ? this.options.wrapStorage(id, this.storages.get(id)!) : this.storages.get(id)!,
      clock: this.clock,
      tickMs,
      initLimit: this.options.initLimit ?? 10,
      syncLimit: this.options.syncLimit ?? 5,
      snapCount: this.options.snapCount ?? 100_000,
      logWindow: this.options.logWindow ?? 20_000,
      minSessionTimeoutMs: 2 * tickMs,
      logger: this.options.logger ?? silentLogger,
      random: () => randomRng.next(),
      ...this.options.member,
      hooks: {
        applied: (mid, txn) => this.onApplied(mid, txn),
        reset: (mid, zxid) => this.lastApplied.set(mid, zxid),
        leading: (mid, epoch) => this.onLeading(mid, epoch),
        delivered: (mid, n) => {
          const key = `${mid}/${n.sessionId}`;
          const prev = this.lastNotified.get(key) ?? 0n;
          if (n.zxid < prev) this.violation(`watch events out of zxid order for session 0x${n.sessionId.toString(16)} on member ${mid}: ${formatZxid(n.zxid)} after ${formatZxid(prev)}`);
          this.lastNotified.set(key, n.zxid);
        },
      },
    });
    m.on('error', (e) => this.violation(`member ${id} failed: ${e.message}`));
    this.members.set(id, m);
    this.lastApplied.set(id, m.lastZxid);
    this.note(`member ${id} started at ${formatZxid(m.lastZxid)}`);
    return m;
  }

  /** Starts every member and waits for an established leader. */
  async startAll(maxMs = 5000): Promise<Member> {
    for (const id of this.ids) await this.start(id);
    const ok = await this.until(() => this.leader() !== undefined && this.ids.every((id) => this.members.get(id)?.serving), maxMs);
    if (!ok) throw new Error(`no serving ensemble within ${maxMs} ms: ${this.describe()}`);
    return this.leader()!;
  }

  /** Power loss: writes not yet durable are lost; peers see the connection close. */
  async crash(id: number): Promise<void> {
    const m = this.members.get(id);
    if (!m) return;
    this.members.set(id, undefined);
    this.crashes++;
    this.note(`crash ${id}`);
    this.storages.get(id)!.crash();
    await this.settle(m.halt(), 5000);
  }

  member(id: number): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`member ${id} is down`);
    return m;
  }

  /** The established leader, if any. */
  leader(): Member | undefined {
    for (const m of this.members.values()) if (m?.zab.isLeader) return m;
    return undefined;
  }

  /** Running members other than the leader. */
  followers(): Member[] {
    return [...this.members.values()].filter((m): m is Member => m !== undefined && !m.zab.isLeader);
  }

  live(): number[] {
    return this.ids.filter((id) => this.members.get(id) !== undefined);
  }

  /** A session on member `id`, driving virtual time until it is open. */
  session(id: number, options: SessionOptions = {}): Promise<Session> {
    return this.settle(this.member(id).session({ connectTimeoutMs: 2000, ...options }));
  }

  describe(): string {
    return this.ids.map((id) => {
      const m = this.members.get(id);
      return m ? `${id}:${m.state}${m.serving ? '' : '(not serving)'}@${formatZxid(m.lastZxid)}` : `${id}:down`;
    }).join(' ');
  }

  // ------------------------------------------------------------------ network control

  partition(...groups: number[][]): void {
    this.net.partition(groups);
    this.note(`partition ${JSON.stringify(groups)}`);
  }

  heal(): void {
    this.net.heal();
    this.note('heal');
  }

  /**
   * Decides the fate of each message until cleared: 'deliver', 'drop', or 'hold' (kept until
   * {@link release}). Scenario tests use it to reproduce a bug message by message.
   */
  filter(fn: ((from: number, to: number, msg: PeerMessage) => MessageVerdict) | undefined): void {
    this.net.filter = fn
      ? (from, to, msg) => {
        const v = fn(from, to, msg);
        if (v === 'hold') this.held.push({ from, to, msg });
        return v === 'deliver';
      }
      : undefined;
  }

  /** Delivers held messages matching `which` (all by default), in the order they were held. */
  release(which: (from: number, to: number, msg: PeerMessage) => boolean = () => true): number {
    const keep: typeof this.held = [];
    let n = 0;
    for (const h of this.held) {
      if (which(h.from, h.to, h.msg)) {
        this.net.inject(h.from, h.to, h.msg);
        n++;
      } else keep.push(h);
    }
    this.held = keep;
    return n;
  }

  /** Drops held messages. */
  discardHeld(): void {
    this.held = [];
  }

  // ------------------------------------------------------------------ invariants

  private onApplied(mid: number, txn: Txn): void {
    const prev = this.lastApplied.get(mid) ?? 0n;
    if (txn.zxid <= prev) this.violation(`member ${mid} applied ${formatZxid(txn.zxid)} after ${formatZxid(prev)} (LocalPrimaryOrder)`);
    this.lastApplied.set(mid, txn.zxid);
    const d = `${txn.sessionId}:${txn.cxid}:${txn.op.type}:${'path' in txn.op ? txn.op.path : ''}`;
    const seen = this.applied.get(txn.zxid);
    if (seen === undefined) this.applied.set(txn.zxid, d);
    else if (seen !== d) this.violation(`members disagree on txn ${formatZxid(txn.zxid)}: ${seen} vs ${d} (Agreement)`);
  }

  private onLeading(mid: number, epoch: number): void {
    this.elections++;
    const prev = this.leaders.get(epoch);
    if (prev !== undefined && prev !== mid) this.violation(`two leaders in epoch ${epoch}: ${prev} and ${mid} (Leadership)`);
    this.leaders.set(epoch, mid);
    this.note(`member ${mid} leads epoch ${epoch}`);
  }

  /** Runs until every member serves and all applied the same last zxid; false if not within maxMs. */
  async converge(maxMs = 10_000): Promise<boolean> {
    return this.until(() => {
      const ms = this.ids.map((id) => this.members.get(id));
      return ms.every((m) => m?.serving) && new Set(ms.map((m) => m!.lastZxid)).size === 1;
    }, maxMs, 50);
  }

  /** Checks the replicas once converged: equal digests and no ephemeral of a dead session. */
  checkReplicas(): void {
    const ms = this.ids.map((id) => this.members.get(id)).filter((m): m is Member => m !== undefined);
    const digests = new Set(ms.map((m) => m.tree.digest()));
    if (digests.size > 1) {
      this.violation(`replica digests differ: ${ms.map((m) => `${m.id}@${formatZxid(m.lastZxid)}:${m.tree.digest().slice(0, 8)}`).join(' ')}; ${treeDifference(ms[0]!, ms.find((m) => m.tree.digest() !== ms[0]!.tree.digest())!)}`);
    }
    for (const m of ms) {
      for (const [owner, paths] of m.tree.ephemerals) {
        if (!m.tree.sessions.has(owner)) {
          this.violation(`member ${m.id}: ephemerals ${[...paths].join(',')} of dead session 0x${owner.toString(16)} (ZOOKEEPER-2355)`);
        }
      }
    }
  }

  /** Stops everything (as a crash: nothing more is written). */
  async shutdown(): Promise<void> {
    this.filter(undefined);
    for (const id of this.ids) {
      const m = this.members.get(id);
      if (!m) continue;
      this.members.set(id, undefined);
      this.storages.get(id)!.crash();
      let done = false;
      void m.halt().finally(() => {
        done = true;
      });
      await this.until(() => done, 5000, 5);
    }
  }
}

/** The first few differences between two members' trees, for a readable violation. */
function treeDifference(a: Member, b: Member): string {
  const out: string[] = [];
  const show = (m: Member, p: string): string => {
    const n = m.tree.get(p);
    if (!n) return 'absent';
    const st = n.stat;
    return `"${new TextDecoder().decode(n.data).slice(0, 20)}" v${st.version} cv${st.cversion} czxid=${formatZxid(st.czxid)} mzxid=${formatZxid(st.mzxid)} pzxid=${formatZxid(st.pzxid)} owner=0x${st.ephemeralOwner.toString(16)} kids=${st.numChildren} seq=${n.seq}`;
  };
  const paths = new Set([...a.tree.nodes.keys(), ...b.tree.nodes.keys()]);
  for (const p of [...paths].sort()) {
    if (p === '/zookeeper/config') continue;
    const x = show(a, p);
    const y = show(b, p);
    if (x !== y) out.push(`${p}: member ${a.id} ${x} | member ${b.id} ${y}`);
    if (out.length >= 4) break;
  }
  const sa = [...a.tree.sessions.keys()].map((k) => k.toString(16)).sort().join(',');
  const sb = [...b.tree.sessions.keys()].map((k) => k.toString(16)).sort().join(',');
  if (sa !== sb) out.push(`sessions: member ${a.id} [${sa}] | member ${b.id} [${sb}]`);
  return out.join('; ');
}
