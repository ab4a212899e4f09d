import type { SnapshotNode } from '../core/tree.js';
import type { Txn } from '../core/txn.js';
import { formatZxid } from '../core/zxid.js';
import { StorageError } from './errors.js';
import type { SnapshotHeader, SnapshotInfo, Storage, StorageState, StorageStats, StoredSnapshot } from './types.js';

interface MemSnapshot {
  header: SnapshotHeader;
  nodes: SnapshotNode[];
}

export interface MemoryStorageOptions {
  /**
   * Schedules the moment a write becomes durable (simulation: a virtual fsync delay). Default:
   * durable at once. Writes not yet durable are lost by {@link MemoryStorage.crash}.
   */
  schedule?: (durable: () => void) => void;
  /** Snapshots kept by purge when a caller does not say (default 3). */
  retain?: number;
}

/**
 * In-memory storage: the "disk" is this object, so it survives a member's stop/start in the
 * same process (tests restart members on it). `crash()` models power loss: writes whose
 * durability was not yet reached are discarded.
 */
export class MemoryStorage implements Storage {
  readonly description = 'memory';
  private log: Txn[] = [];
  /** Oldest first. */
  private snaps: MemSnapshot[] = [];
  private counters: StorageStats = { appends: 0, txns: 0, batches: 0 };
  private currentEpoch = 0;
  private acceptedEpoch = 0;
  private opened = false;
  /** Monotone sequence of writes; a crash drops those not yet durable. */
  private pending = new Set<() => void>();
  private chain: Promise<void> = Promise.resolve();
  /** Bumped by crash() and open(): writes of an earlier incarnation are void. */
  private generation = 0;
  /** Bumped by truncateAfter and installSnapshot: a snapshot started before describes an abandoned state. */
  private superseded = 0;

  constructor(private readonly options: MemoryStorageOptions = {}) {}

  private durable<T>(apply: () => T, gen = this.generation): Promise<T> {
    // Writes become durable in issue order (a log is sequential). A write issued before a crash
    // never lands after it, even if its turn in the chain comes later (generation check).
    const p = this.chain.then(() => new Promise<T>((resolve, reject) => {
      if (gen !== this.generation) {
        reject(new StorageError('FAILED', 'the storage crashed before this write became durable'));
        return;
      }
      const fire = (): void => {
        if (!this.pending.has(fire)) return;
        this.pending.delete(fire);
        try {
          resolve(apply());
        } catch (e) {
          reject(e as Error);
        }
      };
      // A crash fails the write (in-flight I/O of a dead process never completes successfully).
      (fire as { abort?: () => void }).abort = () => reject(new StorageError('FAILED', 'the storage crashed before this write became durable'));
      this.pending.add(fire);
      if (this.options.schedule) this.options.schedule(fire);
      else fire();
    }));
    this.chain = p.then(() => undefined, () => undefined);
    return p;
  }

  async open(): Promise<StorageState> {
    this.opened = true;
    this.generation++;
    this.pending.clear();
    this.chain = Promise.resolve();
    const snap = this.snaps[this.snaps.length - 1];
    const snapshotZxid = snap?.header.zxid ?? 0n;
    const last = this.log[this.log.length - 1]?.zxid ?? 0n;
    return {
      currentEpoch: this.currentEpoch,
      acceptedEpoch: this.acceptedEpoch,
      snapshotZxid,
      lastZxid: last > snapshotZxid ? last : snapshotZxid,
      damage: [],
    };
  }

  async latestSnapshot(): Promise<StoredSnapshot | undefined> {
    this.assertOpen();
    const s = this.snaps[this.snaps.length - 1];
    return s ? this.stored(s) : undefined;
  }

  async readSnapshot(zxid: bigint): Promise<StoredSnapshot> {
    this.assertOpen();
    const s = this.snaps.find((x) => x.header.zxid === zxid);
    if (!s) throw new StorageError('BAD_ARGUMENT', `no snapshot ${formatZxid(zxid)} in memory storage`);
    return this.stored(s);
  }

  async snapshots(): Promise<SnapshotInfo[]> {
    this.assertOpen();
    return this.snaps.map((s) => ({ zxid: s.header.zxid, status: 'valid' as const, header: s.header, chunks: Math.ceil(s.nodes.length / 4096) })).reverse();
  }

  stats(): StorageStats {
    return { ...this.counters };
  }

  private stored(s: MemSnapshot): StoredSnapshot {
    const nodes = s.nodes;
    return {
      header: s.header,
      async *chunks() {
        for (let i = 0; i < nodes.length; i += 4096) yield nodes.slice(i, i + 4096);
      },
    };
  }

