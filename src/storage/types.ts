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
  /** Opens (and recovers) the storage. Must be called once before anything else. */
  open(): Promise<StorageState>;
  /** The newest valid snapshot, or undefined (a corrupt newest snapshot falls back to an older one). */
  latestSnapshot(): Promise<StoredSnapshot | undefined>;
  /** Txns with zxid > `afterZxid`, in order, in batches. */
  readLog(afterZxid: bigint): AsyncIterable<Txn[]>;
  /** Appends txns (zxids strictly increasing, greater than anything logged); resolves when durable. */
  append(txns: readonly Txn[]): Promise<void>;
  /** Removes every logged txn with zxid > `zxid`. */
  truncateAfter(zxid: bigint): Promise<void>;
  /** Writes a snapshot (fuzzy: node chunks may be produced while the tree changes). */
  writeSnapshot(header: SnapshotHeader, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>): Promise<void>;
  /** Replaces all state with a snapshot received from the leader (SNAP sync): snapshot written, log emptied. */
  installSnapshot(header: SnapshotHeader, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>): Promise<void>;
  /** Persists ZAB's epochs. */
  setEpochs(epochs: { currentEpoch?: number; acceptedEpoch?: number }): Promise<void>;
  /** Keeps the newest `retainSnapshots` snapshots and the log they need; returns what was removed. */
  purge(retainSnapshots: number): Promise<{ snapshots: number; txns: number }>;
  /** Closes the storage (pending appends complete first). */
  close(): Promise<void>;
}
