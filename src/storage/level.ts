import { ClassicLevel } from 'classic-level';
import { crc32, decode, encode } from '../core/codec.js';
import type { SnapshotNode } from '../core/tree.js';
import type { Txn } from '../core/txn.js';
import { formatZxid } from '../core/zxid.js';
import type { SnapshotHeader, Storage, StorageState, StoredSnapshot } from './types.js';

/** Minimal logger shape (the member passes its structured logger). */
interface StorageLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

export interface LevelStorageOptions {
  /** fsync every batch before acknowledging (default true). false trades durability for speed. */
  forceSync?: boolean;
  logger?: StorageLogger;
}

type Bytes = Uint8Array;

const LOG = 0x4c; // 'L' + zxid(8)
const SNAP = 0x53; // 'S' + zxid(8) + kind + [index(4)]
const META = 0x4d; // 'M' + name
const SNAP_HEADER = 0x48;
const SNAP_CHUNK = 0x43;
const SNAP_END = 0x45;

function zxidBytes(prefix: number, zxid: bigint, extra = 0): Buffer {
  const b = Buffer.alloc(9 + extra);
  b[0] = prefix;
  b.writeBigUInt64BE(zxid, 1);
  return b;
}

function logKey(zxid: bigint): Buffer {
  return zxidBytes(LOG, zxid);
}

function snapKey(zxid: bigint, kind: number, index = 0): Buffer {
  const b = zxidBytes(SNAP, zxid, kind === SNAP_CHUNK ? 5 : 1);
  b[9] = kind;
  if (kind === SNAP_CHUNK) b.writeUInt32BE(index, 10);
  return b;
}

function metaKey(name: string): Buffer {
  return Buffer.concat([Buffer.from([META]), Buffer.from(name, 'utf8')]);
}

/** A record: crc32 of the payload (4 bytes BE), then the msgpack payload. */
function seal(value: unknown): Buffer {
  const payload = encode(value);
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32BE(crc32(payload), 0);
  out.set(payload, 4);
  return out;
}

export class CorruptRecordError extends Error {
  constructor(readonly where: string, detail: string) {
    super(`corrupt record at ${where}: ${detail}`);
    this.name = 'CorruptRecordError';
  }
}

function unseal(where: string, buf: Bytes): unknown {
  if (buf.length < 5) throw new CorruptRecordError(where, `record too short (${buf.length} bytes)`);
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const want = b.readUInt32BE(0);
  const got = crc32(b, 4);
  if (want !== got) throw new CorruptRecordError(where, `checksum mismatch (stored ${want.toString(16)}, computed ${got.toString(16)})`);
  try {
    return decode(b.subarray(4));
  } catch (e) {
    throw new CorruptRecordError(where, `undecodable (${(e as Error).message})`);
  }
}

