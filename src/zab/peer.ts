import type { Request } from '../core/request.js';
import type { SessionEntry, SnapshotNode } from '../core/tree.js';
import type { Txn } from '../core/txn.js';
import { counterOf, epochOf, formatZxid, makeZxid } from '../core/zxid.js';
import {
  isValidZabMessage, type AckEpochMsg, type PeerState, type Sequenced, type VoteMsg, type ZabMessage,
} from './messages.js';
import { QuorumVerifier } from './quorum.js';

/** Static configuration of one ZAB participant. */
export interface ZabConfig {
  id: number;
  voters: readonly number[];
  observers: readonly number[];
  /** Ticks a learner may take to connect and sync (ZooKeeper's initLimit). */
  initLimit: number;
  /** Ticks a member may stay silent before it is dropped / the leader is abandoned (syncLimit). */
  syncLimit: number;
  /** Ticks to wait for more votes once a quorum agrees but not every voter answered (finalizeWait). */
  finalizeWaitTicks?: number;
  /** Txns kept in memory for DIFF sync; a learner further behind gets a SNAP. */
  logWindow?: number;
  /** Txns per DIFF message and nodes per snapshot chunk. */
  chunkSize?: number;
  /** Random base for connection ids, so that a restarted learner never reuses one (the member supplies it). */
  connectionNonce?: number;
}

/** What the member recovered from storage, handed to the peer at start. */
export interface ZabInit {
  currentEpoch: number;
  acceptedEpoch: number;
  /** Last logged zxid (all of it is applied to the tree at start, as ZooKeeper does). */
  lastZxid: bigint;
  /** zxid the tree's confirmed-committed base starts at (the snapshot's). */
  baseZxid: bigint;
  /** The most recent logged txns, in order, the last of them at `lastZxid` (bounded by logWindow). */
  recentLog: Txn[];
  /**
   * The zxid `recentLog` follows (`lastZxid` when it is empty): the log holds nothing between it
   * and `recentLog[0]`, so a follower at or after it can be sent a DIFF.
   */
  recentFrom: bigint;
}

/** A whole tree for SNAP sync, taken synchronously from the applied state. */
export interface TreeSnapshot {
  zxid: bigint;
  time: number;
  sessions: [bigint, SessionEntry][];
  nodes: SnapshotNode[];
}

/** Callbacks into the member; synchronous and deterministic. */
export interface ZabHost {
  /** The applied tree as it is now (the leader sends it to a learner too far behind). */
  snapshot(): TreeSnapshot;
}

/** Durable effects, executed by the member in order; each is reported back with `persisted(op)`. */
export type PersistOp =
  | { kind: 'append'; txns: Txn[] }
  | { kind: 'truncate'; zxid: bigint; rebuild: boolean }
  | { kind: 'snapshot'; snapshot: TreeSnapshot }
  | { kind: 'epochs'; acceptedEpoch?: number; currentEpoch?: number };

export type ZabEvent =
  | { type: 'state'; state: PeerState; leader: number | undefined; epoch: number }
  | { type: 'serving'; serving: boolean }
  | { type: 'warn'; message: string; detail?: Record<string, unknown> }
  | { type: 'info'; message: string; detail?: Record<string, unknown> };

/** Everything one input produced, for the member to carry out. */
export interface Ready {
  /** Messages to send now (everything that depends on durability is only produced after `persisted`). */
  messages: [number, ZabMessage][];
  /** Durable effects, in order. */
  persist: PersistOp[];
  /** Committed txns to apply, in zxid order (after the persist ops before them that rebuild the tree). */
  commits: Txn[];
  /** Leader: writes forwarded by learners, to prepare and propose. */
  requests: Request[];
  /** Local `sync` calls now complete (their ids). */
  syncDone: number[];
  /** Leader: sessions learners reported alive, with their timeouts. */
  touches: [bigint, number][];
  events: ZabEvent[];
}

interface Vote {
  leader: number;
  zxid: bigint;
  peerEpoch: number;
}

interface LearnerHandle {
  id: number;
  observer: boolean;
  /** The learner's connection id and the sequence numbers of both directions. */
  conn: number;
  sendSeq: number;
  recvSeq: number;
  /** info: FOLLOWERINFO seen; acked: ACKEPOCH seen; syncing: sync sent; synced: NEWLEADER acked. */
  phase: 'info' | 'acked' | 'syncing' | 'synced';
  lastHeard: number;
  /** Tick the learner connected; it must be synced within initLimit ticks of it. */
  startedTick: number;
  acked: bigint;
  /** Highest ping sequence this learner echoed (leadership confirmation for sync). */
  pingSeq: number;
  ackEpoch?: AckEpochMsg;
  uptodateSent: boolean;
}

interface LeaderState {
  epoch: number;
  /** discovery → sync (epoch acked by a quorum) → broadcast (NEWLEADER acked by a quorum). */
  phase: 'discovery' | 'sync' | 'broadcast';
  startedTick: number;
  connecting: Map<number, number>;
  learners: Map<number, LearnerHandle>;
  ackEpochs: Set<number>;
  newLeaderAcks: Set<number>;
  counter: number;
  /** The zxid allocateZxid returned last (makeZxid(epoch, counter) once counter > 0). */
  allocated: bigint;
  /** Syncs waiting for their zxid to commit and for a quorum to confirm this leadership after they arrived. */
  pendingSyncs: { to: number; id: number; zxid: bigint; seq: number }[];
  pingSeq: number;
  /** Last tick each voter was seen synced: a learner briefly re-syncing does not cost the leader its quorum. */
  syncedAt: Map<number, number>;
  /** Proposals not yet sent: everything proposed in one round goes to each follower in one message. */
  unsent: Txn[];
  acceptedEpochPersisting: boolean;
  currentEpochPersisting: boolean;
}

interface LearnerState {
  leader: number;
  conn: number;
  sendSeq: number;
  recvSeq: number;
  epoch: number;
  phase: 'info' | 'sync' | 'broadcast';
  lastHeard: number;
  /** Tick this learner started following; it must be UPTODATE within initLimit ticks of it. */
  startedTick: number;
  newleaderZxid: bigint | undefined;
  newleaderAcked: boolean;
  commitTarget: bigint;
  snap: { zxid: bigint; time: number; sessions: [bigint, SessionEntry][]; count: number; nodes: SnapshotNode[] } | undefined;
  touches: Map<bigint, number>;
  /** Sessions' writes to forward, not yet sent: those of one round go to the leader in one message. */
  unforwarded: Request[];
}

function better(a: Vote, b: Vote): boolean {
  if (a.peerEpoch !== b.peerEpoch) return a.peerEpoch > b.peerEpoch;
  if (a.zxid !== b.zxid) return a.zxid > b.zxid;
  return a.leader > b.leader;
}

function sameVote(a: Vote, b: Vote): boolean {
  return a.leader === b.leader && a.zxid === b.zxid && a.peerEpoch === b.peerEpoch;
}

function emptyReady(): Ready {
  return { messages: [], persist: [], commits: [], requests: [], syncDone: [], touches: [], events: [] };
}

