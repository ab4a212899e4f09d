import type { Request } from '../core/request.js';
import type { SessionEntry, SnapshotNode } from '../core/tree.js';
import type { Txn } from '../core/txn.js';

/** A member's state as it advertises it in election notifications. */
export type PeerState = 'looking' | 'leading' | 'following' | 'observing';

/** Fast leader election notification (ZooKeeper's Notification). */
export interface VoteMsg {
  t: 'vote';
  /** Proposed (or, when not looking, followed) leader. */
  leader: number;
  /** That leader's last logged zxid. */
  zxid: bigint;
  /** That leader's currentEpoch. */
  peerEpoch: number;
  /** Election round (ZooKeeper's electionEpoch / logicalclock). */
  round: number;
  state: PeerState;
}

/** Follower/observer → leader: FOLLOWERINFO / OBSERVERINFO. */
/** `conn` names this connection attempt; every later message of it carries it (stale ones are ignored). */
export interface FollowerInfoMsg { t: 'finfo'; acceptedEpoch: number; observer: boolean; conn: number }
/** Leader → learner: LEADERINFO with the new epoch. */
export interface LeaderInfoMsg { t: 'linfo'; epoch: number }
/**
 * Learner → leader: ACKEPOCH with its currentEpoch and last logged zxid, plus the last zxid it
 * logged in each of its most recent epochs so the leader can find the exact divergence point.
 */
export interface AckEpochMsg { t: 'ackepoch'; epoch: number; currentEpoch: number; lastZxid: bigint; epochs: [number, bigint][] }
/** Leader → learner: drop logged txns after `zxid`. */
export interface TruncMsg { t: 'trunc'; epoch: number; zxid: bigint }
/** Leader → learner: txns of the leader's history to log (committed once UPTODATE arrives). */
export interface DiffMsg { t: 'diff'; epoch: number; txns: Txn[] }
/** Leader → learner: start of a full snapshot. */
export interface SnapMsg { t: 'snap'; epoch: number; zxid: bigint; time: number; sessions: [bigint, SessionEntry][]; count: number }
/** Leader → learner: a chunk of snapshot nodes (parents first). */
export interface SnapChunkMsg { t: 'snapchunk'; epoch: number; nodes: SnapshotNode[] }
/** Leader → learner: end of the snapshot. */
export interface SnapEndMsg { t: 'snapend'; epoch: number }
/** Leader → learner: NEWLEADER; the learner persists currentEpoch after everything before it, then ACKs. */
export interface NewLeaderMsg { t: 'newleader'; epoch: number; zxid: bigint }
/** Learner → leader: cumulative ACK (everything ≤ zxid is durable), or the NEWLEADER ACK. */
export interface AckMsg { t: 'ack'; epoch: number; zxid: bigint; newleader: boolean }
/** Leader → learner: UPTODATE; commit up to `committed` and start serving. */
export interface UpToDateMsg { t: 'uptodate'; epoch: number; committed: bigint }
/** Leader → follower: proposals, in zxid order (batched: every txn proposed in one round goes in one message). */
export interface ProposalMsg { t: 'proposal'; epoch: number; txns: Txn[] }
/** Leader → follower: everything ≤ zxid is committed. */
export interface CommitMsg { t: 'commit'; epoch: number; zxid: bigint }
/** Leader → observer: a committed txn. */
export interface InformMsg { t: 'inform'; epoch: number; txn: Txn }
/** Learner → leader: sessions' writes to prepare, in order (batched: those forwarded in one round). */
export interface RequestMsg { t: 'request'; epoch: number; reqs: Request[] }
/** Leader → learner heartbeat; learner → leader heartbeat carrying touched sessions. */
/** `seq` lets a leader confirm it still leads a quorum before answering a sync (like Raft's ReadIndex). */
export interface PingMsg { t: 'ping'; epoch: number; seq: number; touches: [bigint, number][]; committed?: bigint }
/** Learner → leader: sync request; leader → learner: its reply, after the commits before it. */
export interface SyncMsg { t: 'sync'; epoch: number; id: number }
export interface SyncReplyMsg { t: 'syncreply'; epoch: number; id: number }

/**
 * Every message between a leader and a learner carries the learner's connection id `c` and a
 * per-direction sequence number `s`, so that a lost, duplicated or reordered message (which TCP
 * never produces, but a faulty network or a reconnect can) is detected: duplicates are ignored,
 * a gap makes the learner re-sync.
 */
export interface Sequenced { c?: number; s?: number }

export type ZabMessage = VoteMsg | ((
  | FollowerInfoMsg | LeaderInfoMsg | AckEpochMsg | TruncMsg | DiffMsg | SnapMsg | SnapChunkMsg
  | SnapEndMsg | NewLeaderMsg | AckMsg | UpToDateMsg | ProposalMsg | CommitMsg | InformMsg | RequestMsg
  | PingMsg | SyncMsg | SyncReplyMsg) & Sequenced);

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
// A literal, not 1n << 64n: BigInt arithmetic allocates, and this runs for every txn received.
const TWO_TO_64 = 0x10000000000000000n;
const isBig = (v: unknown): v is bigint => typeof v === 'bigint' && v >= 0n && v < TWO_TO_64;
const isBytes = (v: unknown): boolean => v instanceof Uint8Array;
const isStr = (v: unknown): v is string => typeof v === 'string';

// Loops rather than every(() => …) on this path: it runs for every txn a follower receives.
function isAclEntry(a: unknown): boolean {
  return a !== null && typeof a === 'object'
    && isInt((a as { perms: unknown }).perms) && isStr((a as { scheme: unknown }).scheme) && isStr((a as { id: unknown }).id);
}

