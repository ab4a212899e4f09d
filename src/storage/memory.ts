import type { SnapshotNode } from '../core/tree.js';
import type { Txn } from '../core/txn.js';
import type { SnapshotHeader, Storage, StorageState, StoredSnapshot } from './types.js';

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
  private snapshots: MemSnapshot[] = [];
  private currentEpoch = 0;
  private acceptedEpoch = 0;
  private opened = false;
  /** Monotone sequence of writes; a crash drops those not yet durable. */
  private pending = new Set<() => void>();
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly options: MemoryStorageOptions = {}) {}

  private durable<T>(apply: () => T): Promise<T> {
    // Writes become durable in issue order (a log is sequential).
    const p = this.chain.then(() => new Promise<T>((resolve, reject) => {
      const fire = (): void => {
        if (!this.pending.has(fire)) return;
        this.pending.delete(fire);
        try {
          resolve(apply());
        } catch (e) {
          reject(e as Error);
        }
      };
      this.pending.add(fire);
      if (this.options.schedule) this.options.schedule(fire);
      else fire();
    }));
    this.chain = p.then(() => undefined, () => undefined);
    return p;
  }

  async open(): Promise<StorageState> {
    this.opened = true;
    this.pending.clear();
    this.chain = Promise.resolve();
    const snap = this.snapshots[this.snapshots.length - 1];
    const snapshotZxid = snap?.header.zxid ?? 0n;
    const last = this.log[this.log.length - 1]?.zxid ?? 0n;
    return {
      currentEpoch: this.currentEpoch,
      acceptedEpoch: this.acceptedEpoch,
      snapshotZxid,
      lastZxid: last > snapshotZxid ? last : snapshotZxid,
    };
  }

  async latestSnapshot(): Promise<StoredSnapshot | undefined> {
    const s = this.snapshots[this.snapshots.length - 1];
    if (!s) return undefined;
    const nodes = s.nodes;
    return {
      header: s.header,
      async *chunks() {
        for (let i = 0; i < nodes.length; i += 4096) yield nodes.slice(i, i + 4096);
      },
    };
  }

  async *readLog(afterZxid: bigint): AsyncIterable<Txn[]> {
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
    this.assertOpen();
    const batch = txns.slice();
    return this.durable(() => {
      for (const t of batch) {
        const last = this.log[this.log.length - 1];
        if (last && t.zxid <= last.zxid) throw new Error(`append out of order: ${t.zxid} after ${last.zxid}`);
        this.log.push(t);
      }
    });
  }

  truncateAfter(zxid: bigint): Promise<void> {
    this.assertOpen();
    return this.durable(() => {
      let n = this.log.length;
      while (n > 0 && this.log[n - 1]!.zxid > zxid) n--;
      this.log.length = n;
    });
  }

  async writeSnapshot(header: SnapshotHeader, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>): Promise<void> {
    this.assertOpen();
    const nodes: SnapshotNode[] = [];
    for await (const c of chunks) for (const n of c) nodes.push(n);
    return this.durable(() => {
      this.snapshots.push({ header: { ...header, nodeCount: nodes.length }, nodes });
    });
  }

  async installSnapshot(header: SnapshotHeader, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>): Promise<void> {
    this.assertOpen();
    const nodes: SnapshotNode[] = [];
    for await (const c of chunks) for (const n of c) nodes.push(n);
    return this.durable(() => {
      this.snapshots.push({ header: { ...header, nodeCount: nodes.length }, nodes });
      this.log = [];
    });
  }

  setEpochs(e: { currentEpoch?: number; acceptedEpoch?: number }): Promise<void> {
    this.assertOpen();
    return this.durable(() => {
      if (e.acceptedEpoch !== undefined) this.acceptedEpoch = e.acceptedEpoch;
      if (e.currentEpoch !== undefined) this.currentEpoch = e.currentEpoch;
    });
  }

  async purge(retainSnapshots: number): Promise<{ snapshots: number; txns: number }> {
    const keep = Math.max(1, retainSnapshots);
    const drop = Math.max(0, this.snapshots.length - keep);
    this.snapshots.splice(0, drop);
    const oldest = this.snapshots[0]?.header.zxid;
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
    this.pending.clear();
    this.chain = Promise.resolve();
    this.opened = false;
  }

  /** Number of logged txns (tests). */
  get logLength(): number {
    return this.log.length;
  }

  /** What is durable right now (tests check persist-before-send against it). */
  durableState(): { currentEpoch: number; acceptedEpoch: number; lastZxid: bigint } {
    const snap = this.snapshots[this.snapshots.length - 1]?.header.zxid ?? 0n;
    const last = this.log[this.log.length - 1]?.zxid ?? 0n;
    return { currentEpoch: this.currentEpoch, acceptedEpoch: this.acceptedEpoch, lastZxid: last > snap ? last : snap };
  }

  private assertOpen(): void {
    if (!this.opened) throw new Error('storage is not open');
  }
}

/** An in-memory storage (the default for `startMember` without `storage`). */
export function memoryStorage(options?: MemoryStorageOptions): MemoryStorage {
  return new MemoryStorage(options);
}