/**
 * One ZAB participant as a pure, event-driven state machine (in the manner of etcd-io/raft):
 * fast leader election, discovery, synchronization (DIFF / TRUNC / SNAP), broadcast, and the
 * learner side of all of it. It does no I/O and reads no clock: the member feeds it messages,
 * ticks, durability confirmations and local requests, and carries out the {@link Ready} it
 * returns. Persist-before-send is structural: an ACK (of a proposal, of an epoch, of NEWLEADER)
 * is only produced by `persisted()`, i.e. after the member reports the write durable.
 */
export class ZabPeer {
  readonly id: number;
  readonly quorum: QuorumVerifier;
  private readonly cfg: Required<ZabConfig>;
  private readonly host: ZabHost;

  state: PeerState | 'stopped' = 'looking';
  leaderId: number | undefined;
  /** True while this member may serve reads and accept writes. */
  serving = false;

  currentEpoch: number;
  acceptedEpoch: number;
  /** Last txn in the (possibly not yet durable) log. */
  lastLogged: bigint;
  /** Last txn known durable in the local log. */
  lastDurable: bigint;
  /** Last txn handed out for applying. */
  lastCommitted: bigint;
  /** Highest zxid known to be committed by the ensemble (snapshots may include up to here). */
  confirmed: bigint;

  /** Recent logged txns, (windowStart, lastLogged], for DIFF. */
  private window: Txn[];
  private windowHead = 0;
  private windowStart: bigint;

  private tickCount = 0;
  private readonly connectedPeers = new Set<number>();
  /** Tick each member was last heard from (any message). */
  private readonly heardAt = new Map<number, number>();

  // election
  private round = 0;
  private vote: Vote;
  private readonly recv = new Map<number, Vote>();
  private readonly outOfElection = new Map<number, VoteMsg>();
  private finalizeAt: number | undefined;

  private lead: LeaderState | undefined;
  private learn: LearnerState | undefined;
  private connections = 0;

  private out: Ready = emptyReady();

  constructor(config: ZabConfig, init: ZabInit, host: ZabHost) {
    this.cfg = {
      finalizeWaitTicks: 2,
      logWindow: 20_000,
      chunkSize: 1000,
      connectionNonce: 0,
      ...config,
    };
    this.id = config.id;
    this.host = host;
    this.quorum = new QuorumVerifier(config.voters, config.observers);
    if (!this.quorum.isMember(this.id)) throw new Error(`member ${this.id} is not in the ensemble`);
    this.currentEpoch = init.currentEpoch;
    this.acceptedEpoch = Math.max(init.acceptedEpoch, init.currentEpoch);
    this.lastLogged = init.lastZxid;
    this.lastDurable = init.lastZxid;
    this.lastCommitted = init.lastZxid;
    this.confirmed = init.baseZxid;
    const recent = init.recentLog.slice(-this.cfg.logWindow);
    this.window = recent;
    this.windowStart = recent.length < init.recentLog.length
      ? init.recentLog[init.recentLog.length - recent.length - 1]!.zxid
      : init.recentFrom;
    if (recent.length > 0 && recent[recent.length - 1]!.zxid !== init.lastZxid) {
      throw new Error(`recent log ends at ${formatZxid(recent[recent.length - 1]!.zxid)}, not at ${formatZxid(init.lastZxid)}`);
    }
    this.vote = this.selfVote();
  }

  // ------------------------------------------------------------------ inputs

  /** Starts the first election. */
  start(): void {
    this.lookForLeader('start');
  }

  /** Stops the peer for good. */
  stop(): void {
    if (this.state === 'stopped') return;
    this.setServing(false);
    this.state = 'stopped';
    this.lead = undefined;
    this.learn = undefined;
    this.out.events.push({ type: 'state', state: 'looking', leader: undefined, epoch: this.currentEpoch });
  }

  /**
   * Takes the outputs accumulated since the last call. With `hold`, the leader's proposals of this
   * round (and a learner's forwarded writes) stay unsent — the proposals are still logged: their
   * append is in this Ready — so that the driver can gather more of them into one PROPOSAL
   * message per follower (one REQUEST message to the leader); anything else sent to the same peer
   * still goes after them, because `toLearner` / `toLeader` flush them first.
   */
  takeReady(hold = false): Ready {
    if (!hold) {
      this.flushProposals();
      this.flushForwards();
    }
    const r = this.out;
    this.out = emptyReady();
    return r;
  }

  /** Whether takeReady(hold) would return anything. */
  hasReady(hold = false): boolean {
    if (!hold && this.unsent > 0) return true;
    const o = this.out;
    return o.messages.length > 0 || o.persist.length > 0 || o.commits.length > 0 || o.requests.length > 0
      || o.syncDone.length > 0 || o.touches.length > 0 || o.events.length > 0;
  }

  /** The transport connected to `peer`. */
  peerUp(peer: number): void {
    if (this.state === 'stopped') return;
    this.connectedPeers.add(peer);
    if (this.state === 'looking') this.send(peer, this.voteMsg());
  }

  /** The transport lost the connection to `peer` (a crash or close visible to it). */
  peerDown(peer: number): void {
    if (this.state === 'stopped') return;
    this.connectedPeers.delete(peer);
    if (this.learn && this.learn.leader === peer) {
      this.lookForLeader(`connection to leader ${peer} closed`);
    } else if (this.lead) {
      const h = this.lead.learners.get(peer);
      if (h) this.dropLearner(h, 'connection closed');
    }
  }

  /** One tick of the member's clock (tickMs). */
  tick(): void {
    if (this.state === 'stopped') return;
    this.tickCount++;
    const now = this.tickCount;
    if (this.state === 'looking') {
      if (this.finalizeAt !== undefined && now >= this.finalizeAt) {
        this.finalizeAt = undefined;
        this.tryDecide(true);
      }
      // Re-send our vote to everyone each tick while looking: any earlier message may have been lost.
      if (this.state === 'looking') this.broadcastVote();
      return;
    }
    if (this.lead) {
      this.leaderTick(now);
      return;
    }
    if (this.learn) this.learnerTick(now);
  }

  /** A message from member `from` (already authenticated by the transport). */
  step(from: number, msg: unknown): void {
    if (this.state === 'stopped') return;
    if (from === this.id || !this.quorum.isMember(from)) {
      this.warn('message from a member not in the ensemble dropped', { from });
      return;
    }
    if (!isValidZabMessage(msg)) {
      this.warn('malformed message dropped', { from, t: (msg as { t?: unknown } | null)?.t });
      return;
    }
    this.heardAt.set(from, this.tickCount);
    if (msg.t === 'vote') {
      this.onVote(from, msg);
      return;
    }
    if (this.lead) this.leaderStep(from, msg);
    else if (this.learn && from === this.learn.leader) this.learnerStep(msg);
  }

