import { EventEmitter } from 'eventemitter3';
import { checkACL, digest, Perms, type ACL, type AuthId } from '../core/acl.js';
import { KeeperError } from '../core/errors.js';
import { validatePath } from '../core/path.js';
import { Preparer } from '../core/prep.js';
import { validateRequestOp, type Request, type RequestOp } from '../core/request.js';
import { copyStat, type Stat } from '../core/stat.js';
import { copySessionEntry, DataTree, LOCAL_ORIGIN, SESSION_REPLIES, type ApplyResult, type SessionEntry } from '../core/tree.js';
import { NodeKind, type Txn } from '../core/txn.js';
import { WatchManager, type Notification, type WatchEventType, type WatchKind } from '../core/watches.js';
import { formatZxid } from '../core/zxid.js';
import { levelStorage } from '../storage/level.js';
import { memoryStorage } from '../storage/memory.js';
import type { Storage } from '../storage/types.js';
import { parseHostPort, tcpTransport, type ClientConnection } from '../transport/tcp.js';
import type { PeerAddresses, Transport } from '../transport/types.js';
import { ZabPeer, type PersistOp, type Ready, type TreeSnapshot, type ZabEvent } from '../zab/peer.js';
import { SessionTracker } from '../zab/sessionTracker.js';
import { runAdmin, type AdminCommand } from './admin.js';
import { realClock, type Clock } from './clock.js';
import { defaultLogger, safe, type Logger, type LogLevel } from './log.js';
import { Session, type SessionBackend, type WatchSet } from './session.js';
import type { SessionOptions, SessionState } from './types.js';
import { deferred, type Deferred } from './util.js';
import { loadTree, takeSnapshot } from './recovery.js';
import { RemoteSessionServer, type RemoteClientLink } from './remote/server.js';

/** How a member is configured (see API.md). */
export interface MemberConfig {
  /** myid: integer ≥ 1, unique in the ensemble. */
  id: number;
  /** Every member by id; omitted → a single-member ensemble of just `id`. */
  ensemble?: Record<number, string | { address: string; role?: 'participant' | 'observer' }>;
  transport?: Transport;
  /** A Storage, or a directory for LevelDB; default in-memory. */
  storage?: Storage | string;
  tickMs?: number;
  initLimit?: number;
  syncLimit?: number;
  snapCount?: number;
  forceSync?: boolean;
  maxDataBytes?: number;
  minSessionTimeoutMs?: number;
  maxSessionTimeoutMs?: number;
  maxSessionsPerOrigin?: number;
  superDigest?: string;
  secret?: string | Uint8Array;
  autopurge?: { snapRetainCount: number; purgeIntervalMs: number };
  adminCommands?: string[] | '*';
  /**
   * Remote sessions must authenticate with one of these schemes when they connect (ZooKeeper's
   * enforce.auth.schemes), e.g. ['digest']; default: not required.
   */
  enforceAuthSchemes?: string[];
  /** Structured logger (pino-compatible); default JSON on stderr at CONCLAVE_LOG_LEVEL or 'warn'. */
  logger?: Logger;
  logLevel?: LogLevel;
  /** Time source; the simulation harness injects a virtual clock. */
  clock?: Clock;
  /** How often the leader looks for empty containers and expired TTL nodes (default 1000 ms). */
  containerCheckIntervalMs?: number;
  /** Txns a member keeps in memory to DIFF-sync learners (default 20 000). */
  logWindow?: number;
  /** Randomness for snapshot spreading (simulation injects a seeded one). */
  random?: () => number;
  /** Observation points for the simulation harness and tests (cheap when absent). */
  hooks?: MemberHooks;
}

/** Callbacks that let a test harness observe a member without changing it. */
export interface MemberHooks {
  /** A committed txn was applied to this member's tree. */
  applied?(memberId: number, txn: Txn): void;
  /** A watch notification was delivered to a local session. */
  delivered?(memberId: number, notification: Notification): void;
  /** This member became the established leader of `epoch`. */
  leading?(memberId: number, epoch: number): void;
  /** The tree was replaced wholesale (SNAP install or rebuild after TRUNC) at `zxid`. */
  reset?(memberId: number, zxid: bigint): void;
}

export type MemberState = 'looking' | 'leading' | 'following' | 'observing' | 'stopped';

export interface MemberEvents {
  state: (state: MemberState) => void;
  leader: (leaderId: number | undefined) => void;
  error: (error: Error) => void;
  serving: (serving: boolean) => void;
}

/**
 * Where a member delivers what happens to a session it serves: the in-process {@link Session}
 * (local sessions), or the connection of a remote client (src/api/remote/server.ts).
 */
export interface SessionSink {
  readonly state: SessionState;
  /** True for a remote client's connection: the member detaches it instead of suspending it. */
  readonly remote?: boolean;
  _notify(type: WatchEventType, path: string, zxid?: bigint): void;
  /**
   * Local sessions take the state as is. A remote sink ends its connection: LOST with
   * SESSIONEXPIRED tells the client its session expired, CLOSED that it was closed, anything else
   * that this member cannot serve it any more (the client moves to another member).
   */
  _setState(state: SessionState, code?: 'SESSIONEXPIRED' | 'CONNECTIONLOSS'): void;
  /** The watches to re-register after the member serves again (local sessions only). */
  _watchSet(): WatchSet;
  /** The member is stopping gracefully: local sessions end, remote ones are let go to fail over. */
  _memberStopping(): Promise<void>;
}

/** How a request's outcome gets back to whoever waits for it (a promise, or a remote connection). */
type Reply<T> = Pick<Deferred<T>, 'resolve' | 'reject'>;

interface LocalSession {
  id: bigint;
  timeoutMs: number;
  origin: string;
  auth: AuthId[];
  sink: SessionSink | undefined;
  pending: Map<number, Reply<ApplyResult>>;
  cxid: number;
  /** Last zxid this session has seen (reply or event), for re-registering watches. */
  lastZxid: bigint;
  lastTouch: number;
  /** When the member stopped serving (SUSPENDED), for the LOST deadline. */
  suspendedAt: number | undefined;
  closing: boolean;
  /** The user was told LOST while the ensemble was unreachable; close it for real once back. */
  lostLocally: boolean;
  created: boolean;
  syncs: Map<number, Deferred<void>>;
  /** canBeReadOnly: without a quorum the session reads the member's tree (READ_ONLY) instead of SUSPENDED. */
  readOnly: boolean;
  /**
   * Opened read-only while the member had no quorum: not in the replicated session table yet.
   * Its id is reserved; the member creates it for real (same id) once it serves again.
   */
  provisional: boolean;
  /**
   * Retries of a local session's writes (its retry policy after CONNECTIONLOSS) reuse the request
   * id they were first submitted with — `retried` maps the session's write id to it — and
   * `results` keeps the latest applied results, so a retried write that was applied after all is
   * answered, never applied twice.
   */
  retried?: Map<number, number>;
  results?: Map<number, ApplyResult>;
}

/** How many recent request ids / results a local session remembers for retries. */
const LOCAL_RETRY_WINDOW = 256;

/** Figures for admin commands. */
export interface MemberStats {
  packetsReceived: number;
  packetsSent: number;
  requests: number;
  latencyMin: number;
  latencyMax: number;
  latencyTotal: number;
  latencyCount: number;
  startedAt: number;
  snapshotsTaken: number;
  lastSnapshotMs: number;
  fsyncBatches: number;
  fsyncTxns: number;
}

const DEFAULTS = {
  tickMs: 100,
  initLimit: 20,
  syncLimit: 10,
  snapCount: 100_000,
  maxDataBytes: 1024 * 1024,
  maxSessionsPerOrigin: 60,
  sessionTimeoutMs: 10_000,
  containerCheckIntervalMs: 1000,
};

let nextSyncId = 1;

/**
 * An ensemble member hosted in this process: it wires the pure layers (core tree, ZAB peer)
 * to storage, transport and timers, and serves local sessions. Everything that changes the
 * tree goes prep → propose → commit → apply, with a quorum of one for a single member.
 */
export class Member extends EventEmitter<MemberEvents> {
  readonly id: number;
  readonly config: Readonly<MemberConfig>;
  readonly log: Logger;
  readonly clock: Clock;
  readonly storage: Storage;
  readonly transport: Transport | undefined;
  readonly ensemble: ReadonlyMap<number, { address: string; role: 'participant' | 'observer' }>;
  readonly tickMs: number;
  readonly maxDataBytes: number;
  readonly minSessionTimeoutMs: number;
  readonly maxSessionTimeoutMs: number;
  readonly maxSessionsPerOrigin: number;
  readonly snapCount: number;

  tree: DataTree;
  readonly watches = new WatchManager();
  private prep: Preparer;
  zab!: ZabPeer;
  private readonly tracker = new SessionTracker();
  private readonly local = new Map<bigint, LocalSession>();
  private readonly random: () => number;
  private readonly hooks: MemberHooks | undefined;