  async *readLog(afterZxid: bigint): AsyncIterable<Txn[]> {
    this.assertOpen();
    const log = this.log;
    let lo = 0;
    let hi = log.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (log[mid]!.zxid <= afterZxid) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < log.length; i += 4096) yield log.slice(i, i + 4096);
  }

  append(txns: readonly Txn[]): Promise<void> {
    try {
      this.assertOpen();
      if (!Array.isArray(txns)) throw new StorageError('BAD_ARGUMENT', 'append needs an array of txns');
    } catch (e) {
      return Promise.reject(e);
    }
    this.counters.appends++;
    if (txns.length === 0) return Promise.resolve();
    const batch = txns.slice();
    return this.durable(() => {
      let prev = this.log[this.log.length - 1]?.zxid ?? this.snaps[this.snaps.length - 1]?.header.zxid ?? 0n;
      for (const t of batch) {
        if (t === null || typeof t !== 'object' || typeof t.zxid !== 'bigint') throw new StorageError('BAD_ARGUMENT', 'append: not a txn (zxid must be a bigint)');
        if (t.zxid <= prev) throw new StorageError('BAD_ARGUMENT', `append out of order: ${formatZxid(t.zxid)} after ${formatZxid(prev)}`);
        prev = t.zxid;
      }
      for (const t of batch) this.log.push(t);
      this.counters.batches++;
      this.counters.txns += batch.length;
    });
  }

  truncateAfter(zxid: bigint): Promise<void> {
    try {
      this.assertOpen();
      if (typeof zxid !== 'bigint' || zxid < 0n) throw new StorageError('BAD_ARGUMENT', 'truncateAfter needs a zxid (bigint ≥ 0)');
    } catch (e) {
      return Promise.reject(e);
    }
    this.superseded++;
    return this.durable(() => {
      let n = this.log.length;
      while (n > 0 && this.log[n - 1]!.zxid > zxid) n--;
      this.log.length = n;
      // Snapshots newer than the truncation point describe a history being abandoned.
      this.snaps = this.snaps.filter((s) => s.header.zxid <= zxid);
    });
  }

  private async collect(header: SnapshotHeader, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>): Promise<SnapshotNode[]> {
    this.assertOpen();
    if (!header || typeof header.zxid !== 'bigint' || header.zxid < 0n || typeof header.time !== 'number' || !Array.isArray(header.sessions)) {
      throw new StorageError('BAD_ARGUMENT', 'snapshot header needs zxid (bigint), time (number) and sessions (array)');
    }
    const nodes: SnapshotNode[] = [];
    for await (const c of chunks) {
      if (!Array.isArray(c)) throw new StorageError('BAD_ARGUMENT', 'snapshot chunks must be arrays of nodes');
      for (const n of c) {
        if (typeof n?.path !== 'string' || !(n.data instanceof Uint8Array) || typeof n.stat !== 'object') {
          throw new StorageError('BAD_ARGUMENT', `snapshot node is malformed (path ${JSON.stringify(n?.path)})`);
        }
        nodes.push(n);
      }
    }
    return nodes;
  }

  async writeSnapshot(header: SnapshotHeader, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>): Promise<void> {
    const gen = this.generation;
    const superseded = this.superseded;
    const nodes = await this.collect(header, chunks);
    return this.durable(() => {
      if (superseded !== this.superseded) return; // the log was truncated or replaced meanwhile
      if (this.snaps.some((s) => s.header.zxid === header.zxid)) return; // already have this state
      this.snaps.push({ header: { ...header, nodeCount: nodes.length }, nodes });
      this.snaps.sort((a, b) => (a.header.zxid < b.header.zxid ? -1 : a.header.zxid > b.header.zxid ? 1 : 0));
    }, gen);
  }

  async installSnapshot(header: SnapshotHeader, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>): Promise<void> {
    const gen = this.generation;
    this.superseded++;
    const nodes = await this.collect(header, chunks);
    return this.durable(() => {
      this.snaps = [{ header: { ...header, nodeCount: nodes.length }, nodes }];
      this.log = [];
    }, gen);
  }

  setEpochs(e: { currentEpoch?: number; acceptedEpoch?: number }): Promise<void> {
    try {
      this.assertOpen();
      for (const name of ['acceptedEpoch', 'currentEpoch'] as const) {
        const v = e?.[name];
        if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new StorageError('BAD_ARGUMENT', `${name} must be an integer ≥ 0 (got ${String(v)})`);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.durable(() => {
      if (e.acceptedEpoch !== undefined) this.acceptedEpoch = e.acceptedEpoch;
      if (e.currentEpoch !== undefined) this.currentEpoch = e.currentEpoch;
    });
  }

  async purge(retainSnapshots: number): Promise<{ snapshots: number; txns: number }> {
    this.assertOpen();
    if (!Number.isInteger(retainSnapshots) || retainSnapshots < 1) {
      throw new StorageError('BAD_ARGUMENT', `purge needs to retain at least 1 snapshot (got ${String(retainSnapshots)})`);
    }
    const drop = Math.max(0, this.snaps.length - retainSnapshots);
    this.snaps.splice(0, drop);
    const oldest = this.snaps[0]?.header.zxid;
    let txns = 0;
    if (oldest !== undefined) {
      while (txns < this.log.length && this.log[txns]!.zxid <= oldest) txns++;
      this.log.splice(0, txns);
    }
    return { snapshots: drop, txns };
  }

  async close(): Promise<void> {
    await this.chain;
    this.opened = false;
  }

  /** Power loss: writes not yet durable are gone; the storage must be opened again. */
  crash(): void {
    this.generation++;
    const aborted = [...this.pending];
    this.pending.clear();
    for (const f of aborted) (f as { abort?: () => void }).abort?.();
    this.chain = Promise.resolve();
    this.opened = false;
  }

  /** Number of logged txns (tests). */
  get logLength(): number {
    return this.log.length;
  }

  /** What is durable right now (tests check persist-before-send against it). */
  durableState(): { currentEpoch: number; acceptedEpoch: number; lastZxid: bigint } {
    const snap = this.snaps[this.snaps.length - 1]?.header.zxid ?? 0n;
    const last = this.log[this.log.length - 1]?.zxid ?? 0n;
    return { currentEpoch: this.currentEpoch, acceptedEpoch: this.acceptedEpoch, lastZxid: last > snap ? last : snap };
  }

  private assertOpen(): void {
    if (!this.opened) throw new StorageError('CLOSED', 'memory storage is not open');
  }
}

/** An in-memory storage (the default for `startMember` without `storage`). */
export function memoryStorage(options?: MemoryStorageOptions): MemoryStorage {
  return new MemoryStorage(options);
}