  /** A durable effect from an earlier Ready completed. */
  persisted(op: PersistOp): void {
    if (this.state === 'stopped') return;
    switch (op.kind) {
      case 'append': {
        const last = op.txns[op.txns.length - 1];
        if (!last) return;
        if (last.zxid > this.lastDurable && last.zxid <= this.lastLogged) this.lastDurable = last.zxid;
        if (this.lead) this.tryCommit();
        else if (this.learn && this.learn.newleaderAcked && this.state === 'following') {
          this.toLeader(this.learn, { t: 'ack', epoch: this.learn.epoch, zxid: this.lastDurable, newleader: false });
        }
        return;
      }
      case 'truncate':
        if (this.lastDurable > op.zxid) this.lastDurable = op.zxid;
        return;
      case 'snapshot':
        this.lastDurable = op.snapshot.zxid;
        return;
      case 'epochs':
        if (op.acceptedEpoch !== undefined) this.onAcceptedEpochDurable(op.acceptedEpoch);
        if (op.currentEpoch !== undefined) this.onCurrentEpochDurable(op.currentEpoch);
        return;
    }
  }

  // ------------------------------------------------------------------ local API for the member

  /** True when this member is the established leader. */
  get isLeader(): boolean {
    return this.lead !== undefined && this.lead.phase === 'broadcast';
  }

  /** The leader's next zxid (only while it is the established leader). */
  allocateZxid(): bigint {
    const l = this.lead;
    if (!l || l.phase !== 'broadcast') throw new Error('allocateZxid: not the established leader');
    if (l.counter >= 0xffffffff) {
      // The counter would roll over into the epoch bits; ZooKeeper forces a new election here.
      this.lookForLeader('zxid counter exhausted for this epoch');
      throw new Error('zxid counter exhausted; re-electing');
    }
    l.counter++;
    // BigInt arithmetic allocates: one addition rather than building the zxid from its parts.
    l.allocated = l.counter === 1 ? makeZxid(l.epoch, 1) : l.allocated + 1n;
    return l.allocated;
  }

  /** Leader: proposes a prepared txn (its zxid from allocateZxid, in order). */
  propose(txn: Txn): void {
    const l = this.lead;
    if (!l || l.phase !== 'broadcast') throw new Error('propose: not the established leader');
    if (txn.zxid !== l.allocated || l.counter === 0 || txn.zxid <= this.lastLogged) {
      throw new Error(`propose: zxid ${formatZxid(txn.zxid)} out of order (last ${formatZxid(this.lastLogged)})`);
    }
    this.logTxn(txn);
    l.unsent.push(txn);
  }

  /** Proposals (leader) or forwarded writes (learner) not yet in a message (held by takeReady(true)). */
  get unsent(): number {
    return this.lead ? this.lead.unsent.length : this.learn ? this.learn.unforwarded.length : 0;
  }

  /** Sends the proposals of this round to every follower, as one message each. */
  private flushProposals(): void {
    const l = this.lead;
    if (!l || l.unsent.length === 0) return;
    const txns = l.unsent;
    l.unsent = [];
    for (const h of l.learners.values()) {
      if (!h.observer && (h.phase === 'syncing' || h.phase === 'synced')) this.toLearner(h, { t: 'proposal', epoch: l.epoch, txns });
    }
  }

  /** Learner: forwards a session's write to the leader. False when not connected to one. */
  forward(req: Request): boolean {
    const f = this.learn;
    if (!f || f.phase !== 'broadcast' || !this.serving) return false;
    f.unforwarded.push(req);
    return true;
  }

  /** Sends the writes forwarded in this round to the leader, as one message. */
  private flushForwards(): void {
    const f = this.learn;
    if (!f || f.unforwarded.length === 0) return;
    const reqs = f.unforwarded;
    f.unforwarded = [];
    this.toLeader(f, { t: 'request', epoch: f.epoch, reqs });
  }

  /** Starts a sync; `syncDone` carries `id` once this member has every txn committed before now. */
  sync(id: number): boolean {
    if (this.lead && this.lead.phase === 'broadcast') {
      this.addSync(this.id, id);
      return true;
    }
    const f = this.learn;
    if (!f || f.phase !== 'broadcast') return false;
    this.toLeader(f, { t: 'sync', epoch: f.epoch, id });
    return true;
  }

  /** Learner: a local session is alive; reported to the leader with the next ping. */
  touch(sessionId: bigint, timeoutMs: number): void {
    if (this.learn) this.learn.touches.set(sessionId, timeoutMs);
  }

  /**
   * Whether a snapshot of a tree applied up to `zxid` may be taken: everything in it is committed,
   * and the local log is durable up to it (a learner applies commits before its own fsync; a
   * snapshot must never start past the log, or the next appends would precede it).
   */
  safeToSnapshot(zxid: bigint): boolean {
    return zxid <= this.confirmed && zxid <= this.lastDurable;
  }

  /** Epoch of the established leadership this member is part of (0 when none). */
  get epoch(): number {
    return this.lead?.epoch ?? this.learn?.epoch ?? 0;
  }

  /** Learners of the leader and their state (admin). */
  learnerReport(): { id: number; observer: boolean; phase: string; acked: bigint; lagTicks: number }[] {
    if (!this.lead) return [];
    // By member id, whatever order they connected in (admin output, `conclave status`).
    return [...this.lead.learners.values()].sort((a, b) => a.id - b.id).map((h) => ({
      id: h.id, observer: h.observer, phase: h.phase, acked: h.acked, lagTicks: this.tickCount - h.lastHeard,
    }));
  }

  /** Number of proposals logged but not committed. */
  get outstandingProposals(): number {
    return this.lead ? this.windowLength() - this.windowIndexAfter(this.lastCommitted) : 0;
  }

  // ------------------------------------------------------------------ log window

  private windowLength(): number {
    return this.window.length - this.windowHead;
  }

  private windowAt(i: number): Txn {
    return this.window[this.windowHead + i]!;
  }