  private _stopped = false;
  private tickTimer: unknown;
  private containerTimer: unknown;
  private purgeTimer: unknown;
  private purging = false;
  private pumping = false;
  private pumpScheduled = false;
  private proposalFlushScheduled = false;
  private persistQueue: PersistOp[] = [];
  private persisting = false;
  private holdApply = 0;
  private heldCommits: Txn[] = [];
  private servingWaiters: Deferred<void>[] = [];
  private sessionSeq = 0n;
  private sessionBase = 0n;
  private txnsSinceSnapshot = 0;
  private snapshotAt: number;
  private snapshotting: Promise<void> | undefined;
  private reapQueue = new Set<string>();
  private reapScheduled = false;
  private fatal: Error | undefined;
  private detachTransport: (() => void) | undefined;
  private remoteServer: RemoteSessionServer | undefined;

  readonly stats: MemberStats;
  private readonly localBackend: SessionBackend;

  /** @internal use startMember(). */
  constructor(config: MemberConfig) {
    super();
    if (!Number.isInteger(config.id) || config.id < 1) {
      throw new KeeperError('BADARGUMENTS', undefined, `member id must be an integer ≥ 1 (got ${String(config.id)})`);
    }
    this.id = config.id;
    this.config = config;
    this.clock = config.clock ?? realClock;
    this.log = (config.logger ?? defaultLogger(config.logLevel)).child({ member: config.id });
    this.random = config.random ?? Math.random;
    this.hooks = config.hooks;
    this.tickMs = config.tickMs ?? DEFAULTS.tickMs;
    this.maxDataBytes = config.maxDataBytes ?? DEFAULTS.maxDataBytes;
    this.minSessionTimeoutMs = config.minSessionTimeoutMs ?? 2 * this.tickMs;
    this.maxSessionTimeoutMs = config.maxSessionTimeoutMs ?? Math.max(20 * this.tickMs, 60_000);
    this.maxSessionsPerOrigin = config.maxSessionsPerOrigin ?? DEFAULTS.maxSessionsPerOrigin;
    this.snapCount = config.snapCount ?? DEFAULTS.snapCount;
    this.snapshotAt = this.nextSnapshotThreshold();
    const ens = new Map<number, { address: string; role: 'participant' | 'observer' }>();
    if (config.ensemble) {
      for (const [k, v] of Object.entries(config.ensemble)) {
        const id = Number(k);
        if (!Number.isInteger(id) || id < 1) throw new KeeperError('BADARGUMENTS', undefined, `ensemble key ${k} is not a member id ≥ 1`);
        ens.set(id, typeof v === 'string' ? { address: v, role: 'participant' } : { address: v.address, role: v.role ?? 'participant' });
      }
      if (!ens.has(this.id)) {
        throw new KeeperError('BADARGUMENTS', undefined, `member ${this.id} is not in its own ensemble (members: ${[...ens.keys()].join(', ')}); add it or fix the id`);
      }
    } else {
      ens.set(this.id, { address: '', role: 'participant' });
    }
    this.ensemble = ens;
    this.transport = config.transport ?? (ens.size > 1 ? autoTcpTransport(this.id, ens, config.secret, (c) => this.acceptClient(c)) : undefined);
    // A transport the application built (tcpTransport({ listen, secret })) serves remote sessions
    // too, unless it was given its own client handler.
    config.transport?.serveClients?.((c) => this.acceptClient(c));
    if (typeof config.storage === 'string') this.storage = levelStorage(config.storage, { forceSync: config.forceSync ?? true, logger: this.log });
    else this.storage = config.storage ?? memoryStorage();
    this.tree = new DataTree();
    this.tree.watches = this.watches;
    this.prep = new Preparer(this.tree);
    this.stats = {
      packetsReceived: 0, packetsSent: 0, requests: 0, latencyMin: Infinity, latencyMax: 0, latencyTotal: 0, latencyCount: 0,
      startedAt: this.clock.now(), snapshotsTaken: 0, lastSnapshotMs: 0, fsyncBatches: 0, fsyncTxns: 0,
    };
    this.localBackend = this.makeLocalBackend();
  }

  // ------------------------------------------------------------------ lifecycle

  /** @internal recovers from storage, starts the transport and the first election. */
  async start(): Promise<void> {
    const t0 = this.clock.now();
    const rec = await loadTree(this.storage, this.log, this.config.logWindow ?? 20_000);
    this.tree = rec.tree;
    this.tree.watches = this.watches;
    this.prep = new Preparer(this.tree);
    this.tree.setSystemConfig(this.configText());
    this.log.info({ ms: this.clock.now() - t0, nodes: this.tree.nodeCount, lastZxid: formatZxid(rec.lastZxid), storage: this.storage.description }, 'recovered');
    const voters: number[] = [];
    const observers: number[] = [];
    for (const [id, m] of this.ensemble) (m.role === 'observer' ? observers : voters).push(id);
    this.zab = new ZabPeer(
      {
        id: this.id, voters, observers,
        initLimit: this.config.initLimit ?? DEFAULTS.initLimit,
        syncLimit: this.config.syncLimit ?? DEFAULTS.syncLimit,
        logWindow: this.config.logWindow ?? 20_000,
        connectionNonce: Math.floor(this.random() * 0x7fffffff),
      },
      { currentEpoch: rec.currentEpoch, acceptedEpoch: rec.acceptedEpoch, lastZxid: rec.lastZxid, baseZxid: rec.snapshotZxid, recentLog: rec.recentLog, recentFrom: rec.recentFrom },
      { snapshot: () => this.treeSnapshot() },
    );
    this.sessionBase = ((BigInt(this.clock.now()) << 16n) & ((1n << 56n) - 1n)) | (BigInt(this.id & 0xff) << 56n);
    if (this.transport) {
      const t = this.transport;
      const onMessage = (from: number, msg: unknown): void => {
        this.stats.packetsReceived++;
        this.zab.step(from, msg);
        this.pump();
      };
      const onUp = (peer: number): void => {
        this.zab.peerUp(peer);
        this.pump();
      };
      const onDown = (peer: number): void => {
        this.zab.peerDown(peer);
        this.pump();
      };
      const onWarn = (message: string, detail?: Record<string, unknown>): void => this.log.warn(safe(detail), message);
      t.on('message', onMessage);
      t.on('up', onUp);
      t.on('down', onDown);
      t.on('warn', onWarn);
      this.detachTransport = () => {
        t.off('message', onMessage);
        t.off('up', onUp);
        t.off('down', onDown);
        t.off('warn', onWarn);
      };
      const peers = new Map<number, string>();
      for (const [id, m] of this.ensemble) peers.set(id, m.address);
      try {
        await this.transport.start(this.id, peers as PeerAddresses);
      } catch (e) {
        throw startupError(this.id, e);
      }
      for (const p of this.transport.connected()) this.zab.peerUp(p);
    }
    this.tickTimer = this.clock.setInterval(() => this.onTick(), this.tickMs);
    this.containerTimer = this.clock.setInterval(() => this.scanContainers(), this.config.containerCheckIntervalMs ?? DEFAULTS.containerCheckIntervalMs);
    if ((this.config.autopurge?.purgeIntervalMs ?? 0) > 0) this.purgeTimer = this.clock.setInterval(() => void this.purge(), this.config.autopurge!.purgeIntervalMs);
    this.zab.start();
    this.pump();
  }

  private configText(): string {
    const lines: string[] = [];
    for (const [id, m] of this.ensemble) lines.push(`server.${id}=${m.address}${m.role === 'observer' ? ':observer' : ''}`);
    lines.push('version=0');
    return lines.join('\n');
  }

  /** Resolves once this member serves (leader established, or synced with one). */
  ready(timeoutMs?: number): Promise<void> {
    if (this.zab?.serving) return Promise.resolve();
    if (this._stopped) return Promise.reject(new KeeperError('CONNECTIONLOSS', undefined, 'the member is stopped'));
    const d = deferred<void>();
    this.servingWaiters.push(d);
    if (timeoutMs !== undefined) {
      const t = this.clock.setTimeout(() => {
        const i = this.servingWaiters.indexOf(d);
        if (i >= 0) this.servingWaiters.splice(i, 1);
        d.reject(new KeeperError('CONNECTIONLOSS', undefined, `member ${this.id} has no quorum after ${timeoutMs} ms (state ${this.state}); are the other members running and reachable?`));
      }, timeoutMs);
      void d.promise.finally(() => this.clock.clearTimeout(t)).catch(() => undefined);
    }
    return d.promise;
  }

  get state(): MemberState {
    if (this._stopped || !this.zab) return 'stopped';
    const s = this.zab.state;
    return s === 'stopped' ? 'stopped' : s;
  }

  get leaderId(): number | undefined {
    return this.zab?.serving ? this.zab.leaderId : undefined;
  }

