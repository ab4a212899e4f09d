import type { ACL } from '../core/acl.js';
import type { CreateMode } from '../core/createMode.js';
import type { OpResult } from '../core/errors.js';
import type { Stat } from '../core/stat.js';
import type { WatchEvent } from '../core/watches.js';

/** Data as callers pass it: bytes, or a string stored as UTF-8. */
export type Data = Uint8Array | string;

/** Session states, as Curator's ConnectionState plus CLOSED. */
export type SessionState = 'CONNECTED' | 'SUSPENDED' | 'RECONNECTED' | 'LOST' | 'READ_ONLY' | 'CLOSED';

/** A one-time (or, with addWatch, persistent) watch callback. */
export type Watcher = (event: WatchEvent) => void;

/**
 * When and how long to wait before retrying an operation that failed with CONNECTIONLOSS.
 * `allowRetry` returns the delay in ms before retry number `retryCount` (0-based), or `false` to give up.
 */
export interface RetryPolicy {
  allowRetry(retryCount: number, elapsedMs: number): number | false;
}

export interface SessionOptions {
  /** Requested session timeout; negotiated within the member's min/max. Default 10 000 ms. */
  sessionTimeoutMs?: number;
  /** Identities to authenticate with right after connecting (e.g. `{ scheme: 'digest', credentials: 'bob:secret' }`). */
  auth?: { scheme: string; credentials: string }[];
  /** Retried on CONNECTIONLOSS; default: none (fail fast, as ZooKeeper). */
  retry?: RetryPolicy;
  /**
   * Local sessions (`member.session()`): when the member has no quorum the session is
   * `READ_ONLY` instead of `SUSPENDED` — reads answer from the member's tree (possibly stale),
   * writes and sync fail with `NOTREADONLY` — and `RECONNECTED` once the quorum is back (`LOST`
   * after its timeout, as a suspended one). Opened while there is no quorum, it is `READ_ONLY`
   * after `syncLimit` ticks instead of waiting, and becomes a session of the ensemble (same id,
   * `CONNECTED`, watches registered relative to what it read) once there is one. Remote sessions
   * (`connect()`): every member is asked for a read-write session first, then a member without a
   * quorum may serve it `READ_ONLY`; while `READ_ONLY` the client looks for a member that serves
   * it read-write and moves there (`RECONNECTED`); when its member gets a quorum back the client
   * re-attaches read-write (`SUSPENDED` → `RECONNECTED`).
   */
  canBeReadOnly?: boolean;
  /** How long `member.session()` / `connect()` waits for a serving member before failing (default: the session timeout). */
  connectTimeoutMs?: number;
}

export interface CreateOptions {
  /** Default CreateMode.PERSISTENT. */
  mode?: CreateMode;
  /** Default Ids.OPEN_ACL_UNSAFE. */
  acl?: readonly ACL[];
  /** Create missing parents as PERSISTENT nodes (Curator's creatingParentsIfNeeded). */
  parents?: boolean;
  /** TTL for the TTL modes, in ms. */
  ttlMs?: number;
}

/** One operation of a `multi`, built with the `op` helpers. */
export type Op =
  | { type: 'create'; path: string; data: Uint8Array; acl: ACL[]; mode: CreateMode; ttl: number }
  | { type: 'delete'; path: string; version: number }
  | { type: 'setData'; path: string; data: Uint8Array; version: number }
  | { type: 'check'; path: string; version: number };

export type { OpResult, Stat, WatchEvent };