interface PendingAppend {
  txns: readonly Txn[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Durable storage on LevelDB (classic-level): the txn log as one key per zxid, snapshots as
 * chunked records, epochs as meta keys; every value carries a CRC-32. Appends are group
 * committed: while one synced batch is being written, later appends queue up and go in the
 * next batch together.
 */
export class LevelStorage implements Storage {
  readonly description: string;
  private readonly db: ClassicLevel<Bytes, Bytes>;
  private readonly forceSync: boolean;
  private readonly log: StorageLogger | undefined;
  private queue: PendingAppend[] = [];
  private writing = false;
  private lastAppended = 0n;
  private opened = false;

  constructor(readonly directory: string, options: LevelStorageOptions = {}) {
    this.description = `leveldb:${directory}`;
    this.db = new ClassicLevel<Bytes, Bytes>(directory, { keyEncoding: 'view', valueEncoding: 'view' });
    this.forceSync = options.forceSync ?? true;
    this.log = options.logger;
  }

  async open(): Promise<StorageState> {
    try {
      await this.db.open();
    } catch (e) {
      const cause = (e as { cause?: Error }).cause?.message ?? (e as Error).message;
      if (/lock/i.test(cause)) {
        throw new Error(`data directory ${this.directory} is in use by another member (LevelDB lock held); stop it or use another directory`);
      }
      throw new Error(`cannot open data directory ${this.directory}: ${cause}`);
    }
    this.opened = true;
    const currentEpoch = await this.readMeta('currentEpoch', 0);
    const acceptedEpoch = await this.readMeta('acceptedEpoch', 0);
    const snap = await this.latestSnapshotHeader();
    const snapshotZxid = snap?.zxid ?? 0n;
    const lastLogged = await this.verifyLogTail();
    this.lastAppended = lastLogged;
    return { currentEpoch, acceptedEpoch, snapshotZxid, lastZxid: lastLogged > snapshotZxid ? lastLogged : snapshotZxid };
  }

  private async readMeta(name: string, dflt: number): Promise<number> {
    const v = await this.db.get(metaKey(name));
    if (v === undefined) return dflt;
    const n = unseal(`meta ${name}`, v);
    if (typeof n !== 'number') throw new CorruptRecordError(`meta ${name}`, 'not a number');
    return n;
  }

  /**
   * Checks the log from the end backwards until a valid record is found; invalid records at the
   * tail (a torn write) are reported and removed. Returns the last valid zxid.
   */
  private async verifyLogTail(): Promise<bigint> {
    const bad: Buffer[] = [];
    let last = 0n;
    for await (const [k, v] of this.db.iterator({ gte: logKey(0n), lte: logKey((1n << 64n) - 1n), reverse: true })) {
      const zxid = Buffer.from(k).readBigUInt64BE(1);
      try {
        const t = unseal(`log ${formatZxid(zxid)}`, v) as Txn;
        if (t.zxid !== zxid) throw new CorruptRecordError(`log ${formatZxid(zxid)}`, `key/record zxid mismatch (${formatZxid(t.zxid)})`);
        last = zxid;
        break;
      } catch (e) {
        this.log?.warn({ zxid: formatZxid(zxid), err: (e as Error).message }, 'corrupt log record at the tail; truncating it');
        bad.push(Buffer.from(k));
        if (bad.length > 1_000_000) break;
      }
    }
    if (bad.length > 0) await this.db.batch(bad.map((key) => ({ type: 'del' as const, key })), { sync: true });
    return last;
  }

  private async latestSnapshotHeader(): Promise<SnapshotHeader | undefined> {
    for (const s of await this.snapshotList()) {
      if (s.complete) return s.header;
    }
    return undefined;
  }

  /** Snapshots newest first, with whether each is complete and readable. */
  private async snapshotList(): Promise<{ zxid: bigint; header: SnapshotHeader; complete: boolean }[]> {
    const out: { zxid: bigint; header: SnapshotHeader; complete: boolean }[] = [];
    const lo = Buffer.from([SNAP]);
    const hi = Buffer.from([SNAP + 1]);
    const headers = new Map<bigint, SnapshotHeader>();
    const ends = new Set<bigint>();
    for await (const [k, v] of this.db.iterator({ gte: lo, lt: hi })) {
      const kb = Buffer.from(k);
      const zxid = kb.readBigUInt64BE(1);
      const kind = kb[9];
      if (kind === SNAP_HEADER) {
        try {
          headers.set(zxid, unseal(`snapshot ${formatZxid(zxid)} header`, v) as SnapshotHeader);
        } catch (e) {
          this.log?.warn({ zxid: formatZxid(zxid), err: (e as Error).message }, 'corrupt snapshot header');
        }
      } else if (kind === SNAP_END) {
        ends.add(zxid);
      }
    }
    for (const [zxid, header] of headers) out.push({ zxid, header, complete: ends.has(zxid) });
    out.sort((a, b) => (a.zxid > b.zxid ? -1 : a.zxid < b.zxid ? 1 : 0));
    return out;
  }

  async latestSnapshot(): Promise<StoredSnapshot | undefined> {
    for (const s of await this.snapshotList()) {
      if (!s.complete) continue;
      // Verify every chunk before trusting it; a corrupt snapshot falls back to an older one.
      try {
        let n = 0;
        for await (const chunk of this.readSnapshotChunks(s.zxid)) n += chunk.length;
        if (s.header.nodeCount !== undefined && n !== s.header.nodeCount) {
          throw new CorruptRecordError(`snapshot ${formatZxid(s.zxid)}`, `has ${n} nodes, header says ${s.header.nodeCount}`);
        }
      } catch (e) {
        this.log?.error({ zxid: formatZxid(s.zxid), err: (e as Error).message }, 'snapshot is corrupt; falling back to an older one');
        continue;
      }
      const zxid = s.zxid;
      return { header: s.header, chunks: () => this.readSnapshotChunks(zxid) };
    }
    return undefined;
  }

  private async *readSnapshotChunks(zxid: bigint): AsyncGenerator<SnapshotNode[]> {
    let expect = 0;
    for await (const [k, v] of this.db.iterator({ gte: snapKey(zxid, SNAP_CHUNK, 0), lte: snapKey(zxid, SNAP_CHUNK, 0xffffffff) })) {
      const idx = Buffer.from(k).readUInt32BE(10);
      if (idx !== expect) throw new CorruptRecordError(`snapshot ${formatZxid(zxid)}`, `chunk ${expect} missing`);
      expect++;
      const nodes = unseal(`snapshot ${formatZxid(zxid)} chunk ${idx}`, v);
      if (!Array.isArray(nodes)) throw new CorruptRecordError(`snapshot ${formatZxid(zxid)} chunk ${idx}`, 'not an array');
      yield nodes as SnapshotNode[];
    }
  }

  async *readLog(afterZxid: bigint): AsyncIterable<Txn[]> {
    let batch: Txn[] = [];
    let prev = afterZxid;
    for await (const [k, v] of this.db.iterator({ gt: logKey(afterZxid), lte: logKey((1n << 64n) - 1n) })) {
      const zxid = Buffer.from(k).readBigUInt64BE(1);
      const t = unseal(`log ${formatZxid(zxid)}`, v) as Txn;
      if (t.zxid !== zxid || zxid <= prev) throw new CorruptRecordError(`log ${formatZxid(zxid)}`, 'zxid out of order');
      prev = zxid;
      batch.push(t);
      if (batch.length >= 1000) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  append(txns: readonly Txn[]): Promise<void> {
    if (!this.opened) return Promise.reject(new Error('storage is not open'));
    if (txns.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ txns, resolve, reject });
      if (!this.writing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      const group = this.queue;
      this.queue = [];
      const ops: { type: 'put'; key: Bytes; value: Bytes }[] = [];
      let last = this.lastAppended;
      let error: Error | undefined;
      for (const p of group) {
        for (const t of p.txns) {
          if (t.zxid <= last) {
            error = new Error(`append out of order: ${formatZxid(t.zxid)} after ${formatZxid(last)}`);
            break;
          }
          last = t.zxid;
          ops.push({ type: 'put', key: logKey(t.zxid), value: seal(t) });
        }
        if (error) break;
      }
      try {
        if (error) throw error;
        await this.db.batch(ops, { sync: this.forceSync });
        this.lastAppended = last;
        for (const p of group) p.resolve();
      } catch (e) {
        for (const p of group) p.reject(e);
      }
    }
    this.writing = false;
  }

  private async drain(): Promise<void> {
    while (this.writing || this.queue.length > 0) await new Promise<void>((r) => setImmediate(r));
  }

  async truncateAfter(zxid: bigint): Promise<void> {
    await this.drain();
    const dels: { type: 'del'; key: Bytes }[] = [];
    for await (const k of this.db.keys({ gt: logKey(zxid), lte: logKey((1n << 64n) - 1n) })) dels.push({ type: 'del', key: k });
    // Snapshots newer than the truncation point describe a history we are abandoning.
    for (const s of await this.snapshotList()) if (s.zxid > zxid) await this.deleteSnapshot(s.zxid);
    if (dels.length > 0) await this.db.batch(dels, { sync: true });
    if (this.lastAppended > zxid) this.lastAppended = zxid;
  }

  async writeSnapshot(header: SnapshotHeader, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>): Promise<void> {
    await this.writeSnapshotRecords(header, chunks);
  }

  private async writeSnapshotRecords(header: SnapshotHeader, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>): Promise<number> {
    const zxid = header.zxid;
    await this.deleteSnapshot(zxid);
    let index = 0;
    let count = 0;
    for await (const chunk of chunks) {
      await this.db.put(snapKey(zxid, SNAP_CHUNK, index++), seal(chunk));
      count += chunk.length;
    }
    // The header (with the real count) and the end marker go last and together, synced: a
    // snapshot without its end marker is an unfinished one and is ignored.
    await this.db.batch([
      { type: 'put', key: snapKey(zxid, SNAP_HEADER), value: seal({ ...header, nodeCount: count }) },
      { type: 'put', key: snapKey(zxid, SNAP_END), value: seal({ chunks: index, nodes: count }) },
    ], { sync: true });
    return count;
  }

  private async deleteSnapshot(zxid: bigint): Promise<void> {
    const dels: { type: 'del'; key: Bytes }[] = [];
    for await (const k of this.db.keys({ gte: snapKey(zxid, 0), lte: snapKey(zxid, 0xff) })) dels.push({ type: 'del', key: k });
    for await (const k of this.db.keys({ gte: snapKey(zxid, SNAP_CHUNK, 0), lte: snapKey(zxid, SNAP_CHUNK, 0xffffffff) })) dels.push({ type: 'del', key: k });
    if (dels.length > 0) await this.db.batch(dels, { sync: true });
  }

  async installSnapshot(header: SnapshotHeader, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>): Promise<void> {
    await this.drain();
    await this.writeSnapshotRecords(header, chunks);
    // The log of a member that needed a SNAP is superseded as a whole.
    const dels: { type: 'del'; key: Bytes }[] = [];
    for await (const k of this.db.keys({ gte: logKey(0n), lte: logKey((1n << 64n) - 1n) })) dels.push({ type: 'del', key: k });
    for (const s of await this.snapshotList()) if (s.zxid !== header.zxid) await this.deleteSnapshot(s.zxid);
    if (dels.length > 0) await this.db.batch(dels, { sync: true });
    this.lastAppended = header.zxid;
  }

  async setEpochs(e: { currentEpoch?: number; acceptedEpoch?: number }): Promise<void> {
    const ops: { type: 'put'; key: Bytes; value: Bytes }[] = [];
    if (e.acceptedEpoch !== undefined) ops.push({ type: 'put', key: metaKey('acceptedEpoch'), value: seal(e.acceptedEpoch) });
    if (e.currentEpoch !== undefined) ops.push({ type: 'put', key: metaKey('currentEpoch'), value: seal(e.currentEpoch) });
    if (ops.length > 0) await this.db.batch(ops, { sync: true });
  }

  async purge(retainSnapshots: number): Promise<{ snapshots: number; txns: number }> {
    const keep = Math.max(1, retainSnapshots);
    const list = (await this.snapshotList()).filter((s) => s.complete);
    if (list.length <= keep) return { snapshots: 0, txns: 0 };
    const old = list.slice(keep);
    for (const s of old) await this.deleteSnapshot(s.zxid);
    // Keep the log the oldest retained snapshot needs (everything after its zxid).
    const oldestKept = list[keep - 1]!.zxid;
    const dels: { type: 'del'; key: Bytes }[] = [];
    for await (const k of this.db.keys({ gte: logKey(0n), lte: logKey(oldestKept) })) dels.push({ type: 'del', key: k });
    for (let i = 0; i < dels.length; i += 10_000) await this.db.batch(dels.slice(i, i + 10_000));
    return { snapshots: old.length, txns: dels.length };
  }

  async close(): Promise<void> {
    if (!this.opened) return;
    await this.drain();
    this.opened = false;
    await this.db.close();
  }
}

/** LevelDB storage in `directory` (created if missing). */
export function levelStorage(directory: string, options?: LevelStorageOptions): LevelStorage {
  if (typeof directory !== 'string' || directory.length === 0) throw new Error('levelStorage needs a directory path');
  return new LevelStorage(directory, options);
}