  get lastZxid(): bigint {
    return this.tree.lastZxid;
  }

  get serving(): boolean {
    return !this._stopped && (this.zab?.serving ?? false);
  }

  /** Gracefully stops: sessions of this member are closed where possible, storage closed. */
  async stop(): Promise<void> {
    if (this._stopped) return;
    // Close local sessions while we still can (their ephemerals go now rather than at expiry).
    if (this.serving) {
      const closing: Promise<void>[] = [];
      for (const s of this.local.values()) {
        if (s.created && !s.closing && s.sink && s.sink.state !== 'LOST' && s.sink.state !== 'CLOSED') {
          closing.push(Promise.race([s.sink._memberStopping(), new Promise<void>((r) => this.clock.setTimeout(r, 2 * this.tickMs + 200))]));
        }
      }
      await Promise.all(closing);
    }
    await this.halt();
    this.log.info({}, 'stopped');
  }

  /** Stops without closing sessions (what a crash looks like to the others, minus losing fsyncs). */
  async halt(): Promise<void> {
    if (this._stopped) return;
    this._stopped = true;
    this.clock.clearInterval(this.tickTimer);
    this.clock.clearInterval(this.containerTimer);
    this.clock.clearInterval(this.purgeTimer);
    this.zab?.stop();
    for (const s of this.local.values()) this.failSession(s, 'CONNECTIONLOSS', 'LOST');
    for (const w of this.servingWaiters) w.reject(new KeeperError('CONNECTIONLOSS', undefined, 'the member stopped'));
    this.servingWaiters = [];
    this.emit('state', 'stopped');
    await this.transport?.stop();
    this.detachTransport?.();
    try {
      await this.snapshotting;
    } catch {
      // reported when it failed
    }
    // Let queued durable writes finish before closing (bounded: a crashed storage never finishes).
    for (let i = 0; i < 200 && this.persisting; i++) await this.clock.yield();
    await this.storage.close();
  }

  get stopped(): boolean {
    return this._stopped;
  }

  private die(e: Error): void {
    if (this.fatal) return;
    this.fatal = e;
    this.log.error({ err: e.message, stack: e.stack }, 'fatal error; member stops');
    this.emit('error', e);
    void this.halt().catch(() => undefined);
  }

  // ------------------------------------------------------------------ the Ready loop

  private onTick(): void {
    if (this._stopped) return;
    try {
      this.zab.tick();
      const now = this.clock.now();
      if (this.zab.isLeader) {
        for (const sid of this.tracker.expired(now)) {
          this.log.info({ session: '0x' + sid.toString(16) }, 'session expired');
          this.proposeLocal({ sessionId: sid, cxid: -1, op: { type: 'closeSession', reason: 'expire' }, auth: [] });
        }
      }
      this.touchLocalSessions(now);
      this.pump();
    } catch (e) {
      this.die(e as Error);
    }
  }

