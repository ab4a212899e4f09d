import type { ACL } from './acl.js';
import type { ErrorCode } from './errors.js';

/**
 * Txns are what the leader's prep turns requests into and what every member applies, in zxid
 * order, with `applyTxn`. They carry final values (the resolved sequential path, the new
 * version, the parent's new counters) so that applying is deterministic and idempotent on
 * replay over a fuzzy snapshot.
 */

/** Node flavours beyond plain persistent/ephemeral. */
export const NodeKind = { Persistent: 0, Ephemeral: 1, Container: 2, Ttl: 3 } as const;
export type NodeKind = (typeof NodeKind)[keyof typeof NodeKind];

export interface CreateTxn {
  type: 'create';
  path: string;
  data: Uint8Array;
  acl: ACL[];
  /** Owning session for ephemerals, 0n otherwise. */
  ephemeralOwner: bigint;
  kind: NodeKind;
  /** TTL in ms for TTL nodes, 0 otherwise. */
  ttl: number;
  /** The parent's cversion after this create. */
  pcv: number;
  /** The parent's child-create counter after this create (sequential names come from it). */
  pseq: number;
}

export interface DeleteTxn {
  type: 'delete';
  path: string;
  /** The parent's cversion after this delete. */
  pcv: number;
}

export interface SetDataTxn {
  type: 'setData';
  path: string;
  data: Uint8Array;
  /** The node's version after this change. */
  version: number;
}

export interface SetACLTxn {
  type: 'setACL';
  path: string;
  acl: ACL[];
  /** The node's aversion after this change. */
  aversion: number;
}

export interface CheckTxn {
  type: 'check';
  path: string;
}

export interface MultiTxn {
  type: 'multi';
  ops: (CreateTxn | DeleteTxn | SetDataTxn | CheckTxn)[];
}

/** A request that failed in prep still takes a zxid, so its reply keeps the session's FIFO order. */
export interface ErrorTxn {
  type: 'error';
  code: ErrorCode;
  path?: string;
  /** For a failed multi: index of the failing op and the number of ops. */
  failedOp?: number;
  opCount?: number;
}

export interface CreateSessionTxn {
  type: 'createSession';
  timeoutMs: number;
  /** Origin (ip or 'local') the session was created from, for admin and per-origin limits. */
  origin: string;
}

export interface CloseSessionTxn {
  type: 'closeSession';
  /** Why: 'close' (client asked) or 'expire' (the leader's tracker decided). */
  reason: 'close' | 'expire';
  /**
   * The session's ephemerals as prep saw them, each with its parent's new cversion, so that
   * replay over a fuzzy snapshot sets absolute values (ZooKeeper's CloseSessionTxn.paths2Delete).
   */
  deletes: DeleteTxn[];
}

export type TxnOp =
  | CreateTxn
  | DeleteTxn
  | SetDataTxn
  | SetACLTxn
  | CheckTxn
  | MultiTxn
  | ErrorTxn
  | CreateSessionTxn
  | CloseSessionTxn;

/** One replicated state change with its position in the total order. */
export interface Txn {
  zxid: bigint;
  /** Session that issued it (for createSession: the new session's id). 0n for system txns. */
  sessionId: bigint;
  /** The session's request id, so the serving member can match the reply. */
  cxid: number;
  /** Leader's wall clock when prepared (ms); becomes ctime/mtime. */
  time: number;
  op: TxnOp;
}