function isAcl(v: unknown): boolean {
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (!isAclEntry(v[i])) return false;
  return true;
}

function allSubOps(v: unknown, deletesOnly: boolean): boolean {
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) {
    const o = v[i] as { type?: unknown } | null;
    if (!isSubOp(o) || (deletesOnly && o!.type !== 'delete')) return false;
  }
  return true;
}

function isSubOp(o: unknown): boolean {
  if (o === null || typeof o !== 'object') return false;
  const x = o as Record<string, unknown>;
  switch (x.type) {
    case 'create': return isStr(x.path) && isBytes(x.data) && isAcl(x.acl) && isBig(x.ephemeralOwner) && isInt(x.kind) && isInt(x.ttl) && isInt(x.pcv) && isInt(x.pseq);
    case 'delete': return isStr(x.path) && isInt(x.pcv);
    case 'setData': return isStr(x.path) && isBytes(x.data) && isInt(x.version);
    case 'check': return isStr(x.path);
    default: return false;
  }
}

/** Structural validation of a txn received from another member (never trust the wire). */
export function isValidTxn(t: unknown): t is Txn {
  if (t === null || typeof t !== 'object') return false;
  const x = t as Record<string, unknown>;
  if (!isBig(x.zxid) || !isBig(x.sessionId) || typeof x.cxid !== 'number' || typeof x.time !== 'number') return false;
  const op = x.op as Record<string, unknown> | null;
  if (op === null || typeof op !== 'object') return false;
  switch (op.type) {
    case 'create': case 'delete': case 'setData': case 'check': return isSubOp(op);
    case 'setACL': return isStr(op.path) && isAcl(op.acl) && isInt(op.aversion);
    case 'multi': return allSubOps(op.ops, false);
    case 'error': return isStr(op.code);
    case 'createSession': return isInt(op.timeoutMs) && isStr(op.origin);
    case 'closeSession': return allSubOps(op.deletes, true);
    default: return false;
  }
}

function allTxns(v: unknown[]): boolean {
  for (let i = 0; i < v.length; i++) if (!isValidTxn(v[i])) return false;
  return true;
}

function isSnapNode(n: unknown): boolean {
  if (n === null || typeof n !== 'object') return false;
  const x = n as Record<string, unknown>;
  const s = x.stat as Record<string, unknown> | null;
  return isStr(x.path) && isBytes(x.data) && isAcl(x.acl) && isInt(x.seq) && isInt(x.kind) && typeof x.ttl === 'number'
    && s !== null && typeof s === 'object' && isBig(s.czxid) && isBig(s.mzxid) && isBig(s.pzxid) && isBig(s.ephemeralOwner);
}

function isRequest(r: unknown): r is Request {
  if (r === null || typeof r !== 'object') return false;
  const x = r as Record<string, unknown>;
  return isBig(x.sessionId) && typeof x.cxid === 'number' && Array.isArray(x.auth) && x.op !== null && typeof x.op === 'object';
}

/** True when `m` is a well-formed ZAB message; anything else is dropped and logged by the caller. */
export function isValidZabMessage(m: unknown): m is ZabMessage {
  if (m === null || typeof m !== 'object') return false;
  const x = m as Record<string, unknown>;
  if (x.t !== 'vote' && x.t !== 'finfo' && !isInt(x.epoch)) return false;
  if ((x.c !== undefined && !isInt(x.c)) || (x.s !== undefined && !isInt(x.s))) return false;
  switch (x.t) {
    case 'vote':
      return isInt(x.leader) && isBig(x.zxid) && isInt(x.peerEpoch) && isInt(x.round)
        && (x.state === 'looking' || x.state === 'leading' || x.state === 'following' || x.state === 'observing');
    case 'finfo': return isInt(x.acceptedEpoch) && typeof x.observer === 'boolean' && isInt(x.conn);
    case 'linfo': return true;
    case 'ackepoch': return isInt(x.currentEpoch) && isBig(x.lastZxid) && Array.isArray(x.epochs)
      && x.epochs.every((e) => Array.isArray(e) && isInt(e[0]) && isBig(e[1]));
    case 'trunc': return isBig(x.zxid);
    case 'diff': return Array.isArray(x.txns) && allTxns(x.txns);
    case 'snap': return isBig(x.zxid) && typeof x.time === 'number' && isInt(x.count) && Array.isArray(x.sessions)
      && x.sessions.every((s) => Array.isArray(s) && isBig(s[0]) && s[1] !== null && typeof s[1] === 'object');
    case 'snapchunk': return Array.isArray(x.nodes) && x.nodes.every(isSnapNode);
    case 'snapend': return true;
    case 'newleader': return isBig(x.zxid);
    case 'ack': return isBig(x.zxid) && typeof x.newleader === 'boolean';
    case 'uptodate': return isBig(x.committed);
    case 'proposal': return Array.isArray(x.txns) && x.txns.length > 0 && allTxns(x.txns);
    case 'inform': return isValidTxn(x.txn);
    case 'commit': return isBig(x.zxid);
    case 'request': return Array.isArray(x.reqs) && x.reqs.length > 0 && x.reqs.every(isRequest);
    case 'ping': return isInt(x.seq) && (x.committed === undefined || isBig(x.committed)) && Array.isArray(x.touches) && x.touches.every((e) => Array.isArray(e) && isBig(e[0]) && isInt(e[1]));
    case 'sync': case 'syncreply': return isInt(x.id);
    default: return false;
  }
}