  /**
   * Schedules carrying out what the ZAB peer produced. Deferred to a microtask so that every
   * request issued in the same turn shares one round: one PROPOSAL message per follower and one
   * group-committed log append for all of them.
   */
  pump(): void {
    if (this.pumpScheduled || this._stopped) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pumpNow();
    });
  }

  /**
   * Carries out everything the ZAB peer produced, until it is quiet. Re-entrant calls just return.
   * The leader's new proposals are held back (they are logged at once) until the work already
   * queued in this turn of the event loop has run — the callers answered by the last commits
   * issue their next writes in microtasks and I/O callbacks of the same turn — and then go out
   * together, as one PROPOSAL message per follower (measured on a 3-process ensemble at 256
   * callers: ~2 txns per message when sent from the microtask, dozens when held). A learner holds
   * the writes it forwards to the leader the same way.
   */
  private pumpNow(flushProposals = false): void {
    if (this.pumping || this._stopped) {
      if (flushProposals && !this._stopped) this.scheduleProposalFlush();
      return;
    }
    this.pumping = true;
    try {
      const hold = !flushProposals;
      while (this.zab.hasReady(hold)) this.handleReady(this.zab.takeReady(hold));
      if (hold && this.zab.unsent > 0) this.scheduleProposalFlush();
    } catch (e) {
      this.die(e as Error);
    } finally {
      this.pumping = false;
    }
  }

  private scheduleProposalFlush(): void {
    if (this.proposalFlushScheduled) return;
    this.proposalFlushScheduled = true;
    const run = (): void => {
      this.proposalFlushScheduled = false;
      this.pumpNow(true);
    };
    if (this.clock.immediate) this.clock.immediate(run);
    else void this.clock.yield().then(run);
  }

  private handleReady(rd: Ready): void {
    const t = this.transport;
    if (t) {
      for (const [to, msg] of rd.messages) {
        this.stats.packetsSent++;
        t.send(to, msg);
      }
    }
    for (const op of rd.persist) this.enqueuePersist(op);
    for (const txn of rd.commits) {
      if (this.holdApply > 0) this.heldCommits.push(txn);
      else this.applyTxn(txn);
    }
    if (rd.requests.length > 0) {
      const now = this.clock.now();
      for (const r of rd.requests) this.proposeLocal(r, now);
    }
    if (rd.touches.length > 0) {
      const now = this.clock.now();
      for (const [sid] of rd.touches) this.tracker.touch(sid, now);
    }
    for (const id of rd.syncDone) this.resolveSync(id);
    for (const ev of rd.events) this.onZabEvent(ev);
  }

  private onZabEvent(ev: ZabEvent): void {
    switch (ev.type) {
      case 'state':
        this.log.info({ state: ev.state, leader: ev.leader, epoch: ev.epoch }, 'state');
        this.emit('state', ev.state);
        return;
      case 'serving':
        if (ev.serving) this.onServing();
        else this.onNotServing();
        this.emit('serving', ev.serving);
        this.emit('leader', this.leaderId);
        return;
      case 'warn':
        this.log.warn(safe(ev.detail), ev.message);
        return;
      case 'info':
        this.log.info(safe(ev.detail), ev.message);
        return;
    }
  }

  private onServing(): void {
    const now = this.clock.now();
    this.prep.reset();
    this.tracker.clear();
    if (this.zab.isLeader) {
      this.hooks?.leading?.(this.id, this.zab.epoch);
      // A new leader gives every session a full timeout (as ZooKeeper does on leader start).
      for (const [sid, e] of this.tree.sessions) this.tracker.add(sid, e.timeoutMs, now);
      this.scanContainers();
    }
    for (const s of [...this.local.values()]) {
      if (s.provisional) {
        this.upgradeProvisional(s);
        continue;
      }
      if (!s.created) continue;
      if (!this.tree.sessions.has(s.id)) {
        this.failSession(s, 'SESSIONEXPIRED', 'LOST');
        continue;
      }
      if (s.lostLocally) {
        // We told the user LOST; make it true everywhere.
        this.submit({ sessionId: s.id, cxid: -1, op: { type: 'closeSession', reason: 'expire' }, auth: [] });
        continue;
      }
      if (s.suspendedAt !== undefined) this.resume(s, 'RECONNECTED');
    }
    this.touchLocalSessions(now);
    for (const w of this.servingWaiters) w.resolve();
    this.servingWaiters = [];
  }

  private onNotServing(): void {
    const now = this.clock.now();
    this.tracker.clear();
    this.prep.reset();
    for (const s of this.local.values()) {
      if (s.sink?.remote) {
        // A remote client moves to a member that serves (ZooKeeper closes its connections too).
        this.failSession(s, 'CONNECTIONLOSS', 'SUSPENDED');
        continue;
      }
      for (const d of s.pending.values()) d.reject(new KeeperError('CONNECTIONLOSS', undefined, `member ${this.id} lost its leader; the operation may or may not have been applied`));
      s.pending.clear();
      for (const d of s.syncs.values()) d.reject(new KeeperError('CONNECTIONLOSS'));
      s.syncs.clear();
      if (!s.created) continue;
      if (s.suspendedAt === undefined) {
        s.suspendedAt = now;
        // Like a dropped connection: the member forgets the session's watches; they are re-sent on reconnect.
        this.watches.removeSession(s.id);
        s.sink?._setState(s.readOnly ? 'READ_ONLY' : 'SUSPENDED');
      }
    }
  }

  private enqueuePersist(op: PersistOp): void {
    if (op.kind === 'snapshot') {
      this.installSnapshot(op.snapshot);
    } else if (op.kind === 'truncate' && op.rebuild) {
      this.holdApply++;
    }
    this.persistQueue.push(op);
    if (!this.persisting) void this.runPersist();
  }

  private async runPersist(): Promise<void> {
    this.persisting = true;
    try {
      while (this.persistQueue.length > 0 && !this.fatal) {
        const op = this.persistQueue.shift()!;
        if (op.kind === 'append') {
          // Group commit: every append queued while the previous batch was being made durable goes in one batch.
          let txns = op.txns;
          if (this.persistQueue.length > 0 && this.persistQueue[0]!.kind === 'append') {
            txns = txns.slice();
            while (this.persistQueue.length > 0 && this.persistQueue[0]!.kind === 'append') {
              for (const t of (this.persistQueue.shift() as { txns: Txn[] }).txns) txns.push(t);
            }
          }
          await this.storage.append(txns);
          this.stats.fsyncBatches++;
          this.stats.fsyncTxns += txns.length;
          if (this._stopped) return;
          this.zab.persisted({ kind: 'append', txns: [txns[txns.length - 1]!] });
        } else if (op.kind === 'truncate') {
          await this.storage.truncateAfter(op.zxid);
          if (op.rebuild) {
            await this.rebuildTree(op.zxid);
            this.holdApply--;
            if (this.holdApply === 0) {
              const held = this.heldCommits;
              this.heldCommits = [];
              for (const t of held) this.applyTxn(t);
            }
          }
          if (this._stopped) return;
          this.zab.persisted(op);
        } else if (op.kind === 'snapshot') {
          const s = op.snapshot;
          await this.storage.installSnapshot(
            { zxid: s.zxid, time: s.time, sessions: s.sessions.map(([id, e]) => ({ id, ...e })) },
            chunked(s.nodes, 10_000),
          );
          this.txnsSinceSnapshot = 0;
          if (this._stopped) return;
          this.zab.persisted(op);
        } else {
          const e: { currentEpoch?: number; acceptedEpoch?: number } = {};
          if (op.acceptedEpoch !== undefined) e.acceptedEpoch = op.acceptedEpoch;
          if (op.currentEpoch !== undefined) e.currentEpoch = op.currentEpoch;
          await this.storage.setEpochs(e);
          if (this._stopped) return;
          this.zab.persisted(op);
        }
        this.pump();
      }
    } catch (e) {
      // A failed durable write leaves a gap we cannot reason about (ZOOKEEPER-4882): stop.
      if (!this._stopped) this.die(new Error(`storage failure: ${(e as Error).message}`));
    } finally {
      this.persisting = false;
    }
  }

  private installSnapshot(s: TreeSnapshot): void {
    const tree = new DataTree();
    for (const n of s.nodes) tree.loadRecord(n);
    for (const [id, e] of s.sessions) tree.sessions.set(id, copySessionEntry(e));
    tree.lastZxid = s.zxid;
    this.replaceTree(tree);
  }

  private async rebuildTree(zxid: bigint): Promise<void> {
    const rec = await loadTree(this.storage, this.log, 0, zxid);
    if (rec.lastZxid !== zxid && rec.lastZxid > zxid) throw new Error(`rebuild reached ${formatZxid(rec.lastZxid)}, past ${formatZxid(zxid)}`);
    this.replaceTree(rec.tree);
    this.log.info({ zxid: formatZxid(zxid), nodes: rec.tree.nodeCount }, 'tree rebuilt after TRUNC');
  }

  private replaceTree(tree: DataTree): void {
    this.hooks?.reset?.(this.id, tree.lastZxid);
    tree.watches = this.watches;
    tree.setSystemConfig(this.configText());
    this.tree = tree;
    this.prep = new Preparer(tree);
  }

  private treeSnapshot(): TreeSnapshot {
    const nodes = [...this.tree.records()];
    const sessions: [bigint, SessionEntry][] = [];
    for (const [id, e] of this.tree.sessions) sessions.push([id, copySessionEntry(e)]);
    return { zxid: this.tree.lastZxid, time: this.clock.now(), sessions, nodes };
  }

  // ------------------------------------------------------------------ write path

  /** Leader: prep → propose. `now` is the leader's clock (the caller may have read it already). */
  private proposeLocal(req: Request, now = this.clock.now()): void {
    if (!this.zab.isLeader) {
      this.failPending(req.sessionId, req.cxid, new KeeperError('CONNECTIONLOSS'));
      return;
    }
    // A request duplicated by the network, or resent by a client after a failover (same id), is
    // dropped if it was applied already or prepared in this leadership: the original's commit answers it.
    if (this.prep.isDuplicate(req)) return;
    const zxid = this.zab.allocateZxid();
    const op = this.prep.prepare(req, zxid, now);
    if (op.type === 'closeSession') this.tracker.setClosing(req.sessionId);
    this.zab.propose({ zxid, sessionId: req.sessionId, cxid: req.cxid, time: now, op });
  }

  /** Sends a request on its way: prepared here when leading, forwarded otherwise. */
  private submit(req: Request, now = this.clock.now()): void {
    if (this.zab.isLeader) {
      this.tracker.touch(req.sessionId, now);
      this.proposeLocal(req, now);
    } else if (!this.zab.forward(req)) {
      this.failPending(req.sessionId, req.cxid, new KeeperError('CONNECTIONLOSS', undefined, `member ${this.id} is not connected to a leader`));
    }
    this.pump();
  }

  private failPending(sid: bigint, cxid: number, e: KeeperError): void {
    const s = this.local.get(sid);
    const d = s?.pending.get(cxid);
    if (d) {
      s!.pending.delete(cxid);
      d.reject(e);
    }
  }

  /** Applies one committed txn to the tree, then delivers watch events, then the reply. */
  private applyTxn(txn: Txn): void {
    const s = this.local.get(txn.sessionId);
    // Only a session of this member can be waiting for the result.
    const r = this.tree.apply(txn, s !== undefined);
    this.hooks?.applied?.(this.id, txn);
    this.prep.applied(txn.zxid);
    const op = txn.op;
    if (op.type === 'createSession') {
      if (this.zab.isLeader) this.tracker.add(txn.sessionId, op.timeoutMs, this.clock.now());
    } else if (op.type === 'closeSession') {
      this.tracker.remove(txn.sessionId);
    }
    const notes = this.tree.notifications;
    if (notes.length > 0) {
      for (let i = 0; i < notes.length; i++) this.deliver(notes[i]!);
      notes.length = 0;
    }
    if (s) {
      if (s.retried !== undefined && txn.cxid > 0) {
        const results = (s.results ??= new Map());
        results.set(txn.cxid, r);
        if (results.size > LOCAL_RETRY_WINDOW) results.delete(results.keys().next().value as number);
      }
      if (txn.zxid > s.lastZxid) s.lastZxid = txn.zxid;
      const d = s.pending.get(txn.cxid);
      if (d) {
        s.pending.delete(txn.cxid);
        d.resolve(r);
      }
      if (op.type === 'closeSession') this.endSession(s, op.reason);
    }
    if (this.zab.isLeader && (op.type === 'delete' || op.type === 'multi' || op.type === 'closeSession')) this.noteEmptiedContainers(txn);
    if (++this.txnsSinceSnapshot >= this.snapshotAt) this.maybeSnapshot();
  }

  private deliver(n: Notification): void {
    const s = this.local.get(n.sessionId);
    if (!s || !s.sink) return;
    this.hooks?.delivered?.(this.id, n);
    if (n.zxid > s.lastZxid) s.lastZxid = n.zxid;
    s.sink._notify(n.type, n.path, n.zxid);
  }

  // ------------------------------------------------------------------ containers and TTL

  private noteEmptiedContainers(txn: Txn): void {
    const op = txn.op;
    const paths = op.type === 'delete' ? [op.path] : op.type === 'multi' ? op.ops.filter((o) => o.type === 'delete').map((o) => o.path)
      : op.type === 'closeSession' ? op.deletes.map((d) => d.path) : [];
    for (const p of paths) {
      const parent = p.slice(0, p.lastIndexOf('/')) || '/';
      if (this.tree.containers.has(parent)) this.reapQueue.add(parent);
    }
    if (this.reapQueue.size > 0 && !this.reapScheduled) {
      this.reapScheduled = true;
      queueMicrotask(() => {
        this.reapScheduled = false;
        this.runReaps();
      });
    }
  }

  private scanContainers(): void {
    if (this._stopped || !this.zab?.isLeader) return;
    const now = this.clock.now();
    for (const p of this.tree.containers) {
      const n = this.tree.get(p);
      if (n && n.children.size === 0 && n.stat.cversion > 0) this.reapQueue.add(p);
    }
    for (const p of this.tree.ttls) {
      const n = this.tree.get(p);
      if (n && n.children.size === 0 && now - n.stat.mtime > n.ttl) this.reapQueue.add(p);
    }
    this.runReaps();
  }

  private runReaps(): void {
    if (this._stopped || !this.zab.isLeader) {
      this.reapQueue.clear();
      return;
    }
    for (const p of this.reapQueue) {
      const n = this.tree.get(p);
      if (!n || n.children.size > 0) continue;
      const ttl = n.kind === NodeKind.Ttl;
      this.proposeLocal({ sessionId: 0n, cxid: -2, op: { type: 'reap', path: p, ttl }, auth: [] });
    }
    this.reapQueue.clear();
    this.pump();
  }

  // ------------------------------------------------------------------ snapshots

  private nextSnapshotThreshold(): number {
    // Randomized so that members of one ensemble do not all snapshot at once (ZooKeeper's randRoll).
    const half = Math.max(1, Math.floor(this.snapCount / 2));
    return half + Math.floor(this.random() * half);
  }

  private maybeSnapshot(): void {
    if (this.snapshotting || !this.zab.safeToSnapshot(this.tree.lastZxid)) return;
    this.txnsSinceSnapshot = 0;
    this.snapshotAt = this.nextSnapshotThreshold();
    this.snapshotting = this.snapshot().finally(() => {
      this.snapshotting = undefined;
    });
  }

  /** Takes a fuzzy snapshot now (writes continue meanwhile), then purges old ones. */
  async snapshot(): Promise<void> {
    const t0 = this.clock.now();
    try {
      const header = await takeSnapshot(this.tree, this.storage, this.clock, this.log);
      this.stats.snapshotsTaken++;
      this.stats.lastSnapshotMs = this.clock.now() - t0;
      this.log.info({ zxid: formatZxid(header.zxid), ms: this.stats.lastSnapshotMs }, 'snapshot taken');
      // Without a purge interval, purge after every snapshot; with one, the purge timer does it.
      if ((this.config.autopurge?.purgeIntervalMs ?? 0) <= 0) await this.purge();
    } catch (e) {
      if (!this._stopped) this.log.error({ err: (e as Error).message }, 'snapshot failed');
    }
  }

  /** Keeps the newest snapRetainCount (≥ 3) snapshots and the log they need (autopurge). */
  private async purge(): Promise<void> {
    // Not skipped while stopping: halt() waits for the snapshot (and this purge) before closing storage.
    if (this.purging) return;
    this.purging = true;
    const retain = Math.max(3, this.config.autopurge?.snapRetainCount ?? 3);
    try {
      const r = await this.storage.purge(retain);
      if (r.snapshots > 0 || r.txns > 0) this.log.info({ ...r, retain }, 'purged');
    } catch (e) {
      if (!this._stopped) this.log.error({ err: (e as Error).message }, 'purge failed');
    } finally {
      this.purging = false;
    }
  }

  // ------------------------------------------------------------------ sessions

  /** A new session served by this member. Waits (up to connectTimeoutMs) for the member to serve. */
  async session(options: SessionOptions = {}): Promise<Session> {
    return this.openSession(options, LOCAL_ORIGIN, []);
  }

  /** @internal a local session with extra identities (origin = where it comes from, for the per-origin limit). */
  async openSession(options: SessionOptions, origin: string, baseAuth: AuthId[], backend?: SessionBackend): Promise<Session> {
    const s = await this.newSession(options, origin, baseAuth);
    const session = new Session(s.id, s.timeoutMs, backend ?? this.localBackend, options.retry);
    s.sink = session;
    if (s.provisional) session._setState('READ_ONLY');
    else if (s.suspendedAt !== undefined) session._setState(s.readOnly ? 'READ_ONLY' : 'SUSPENDED');
    for (const a of options.auth ?? []) await session.addAuth(a.scheme, a.credentials);
    return session;
  }

  /** Creates a session through a replicated createSession txn; it counts against its origin's limit from the start. */
  private async newSession(options: SessionOptions, origin: string, baseAuth: AuthId[]): Promise<LocalSession> {
    if (this._stopped) throw new KeeperError('CONNECTIONLOSS', undefined, 'the member is stopped');
    const requested = options.sessionTimeoutMs ?? DEFAULTS.sessionTimeoutMs;
    if (typeof requested !== 'number' || !Number.isFinite(requested) || requested <= 0) {
      throw new KeeperError('BADARGUMENTS', undefined, 'sessionTimeoutMs must be a positive number');
    }
    const timeoutMs = Math.round(Math.min(this.maxSessionTimeoutMs, Math.max(this.minSessionTimeoutMs, requested)));
    this.checkOriginLimit(origin);
    const readOnly = options.canBeReadOnly === true;
    const waitMs = options.connectTimeoutMs ?? timeoutMs;
    if (readOnly && !this.zab.serving) {
      // Wait as long as a follower waits for a silent leader (syncLimit ticks), then settle for a
      // read-only session on this member's tree rather than no session at all.
      try {
        await this.ready(Math.min(waitMs, this.tickMs * (this.config.syncLimit ?? DEFAULTS.syncLimit)));
      } catch (e) {
        if (this._stopped) throw e;
        this.checkOriginLimit(origin);
        const s = this.localSession(this.sessionBase + ++this.sessionSeq, timeoutMs, origin, baseAuth, true);
        s.provisional = true;
        this.local.set(s.id, s);
        this.log.info({ session: formatZxid(s.id) }, 'read-only session opened (no quorum); created in the ensemble once there is one');
        return s;
      }
    }
    await this.ready(waitMs);
    // Again: sessions from the same origin may have been opened while this one waited.
    this.checkOriginLimit(origin);
    const sid = this.sessionBase + ++this.sessionSeq;
    const s = this.localSession(sid, timeoutMs, origin, baseAuth, readOnly);
    this.local.set(sid, s);
    const d = deferred<ApplyResult>();
    s.pending.set(0, d);
    this.submit({ sessionId: sid, cxid: 0, op: { type: 'createSession', timeoutMs, origin }, auth: [] });
    try {
      const r = await d.promise;
      if (!r.ok) throw new KeeperError(r.code);
    } catch (e) {
      this.local.delete(sid);
      throw e;
    }
    s.created = true;
    return s;
  }

  private localSession(id: bigint, timeoutMs: number, origin: string, baseAuth: AuthId[], readOnly: boolean): LocalSession {
    return {
      id, timeoutMs, origin, auth: [{ scheme: 'ip', id: origin === LOCAL_ORIGIN ? '127.0.0.1' : origin }, ...baseAuth],
      sink: undefined, pending: new Map(), cxid: 0, lastZxid: 0n, lastTouch: this.clock.now(), suspendedAt: undefined,
      closing: false, lostLocally: false, created: false, syncs: new Map(), readOnly, provisional: false,
    };
  }

  /** The member serves again for session `s`: re-registers its watches relative to what it saw, then `state`. */
  private resume(s: LocalSession, state: 'CONNECTED' | 'RECONNECTED'): void {
    s.suspendedAt = undefined;
    s.lastTouch = -Infinity;
    const set = s.sink?._watchSet();
    if (set) this.setWatches(s, set);
    s.sink?._setState(state);
  }

  /**
   * A read-only session opened without a quorum becomes a session of the ensemble (same id) once
   * the member serves: CONNECTED, its watches registered relative to what it has seen. The
   * createSession's answer is handled where it is applied (synchronously, before anything else of
   * that round, such as the member losing its quorum again). If it cannot be committed, the
   * session stays read-only and is tried again the next time the member serves.
   */
  private upgradeProvisional(s: LocalSession): void {
    if (s.pending.has(0)) return; // its createSession is in flight
    const created = (): void => {
      s.provisional = false;
      s.created = true;
      if (this.zab.serving) this.resume(s, 'CONNECTED');
      else s.suspendedAt = this.clock.now(); // READ_ONLY still; RECONNECTED when the member serves
    };
    // An earlier attempt whose answer was lost with the quorum may have been committed after all.
    if (this.tree.sessions.has(s.id)) return created();
    s.pending.set(0, {
      resolve: (r) => {
        if (!r.ok) return this.failSession(s, 'SESSIONEXPIRED', 'LOST');
        created();
        // Closed by the caller while this was in flight: end it in the ensemble too.
        if (s.closing) this.submit({ sessionId: s.id, cxid: ++s.cxid, op: { type: 'closeSession', reason: 'close' }, auth: [] });
      },
      // The member stopped serving first: still read-only (or, if closed meanwhile, gone here; a
      // createSession committed after all then expires after its timeout).
      reject: () => {
        if (s.closing) this.local.delete(s.id);
      },
    });
    this.submit({ sessionId: s.id, cxid: 0, op: { type: 'createSession', timeoutMs: s.timeoutMs, origin: s.origin }, auth: [] });
  }

  /** maxSessionsPerOrigin (ZooKeeper's maxClientCnxns): local sessions count as 'local', remote ones by client address. */
  private checkOriginLimit(origin: string): void {
    let count = 0;
    for (const s of this.local.values()) if (s.origin === origin) count++;
    if (count >= this.maxSessionsPerOrigin) {
      throw new KeeperError('CONNECTIONLOSS', undefined, `too many sessions from ${origin} (${count}; maxSessionsPerOrigin=${this.maxSessionsPerOrigin}); close some or raise the limit`);
    }
  }

  private endSession(s: LocalSession, reason: 'close' | 'expire'): void {
    this.failSession(s, 'SESSIONEXPIRED', reason === 'close' && s.closing ? 'CLOSED' : 'LOST');
  }

  private failSession(s: LocalSession, code: 'SESSIONEXPIRED' | 'CONNECTIONLOSS', state: SessionState): void {
    this.local.delete(s.id);
    this.watches.removeSession(s.id);
    for (const d of s.pending.values()) d.reject(new KeeperError(code));
    s.pending.clear();
    for (const d of s.syncs.values()) d.reject(new KeeperError(code));
    s.syncs.clear();
    s.sink?._setState(state, code);
  }

  private touchLocalSessions(now: number): void {
    const leader = this.zab.isLeader;
    const serving = this.zab.serving;
    for (const s of [...this.local.values()]) {
      // Remote sessions are touched when their client is heard from (touchRemote), not on a timer.
      if (!s.created || s.sink?.remote) continue;
      if (s.suspendedAt !== undefined) {
        if (now - s.suspendedAt >= s.timeoutMs && !s.lostLocally) {
          // The ensemble may have expired us by now; stop pretending (Curator's LOST after the session timeout).
          s.lostLocally = true;
          this.watches.removeSession(s.id);
          for (const d of s.pending.values()) d.reject(new KeeperError('SESSIONEXPIRED'));
          s.pending.clear();
          s.sink?._setState('LOST');
        }
        continue;
      }
      if (!serving || now - s.lastTouch < s.timeoutMs / 3) continue;
      s.lastTouch = now;
      if (leader) this.tracker.touch(s.id, now);
      else this.zab.touch(s.id, s.timeoutMs);
    }
  }

  private resolveSync(id: number): void {
    for (const s of this.local.values()) {
      const d = s.syncs.get(id);
      if (d) {
        s.syncs.delete(id);
        d.resolve();
        return;
      }
    }
  }

  /** Re-registers a session's watches and fires what changed since it last saw the tree (SetWatches). */
  private setWatches(s: LocalSession, set: WatchSet): void {
    const rel = s.lastZxid;
    const fire: [import('../core/watches.js').WatchEventType, string][] = [];
    for (const p of set.data) {
      const n = this.tree.get(p);
      if (!n) fire.push(['NodeDeleted', p]);
      else if (n.stat.mzxid > rel) fire.push(['NodeDataChanged', p]);
      else this.watches.add('data', p, s.id);
    }
    for (const p of set.exist) {
      if (this.tree.get(p)) fire.push(['NodeCreated', p]);
      else this.watches.add('data', p, s.id);
    }
    for (const p of set.child) {
      const n = this.tree.get(p);
      if (!n) fire.push(['NodeDeleted', p]);
      else if (n.stat.pzxid > rel) fire.push(['NodeChildrenChanged', p]);
      else this.watches.add('child', p, s.id);
    }
    for (const p of set.persistent) this.watches.add('persistent', p, s.id);
    for (const p of set.recursive) this.watches.add('recursive', p, s.id);
    if (this.tree.lastZxid > s.lastZxid) s.lastZxid = this.tree.lastZxid;
    for (const [type, path] of fire) s.sink?._notify(type, path);
  }

  /** Expires a session now, as the leader's tracker would (tests, admin). */
  async expireSession(sessionId: bigint): Promise<void> {
    if (!this.zab.isLeader) throw new KeeperError('BADARGUMENTS', undefined, 'only the leader expires sessions; call this on the leader');
    this.tracker.setClosing(sessionId);
    this.proposeLocal({ sessionId, cxid: -1, op: { type: 'closeSession', reason: 'expire' }, auth: [] });
    this.pump();
  }

  // ------------------------------------------------------------------ local backend

  private sessionFor(sid: bigint, read = false): LocalSession {
    const s = this.local.get(sid);
    if (!s || s.lostLocally) throw new KeeperError('SESSIONEXPIRED');
    if (s.provisional || !this.zab.serving || s.suspendedAt !== undefined) {
      // READ_ONLY (canBeReadOnly; provisional sessions are read-only): reads from this member's
      // tree, which may be stale; no writes.
      if (s.readOnly) {
        if (read) return s;
        throw new KeeperError('NOTREADONLY', undefined, `member ${this.id} has no quorum (state ${this.state}): the session is read-only until it is CONNECTED / RECONNECTED again`);
      }
      throw new KeeperError('CONNECTIONLOSS', undefined, `member ${this.id} is not serving (state ${this.state}); retry when RECONNECTED`);
    }
    return s;
  }

  private noteRead(s: LocalSession, started: number): void {
    if (this.tree.lastZxid > s.lastZxid) s.lastZxid = this.tree.lastZxid;
    this.stats.requests++;
    void started;
  }

  /** @internal the write entry point for local and remote sessions. */
  writeFor(sid: bigint, op: RequestOp, writeId?: number): Promise<ApplyResult> {
    try {
      validateRequestOp(op, this.maxDataBytes);
      const s = this.sessionFor(sid);
      if (op.type === 'createSession' || op.type === 'closeSession' || op.type === 'reap') {
        throw new KeeperError('BADARGUMENTS', undefined, `${op.type} is not a client request`);
      }
      let cxid: number;
      const earlier = writeId === undefined ? undefined : s.retried?.get(writeId);
      if (earlier !== undefined) {
        // A retry of a write submitted before: applied meanwhile → its result; in flight → wait for
        // it; lost (never committed) → submit again under the same id (the leader drops duplicates).
        const done = s.results?.get(earlier);
        if (done) return Promise.resolve(done);
        const inFlight = s.pending.get(earlier);
        if (inFlight) {
          const again = deferred<ApplyResult>();
          s.pending.set(earlier, {
            resolve: (r) => {
              inFlight.resolve(r);
              again.resolve(r);
            },
            reject: (e) => {
              inFlight.reject(e);
              again.reject(e);
            },
          });
          return again.promise;
        }
        const applied = this.tree.sessions.get(sid)?.lastCxid ?? 0;
        if (earlier > applied) {
          cxid = earlier;
        } else {
          // A later write of this session was applied and this one was not (its result would be
          // kept): writes commit in order, so this one can never commit any more — submit it anew.
          const results = s.results;
          let oldest = Infinity;
          if (results) for (const k of results.keys()) if (k < oldest) oldest = k;
          if (!results || (results.size >= LOCAL_RETRY_WINDOW && earlier < oldest)) {
            throw new KeeperError('CONNECTIONLOSS', undefined, 'the write may have been applied and its result is no longer kept; read to see its effect');
          }
          cxid = ++s.cxid;
          s.retried!.set(writeId!, cxid);
        }
      } else {
        cxid = ++s.cxid;
        if (writeId !== undefined) {
          const m = (s.retried ??= new Map());
          m.set(writeId, cxid);
          if (m.size > LOCAL_RETRY_WINDOW) m.delete(m.keys().next().value as number);
        }
      }
      const t0 = this.clock.now();
      // One promise per write: the reply notes the latency itself (no .then on this path).
      const promise = new Promise<ApplyResult>((resolve, reject) => {
        s.pending.set(cxid, {
          resolve: (r) => {
            this.noteLatency(t0);
            resolve(r);
          },
          reject,
        });
      });
      this.stats.requests++;
      this.submit({ sessionId: sid, cxid, op, auth: s.auth }, t0);
      return promise;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** @internal */
  readGetData(sid: bigint, path: string, watch: boolean): { data: Uint8Array; stat: Stat } {
    validatePath(path);
    const s = this.sessionFor(sid, true);
    const n = this.tree.get(path);
    if (!n) throw new KeeperError('NONODE', path);
    checkACL(n.acl, Perms.READ, s.auth, path);
    if (watch) this.watches.add('data', path, sid);
    this.noteRead(s, 0);
    // A real copy (callers may mutate what they get), from Node's buffer pool: allocating a fresh
    // backing store per read costs ~10× more than the read itself.
    const data = Buffer.allocUnsafe(n.data.length);
    data.set(n.data);
    return { data, stat: copyStat(n.stat) };
  }

  /** @internal */
  readExists(sid: bigint, path: string, watch: boolean): Stat | null {
    validatePath(path);
    const s = this.sessionFor(sid, true);
    const n = this.tree.get(path);
    if (watch) this.watches.add('data', path, sid);
    this.noteRead(s, 0);
    return n ? copyStat(n.stat) : null;
  }

  /** @internal */
  readGetChildren(sid: bigint, path: string, watch: boolean): { children: string[]; stat: Stat } {
    validatePath(path);
    const s = this.sessionFor(sid, true);
    const n = this.tree.get(path);
    if (!n) throw new KeeperError('NONODE', path);
    checkACL(n.acl, Perms.READ, s.auth, path);
    if (watch) this.watches.add('child', path, sid);
    this.noteRead(s, 0);
    return { children: this.tree.sortedChildren(n).slice(), stat: copyStat(n.stat) };
  }

  /** @internal */
  readGetACL(sid: bigint, path: string): { acl: ACL[]; stat: Stat } {
    validatePath(path);
    const s = this.sessionFor(sid, true);
    const n = this.tree.get(path);
    if (!n) throw new KeeperError('NONODE', path);
    checkACL(n.acl, Perms.READ | Perms.ADMIN, s.auth, path);
    let admin = true;
    try {
      checkACL(n.acl, Perms.ADMIN, s.auth, path);
    } catch {
      admin = false;
    }
    this.noteRead(s, 0);
    // Without ADMIN, digest hashes are not shown: 'user:hash' becomes 'user:x' (ZOOKEEPER-1392, FinalRequestProcessor).
    const acl = n.acl.map((a) => ({ perms: a.perms, scheme: a.scheme, id: !admin && a.scheme === 'digest' ? a.id.replace(/:.*$/s, ':x') : a.id }));
    return { acl, stat: copyStat(n.stat) };
  }

  private makeLocalBackend(): SessionBackend {
    return {
      write: (sid, op, writeId) => this.writeFor(sid, op, writeId),
      getData: (sid, path, watch) => this.readGetData(sid, path, watch),
      exists: (sid, path, watch) => this.readExists(sid, path, watch),
      getChildren: (sid, path, watch) => this.readGetChildren(sid, path, watch),
      getACL: (sid, path) => this.readGetACL(sid, path),
      getAllChildrenNumber: (sid, path) => this.readAllChildrenNumber(sid, path),
      getEphemerals: (sid, prefix) => this.readEphemerals(sid, prefix),
      sync: (sid) => this.syncFor(sid),
      addAuth: (sid, scheme, credentials) => this.addAuthFor(sid, scheme, credentials),
      addWatch: (sid, path, recursive) => this.addWatchFor(sid, path, recursive),
      removeWatch: (sid, kind, path) => {
        this.watches.remove(kind, path, sid);
      },
      close: (sid) => this.closeFor(sid),
    };
  }

  /** @internal */
  readAllChildrenNumber(sid: bigint, path: string): number {
    validatePath(path);
    const s = this.sessionFor(sid, true);
    const n = this.tree.get(path);
    if (!n) throw new KeeperError('NONODE', path);
    checkACL(n.acl, Perms.READ, s.auth, path);
    this.noteRead(s, 0);
    return this.tree.countDescendants(path);
  }

  /** @internal */
  readEphemerals(sid: bigint, prefix: string): string[] {
    const s = this.sessionFor(sid, true);
    this.noteRead(s, 0);
    const set = this.tree.ephemerals.get(sid);
    if (!set) return [];
    return [...set].filter((p) => p.startsWith(prefix)).sort();
  }

  /** @internal */
  syncFor(sid: bigint): Promise<void> {
    try {
      const s = this.sessionFor(sid);
      const id = nextSyncId++;
      const d = deferred<void>();
      s.syncs.set(id, d);
      if (!this.zab.sync(id)) {
        s.syncs.delete(id);
        throw new KeeperError('CONNECTIONLOSS');
      }
      this.pump();
      return d.promise;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** @internal */
  addAuthFor(sid: bigint, scheme: string, credentials: string): void {
    const s = this.sessionFor(sid, true);
    if (typeof scheme !== 'string' || typeof credentials !== 'string') throw new KeeperError('BADARGUMENTS', undefined, 'scheme and credentials must be strings');
    if (scheme !== 'digest') {
      throw new KeeperError('AUTHFAILED', undefined, `unsupported auth scheme '${scheme}' (use 'digest' with 'user:password'; ip is implicit)`);
    }
    const i = credentials.indexOf(':');
    if (i <= 0) throw new KeeperError('AUTHFAILED', undefined, "digest credentials must be 'user:password'");
    const id = digest(credentials.slice(0, i), credentials.slice(i + 1));
    if (!s.auth.some((a) => a.scheme === 'digest' && a.id === id)) s.auth.push({ scheme: 'digest', id });
    if (this.config.superDigest && id === this.config.superDigest && !s.auth.some((a) => a.scheme === 'super')) {
      s.auth.push({ scheme: 'super', id: credentials.slice(0, i) });
    }
  }

  /** @internal */
  addWatchFor(sid: bigint, path: string, recursive: boolean): void {
    validatePath(path);
    this.sessionFor(sid, true);
    this.watches.add(recursive ? 'recursive' : 'persistent', path, sid);
  }

  /** @internal */
  async closeFor(sid: bigint): Promise<void> {
    const s = this.local.get(sid);
    if (!s) return;
    if (s.provisional && s.pending.has(0)) {
      // Its createSession is in flight: closed for the caller now, ended in the ensemble once it is there.
      s.closing = true;
      s.sink?._setState('CLOSED', 'SESSIONEXPIRED');
      return;
    }
    if (s.lostLocally || !this.zab.serving || s.provisional) {
      // Cannot reach the ensemble (or the session never reached it): it will expire there; locally it is over.
      s.lostLocally = true;
      this.failSession(s, 'SESSIONEXPIRED', 'CLOSED');
      return;
    }
    s.closing = true;
    const d = deferred<ApplyResult>();
    const cxid = ++s.cxid;
    s.pending.set(cxid, d);
    this.submit({ sessionId: sid, cxid, op: { type: 'closeSession', reason: 'close' }, auth: [] });
    try {
      await d.promise;
    } catch (e) {
      if (e instanceof KeeperError && e.code === 'SESSIONEXPIRED') return;
      throw e;
    }
  }

  // ------------------------------------------------------------------ remote sessions

  /**
   * Serves a client connection: remote sessions (src/api/remote). Hand it every connection
   * tcpTransport's `onClient` receives, e.g.
   * `let m; tcpTransport({ listen, secret, onClient: (c) => m ? m.acceptClient(c) : c.close() })`.
   */
  acceptClient(conn: RemoteClientLink): void {
    if (this._stopped) {
      conn.close();
      return;
    }
    (this.remoteServer ??= new RemoteSessionServer(this)).accept(conn);
  }

  /**
   * @internal how long a member without a quorum waits for one before it serves a session
   * read-only (canBeReadOnly): as long as a follower waits for a silent leader, `syncLimit` ticks,
   * so that an election does not turn sessions read-only for the few ms it takes.
   */
  get readOnlyGraceMs(): number {
    return this.tickMs * (this.config.syncLimit ?? DEFAULTS.syncLimit);
  }

  /**
   * @internal a new remote session: created like a local one, its events and state go to `sink`.
   * With `readOnly` (the client's canBeReadOnly) a member without a quorum waits `syncLimit` ticks
   * for one, then opens the session read-only on its own tree (`readOnly` in the answer); it is
   * created in the ensemble once the member has a quorum again.
   */
  async createRemoteSession(requestedTimeoutMs: number, origin: string, sink: SessionSink, readOnly = false): Promise<{ id: bigint; timeoutMs: number; readOnly: boolean }> {
    const waitMs = readOnly ? this.readOnlyGraceMs : 0;
    const s = await this.newSession({ sessionTimeoutMs: requestedTimeoutMs, connectTimeoutMs: waitMs, canBeReadOnly: readOnly }, origin, []);
    s.sink = sink;
    if (s.provisional) return { id: s.id, timeoutMs: s.timeoutMs, readOnly: true };
    if (s.suspendedAt !== undefined || !this.serving) {
      this.failSession(s, 'CONNECTIONLOSS', 'SUSPENDED');
      throw new KeeperError('CONNECTIONLOSS', undefined, `member ${this.id} stopped serving`);
    }
    this.touchRemote(s.id);
    return { id: s.id, timeoutMs: s.timeoutMs, readOnly: false };
  }

  /**
   * @internal re-attaches an existing session to a remote client (after its member was lost or
   * its connection dropped). The caller checked the session password; `lastZxid` is the newest
   * state the client saw, which this member's tree must not be behind (ZooKeeper's rule). With
   * `readOnly` (canBeReadOnly), a member without a quorum attaches a session its tree knows
   * read-only (`readOnly` in the answer) and ends the connection once it has a quorum again, so
   * that the client re-attaches as a full session.
   */
  attachRemoteSession(sid: bigint, origin: string, lastZxid: bigint, sink: SessionSink, readOnly = false): { timeoutMs: number; readOnly: boolean } {
    const serving = this.serving;
    if (!serving && !readOnly) throw new KeeperError('CONNECTIONLOSS', undefined, `member ${this.id} is not serving (state ${this.state})`);
    if (this.tree.lastZxid < lastZxid) {
      throw new KeeperError('CONNECTIONLOSS', undefined, `member ${this.id} is behind the client (at ${formatZxid(this.tree.lastZxid)}, client saw ${formatZxid(lastZxid)}); try another member`);
    }
    const e = this.tree.sessions.get(sid);
    if (!e) throw new KeeperError('SESSIONEXPIRED');
    const old = this.local.get(sid);
    if (old) {
      if (!old.sink?.remote) throw new KeeperError('SESSIONMOVED', undefined, 'a session of this member\'s own process cannot be attached remotely');
      // The client's previous connection here is dead (it would not reconnect otherwise).
      this.failSession(old, 'CONNECTIONLOSS', 'SUSPENDED');
    }
    this.checkOriginLimit(origin);
    const s: LocalSession = {
      id: sid, timeoutMs: e.timeoutMs, origin, auth: [{ scheme: 'ip', id: origin }],
      sink, pending: new Map(), cxid: 0, lastZxid, lastTouch: this.clock.now(), suspendedAt: serving ? undefined : this.clock.now(),
      closing: false, lostLocally: false, created: true, syncs: new Map(), readOnly, provisional: false,
    };
    this.local.set(sid, s);
    this.touchRemote(sid);
    return { timeoutMs: e.timeoutMs, readOnly: !serving };
  }

  /** @internal re-registers a remote session's watches relative to what it saw last (SetWatches). */
  setWatchesFor(sid: bigint, set: WatchSet): void {
    this.setWatches(this.sessionFor(sid, true), set);
  }

  /** @internal the client of a remote session is gone from this member: forget the session here (it expires unless the client re-attaches). */
  detachRemoteSession(sid: bigint, sink: SessionSink): void {
    const s = this.local.get(sid);
    if (s && s.sink === sink) this.failSession(s, 'CONNECTIONLOSS', 'SUSPENDED');
  }

  /** @internal a remote session's client was heard from: it is alive (relayed to the leader like local sessions' heartbeats). */
  touchRemote(sid: bigint): void {
    const s = this.local.get(sid);
    if (!s || !this.serving) return;
    s.lastTouch = this.clock.now();
    if (this.zab.isLeader) this.tracker.touch(sid, s.lastTouch);
    else this.zab.touch(sid, s.timeoutMs);
  }

  /**
   * @internal a remote session's write, with the client's request id. Ids increase per session;
   * a resent request that this member's tree shows applied is answered from the session's
   * recorded results; one not applied here yet is submitted again (the leader drops it if it was
   * applied or prepared already, and the original's commit answers it here).
   */
  remoteWriteFor(sid: bigint, cxid: number, op: RequestOp, reply: Reply<ApplyResult>): void {
    validateRequestOp(op, this.maxDataBytes);
    const s = this.sessionFor(sid);
    if (op.type === 'createSession' || op.type === 'closeSession' || op.type === 'reap') {
      throw new KeeperError('BADARGUMENTS', undefined, `${op.type} is not a client request`);
    }
    this.takeRemoteCxid(s, cxid);
    const e = this.tree.sessions.get(sid);
    if (e?.lastCxid !== undefined && cxid <= e.lastCxid) {
      const hit = e.replies?.find((x) => x.cxid === cxid);
      if (!hit) {
        throw new KeeperError('BADARGUMENTS', undefined, `request ${cxid} was applied already and its result is no longer kept (a client keeps at most ${SESSION_REPLIES} writes outstanding)`);
      }
      reply.resolve(hit.result);
      return;
    }
    if (s.pending.size >= SESSION_REPLIES) {
      throw new KeeperError('BADARGUMENTS', undefined, `more than ${SESSION_REPLIES} writes outstanding on one session`);
    }
    const t0 = this.clock.now();
    s.pending.set(cxid, {
      resolve: (r) => {
        this.noteLatency(t0);
        reply.resolve(r);
      },
      reject: (e) => reply.reject(e),
    });
    this.stats.requests++;
    this.submit({ sessionId: sid, cxid, op, auth: s.auth });
  }

  /** Records one write's latency for the admin figures. */
  private noteLatency(t0: number): void {
    const dt = this.clock.now() - t0;
    const st = this.stats;
    st.latencyCount++;
    st.latencyTotal += dt;
    if (dt < st.latencyMin) st.latencyMin = dt;
    if (dt > st.latencyMax) st.latencyMax = dt;
  }

  /** @internal a remote client closes its session (request id `cxid`); answered once the closeSession txn applied. */
  remoteCloseFor(sid: bigint, cxid: number, reply: Reply<ApplyResult>): void {
    const s = this.sessionFor(sid, true);
    this.takeRemoteCxid(s, cxid);
    if (s.provisional || !this.zab.serving || s.suspendedAt !== undefined) {
      // Read-only (sessionFor let it through): the ensemble cannot be told now, or never knew the
      // session; closed for the client, it expires in the ensemble after its timeout.
      reply.resolve({ ok: true, op: 'closeSession' });
      this.failSession(s, 'SESSIONEXPIRED', 'CLOSED');
      return;
    }
    s.closing = true;
    s.pending.set(cxid, reply);
    this.submit({ sessionId: sid, cxid, op: { type: 'closeSession', reason: 'close' }, auth: [] });
  }

  private takeRemoteCxid(s: LocalSession, cxid: number): void {
    if (!Number.isSafeInteger(cxid) || cxid <= s.cxid) {
      throw new KeeperError('BADARGUMENTS', undefined, `request id ${String(cxid)} does not increase (last ${s.cxid})`);
    }
    s.cxid = cxid;
  }

  /** @internal */
  removeWatchFor(sid: bigint, kind: WatchKind, path: string): void {
    validatePath(path);
    this.sessionFor(sid, true);
    this.watches.remove(kind, path, sid);
  }

  // ------------------------------------------------------------------ admin

  /** Four-letter-word equivalents, as typed objects. */
  admin(command: AdminCommand): Promise<Record<string, unknown>> {
    const allowed = this.config.adminCommands ?? '*';
    if (allowed !== '*' && !allowed.includes(command)) {
      return Promise.reject(new KeeperError('NOAUTH', undefined, `admin command '${command}' is not in adminCommands`));
    }
    try {
      return Promise.resolve(runAdmin(this, command));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** @internal for admin. */
  localSessionsReport(): { id: bigint; timeoutMs: number; origin: string; pending: number; lastZxid: bigint; state: string }[] {
    return [...this.local.values()].map((s) => ({
      id: s.id, timeoutMs: s.timeoutMs, origin: s.origin, pending: s.pending.size, lastZxid: s.lastZxid,
      state: s.sink?.state ?? 'CONNECTING',
    }));
  }

  /** @internal for admin. */
  resetStats(): void {
    const st = this.stats;
    st.packetsReceived = 0;
    st.packetsSent = 0;
    st.requests = 0;
    st.latencyMin = Infinity;
    st.latencyMax = 0;
    st.latencyTotal = 0;
    st.latencyCount = 0;
  }

  /** @internal */
  get outstandingRequests(): number {
    let n = 0;
    for (const s of this.local.values()) n += s.pending.size;
    return n;
  }

  /** @internal */
  get trackedSessions(): number {
    return this.tracker.size;
  }
}

/**
 * More than one member, no transport given: TCP on this member's ensemble address, authenticated
 * with `secret` (what `conclave member --config` and most embedders want); client connections on
 * that address become remote sessions (connect()).
 */
function autoTcpTransport(id: number, ens: ReadonlyMap<number, { address: string }>, secret: string | Uint8Array | undefined, onClient: (c: ClientConnection) => void): Transport {
  if (secret === undefined || secret.length === 0) {
    throw new KeeperError('BADARGUMENTS', undefined, `an ensemble of ${ens.size} members needs a transport: set \`secret\` (the same on every member) to use TCP on the ensemble addresses, or pass memoryNetwork().transport(id), tcpTransport(...) or libp2pTransport(...)`);
  }
  const listen = ens.get(id)!.address;
  try {
    parseHostPort(listen);
  } catch {
    throw new KeeperError('BADARGUMENTS', undefined, `member ${id}'s ensemble address '${listen}' is not 'host:port' (needed for the automatic TCP transport; IPv6 as '[::1]:2888')`);
  }
  return tcpTransport({ listen, secret, onClient });
}

/** A transport that cannot start, said in one line with what to fix (SPEC §7). */
function startupError(id: number, e: unknown): Error {
  const msg = e instanceof Error ? e.message : String(e);
  const inUse = /EADDRINUSE/.exec(msg);
  if (!inUse) return e instanceof Error ? e : new Error(msg);
  const addr = /address already in use (\S+)/.exec(msg)?.[1] ?? /listen on (\S+?):? /.exec(msg)?.[1] ?? 'its address';
  return new Error(`member ${id} cannot listen on ${addr}: the address is already in use (another member or program is listening there); stop it or give member ${id} another address`, { cause: e });
}

function* chunked<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/** Starts a member in this process (see MemberConfig); resolves once it recovered and started electing. */
export async function startMember(config: MemberConfig): Promise<Member> {
  const m = new Member(config);
  try {
    await m.start();
  } catch (e) {
    await m.halt().catch(() => undefined);
    throw e;
  }
  if (m.ensemble.size === 1) await m.ready(10_000);
  return m;
}
