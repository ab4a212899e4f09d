import type { SessionEntry, SnapshotNode } from '../core/tree.js';
import type { Txn } from '../core/txn.js';

/** Session table entry as persisted in a snapshot. */
export interface SnapshotSession extends SessionEntry {
  id: bigint;
}

/** The header of a snapshot: the zxid it starts at and the session table. */
export interface SnapshotHeader {
  /** Last zxid applied when the (fuzzy) snapshot started; replaying the log after it yields the exact state. */
  zxid: bigint;
  /** Wall clock when taken (ms). */
  time: number;
  sessions: SnapshotSession[];
  /** Number of node records, when known (progress reporting). */
  nodeCount?: number;
}

/** A snapshot as read back from storage, streamed in chunks of node records (parents first). */
export interface StoredSnapshot {
  header: SnapshotHeader;
  chunks(): AsyncIterable<SnapshotNode[]>;
}

/** A whole snapshot in memory (what SNAP sync carries). */
export interface SnapshotData {
  header: SnapshotHeader;
  nodes: SnapshotNode[];
}

/** What a storage recovered when opened. */
export interface StorageState {
  currentEpoch: number;
  acceptedEpoch: number;
  /** zxid of the newest valid snapshot, 0n when there is none. */
  snapshotZxid: bigint;
  /** Last zxid in the txn log (or the snapshot's zxid when the log is empty after it). */
  lastZxid: bigint;
  /**
   * Damage found and dealt with while opening (a truncated log tail, a snapshot skipped for an
   * older one, an unfinished snapshot removed), for the member to log. Absent or empty: none.
   */
  damage?: StorageDamage[];
}

/** One piece of damage found when opening a storage, and what was done about it. */
export interface StorageDamage {
  kind: 'log-tail-truncated' | 'log-before-snapshot-damaged' | 'snapshot-corrupt' | 'snapshot-unfinished';
  /** Where, e.g. `log 0x100000007` or `snapshot 0x100000064 chunk 3`. */
  where: string;
  /** What is wrong, e.g. `checksum mismatch (stored …, computed …)`. */
  detail: string;
  /** What was done: e.g. `removed 3 records 0x100000007..0x100000009`. */
  action: string;
}

/** Counters a storage keeps (admin output, group-commit tests and benchmarks). */
export interface StorageStats {
  /** `append` calls. */
  appends: number;
  /** Txns appended. */
  txns: number;
  /** Batches written to the log (synced ones when forceSync); fewer than `appends` = group commit at work. */
  batches: number;
}

/** A snapshot as listed by {@link Storage.snapshots}. */
export interface SnapshotInfo {
  zxid: bigint;
  /** `valid`: verified; `unverified`: complete, not checked yet; `corrupt`: failed a check; `unfinished`: no end marker. */
  status: 'valid' | 'unverified' | 'corrupt' | 'unfinished';
  header?: SnapshotHeader;
  /** Number of stored chunks found. */
  chunks: number;
  /** What is wrong with a corrupt or unfinished snapshot. */
  problem?: string;
}

/**
 * Durable state of one member: the txn log (write-ahead, zxid-ordered), snapshots and the two
 * epochs ZAB persists. One compliance suite (test/storage) runs against every implementation.
 *
 * Durability contract: when `append`, `truncateAfter`, `writeSnapshot`, `installSnapshot` or
 * `setEpochs` resolve, what they wrote survives a crash (unless the storage was opened with
 * `forceSync: false`). Concurrent `append` calls are group-committed but resolve in order.
 */
export interface Storage {
  /** Human-readable description (directory, kind) for logs and admin output. */
  readonly description: string;
  /**
   * Opens (and recovers) the storage; must be called before anything else. May be called again
   * while open (the member does after a TRUNC, to rebuild its tree): the state is analysed again.
   * Rejects with a StorageError (one-line message) when the data cannot be trusted.
   */
  open(): Promise<StorageState>;
  /** The newest valid snapshot, or undefined (a corrupt newest snapshot falls back to an older one). */
  latestSnapshot(): Promise<StoredSnapshot | undefined>;
  /** Txns with zxid > `afterZxid`, in order, in batches. */
  readLog(afterZxid: bigint): AsyncIterable<Txn[]>;
  /** Appends txns (zxids strictly increasing, greater than anything logged); resolves when durable. */
  append(txns: readonly Txn[]): Promise<void>;
  /** Removes every logged txn with zxid > `zxid`. */
  truncateAfter(zxid: bigint): Promise<void>;
  /**
   * Writes a snapshot (fuzzy: node chunks may be produced while the tree changes). `header` is read
   * once the chunks are consumed: the member completes its session table (request ids and results
   * of remote sessions, SessionEntry) after producing the last chunk.
   */
  writeSnapshot(header: SnapshotHeader, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>): Promise<void>;
  /** Replaces all state with a snapshot received from the leader (SNAP sync): snapshot written, log emptied. */
  installSnapshot(header: SnapshotHeader, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>): Promise<void>;
  /** Persists ZAB's epochs. */
  setEpochs(epochs: { currentEpoch?: number; acceptedEpoch?: number }): Promise<void>;
  /** Keeps the newest `retainSnapshots` snapshots and the log they need; returns what was removed. */
  purge(retainSnapshots: number): Promise<{ snapshots: number; txns: number }>;
  /** Closes the storage (pending appends complete first). */
  close(): Promise<void>;
  /** Counters (optional). */
  stats?(): StorageStats;
  /** Every snapshot present, newest first, with its status (optional; dump tools, tests). */
  snapshots?(): Promise<SnapshotInfo[]>;
  /** One snapshot by zxid, verified while streaming (optional; dump tools, tests). */
  readSnapshot?(zxid: bigint): Promise<StoredSnapshot>;
}