  /** Index of the first window txn with zxid > z. */
  private windowIndexAfter(z: bigint): number {
    let lo = this.windowHead;
    let hi = this.window.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.window[mid]!.zxid <= z) lo = mid + 1;
      else hi = mid;
    }
    return lo - this.windowHead;
  }

  private windowHas(z: bigint): boolean {
    const i = this.windowIndexAfter(z);
    return i > 0 && this.windowAt(i - 1).zxid === z;
  }

  private logTxn(txn: Txn): void {
    this.window.push(txn);
    this.lastLogged = txn.zxid;
    // Consecutive txns of one round go in one append (one group-committed write).
    const p = this.out.persist;
    const last = p[p.length - 1];
    if (last !== undefined && last.kind === 'append') last.txns.push(txn);
    else p.push({ kind: 'append', txns: [txn] });
    if (this.windowLength() > this.cfg.logWindow) this.trimWindow();
  }

  private trimWindow(): void {
    let excess = this.windowLength() - this.cfg.logWindow;
    while (excess > 0 && this.windowAt(0).zxid <= this.lastCommitted) {
      this.windowStart = this.windowAt(0).zxid;
      this.window[this.windowHead] = undefined as unknown as Txn;
      this.windowHead++;
      excess--;
    }
    if (this.windowHead > 4096 && this.windowHead * 2 > this.window.length) {
      this.window = this.window.slice(this.windowHead);
      this.windowHead = 0;
    }
  }

  private truncateWindow(z: bigint): void {
    const keep = this.windowIndexAfter(z);
    this.window.length = this.windowHead + keep;
    if (keep === 0 && z < this.windowStart) this.windowStart = z;
    this.lastLogged = z;
  }

  /** The last zxid this log holds in each of its most recent epochs (newest first). */
  private epochSummary(): [number, bigint][] {
    const out: [number, bigint][] = [];
    for (let i = this.windowLength() - 1; i >= 0 && out.length < 16; i--) {
      const z = this.windowAt(i).zxid;
      const e = epochOf(z);
      if (out.length === 0 || out[out.length - 1]![0] !== e) out.push([e, z]);
    }
    return out;
  }

  /** The last zxid of epoch `e` in the window, if the window holds any txn of that epoch. */
  private lastOfEpoch(e: number): bigint | undefined {
    const after = this.windowIndexAfter(makeZxid(e, 0xffffffff));
    if (after === 0) return undefined;
    const t = this.windowAt(after - 1);
    return epochOf(t.zxid) === e ? t.zxid : undefined;
  }

  // ------------------------------------------------------------------ election

  private selfVote(): Vote {
    return { leader: this.id, zxid: this.lastLogged, peerEpoch: this.currentEpoch };
  }

  private voteMsg(): VoteMsg {
    const state: PeerState = this.state === 'stopped' ? 'looking' : this.state;
    return { t: 'vote', leader: this.vote.leader, zxid: this.vote.zxid, peerEpoch: this.vote.peerEpoch, round: this.round, state };
  }

  private lookForLeader(reason: string): void {
    const wasServing = this.serving;
    this.setServing(false);
    if (this.lead) this.lead = undefined;
    this.learn = undefined;
    this.leaderId = undefined;
    this.state = 'looking';
    this.round++;
    this.recv.clear();
    this.outOfElection.clear();
    this.finalizeAt = undefined;
    const isVoter = this.quorum.isVoter(this.id);
    this.vote = isVoter ? this.selfVote() : { leader: 0, zxid: 0n, peerEpoch: 0 };
    if (isVoter) this.recv.set(this.id, this.vote);
    this.out.events.push({ type: 'state', state: 'looking', leader: undefined, epoch: this.currentEpoch });
    this.out.events.push({ type: 'info', message: 'looking for a leader', detail: { reason, round: this.round, wasServing } });
    this.broadcastVote();
    this.tryDecide(false);
  }

  private broadcastVote(): void {
    const msg = this.voteMsg();
    const targets = this.quorum.isVoter(this.id) ? this.quorum.all() : [...this.quorum.voters];
    for (const p of targets) if (p !== this.id) this.send(p, msg);
  }

  private onVote(from: number, m: VoteMsg): void {
    const fromVoter = this.quorum.isVoter(from);
    if (this.state !== 'looking') {
      // Tell a looking member who leads. Never answer a non-looking member: that would ping-pong.
      if (m.state === 'looking') this.send(from, this.voteMsg());
      return;
    }
    const v: Vote = { leader: m.leader, zxid: m.zxid, peerEpoch: m.peerEpoch };
    const selfIsVoter = this.quorum.isVoter(this.id);
    if (!fromVoter) {
      // Observers never vote; a looking observer only learns who leads.
      if (m.state === 'looking' && selfIsVoter) this.send(from, this.voteMsg());
      return;
    }
    if (m.state === 'looking') {
      if (!selfIsVoter) return; // an observer only listens to members that know a leader
      if (m.round > this.round) {
        this.round = m.round;
        this.recv.clear();
        this.finalizeAt = undefined;
        const self = this.selfVote();
        this.vote = better(v, self) ? v : self;
        this.recv.set(this.id, this.vote);
        this.broadcastVote();
      } else if (m.round < this.round) {
        this.send(from, this.voteMsg());
        return;
      } else if (better(v, this.vote)) {
        this.vote = v;
        this.recv.set(this.id, this.vote);
        this.finalizeAt = undefined;
        this.broadcastVote();
      } else if (!sameVote(v, this.vote)) {
        // Theirs is worse: they may have missed ours (lost message); tell them, they will adopt it.
        this.send(from, this.voteMsg());
      }
      this.recv.set(from, v);
      this.tryDecide(false);
      return;
    }
    // From a member that is leading or following: join the established ensemble if a quorum agrees.
    if (m.round === this.round && selfIsVoter) {
      this.recv.set(from, v);
      if (this.countFor(this.recv, v) && this.checkLeader(this.outOfElectionWith(from, m), v.leader, m.round)) {
        this.decide(v);
        return;
      }
    }
    this.outOfElection.set(from, m);
    let n = 0;
    for (const [id, o] of this.outOfElection) if (this.quorum.isVoter(id) && o.leader === m.leader) n++;
    if (n >= this.quorum.size && this.checkLeader(this.outOfElection, m.leader, m.round)) {
      this.round = m.round;
      this.decide(v);
    }
  }

  private outOfElectionWith(from: number, m: VoteMsg): Map<number, VoteMsg> {
    this.outOfElection.set(from, m);
    return this.outOfElection;
  }

  private checkLeader(votes: Map<number, VoteMsg>, leader: number, round: number): boolean {
    if (leader === this.id) return round === this.round;
    return votes.get(leader)?.state === 'leading';
  }

  private countFor(votes: Map<number, Vote>, v: Vote): boolean {
    let n = 0;
    for (const [id, o] of votes) if (this.quorum.isVoter(id) && sameVote(o, v)) n++;
    return n >= this.quorum.size;
  }

  /** Decides when a quorum agrees with our vote and nobody else can still change it (or time is up). */
  private tryDecide(timeUp: boolean): void {
    if (this.state !== 'looking' || !this.quorum.isVoter(this.id)) return;
    if (!this.countFor(this.recv, this.vote)) return;
    let allHeard = true;
    for (const v of this.quorum.voters) {
      if (v === this.id || this.recv.has(v)) continue;
      // Looking members send every tick: one we are not connected to, or that went silent two ticks
      // ago, is down or cut off and cannot send a better vote soon; waiting only delays failover.
      // One we are connected to but never heard from yet (start-up) may still answer: wait for it.
      const heard = this.heardAt.get(v);
      if (this.connectedPeers.has(v) && (heard === undefined || this.tickCount - heard < 2)) {
        allHeard = false;
        break;
      }
    }
    if (allHeard || timeUp) {
      this.decide(this.vote);
      return;
    }
    if (this.finalizeAt === undefined) this.finalizeAt = this.tickCount + this.cfg.finalizeWaitTicks;
  }

  private decide(v: Vote): void {
    this.vote = v;
    this.finalizeAt = undefined;
    this.leaderId = v.leader;
    if (v.leader === this.id) {
      this.state = 'leading';
      this.lead = {
        epoch: 0, phase: 'discovery', startedTick: this.tickCount, connecting: new Map([[this.id, this.acceptedEpoch]]),
        learners: new Map(), ackEpochs: new Set(), newLeaderAcks: new Set(), counter: 0, allocated: 0n, pendingSyncs: [], pingSeq: 0, syncedAt: new Map(), unsent: [],
        acceptedEpochPersisting: false, currentEpochPersisting: false,
      };
      this.out.events.push({ type: 'state', state: 'leading', leader: this.id, epoch: this.currentEpoch });
      this.maybeDecideEpoch();
    } else {
      this.state = this.quorum.isVoter(this.id) ? 'following' : 'observing';
      this.learn = {
        leader: v.leader, conn: (this.cfg.connectionNonce + ++this.connections) >>> 0, sendSeq: 0, recvSeq: 0,
        epoch: 0, phase: 'info', lastHeard: this.tickCount, startedTick: this.tickCount, newleaderZxid: undefined,
        newleaderAcked: false, commitTarget: 0n, snap: undefined, touches: new Map(), unforwarded: [],
      };
      this.out.events.push({ type: 'state', state: this.state, leader: v.leader, epoch: this.currentEpoch });
      this.send(v.leader, { t: 'finfo', acceptedEpoch: this.acceptedEpoch, observer: this.state === 'observing', conn: this.learn.conn });
    }
  }

  // ------------------------------------------------------------------ leader

  private maybeDecideEpoch(): void {
    const l = this.lead!;
    if (l.epoch !== 0 || !this.quorum.hasQuorum(l.connecting.keys())) return;
    let max = 0;
    for (const e of l.connecting.values()) if (e > max) max = e;
    l.epoch = max + 1;
    l.acceptedEpochPersisting = true;
    this.out.persist.push({ kind: 'epochs', acceptedEpoch: l.epoch });
    this.info('new epoch proposed', { epoch: l.epoch });
    for (const h of l.learners.values()) this.toLearner(h, { t: 'linfo', epoch: l.epoch });
  }

  private onAcceptedEpochDurable(epoch: number): void {
    if (epoch > this.acceptedEpoch) this.acceptedEpoch = epoch;
    const l = this.lead;
    if (l && l.epoch === epoch && l.acceptedEpochPersisting) {
      l.acceptedEpochPersisting = false;
      l.ackEpochs.add(this.id);
      this.maybeStartSync();
      return;
    }
    const f = this.learn;
    if (f && f.epoch === epoch && f.phase === 'info') this.sendAckEpoch(f);
  }

  private onCurrentEpochDurable(epoch: number): void {
    if (epoch > this.currentEpoch) this.currentEpoch = epoch;
    const l = this.lead;
    if (l && l.epoch === epoch && l.currentEpochPersisting) {
      l.currentEpochPersisting = false;
      l.newLeaderAcks.add(this.id);
      this.maybeEstablish();
      return;
    }
    const f = this.learn;
    if (f && f.epoch === epoch && f.newleaderZxid !== undefined && !f.newleaderAcked) {
      f.newleaderAcked = true;
      this.toLeader(f, { t: 'ack', epoch: f.epoch, zxid: f.newleaderZxid, newleader: true });
      if (this.state === 'following' && this.lastDurable > f.newleaderZxid) {
        this.toLeader(f, { t: 'ack', epoch: f.epoch, zxid: this.lastDurable, newleader: false });
      }
    }
  }

  private maybeStartSync(): void {
    const l = this.lead!;
    if (l.phase !== 'discovery' || !this.quorum.hasQuorum(l.ackEpochs)) return;
    l.phase = 'sync';
    l.currentEpochPersisting = true;
    this.out.persist.push({ kind: 'epochs', currentEpoch: l.epoch });
    for (const h of l.learners.values()) if (h.phase === 'acked') this.syncLearner(h);
  }

  private maybeEstablish(): void {
    const l = this.lead!;
    if (l.phase !== 'sync' || !this.quorum.hasQuorum(l.newLeaderAcks)) return;
    l.phase = 'broadcast';
    // Everything the leader logged (including txns of earlier epochs that never committed) is now
    // committed: a quorum logged it under the new epoch (ZAB's NEWLEADER).
    this.commitUpTo(this.lastLogged);
    this.confirmed = this.lastLogged;
    l.counter = 0;
    for (const h of l.learners.values()) {
      if (h.phase === 'synced') this.sendUpToDate(h);
    }
    this.info('leading', { epoch: l.epoch, lastZxid: formatZxid(this.lastLogged), quorum: [...l.newLeaderAcks] });
    this.setServing(true);
  }

  private sendUpToDate(h: LearnerHandle): void {
    const l = this.lead!;
    h.uptodateSent = true;
    this.toLearner(h, { t: 'uptodate', epoch: l.epoch, committed: this.lastCommitted });
  }

  private leaderStep(from: number, msg: ZabMessage): void {
    const l = this.lead!;
    if (msg.t === 'finfo') {
      const existing = l.learners.get(from);
      if (existing && existing.conn === msg.conn) {
        // The learner repeats FOLLOWERINFO until it hears LEADERINFO.
        if (existing.phase === 'info' && l.epoch !== 0) this.toLearner(existing, { t: 'linfo', epoch: l.epoch });
        return;
      }
      const observer = !this.quorum.isVoter(from);
      if (observer !== msg.observer) {
        this.warn('learner role does not match the configuration', { from, claimsObserver: msg.observer });
      }
      const h: LearnerHandle = {
        id: from, observer, conn: msg.conn, sendSeq: 0, recvSeq: 0, phase: 'info', lastHeard: this.tickCount,
        startedTick: this.tickCount, acked: 0n, pingSeq: 0, uptodateSent: false,
      };
      if (existing) l.pendingSyncs = l.pendingSyncs.filter((x) => x.to !== from);
      l.learners.set(from, h);
      if (l.epoch === 0) {
        l.connecting.set(from, msg.acceptedEpoch);
        this.maybeDecideEpoch();
      } else {
        this.toLearner(h, { t: 'linfo', epoch: l.epoch });
      }
      return;
    }
    const h = l.learners.get(from);
    if (!h || msg.t === 'vote' || msg.c !== h.conn) return; // unknown, or from an earlier connection
    if (msg.s !== undefined) {
      if (msg.s <= h.recvSeq) return; // duplicate
      if (msg.s !== h.recvSeq + 1) {
        this.dropLearner(h, `message gap (got #${msg.s} after #${h.recvSeq})`);
        return;
      }
      h.recvSeq = msg.s;
    }
    if (msg.epoch !== l.epoch) return; // stale, from an earlier leadership
    h.lastHeard = this.tickCount;
    switch (msg.t) {
      case 'ackepoch': {
        if (h.phase !== 'info') return;
        if (l.phase === 'discovery'
          && (msg.currentEpoch > this.currentEpoch || (msg.currentEpoch === this.currentEpoch && msg.lastZxid > this.lastLogged))) {
          // A voter knows a newer history than ours: we should not lead (ZooKeeper: "Follower is ahead of the leader").
          this.lookForLeader(`learner ${from} is ahead (epoch ${msg.currentEpoch}, zxid ${formatZxid(msg.lastZxid)})`);
          return;
        }
        h.phase = 'acked';
        h.ackEpoch = msg;
        if (!h.observer) l.ackEpochs.add(from);
        if (l.phase === 'discovery') this.maybeStartSync();
        else this.syncLearner(h);
        return;
      }
      case 'ack': {
        if (msg.newleader) {
          if (h.phase !== 'syncing') return;
          h.phase = 'synced';
          if (!h.observer) l.newLeaderAcks.add(from);
          if (l.phase === 'sync') this.maybeEstablish();
          else if (l.phase === 'broadcast') this.sendUpToDate(h);
          return;
        }
        if (h.phase !== 'synced' || h.observer) return;
        if (msg.zxid > h.acked) h.acked = msg.zxid;
        this.tryCommit();
        return;
      }
      case 'request':
        if (l.phase === 'broadcast' && h.phase === 'synced') for (const r of msg.reqs) this.out.requests.push(r);
        return;
      case 'ping':
        for (const t of msg.touches) this.out.touches.push(t);
        if (msg.seq > h.pingSeq) {
          h.pingSeq = msg.seq;
          this.flushSyncs();
        }
        return;
      case 'sync':
        if (l.phase !== 'broadcast') return;
        this.addSync(from, msg.id);
        return;
      default:
        this.warn('unexpected message for a leader', { from, t: msg.t });
    }
  }

  /** DIFF, TRUNC or SNAP for one learner, then NEWLEADER (ZooKeeper's LearnerHandler.syncFollower). */
  private syncLearner(h: LearnerHandle): void {
    const l = this.lead!;
    const info = h.ackEpoch!;
    const peerLast = info.lastZxid;
    // An observer only gets committed txns; a follower also gets the proposals still in flight.
    const upTo = h.observer && l.phase === 'broadcast' ? this.lastCommitted : this.lastLogged;
    let common: bigint | undefined;
    if (peerLast === upTo || peerLast === this.windowStart || this.windowHas(peerLast)) {
      common = peerLast;
    } else {
      for (const [e, z] of info.epochs) {
        const mine = this.lastOfEpoch(e);
        if (mine !== undefined) {
          common = z < mine ? z : mine;
          break;
        }
        if (e < epochOf(this.windowStart)) break;
      }
    }
    if (common !== undefined && common > upTo) common = upTo;
    const chunk = this.cfg.chunkSize;
    if (common === undefined || common < this.windowStart) {
      this.sendSnapshot(h, upTo);
    } else {
      if (peerLast > common) this.toLearner(h, { t: 'trunc', epoch: l.epoch, zxid: common });
      const from = this.windowIndexAfter(common);
      const to = this.windowIndexAfter(upTo);
      const committedEnd = Math.min(to, this.windowIndexAfter(l.phase === 'broadcast' ? this.lastCommitted : this.lastLogged));
      for (let i = from; i < committedEnd; i += chunk) {
        const txns: Txn[] = [];
        for (let j = i; j < Math.min(committedEnd, i + chunk); j++) txns.push(this.windowAt(j));
        this.toLearner(h, { t: 'diff', epoch: l.epoch, txns });
      }
      this.sendOutstanding(h, Math.max(from, committedEnd), to);
      this.info('syncing learner', {
        learner: h.id, mode: peerLast > common ? 'TRUNC+DIFF' : 'DIFF', peerLast: formatZxid(peerLast),
        common: formatZxid(common), txns: to - from,
      });
    }
    // From here on, later proposals (or informs) flow to this learner, in order after the sync.
    h.phase = 'syncing';
    this.toLearner(h, { t: 'newleader', epoch: l.epoch, zxid: makeZxid(l.epoch, 0) });
    if (l.phase === 'broadcast' && !h.observer && this.lastCommitted < this.lastLogged) {
      this.toLearner(h, { t: 'commit', epoch: l.epoch, zxid: this.lastCommitted });
    }
  }

  private sendSnapshot(h: LearnerHandle, upTo: bigint): void {
    const l = this.lead!;
    const snap = this.host.snapshot();
    const chunk = this.cfg.chunkSize;
    this.toLearner(h, { t: 'snap', epoch: l.epoch, zxid: snap.zxid, time: snap.time, sessions: snap.sessions, count: snap.nodes.length });
    for (let i = 0; i < snap.nodes.length; i += chunk) {
      this.toLearner(h, { t: 'snapchunk', epoch: l.epoch, nodes: snap.nodes.slice(i, i + chunk) });
    }
    this.toLearner(h, { t: 'snapend', epoch: l.epoch });
    // Txns after the snapshot's zxid: committed ones as DIFF, in-flight ones as proposals.
    const from = this.windowIndexAfter(snap.zxid);
    const to = this.windowIndexAfter(upTo);
    const committedEnd = Math.min(to, this.windowIndexAfter(l.phase === 'broadcast' ? this.lastCommitted : this.lastLogged));
    if (from < committedEnd) {
      const txns: Txn[] = [];
      for (let j = from; j < committedEnd; j++) txns.push(this.windowAt(j));
      for (let i = 0; i < txns.length; i += chunk) this.toLearner(h, { t: 'diff', epoch: l.epoch, txns: txns.slice(i, i + chunk) });
    }
    this.sendOutstanding(h, Math.max(from, committedEnd), to);
    this.info('syncing learner', { learner: h.id, mode: 'SNAP', zxid: formatZxid(snap.zxid), nodes: snap.nodes.length });
  }

  /** Proposals still in flight (window indexes [from, to)) for a learner being synced. */
  private sendOutstanding(h: LearnerHandle, from: number, to: number): void {
    const l = this.lead!;
    for (let i = from; i < to; i += this.cfg.chunkSize) {
      const txns: Txn[] = [];
      for (let j = i; j < Math.min(to, i + this.cfg.chunkSize); j++) txns.push(this.windowAt(j));
      this.toLearner(h, { t: 'proposal', epoch: l.epoch, txns });
    }
  }

  private tryCommit(): void {
    const l = this.lead;
    if (!l || l.phase !== 'broadcast' || this.lastCommitted >= this.lastLogged) return;
    const acks: bigint[] = [this.lastDurable];
    for (const h of l.learners.values()) if (!h.observer && h.phase === 'synced') acks.push(h.acked);
    if (acks.length < this.quorum.size) return;
    acks.sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    let upTo = acks[this.quorum.size - 1]!;
    if (upTo > this.lastLogged) upTo = this.lastLogged;
    if (upTo <= this.lastCommitted) return;
    this.commitUpTo(upTo);
  }

  /** Leader: marks everything ≤ upTo committed, tells learners, hands txns out for applying. */
  private commitUpTo(upTo: bigint): void {
    const l = this.lead!;
    const from = this.windowIndexAfter(this.lastCommitted);
    const to = this.windowIndexAfter(upTo);
    const newly: Txn[] = [];
    for (let i = from; i < to; i++) newly.push(this.windowAt(i));
    for (const t of newly) this.out.commits.push(t);
    this.lastCommitted = upTo;
    if (upTo > this.confirmed) this.confirmed = upTo;
    if (l.phase === 'broadcast') {
      for (const h of l.learners.values()) {
        if (h.phase !== 'syncing' && h.phase !== 'synced') continue;
        if (h.observer) {
          for (const t of newly) this.toLearner(h, { t: 'inform', epoch: l.epoch, txn: t });
        } else {
          this.toLearner(h, { t: 'commit', epoch: l.epoch, zxid: upTo });
        }
      }
      this.flushSyncs();
    }
    this.trimWindow();
  }

  /**
   * A sync is answered once everything proposed before it is committed AND a quorum has echoed a
   * ping sent after it arrived: then no newer leader can have committed anything before the
   * sync, so a read after it is linearizable even if this leader is about to be deposed.
   */
  private addSync(to: number, id: number): void {
    const l = this.lead!;
    const seq = ++l.pingSeq;
    l.pendingSyncs.push({ to, id, zxid: this.lastLogged, seq });
    for (const h of l.learners.values()) {
      if (!h.observer && h.phase === 'synced') this.toLearner(h, { t: 'ping', epoch: l.epoch, seq, touches: [] });
    }
    this.flushSyncs();
  }

  private flushSyncs(): void {
    const l = this.lead!;
    if (l.pendingSyncs.length === 0 || l.phase !== 'broadcast') return;
    const seqs: number[] = [Number.MAX_SAFE_INTEGER];
    for (const h of l.learners.values()) if (!h.observer && h.phase === 'synced') seqs.push(h.pingSeq);
    if (seqs.length < this.quorum.size) return;
    seqs.sort((a, b) => b - a);
    const confirmed = seqs[this.quorum.size - 1]!;
    const still: typeof l.pendingSyncs = [];
    for (const s of l.pendingSyncs) {
      if (s.zxid > this.lastCommitted || s.seq > confirmed) still.push(s);
      else if (s.to === this.id) this.out.syncDone.push(s.id);
      else {
        const h = l.learners.get(s.to);
        if (h) this.toLearner(h, { t: 'syncreply', epoch: l.epoch, id: s.id });
      }
    }
    l.pendingSyncs = still;
  }

  private leaderTick(now: number): void {
    const l = this.lead!;
    for (const h of [...l.learners.values()]) {
      const drop = now - h.lastHeard > (h.phase === 'synced' ? this.cfg.syncLimit : this.cfg.initLimit)
        ? `silent for ${now - h.lastHeard} ticks`
        : h.phase !== 'synced' && now - h.startedTick > this.cfg.initLimit
          ? `not synced within initLimit (${this.cfg.initLimit} ticks)`
          : undefined;
      if (drop !== undefined) {
        this.dropLearner(h, drop);
        // A drop that cost the quorum ended the leadership: nothing of it is left to tick.
        if (this.lead !== l) return;
        continue;
      }
      if (h.phase === 'syncing' || h.phase === 'synced') {
        // The commit point rides on every ping, so a learner that lost a COMMIT catches up anyway.
        this.toLearner(h, { t: 'ping', epoch: l.epoch, seq: l.pingSeq, touches: [], committed: this.lastCommitted });
      }
    }
    if (l.phase !== 'broadcast') {
      if (now - l.startedTick > this.cfg.initLimit) this.lookForLeader(`no quorum synced within initLimit (${this.cfg.initLimit} ticks)`);
      return;
    }
    if (!this.hasSyncedQuorum(now)) {
      this.lookForLeader(`lost quorum: synced voters ${[this.id, ...[...l.syncedAt.keys()]].join(',')}`);
    }
  }

  /**
   * Whether voters heard from while synced within the leader's lease (plus this leader) form a
   * quorum. With syncLimit ≥ 3 the lease is shorter than the learners' syncLimit timeout, so an
   * isolated leader steps down (and its sessions see SUSPENDED) before the others can elect a new
   * one; with syncLimit 2 both run out in the same tick. Any learner dropped in a tick in which the
   * lease has run out (a silent one, one that did not sync within initLimit) ends the leadership
   * there, and leaderTick stops.
   */
  private hasSyncedQuorum(now: number): boolean {
    const lease = Math.max(2, this.cfg.syncLimit - 2);
    const l = this.lead!;
    for (const h of l.learners.values()) {
      if (h.phase === 'synced' && !h.observer && h.lastHeard > (l.syncedAt.get(h.id) ?? -1)) l.syncedAt.set(h.id, h.lastHeard);
    }
    const live = [this.id];
    for (const [id, at] of l.syncedAt) {
      if (now - at <= lease) live.push(id);
      else l.syncedAt.delete(id);
    }
    return this.quorum.hasQuorum(live);
  }

  private dropLearner(h: LearnerHandle, reason: string): void {
    const l = this.lead!;
    l.learners.delete(h.id);
    l.ackEpochs.delete(h.id);
    l.connecting.delete(h.id);
    l.pendingSyncs = l.pendingSyncs.filter((s) => s.to !== h.id);
    this.info('learner dropped', { learner: h.id, reason });
    // A learner whose connection closed is gone for good; one dropped for a gap re-joins at once.
    if (reason === 'connection closed') l.syncedAt.delete(h.id);
    if (l.phase === 'broadcast' && !this.hasSyncedQuorum(this.tickCount)) this.lookForLeader(`lost quorum after dropping learner ${h.id}`);
  }

  // ------------------------------------------------------------------ learner

  private sendAckEpoch(f: LearnerState): void {
    this.toLeader(f, {
      t: 'ackepoch', epoch: f.epoch, currentEpoch: this.currentEpoch, lastZxid: this.lastLogged, epochs: this.epochSummary(),
    });
    f.phase = 'sync';
  }

  private learnerStep(msg: ZabMessage): void {
    const f = this.learn!;
    if (msg.t === 'vote' || msg.c !== f.conn) return; // from an earlier connection
    if (msg.s !== undefined) {
      if (msg.s <= f.recvSeq) return; // duplicate
      if (msg.s !== f.recvSeq + 1) {
        this.lookForLeader(`message gap from leader ${f.leader} (got #${msg.s} after #${f.recvSeq})`);
        return;
      }
      f.recvSeq = msg.s;
    }
    f.lastHeard = this.tickCount;
    if (msg.t === 'linfo') {
      if (f.phase !== 'info' || f.epoch !== 0) return;
      if (msg.epoch < this.acceptedEpoch) {
        this.lookForLeader(`leader ${f.leader} proposed epoch ${msg.epoch} below our accepted epoch ${this.acceptedEpoch}`);
        return;
      }
      f.epoch = msg.epoch;
      if (msg.epoch > this.acceptedEpoch) {
        this.out.persist.push({ kind: 'epochs', acceptedEpoch: msg.epoch });
      } else {
        this.sendAckEpoch(f);
      }
      return;
    }
    if (msg.t === 'finfo' || msg.epoch !== f.epoch || f.epoch === 0) return;
    switch (msg.t) {
      case 'trunc': {
        if (f.phase !== 'sync') return;
        if (msg.zxid < this.confirmed) {
          this.warn('refusing TRUNC below committed state; re-electing', { to: formatZxid(msg.zxid), confirmed: formatZxid(this.confirmed) });
          this.lookForLeader('bad TRUNC');
          return;
        }
        const rebuild = msg.zxid < this.lastCommitted;
        this.truncateWindow(msg.zxid);
        if (rebuild) this.lastCommitted = msg.zxid;
        this.out.persist.push({ kind: 'truncate', zxid: msg.zxid, rebuild });
        this.info('truncating log', { to: formatZxid(msg.zxid), rebuild });
        return;
      }
      case 'diff':
        if (f.phase !== 'sync') return;
        for (const t of msg.txns) if (!this.acceptTxn(t, 'diff')) return;
        return;
      case 'snap':
        if (f.phase !== 'sync') return;
        f.snap = { zxid: msg.zxid, time: msg.time, sessions: msg.sessions, count: msg.count, nodes: [] };
        return;
      case 'snapchunk':
        if (!f.snap) return;
        for (const n of msg.nodes) f.snap.nodes.push(n);
        return;
      case 'snapend': {
        const s = f.snap;
        if (!s) return;
        f.snap = undefined;
        if (s.nodes.length !== s.count) {
          this.warn('snapshot incomplete; re-syncing', { expected: s.count, got: s.nodes.length });
          this.lookForLeader('incomplete snapshot');
          return;
        }
        this.window.length = this.windowHead;
        this.windowStart = s.zxid;
        this.lastLogged = s.zxid;
        this.lastCommitted = s.zxid;
        if (s.zxid > this.confirmed) this.confirmed = s.zxid;
        this.out.persist.push({ kind: 'snapshot', snapshot: { zxid: s.zxid, time: s.time, sessions: s.sessions, nodes: s.nodes } });
        this.info('installed snapshot from leader', { zxid: formatZxid(s.zxid), nodes: s.nodes.length });
        return;
      }
      case 'newleader':
        if (f.phase !== 'sync') return;
        f.newleaderZxid = msg.zxid;
        // Persist order (ZOOKEEPER-3911/-4646/-4643): the synced txns are already queued before this,
        // then currentEpoch, and only when both are durable is the ACK sent (persisted → onCurrentEpochDurable).
        this.out.persist.push({ kind: 'epochs', currentEpoch: f.epoch });
        return;
      case 'proposal':
        if (this.state !== 'following') return;
        for (const t of msg.txns) if (!this.acceptTxn(t, 'proposal')) return;
        return;
      case 'inform':
        if (this.state !== 'observing') return;
        if (!this.acceptTxn(msg.txn, 'inform')) return;
        if (msg.txn.zxid > f.commitTarget) f.commitTarget = msg.txn.zxid;
        if (f.phase === 'broadcast') this.applyCommits();
        return;
      case 'commit':
        if (msg.zxid > f.commitTarget) f.commitTarget = msg.zxid;
        if (f.phase === 'broadcast') {
          if (f.commitTarget > this.lastLogged) {
            this.lookForLeader(`commit ${formatZxid(f.commitTarget)} for a proposal never received`);
            return;
          }
          this.applyCommits();
        }
        return;
      case 'uptodate':
        if (f.phase !== 'sync' || !f.newleaderAcked) return;
        f.phase = 'broadcast';
        if (msg.committed > f.commitTarget) f.commitTarget = msg.committed;
        this.applyCommits();
        this.info(this.state === 'observing' ? 'observing' : 'following', {
          leader: f.leader, epoch: f.epoch, lastZxid: formatZxid(this.lastLogged),
        });
        this.setServing(true);
        return;
      case 'ping': {
        const touches: [bigint, number][] = [...f.touches];
        f.touches.clear();
        this.toLeader(f, { t: 'ping', epoch: f.epoch, seq: msg.seq, touches });
        if (msg.committed !== undefined && f.phase === 'broadcast' && this.state === 'following') {
          if (msg.committed > f.commitTarget) f.commitTarget = msg.committed;
          if (f.commitTarget > this.lastLogged) {
            this.lookForLeader(`leader committed ${formatZxid(f.commitTarget)} but we only logged ${formatZxid(this.lastLogged)}`);
            return;
          }
          this.applyCommits();
        }
        return;
      }
      case 'syncreply':
        this.out.syncDone.push(msg.id);
        return;
      default:
        this.warn('unexpected message for a learner', { t: msg.t });
    }
  }

  /** Logs a txn from the leader after checking it continues our log without a gap. */
  private acceptTxn(t: Txn, how: string): boolean {
    if (t.zxid <= this.lastLogged) return true; // duplicate (ZAB: ignore duplicate proposals)
    const last = this.lastLogged;
    // Next in the same epoch: last + 1 without overflowing into the epoch bits (counter 0); or
    // the first of a later epoch. (Cheapest test first: BigInt arithmetic allocates.)
    const contiguous = t.zxid === last + 1n ? counterOf(t.zxid) !== 0
      : epochOf(t.zxid) > epochOf(last) && counterOf(t.zxid) === 1;
    if (!contiguous) {
      this.lookForLeader(`gap in ${how}: got ${formatZxid(t.zxid)} after ${formatZxid(last)}`);
      return false;
    }
    this.logTxn(t);
    return true;
  }

  private applyCommits(): void {
    const f = this.learn!;
    let upTo = f.commitTarget < this.lastLogged ? f.commitTarget : this.lastLogged;
    if (upTo <= this.lastCommitted) return;
    const from = this.windowIndexAfter(this.lastCommitted);
    const to = this.windowIndexAfter(upTo);
    for (let i = from; i < to; i++) this.out.commits.push(this.windowAt(i));
    if (to > from) upTo = this.windowAt(to - 1).zxid;
    this.lastCommitted = upTo;
    if (upTo > this.confirmed) this.confirmed = upTo;
    this.trimWindow();
  }

  private learnerTick(now: number): void {
    const f = this.learn!;
    const limit = f.phase === 'broadcast' ? this.cfg.syncLimit : this.cfg.initLimit;
    if (now - f.lastHeard >= limit) {
      this.lookForLeader(`leader ${f.leader} silent for ${now - f.lastHeard} ticks`);
      return;
    }
    if (f.phase !== 'broadcast' && now - f.startedTick > this.cfg.initLimit) {
      // A lost NEWLEADER/UPTODATE must not leave us syncing forever while pings keep flowing.
      this.lookForLeader(`not synced with leader ${f.leader} within initLimit (${this.cfg.initLimit} ticks)`);
      return;
    }
    if (f.phase === 'info' && f.epoch === 0) {
      this.send(f.leader, { t: 'finfo', acceptedEpoch: this.acceptedEpoch, observer: this.state === 'observing', conn: f.conn });
    }
  }

  // ------------------------------------------------------------------ helpers

  private setServing(s: boolean): void {
    if (this.serving === s) return;
    this.serving = s;
    this.out.events.push({ type: 'serving', serving: s });
  }

  private send(to: number, msg: ZabMessage): void {
    this.out.messages.push([to, msg]);
  }

  private toLearner(h: LearnerHandle, msg: ZabMessage & Sequenced): void {
    // Anything sent to a learner goes after the proposals made before it.
    if (msg.t !== 'proposal' && this.lead && this.lead.unsent.length > 0) this.flushProposals();
    msg.c = h.conn;
    msg.s = ++h.sendSeq;
    this.out.messages.push([h.id, msg]);
  }

  private toLeader(f: LearnerState, msg: ZabMessage & Sequenced): void {
    // Anything sent to the leader goes after the writes forwarded before it.
    if (msg.t !== 'request' && f.unforwarded.length > 0) this.flushForwards();
    msg.c = f.conn;
    msg.s = ++f.sendSeq;
    this.out.messages.push([f.leader, msg]);
  }

  private warn(message: string, detail?: Record<string, unknown>): void {
    this.out.events.push(detail ? { type: 'warn', message, detail } : { type: 'warn', message });
  }

  private info(message: string, detail?: Record<string, unknown>): void {
    this.out.events.push(detail ? { type: 'info', message, detail } : { type: 'info', message });
  }
}
