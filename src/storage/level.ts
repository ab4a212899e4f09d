import { ClassicLevel } from 'classic-level';
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotNode } from '../core/tree.js';
import type { Txn } from '../core/txn.js';
import { formatZxid } from '../core/zxid.js';
import { CorruptRecordError, StorageError } from './errors.js';
import {
  ChunkEncoder, checkLogRecord, checkSnapshotChunk, decodeLogRecord, decodeMeta, decodeSnapshotChunk, decodeSnapshotEnd,
  decodeSnapshotHeader, describeKey, encodeLogBatch, encodeMeta, encodeSnapshotEnd, encodeSnapshotHeader, FORMAT_VERSION, READABLE_FORMATS,
  KEY_SNAP, keyZxid, logKey, MAX_ZXID, metaKey, parseSnapshotFileName, SNAP_CHUNK, SNAP_END, SNAP_HEADER, snapKey, snapshotFileName,
  type LogRecordHead, type SnapshotEnd,
} from './format.js';
import { ChunkFileWriter, readChunkFile } from './snapshotFile.js';
import type {
  SnapshotHeader, SnapshotInfo, Storage, StorageDamage, StorageState, StorageStats, StoredSnapshot,
} from './types.js';

export { CorruptRecordError, StorageError } from './errors.js';

/** Minimal logger shape (the member passes its structured logger). */
interface StorageLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

export interface LevelStorageOptions {
  /**
   * Sync the txn log to disk before `append` resolves (default true). `false` trades durability
   * for speed: an acknowledged txn survives a crash of the process (the OS still has it) but not
   * a power loss or kernel crash, so a member may come back without txns it acknowledged. In an
   * ensemble the others still have them, but a quorum losing power together can lose them.
   * Snapshots, epochs and truncations are always synced.
   */
  forceSync?: boolean;
  logger?: StorageLogger;
  /**
   * Inspect only (dump tools): nothing is written or repaired, damage is reported but left as
   * found, a missing directory is an error. The directory must not be in use by a member.
   */
  readOnly?: boolean;
  /** LevelDB tuning passed to classic-level (defaults: LevelDB's). */
  leveldb?: { writeBufferSize?: number; cacheSize?: number; blockSize?: number; maxFileSize?: number };
  /** Upper bounds of one stored snapshot chunk (defaults 4096 nodes, 1 MiB). */
  snapshotChunkNodes?: number;
  snapshotChunkBytes?: number;
}

type Bytes = Uint8Array;
type BatchOp = { type: 'put'; key: Bytes; value: Bytes } | { type: 'del'; key: Bytes };

interface QueuedAppend {
  kind: 'append';
  txns: readonly Txn[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface QueuedExclusive {
  kind: 'exclusive';
  /** Truncation, SNAP install, re-analysis: snapshot writes and purges started before abandon themselves. */
  supersedes: boolean;
  run: () => Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface CatalogEntry {
  zxid: bigint;
  status: SnapshotInfo['status'];
  header?: SnapshotHeader;
  /** Decoded when the catalog is loaded (a complete snapshot); names the chunk file, if any. */
  end?: SnapshotEnd;
  chunks: number;
  problem?: string;
}

/** The chunk file an end marker names, or undefined (format 2: chunks in LevelDB). */
function fileOf(c: CatalogEntry | undefined): string | undefined {
  return c?.end?.file ? snapshotFileName(c.zxid, c.end.file.id) : undefined;
}

const LOG_RANGE = { gte: logKey(0n), lte: logKey(MAX_ZXID) };
const SNAP_RANGE = { gte: Buffer.from([KEY_SNAP]), lt: Buffer.from([KEY_SNAP + 1]) };
/** Txns per group-commit batch at most (more wait for the next batch). */
const MAX_GROUP_TXNS = 16_384;
/**
 * The zxids in a log, as runs of consecutive values (within an epoch the leader numbers txns one by
 * one, so a log is a handful of runs), for counting records in a range without reading their keys.
 */
class LoggedZxids {
  private runs: { first: bigint; last: bigint }[] = [];

  clear(): void {
    this.runs = [];
  }

  /** `zxid` was logged, after everything logged before it. */
  add(zxid: bigint): void {
    const r = this.runs[this.runs.length - 1];
    if (r !== undefined && zxid === r.last + 1n) r.last = zxid;
    else this.runs.push({ first: zxid, last: zxid });
  }

  /**
   * `count` zxids from `first` to `last` were logged, in order, after everything logged before:
   * O(1) when they are consecutive (a group commit within one epoch), one by one otherwise.
   */
  addGroup(first: bigint, last: bigint, count: number, each: () => Iterable<bigint>): void {
    if (last - first + 1n !== BigInt(count)) {
      for (const z of each()) this.add(z);
      return;
    }
    const r = this.runs[this.runs.length - 1];
    if (r !== undefined && first === r.last + 1n) r.last = last;
    else this.runs.push({ first, last });
  }

  /** How many logged zxids are ≤ `zxid`. */
  countUpTo(zxid: bigint): number {
    let n = 0n;
    for (const r of this.runs) {
      if (r.first > zxid) break;
      n += (r.last <= zxid ? r.last : zxid) - r.first + 1n;
    }
    return Number(n);
  }

  /** Forgets the zxids ≤ `zxid` (purged). */
  dropUpTo(zxid: bigint): void {
    while (this.runs.length > 0 && this.runs[0]!.last <= zxid) this.runs.shift();
    const r = this.runs[0];
    if (r !== undefined && r.first <= zxid) r.first = zxid + 1n;
  }

  /** Forgets the zxids > `zxid` (truncated). */
  dropAfter(zxid: bigint): void {
    while (this.runs.length > 0 && this.runs[this.runs.length - 1]!.first > zxid) this.runs.pop();
    const r = this.runs[this.runs.length - 1];
    if (r !== undefined && r.last > zxid) r.last = zxid;
  }
}

/** Txns per log record at most, and (roughly) bytes of data: a long DIFF is logged in several records. */
const RECORD_MAX_TXNS = 4096;
const RECORD_MAX_DATA_BYTES = 4 * 1024 * 1024;

/** The data a txn carries (what makes records big), roughly. */
function dataBytes(t: Txn): number {
  const op = t.op as { type: string; data?: Uint8Array; ops?: { data?: Uint8Array }[] };
  let n = op.data instanceof Uint8Array ? op.data.length : 0;
  if (op.type === 'multi' && Array.isArray(op.ops)) for (const o of op.ops) if (o.data instanceof Uint8Array) n += o.data.length;
  return n;
}

/** The log records (format 4) for `txns` appended after `prev`, in order; each chained to the one before. */
function logRecords(txns: readonly Txn[], prev: bigint): { key: Buffer; value: Buffer }[] {
  const out: { key: Buffer; value: Buffer }[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < txns.length; i++) {
    bytes += dataBytes(txns[i]!);
    if (i + 1 === txns.length || i + 1 - start >= RECORD_MAX_TXNS || bytes >= RECORD_MAX_DATA_BYTES) {
      const part = start === 0 && i + 1 === txns.length ? txns : txns.slice(start, i + 1);
      const last = part[part.length - 1]!.zxid;
      out.push({ key: logKey(last), value: encodeLogBatch(part, prev) });
      prev = last;
      start = i + 1;
      bytes = 0;
    }
  }
  return out;
}

/** The zxids a log record holds (its key alone when it cannot be decoded; recovery reports that). */
function zxidsIn(key: bigint, value: Uint8Array): bigint[] {
  try {
    return decodeLogRecord(key, value).txns.map((t) => t.zxid);
  } catch {
    return [key];
  }
}

function snapshotRange(zxid: bigint): { gte: Buffer; lte: Buffer } {
  return { gte: snapKey(zxid, 0), lte: snapKey(zxid, 0xff) };
}

function chunkRange(zxid: bigint): { gte: Buffer; lte: Buffer } {
  return { gte: snapKey(zxid, SNAP_CHUNK, 0), lte: snapKey(zxid, SNAP_CHUNK, 0xffffffff) };
}

function levelCode(e: unknown): string | undefined {
  const err = e as { code?: string; cause?: { code?: string } };
  return err?.cause?.code ?? err?.code;
}

function levelMessage(e: unknown): string {
  const err = e as { message?: string; cause?: { message?: string } };
  return (err?.cause?.message ?? err?.message ?? String(e)).replace(/\s+/g, ' ');
}

function isCorruption(e: unknown): boolean {
  return levelCode(e) === 'LEVEL_CORRUPTION' || /corrupt/i.test(levelMessage(e));
}

/**
 * Durable storage on LevelDB (classic-level). The txn log is one key per zxid, a snapshot is a
 * header and an end marker in LevelDB and its node chunks in a file under `snapshots/` (format 2
 * kept the chunks in LevelDB; those are still read), epochs are meta keys; every value carries a
 * CRC-32 and log records are chained by the previous record's zxid (see format.ts).
 *
 * Group commit: appends queue up while one batch is being synced, and go to disk together in the
 * next batch, each still resolving in order — one fsync serves many txns, so durable throughput
 * grows with concurrency. Truncation and SNAP installation run exclusively, between batches.
 *
 * Opening recovers: unfinished snapshots (the process died while writing them) and chunk files no
 * end marker names are removed; the
 * newest snapshot that passes its checks is chosen, a corrupt newer one is skipped (and reported);
 * the log after it must chain without gaps. A damaged tail of the log (no valid record after the
 * damage) is reported and truncated. Damage with valid records after it, or a log that does not
 * reach back to the chosen snapshot, makes `open` refuse with a StorageError('UNSAFE'): a member
 * never serves a tree it cannot prove right.
 */
export class LevelStorage implements Storage {
  readonly description: string;
  readonly directory: string;
  /** Created by `open`: abstract-level opens a database by itself right after construction, with default options. */
  private db!: ClassicLevel<Bytes, Bytes>;
  private readonly forceSync: boolean;
  private readonly readOnly: boolean;
  private readonly log: StorageLogger | undefined;
  private readonly chunkNodes: number;
  private readonly chunkBytes: number;
  private readonly tuning: NonNullable<LevelStorageOptions['leveldb']>;
  private queue: (QueuedAppend | QueuedExclusive)[] = [];
  private writing = false;
  private drained: (() => void)[] = [];
  /** zxid of the last record in the log (the `prev` of the next one). */
  private lastAppended = 0n;
  private dbOpen = false;
  private recovered = false;
  private closing = false;
  private failure: StorageError | undefined;
  /** Bumped by truncate and SNAP install: snapshot writes and purges started before abandon themselves. */
  private generation = 0;
  /** Non-exclusive writes in flight (snapshot finalization, purge batches) that exclusive ops wait for. */
  private inflight = new Set<Promise<unknown>>();
  private catalog = new Map<bigint, CatalogEntry>();
  private writingSnapshots = new Set<bigint>();
  /** Chunk files being written or not yet referred to by an end marker (never taken for leftovers). */
  private writingFiles = new Set<string>();
  /** Where snapshot chunk files live (format 3). */
  private readonly snapDir: string;
  private snapshotWrites = new Set<Promise<void>>();
  private counters: StorageStats = { appends: 0, txns: 0, batches: 0 };
  /** Every zxid in the log (filled when the log is checked at opening, kept up to date after). */
  private logged = new LoggedZxids();

  constructor(directory: string, options: LevelStorageOptions = {}) {
    if (typeof directory !== 'string' || directory.length === 0) {
      throw new StorageError('BAD_ARGUMENT', 'levelStorage needs a directory path (a non-empty string)');
    }
    this.directory = directory;
    this.description = `leveldb:${directory}`;
    this.snapDir = join(directory, 'snapshots');
    this.tuning = { ...options.leveldb };
    this.forceSync = options.forceSync ?? true;
    this.readOnly = options.readOnly ?? false;
    this.log = options.logger;
    this.chunkNodes = Math.max(1, options.snapshotChunkNodes ?? 4096);
    this.chunkBytes = Math.max(1024, options.snapshotChunkBytes ?? 1 << 20);
  }

  // ------------------------------------------------------------------ opening and recovery

  async open(): Promise<StorageState> {
    if (!this.dbOpen) {
      this.closing = false;
      await this.openDb();
      this.dbOpen = true;
      this.failure = undefined;
      this.queue = [];
    }
    // Opening again while open (the member rebuilds its tree after a TRUNC) re-analyses the
    // directory between writes.
    let state: StorageState | undefined;
    if (this.recovered) {
      await this.exclusive(async () => {
        state = await this.recover();
      });
    } else {
      try {
        state = await this.recover();
      } catch (e) {
        // Refusing to start must not leave the directory locked by this process.
        this.dbOpen = false;
        await this.db.close().catch(() => undefined);
        throw e;
      }
      this.recovered = true;
    }
    return state!;
  }

  private async openDb(): Promise<void> {
    if (this.readOnly) {
      const st = await stat(this.directory).catch(() => undefined);
      if (!st) throw new StorageError('NOT_FOUND', `data directory ${this.directory} does not exist`);
    }
    const options = { keyEncoding: 'view', valueEncoding: 'view', createIfMissing: !this.readOnly, ...this.tuning } as const;
    this.db = new ClassicLevel<Bytes, Bytes>(this.directory, options);
    // Called synchronously after construction, so that the database's own deferred open (with
    // default options, e.g. createIfMissing) never runs.
    const opening = this.db.open(options);
    try {
      await opening;
    } catch (e) {
      const code = levelCode(e);
      const msg = levelMessage(e);
      if (code === 'LEVEL_LOCKED' || /\block\b/i.test(msg)) {
        throw new StorageError('LOCKED', `data directory ${this.directory} is locked by another member (in this or another process); stop that member first, or give each member its own directory`, { cause: e });
      }
      if (isCorruption(e)) {
        throw new StorageError('UNSAFE', `LevelDB cannot open ${this.directory} (${msg}): the directory is damaged below conclave's own records; move it aside and let this member resync from the ensemble, or restore a backup`, { cause: e });
      }
      if (/permission|EACCES|read-only/i.test(msg)) {
        throw new StorageError('IO', `data directory ${this.directory} is not writable (${msg}); fix its permissions or choose another directory`, { cause: e });
      }
      if (/does not exist|not found|ENOENT/i.test(msg) && this.readOnly) {
        throw new StorageError('NOT_FOUND', `${this.directory} is not a conclave data directory (${msg})`, { cause: e });
      }
      throw new StorageError('IO', `cannot open data directory ${this.directory}: ${msg}`, { cause: e });
    }
  }

  private unsafe(what: string): StorageError {
    return new StorageError('UNSAFE', `refusing to start from ${this.directory}: ${what}; move the directory aside and let this member resync from the ensemble, or restore a backup`);
  }

  private async recover(): Promise<StorageState> {
    const damage: StorageDamage[] = [];
    await this.checkFormat();
    const currentEpoch = await this.readEpoch('currentEpoch');
    const acceptedEpoch = await this.readEpoch('acceptedEpoch');
    await this.loadCatalog(damage);
    let chosen: CatalogEntry | undefined;
    const skipped: CatalogEntry[] = [];
    for (const c of this.newestFirst()) {
      if (c.status === 'unfinished') continue;
      if (await this.verifySnapshot(c)) {
        chosen = c;
        break;
      }
      skipped.push(c);
    }
    for (const c of skipped) {
      damage.push({
        kind: 'snapshot-corrupt', where: `snapshot ${formatZxid(c.zxid)}`, detail: c.problem ?? 'corrupt',
        action: chosen ? `skipped; recovering from the older snapshot ${formatZxid(chosen.zxid)} and the log after it` : 'skipped; no older valid snapshot, recovering from the log alone',
      });
    }
    const snapshotZxid = chosen?.zxid ?? 0n;
    const lastZxid = await this.recoverLog(snapshotZxid, chosen, skipped, damage);
    // The damage is returned rather than logged here: the member (recovery.ts) logs it, dump tools print it.
    return { currentEpoch, acceptedEpoch, snapshotZxid, lastZxid, damage };
  }

  private async checkFormat(): Promise<void> {
    let raw: Bytes | undefined;
    try {
      raw = await this.db.get(metaKey('format'));
    } catch (e) {
      throw this.readFailure('the format marker', e);
    }
    if (raw === undefined) {
      let any = false;
      for await (const _ of this.db.keys({ limit: 1 })) any = true;
      if (any) {
        throw new StorageError('FORMAT', `${this.directory} holds a LevelDB database that is not a conclave data directory (no format marker); point the member at an empty directory or one conclave created`);
      }
      if (!this.readOnly) await this.db.put(metaKey('format'), encodeMeta(FORMAT_VERSION), { sync: true });
      return;
    }
    let v: unknown;
    try {
      v = decodeMeta('format', raw);
    } catch (e) {
      throw this.unsafe(`the format marker is damaged (${(e as CorruptRecordError).detail ?? (e as Error).message})`);
    }
    if (typeof v !== 'number' || !READABLE_FORMATS.includes(v)) {
      const formats = `${READABLE_FORMATS.slice(0, -1).join(', ')} and ${READABLE_FORMATS[READABLE_FORMATS.length - 1]}`;
      throw new StorageError('FORMAT', `${this.directory} was written in storage format ${String(v)}; this conclave reads formats ${formats} (upgrade conclave)`);
    }
    if (v !== FORMAT_VERSION && !this.readOnly) {
      // Before any record of the new format is written: an older conclave must refuse the directory
      // from now on rather than meet records it cannot read (the old records stay readable here).
      await this.db.put(metaKey('format'), encodeMeta(FORMAT_VERSION), { sync: true });
      this.log?.info({ directory: this.directory, from: v, to: FORMAT_VERSION }, 'data directory upgraded to the current storage format');
    }
  }

  private readFailure(what: string, e: unknown): StorageError {
    if (e instanceof StorageError) return e;
    if (isCorruption(e)) return this.unsafe(`LevelDB reports corruption while reading ${what} (${levelMessage(e)})`);
    return new StorageError('IO', `cannot read ${what} in ${this.directory} (${levelMessage(e)}): check the disk and the files' permissions; if a file is damaged, move the directory aside and let this member resync from the ensemble, or restore a backup`, { cause: e });
  }

  private async readEpoch(name: 'currentEpoch' | 'acceptedEpoch'): Promise<number> {
    let raw: Bytes | undefined;
    try {
      raw = await this.db.get(metaKey(name));
    } catch (e) {
      throw this.readFailure(name, e);
    }
    if (raw === undefined) return 0;
    let v: unknown;
    try {
      v = decodeMeta(name, raw);
    } catch (e) {
      // ZAB's promises to other members live here; guessing would risk two leaders in one epoch.
      throw this.unsafe(`${name} is damaged (${(e as CorruptRecordError).detail ?? (e as Error).message}), so the epochs this member promised are unknown`);
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw this.unsafe(`${name} holds ${String(v)}, not an epoch`);
    return v;
  }

  /** Lists every snapshot present; unfinished ones (the process died while writing) are removed. */
  private async loadCatalog(damage: StorageDamage[]): Promise<void> {
    const found = new Map<bigint, { header: boolean; end: boolean; chunks: number; gap: number | undefined }>();
    try {
      for await (const k of this.db.keys(SNAP_RANGE)) {
        const kb = Buffer.from(k.buffer, k.byteOffset, k.byteLength);
        if (kb.length < 10) continue;
        const zxid = kb.readBigUInt64BE(1);
        let f = found.get(zxid);
        if (!f) {
          f = { header: false, end: false, chunks: 0, gap: undefined };
          found.set(zxid, f);
        }
        if (kb[9] === SNAP_HEADER) f.header = true;
        else if (kb[9] === SNAP_END) f.end = true;
        else if (kb[9] === SNAP_CHUNK && kb.length === 14) {
          if (kb.readUInt32BE(10) !== f.chunks && f.gap === undefined) f.gap = f.chunks;
          f.chunks++;
        }
      }
    } catch (e) {
      throw this.readFailure('the snapshot list', e);
    }
    const previous = this.catalog;
    this.catalog = new Map();
    for (const [zxid, f] of found) {
      const known = previous.get(zxid);
      if (known && known.status === 'valid' && f.end && f.header) {
        this.catalog.set(zxid, known);
        continue;
      }
      const entry: CatalogEntry = { zxid, status: 'unverified', chunks: f.chunks };
      if (!f.end) {
        entry.status = 'unfinished';
        entry.problem = `no end marker (${f.chunks} chunk(s) written${f.header ? ', header present' : ''})`;
        if (this.writingSnapshots.has(zxid)) continue; // being written right now
        if (!this.readOnly) {
          await this.deleteSnapshotKeys(zxid, true);
          damage.push({ kind: 'snapshot-unfinished', where: `snapshot ${formatZxid(zxid)}`, detail: entry.problem, action: 'removed (the member stopped while writing it)' });
          continue;
        }
        damage.push({ kind: 'snapshot-unfinished', where: `snapshot ${formatZxid(zxid)}`, detail: entry.problem, action: 'left as found (read-only)' });
      } else {
        // The end marker says where the chunks are: in a file (format 3) or under chunk keys.
        try {
          const raw = await this.db.get(snapKey(zxid, SNAP_END));
          if (raw === undefined) throw new CorruptRecordError(`snapshot ${formatZxid(zxid)} end marker`, 'vanished');
          entry.end = decodeSnapshotEnd(zxid, raw);
          if (entry.end.file) entry.chunks = entry.end.chunks;
        } catch (e) {
          if (!(e instanceof CorruptRecordError)) throw this.readFailure(`snapshot ${formatZxid(zxid)} end marker`, e);
          entry.status = 'corrupt';
          entry.problem = `${e.where}: ${e.detail}`;
        }
        if (entry.status !== 'unverified') {
          // already judged
        } else if (!f.header) {
          entry.status = 'corrupt';
          entry.problem = `snapshot ${formatZxid(zxid)} header: missing`;
        } else if (!entry.end?.file && f.gap !== undefined) {
          entry.status = 'corrupt';
          entry.problem = `snapshot ${formatZxid(zxid)} chunk ${f.gap}: missing`;
        }
      }
      this.catalog.set(zxid, entry);
    }
    await this.removeLeftoverFiles(damage);
  }

  /**
   * Chunk files no end marker names: written by a snapshot that did not finish (the process
   * stopped before its end marker, or while it was being written), or left by a removal that
   * deleted the keys and stopped before the file. They are removed (reported as unfinished).
   */
  private async removeLeftoverFiles(damage: StorageDamage[]): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.snapDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw this.readFailure('the snapshots folder', e);
    }
    const referenced = new Set<string>();
    for (const c of this.catalog.values()) {
      const f = fileOf(c);
      if (f !== undefined) referenced.add(f);
    }
    for (const name of names.sort()) {
      const p = parseSnapshotFileName(name);
      if (!p || referenced.has(name) || this.writingFiles.has(name)) continue;
      // A snapshot whose end marker is damaged cannot say which file is its own: its files stay
      // with it (reported as corrupt) until it is removed.
      const c = this.catalog.get(p.zxid);
      if (!p.temporary && c !== undefined && c.status === 'corrupt' && c.end === undefined) continue;
      const where = `snapshot ${formatZxid(p.zxid)} (snapshots/${name})`;
      const detail = p.temporary ? 'chunk file still being written when the member stopped' : 'chunk file that no finished snapshot refers to';
      if (this.readOnly) {
        damage.push({ kind: 'snapshot-unfinished', where, detail, action: 'left as found (read-only)' });
        continue;
      }
      await this.unlinkFile(name);
      damage.push({ kind: 'snapshot-unfinished', where, detail, action: 'removed (left over from a snapshot being written or removed when the member stopped)' });
    }
  }

  /** Removes the chunk file(s) of a snapshot being dropped (every file of its zxid when its end marker is damaged). */
  private async unlinkFilesOf(c: CatalogEntry | undefined): Promise<void> {
    if (c === undefined) return;
    const own = fileOf(c);
    if (own !== undefined || c.status !== 'corrupt') {
      await this.unlinkFile(own);
      return;
    }
    const names = await readdir(this.snapDir).catch(() => [] as string[]);
    for (const name of names) {
      const p = parseSnapshotFileName(name);
      if (p && !p.temporary && p.zxid === c.zxid && !this.writingFiles.has(name)) await this.unlinkFile(name);
    }
  }

  /** Removes a chunk file; one already gone is fine, a failure is logged (it is removed at the next opening). */
  private async unlinkFile(name: string | undefined): Promise<void> {
    if (name === undefined) return;
    try {
      await unlink(join(this.snapDir, name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.log?.warn({ file: join(this.snapDir, name), err: (e as Error).message }, 'cannot remove a snapshot chunk file; it is removed at the next opening');
    }
  }

  private newestFirst(): CatalogEntry[] {
    return [...this.catalog.values()].sort((a, b) => (a.zxid > b.zxid ? -1 : a.zxid < b.zxid ? 1 : 0));
  }

  /** Full check of a complete snapshot: header, end marker, every chunk's checksum and the counts. */
  private async verifySnapshot(c: CatalogEntry): Promise<boolean> {
    if (c.status === 'valid') return true;
    if (c.status !== 'unverified') return false;
    const z = formatZxid(c.zxid);
    try {
      const [hraw, eraw] = await this.db.getMany([snapKey(c.zxid, SNAP_HEADER), snapKey(c.zxid, SNAP_END)]);
      if (hraw === undefined || eraw === undefined) throw new CorruptRecordError(`snapshot ${z}`, 'header or end marker vanished');
      const header = decodeSnapshotHeader(c.zxid, hraw);
      const end = decodeSnapshotEnd(c.zxid, eraw);
      let index = 0;
      let nodes = 0;
      if (end.file) {
        const name = snapshotFileName(c.zxid, end.file.id);
        for await (const v of readChunkFile(join(this.snapDir, name), c.zxid, name, end.file.bytes)) {
          nodes += checkSnapshotChunk(c.zxid, index, v);
          index++;
        }
      } else {
        for await (const [k, v] of this.db.iterator(chunkRange(c.zxid))) {
          const idx = Buffer.from(k.buffer, k.byteOffset, k.byteLength).readUInt32BE(10);
          if (idx !== index) throw new CorruptRecordError(`snapshot ${z} chunk ${index}`, 'missing');
          nodes += checkSnapshotChunk(c.zxid, idx, v);
          index++;
        }
      }
      if (index < end.chunks) throw new CorruptRecordError(`snapshot ${z} chunk ${index}`, `missing (the end marker says ${end.chunks} chunk(s))`);
      if (index > end.chunks) throw new CorruptRecordError(`snapshot ${z}`, `has ${index} chunks, its end marker says ${end.chunks}`);
      if (nodes !== end.nodes) throw new CorruptRecordError(`snapshot ${z}`, `has ${nodes} node(s), its end marker says ${end.nodes}`);
      if (header.nodeCount !== undefined && header.nodeCount !== nodes) {
        throw new CorruptRecordError(`snapshot ${z}`, `has ${nodes} node(s), its header says ${header.nodeCount}`);
      }
      c.status = 'valid';
      c.header = header;
      c.end = end;
      c.chunks = index;
      return true;
    } catch (e) {
      if (e instanceof CorruptRecordError) {
        c.status = 'corrupt';
        c.problem = `${e.where}: ${e.detail}`;
        return false;
      }
      if (isCorruption(e)) {
        c.status = 'corrupt';
        c.problem = `LevelDB reports corruption while reading it (${levelMessage(e)})`;
        return false;
      }
      throw e;
    }
  }

  /**
   * Checks the whole log and decides what can be trusted (see the class comment). Returns the
   * last zxid of the usable state.
   */
  private async recoverLog(snapshotZxid: bigint, chosen: CatalogEntry | undefined, skipped: CatalogEntry[], damage: StorageDamage[]): Promise<bigint> {
    const S = snapshotZxid;
    this.logged.clear();
    let beforeLast: { zxid: bigint; ok: boolean } | undefined; // last record at or before S
    const beforeDamaged: { zxid: bigint; detail: string }[] = [];
    let last: bigint | undefined; // last trusted record after S
    /** The first record after S that cannot be trusted: `summary` says why, in a phrase. */
    let problem: { zxid: bigint; summary: string; detail: string } | undefined;
    const tail: Bytes[] = [];
    let tailValid = 0;
    let tailLastValid = 0n;
    let tailLast = 0n;
    let count = 0;
    try {
      for await (const [k, v] of this.db.iterator(LOG_RANGE)) {
        count++;
        const zxid = keyZxid(k);
        const z = formatZxid(zxid);
        let head: LogRecordHead | undefined;
        let detail: string | undefined;
        try {
          head = checkLogRecord(zxid, v);
        } catch (e) {
          if (!(e instanceof CorruptRecordError)) throw e;
          detail = e.detail;
        }
        if (head) this.logged.addGroup(head.first, zxid, head.count, () => zxidsIn(zxid, v));
        else this.logged.add(zxid);
        if (zxid <= S) {
          if (detail !== undefined) beforeDamaged.push({ zxid, detail });
          beforeLast = { zxid, ok: detail === undefined };
          continue;
        }
        if (problem === undefined) {
          let summary: string | undefined;
          if (head) {
            const expected = last ?? (beforeLast?.ok ? beforeLast.zxid : undefined);
            const p = formatZxid(head.prev);
            if (expected !== undefined && head.prev > expected) {
              detail = `follows ${p}, which is missing (the log holds ${formatZxid(expected)} before it)`;
              summary = `txn ${p} is missing from the log (log ${z} follows it; the log holds ${formatZxid(expected)} before it)`;
            } else if (expected !== undefined && head.prev < expected) {
              detail = `follows ${p}, but the log holds ${formatZxid(expected)} after that`;
              summary = `log ${z} does not continue the log (it follows ${p}, but the log holds ${formatZxid(expected)} after that)`;
            } else if (expected === undefined && head.prev > S) {
              detail = `follows ${p}, which is missing`;
              summary = chosen
                ? `the log after snapshot ${formatZxid(S)} starts at ${z}, which follows ${p}: the txns in between are missing`
                : `there is no valid snapshot${skipped.length > 0 ? ` (${skipped.map((c) => `${formatZxid(c.zxid)}: ${c.problem}`).join('; ')})` : ''} and the log starts at ${z}, after ${p} (older txns were purged), so it cannot be replayed from the beginning`;
            }
          } else {
            summary = `log ${z} is damaged (${detail})`;
          }
          if (detail === undefined) {
            last = zxid;
            continue;
          }
          problem = { zxid, summary: summary!, detail };
        }
        tail.push(Buffer.from(k));
        tailLast = zxid;
        if (head) {
          tailValid++;
          tailLastValid = zxid;
        }
      }
    } catch (e) {
      if (e instanceof StorageError) throw e;
      throw this.readFailure(`the txn log after record ${count}`, e);
    }
    if (beforeDamaged.length > 0) {
      const b = beforeDamaged[0]!;
      damage.push({
        kind: 'log-before-snapshot-damaged', where: `log ${formatZxid(b.zxid)}`,
        detail: `${b.detail}${beforeDamaged.length > 1 ? ` (and ${beforeDamaged.length - 1} more record(s) up to ${formatZxid(beforeDamaged[beforeDamaged.length - 1]!.zxid)})` : ''}`,
        action: `kept; not needed to recover from snapshot ${formatZxid(S)}`,
      });
    }
    if (problem) {
      if (tailValid > 0) {
        // Valid txns after the damage: dropping them loses acknowledged writes, replaying them
        // over a hole builds a wrong tree. Neither is acceptable.
        throw this.unsafe(`${problem.summary}, and ${tailValid} valid record(s) after it, up to ${formatZxid(tailLastValid)}, depend on it, so the tree cannot be rebuilt safely`);
      }
      const range = tail.length === 1 ? formatZxid(problem.zxid) : `${formatZxid(problem.zxid)}..${formatZxid(tailLast)}`;
      if (!this.readOnly) await this.write(tail.map((key) => ({ type: 'del' as const, key })), true);
      damage.push({
        kind: 'log-tail-truncated', where: `log ${formatZxid(problem.zxid)}`, detail: problem.detail,
        action: `${this.readOnly ? 'would remove' : 'removed'} ${tail.length} damaged record(s) ${range} at the end of the log; the state ends at ${formatZxid(last ?? S)}`,
      });
    }
    this.lastAppended = last ?? beforeLast?.zxid ?? S;
    if (problem && !this.readOnly) this.logged.dropAfter(this.lastAppended);
    return last ?? S;
  }

  // ------------------------------------------------------------------ reading

  private assertReady(): void {
    if (!this.recovered || !this.dbOpen || this.closing) throw new StorageError('CLOSED', `storage ${this.directory} is not open`);
  }

  async latestSnapshot(): Promise<StoredSnapshot | undefined> {
    this.assertReady();
    for (const c of this.newestFirst()) {
      if (c.status === 'unfinished' || this.writingSnapshots.has(c.zxid)) continue;
      if (!(await this.verifySnapshot(c))) {
        this.log?.error({ zxid: formatZxid(c.zxid), problem: c.problem }, 'snapshot is corrupt; falling back to an older one');
        continue;
      }
      return this.stored(c);
    }
    return undefined;
  }

  async readSnapshot(zxid: bigint): Promise<StoredSnapshot> {
    this.assertReady();
    const c = this.catalog.get(zxid);
    if (!c) throw new StorageError('BAD_ARGUMENT', `no snapshot ${formatZxid(zxid)} in ${this.directory}`);
    if (!(await this.verifySnapshot(c))) throw new CorruptRecordError(`snapshot ${formatZxid(zxid)}`, c.problem ?? c.status);
    return this.stored(c);
  }

  async snapshots(): Promise<SnapshotInfo[]> {
    this.assertReady();
    const out: SnapshotInfo[] = [];
    for (const c of this.newestFirst()) {
      if (c.status === 'unverified') await this.verifySnapshot(c);
      const info: SnapshotInfo = { zxid: c.zxid, status: c.status, chunks: c.chunks };
      if (c.header) info.header = c.header;
      if (c.problem) info.problem = c.problem;
      out.push(info);
    }
    return out;
  }

  private stored(c: CatalogEntry): StoredSnapshot {
    const zxid = c.zxid;
    const db = this.db;
    const chunks = c.chunks;
    const file = c.end?.file;
    const snapDir = this.snapDir;
    return {
      header: c.header!,
      async *chunks(): AsyncGenerator<SnapshotNode[]> {
        let expect = 0;
        if (file) {
          const name = snapshotFileName(zxid, file.id);
          for await (const v of readChunkFile(join(snapDir, name), zxid, name, file.bytes)) yield decodeSnapshotChunk(zxid, expect++, v);
          if (expect !== chunks) throw new CorruptRecordError(`snapshot ${formatZxid(zxid)}`, `has ${expect} chunk(s), expected ${chunks}`);
          return;
        }
        for await (const [k, v] of db.iterator(chunkRange(zxid))) {
          const idx = Buffer.from(k.buffer, k.byteOffset, k.byteLength).readUInt32BE(10);
          if (idx !== expect) throw new CorruptRecordError(`snapshot ${formatZxid(zxid)} chunk ${expect}`, 'missing');
          expect++;
          yield decodeSnapshotChunk(zxid, idx, v);
        }
        if (expect !== chunks) throw new CorruptRecordError(`snapshot ${formatZxid(zxid)}`, `has ${expect} chunk(s), expected ${chunks}`);
      },
    };
  }

  async *readLog(afterZxid: bigint): AsyncIterable<Txn[]> {
    this.assertReady();
    let batch: Txn[] = [];
    let prev: bigint | undefined;
    // Records are keyed by their last zxid: the first one after `afterZxid` may begin before it.
    for await (const [k, v] of this.db.iterator({ gt: logKey(afterZxid), lte: logKey(MAX_ZXID) })) {
      const zxid = keyZxid(k);
      const r = decodeLogRecord(zxid, v);
      if (prev !== undefined && r.prev !== prev) {
        throw new CorruptRecordError(`log ${formatZxid(zxid)}`, `follows ${formatZxid(r.prev)}, but the log holds ${formatZxid(prev)} before it`);
      }
      prev = zxid;
      for (const t of r.txns) if (t.zxid > afterZxid) batch.push(t);
      if (batch.length >= 1000) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  /**
   * Every log record after `afterZxid` as found on disk, damaged ones included (dump tools).
   * Never throws for a damaged record; reports it in `problem`.
   */
  async *inspectLog(afterZxid = 0n): AsyncIterable<{ zxid: bigint; prev?: bigint; txn?: Txn; problem?: string }> {
    this.assertReady();
    let expected: bigint | undefined;
    for await (const [k, v] of this.db.iterator({ gt: logKey(afterZxid), lte: logKey(MAX_ZXID) })) {
      const zxid = keyZxid(k);
      let r: ReturnType<typeof decodeLogRecord>;
      try {
        r = decodeLogRecord(zxid, v);
      } catch (e) {
        if (!(e instanceof CorruptRecordError)) throw e;
        expected = zxid;
        yield { zxid, problem: e.detail };
        continue;
      }
      // One entry per txn; a batch record's txns each follow the one before.
      let before = r.prev;
      for (const txn of r.txns) {
        const out: { zxid: bigint; prev: bigint; txn: Txn; problem?: string } = { zxid: txn.zxid, prev: before, txn };
        if (before === r.prev && expected !== undefined && r.prev !== expected) out.problem = `follows ${formatZxid(r.prev)}, but the log holds ${formatZxid(expected)} before it`;
        before = txn.zxid;
        if (txn.zxid > afterZxid) yield out;
      }
      expected = zxid;
    }
  }

  // ------------------------------------------------------------------ the log

  stats(): StorageStats {
    return { ...this.counters };
  }

  append(txns: readonly Txn[]): Promise<void> {
    try {
      this.assertWritable();
      if (!Array.isArray(txns)) throw new StorageError('BAD_ARGUMENT', 'append needs an array of txns');
    } catch (e) {
      return Promise.reject(e);
    }
    this.counters.appends++;
    if (txns.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'append', txns, resolve, reject });
      if (!this.writing) void this.flush();
    });
  }

  private assertWritable(): void {
    this.assertReady();
    if (this.readOnly) throw new StorageError('BAD_ARGUMENT', `storage ${this.directory} was opened read-only`);
    if (this.failure) throw new StorageError('FAILED', `storage ${this.directory} failed earlier and accepts no more writes: ${this.failure.message}`);
  }

  /** Runs `run` alone: after the appends queued before it are durable, before those queued after. */
  private exclusive(run: () => Promise<void>, supersedes = true): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'exclusive', supersedes, run, resolve, reject });
      if (!this.writing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0]!;
        if (head.kind === 'exclusive') {
          this.queue.shift();
          try {
            if (head.supersedes) this.generation++;
            // Writes already issued by snapshot writers and purges land before this op's.
            await Promise.all([...this.inflight].map((p) => p.catch(() => undefined)));
            await head.run();
            head.resolve();
          } catch (e) {
            head.reject(e);
          }
          continue;
        }
        // Everything queued goes in one batch, up to a bound (a batch is held in memory twice).
        const group: QueuedAppend[] = [];
        let txns = 0;
        while (this.queue.length > 0 && this.queue[0]!.kind === 'append' && (group.length === 0 || txns < MAX_GROUP_TXNS)) {
          const a = this.queue.shift() as QueuedAppend;
          txns += a.txns.length;
          group.push(a);
        }
        await this.writeGroup(group);
      }
    } finally {
      this.writing = false;
      const waiters = this.drained;
      this.drained = [];
      for (const w of waiters) w();
    }
  }

  /** One batch for every append queued while the previous batch was being synced (group commit). */
  private async writeGroup(group: QueuedAppend[]): Promise<void> {
    if (this.failure || this.closing && !this.dbOpen) {
      const e = new StorageError('FAILED', `storage ${this.directory} failed earlier and accepts no more writes: ${this.failure?.message ?? 'closed'}`);
      for (const p of group) p.reject(e);
      return;
    }
    // Every accepted append of the group goes into one record (format 4; a long group into several,
    // see logRecords); an append that is not a valid run of txns after the ones before it is
    // refused alone.
    const accepted: QueuedAppend[] = [];
    const txns: Txn[] = [];
    const prevOfGroup = this.lastAppended;
    let last = prevOfGroup;
    for (const p of group) {
      let prev = last;
      let error: StorageError | undefined;
      for (const t of p.txns) {
        if (t === null || typeof t !== 'object' || typeof t.zxid !== 'bigint') {
          error = new StorageError('BAD_ARGUMENT', 'append: not a txn (zxid must be a bigint)');
          break;
        }
        if (t.zxid <= prev) {
          error = new StorageError('BAD_ARGUMENT', `append out of order: ${formatZxid(t.zxid)} after ${formatZxid(prev)}`);
          break;
        }
        prev = t.zxid;
      }
      if (error) {
        p.reject(error);
        continue;
      }
      last = prev;
      accepted.push(p);
      for (const t of p.txns) txns.push(t);
    }
    if (accepted.length === 0) return;
    let records: { key: Buffer; value: Buffer }[];
    try {
      records = logRecords(txns, prevOfGroup);
    } catch {
      // A txn that cannot be encoded fails its own append, not its neighbours' (rare: the txns
      // come from prep; this is for callers of the storage API).
      const ok = accepted.filter((p) => {
        try {
          encodeLogBatch(p.txns, 0n);
          return true;
        } catch (e) {
          p.reject(new StorageError('BAD_ARGUMENT', `append: a txn cannot be encoded (${(e as Error).message})`));
          return false;
        }
      });
      accepted.length = 0;
      txns.length = 0;
      for (const p of ok) {
        accepted.push(p);
        for (const t of p.txns) txns.push(t);
      }
      if (accepted.length === 0) return;
      last = txns[txns.length - 1]!.zxid;
      records = logRecords(txns, prevOfGroup);
    }
    try {
      if (records.length === 1) {
        await this.db.put(records[0]!.key, records[0]!.value, { sync: this.forceSync });
      } else {
        const b = this.db.batch();
        for (const r of records) b.put(r.key, r.value);
        await b.write({ sync: this.forceSync });
      }
    } catch (e) {
      // A failed write leaves the log in a state we cannot reason about (ZOOKEEPER-4882): no more writes.
      this.failure = new StorageError('IO', `writing ${txns.length} txn(s) to ${this.directory} failed: ${levelMessage(e)}`, { cause: e });
      for (const p of accepted) p.reject(this.failure);
      return;
    }
    this.lastAppended = last;
    this.logged.addGroup(txns[0]!.zxid, last, txns.length, function* () {
      for (const t of txns) yield t.zxid;
    });
    this.counters.batches++;
    this.counters.txns += txns.length;
    for (const p of accepted) p.resolve();
  }

  /** Awaits `p` as a non-exclusive write in flight, which exclusive operations and close wait for. */
  private async tracked<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    try {
      return await p;
    } finally {
      this.inflight.delete(p);
    }
  }

  /**
   * One atomic LevelDB write. A chained batch: abstract-level's array form costs several times
   * more per operation (measured), which matters when every group commit carries dozens of txns.
   */

  private write(ops: BatchOp[], sync: boolean): Promise<void> {
    const b = this.db.batch();
    for (const op of ops) {
      if (op.type === 'put') b.put(op.key, op.value);
      else b.del(op.key);
    }
    return b.write({ sync });
  }

  private idle(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise<void>((r) => this.drained.push(r));
  }

  async truncateAfter(zxid: bigint): Promise<void> {
    this.assertWritable();
    if (typeof zxid !== 'bigint' || zxid < 0n) throw new StorageError('BAD_ARGUMENT', 'truncateAfter needs a zxid (bigint ≥ 0)');
    await this.exclusive(async () => {
      const ops: BatchOp[] = [];
      let first = true;
      for await (const [k, v] of this.db.iterator({ gt: logKey(zxid), lte: logKey(MAX_ZXID) })) {
        ops.push({ type: 'del', key: k });
        if (!first) continue;
        first = false;
        // The first record after `zxid` may begin at or before it (records are keyed by their last
        // zxid): what it holds up to `zxid` is kept, in a record of its own. A damaged one goes
        // whole (recovery at opening had reported it).
        try {
          const r = decodeLogRecord(keyZxid(k), v);
          const kept = r.txns.filter((t) => t.zxid <= zxid);
          if (kept.length > 0) ops.push({ type: 'put', key: logKey(kept[kept.length - 1]!.zxid), value: encodeLogBatch(kept, r.prev) });
        } catch (e) {
          if (!(e instanceof CorruptRecordError)) throw e;
        }
      }
      // Snapshots newer than the truncation point describe a history being abandoned.
      const dropped: CatalogEntry[] = [];
      for (const c of this.catalog.values()) {
        if (c.zxid > zxid) {
          dropped.push(c);
          for await (const k of this.db.keys(snapshotRange(c.zxid))) ops.push({ type: 'del', key: k });
        }
      }
      if (ops.length > 0) await this.write(ops, true);
      for (const c of dropped) {
        this.catalog.delete(c.zxid);
        await this.unlinkFilesOf(c);
      }
      let lastRecord: bigint | undefined;
      for await (const k of this.db.keys({ lte: logKey(zxid), gte: logKey(0n), reverse: true, limit: 1 })) lastRecord = keyZxid(k);
      let newestSnap = 0n;
      for (const c of this.catalog.values()) if (c.status !== 'unfinished' && c.zxid > newestSnap) newestSnap = c.zxid;
      this.lastAppended = lastRecord ?? newestSnap;
      this.logged.dropAfter(zxid);
    });
  }

  // ------------------------------------------------------------------ snapshots

  /**
   * Encodes node records into bounded chunks and appends each to a new chunk file as soon as it is
   * full; the file is synced and moved to its final name at the end. Returns the end marker (which
   * names the file), or undefined when abandoned (the file is removed). The file's name stays in
   * `writingFiles` until the caller has written the end marker or given up (`release`).
   */
  private async writeChunks(zxid: bigint, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>, stillWanted: () => boolean): Promise<SnapshotEnd | undefined> {
    // Failures of the file system (errno codes) say where; anything else passes as it is.
    const fileFailure = (e: unknown): unknown => (!/^E[A-Z]+$/.test(String((e as NodeJS.ErrnoException)?.code)) ? e
      : new StorageError('IO', `writing snapshot ${formatZxid(zxid)} to ${this.snapDir} failed (${(e as Error).message}); check the disk and the directory's permissions`, { cause: e }));
    const w = await ChunkFileWriter.create(this.snapDir, zxid).catch((e: unknown) => {
      throw fileFailure(e);
    });
    this.writingFiles.add(w.temporaryName);
    this.writingFiles.add(w.name);
    let finished = false;
    try {
      const enc = new ChunkEncoder();
      let index = 0;
      let nodes = 0;
      const put = async (): Promise<boolean> => {
        if (!stillWanted()) return false;
        await w.append(enc.finishParts());
        index++;
        return true;
      };
      for await (const chunk of chunks) {
        if (!Array.isArray(chunk)) throw new StorageError('BAD_ARGUMENT', 'snapshot chunks must be arrays of nodes');
        if (!stillWanted()) return undefined;
        for (const n of chunk) {
          enc.add(n);
          nodes++;
          if ((enc.count >= this.chunkNodes || enc.size >= this.chunkBytes) && !(await put())) return undefined;
        }
      }
      if (enc.count > 0 && !(await put())) return undefined;
      const bytes = await w.finish();
      finished = true;
      return { chunks: index, nodes, file: { id: w.id, bytes } };
    } catch (e) {
      throw fileFailure(e);
    } finally {
      this.writingFiles.delete(w.temporaryName);
      if (!finished) {
        this.writingFiles.delete(w.name);
        await w.abandon();
      }
    }
  }

  /** The chunk file of `end` is referred to by a written end marker (`kept`), or is removed. */
  private async release(zxid: bigint, end: SnapshotEnd, kept: boolean): Promise<void> {
    const name = end.file ? snapshotFileName(zxid, end.file.id) : undefined;
    if (name === undefined) return;
    this.writingFiles.delete(name);
    if (!kept) await this.unlinkFile(name);
  }

  async writeSnapshot(header: SnapshotHeader, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>): Promise<void> {
    this.assertWritable();
    const p = this.writeSnapshotNow(header, chunks);
    this.snapshotWrites.add(p);
    try {
      await p;
    } finally {
      this.snapshotWrites.delete(p);
    }
  }

  private async writeSnapshotNow(header: SnapshotHeader, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>): Promise<void> {
    this.checkHeader(header);
    const zxid = header.zxid;
    const existing = this.catalog.get(zxid);
    if (existing && (existing.status === 'valid' || existing.status === 'unverified')) return; // already have this state
    if (this.writingSnapshots.has(zxid)) throw new StorageError('BAD_ARGUMENT', `snapshot ${formatZxid(zxid)} is already being written`);
    const gen = this.generation;
    const wanted = (): boolean => gen === this.generation && !this.closing;
    this.writingSnapshots.add(zxid);
    // Leftovers of an unfinished attempt go first; serialized with truncation and SNAP install,
    // so that this never touches what they write.
    const cleanup = (start: boolean): Promise<void> => this.exclusive(async () => {
      const c = this.catalog.get(zxid);
      // Never a complete snapshot someone else made at this zxid (a SNAP install); a corrupt one goes.
      if (this.closing || (c && !(start && c.status === 'corrupt'))) return;
      await this.deleteSnapshot(zxid, false);
    }, false);
    try {
      await cleanup(true);
      const end = wanted() ? await this.writeChunks(zxid, chunks, wanted) : undefined;
      if (!end || !wanted()) {
        // A truncate or SNAP install ran meanwhile: this snapshot belongs to an abandoned state.
        if (end) await this.release(zxid, end, false);
        this.writingSnapshots.delete(zxid);
        if (!this.closing) await cleanup(false).catch(() => undefined);
        this.log?.info({ zxid: formatZxid(zxid) }, 'snapshot abandoned (the log was truncated or replaced meanwhile)');
        return;
      }
      const h: SnapshotHeader = { ...header, nodeCount: end.nodes };
      // Header and end marker go last, together, synced: without them the snapshot is unfinished
      // (its chunk file, synced and in place by now, is a leftover until they are written).
      let kept = false;
      try {
        await this.tracked(this.write([
          { type: 'put', key: snapKey(zxid, SNAP_HEADER), value: encodeSnapshotHeader(h) },
          { type: 'put', key: snapKey(zxid, SNAP_END), value: encodeSnapshotEnd(end) },
        ], true));
        kept = true;
      } finally {
        await this.release(zxid, end, kept);
      }
      this.catalog.set(zxid, { zxid, status: 'valid', header: h, end, chunks: end.chunks });
    } finally {
      this.writingSnapshots.delete(zxid);
    }
  }

  private checkHeader(header: SnapshotHeader): void {
    if (!header || typeof header.zxid !== 'bigint' || header.zxid < 0n || typeof header.time !== 'number' || !Array.isArray(header.sessions)) {
      throw new StorageError('BAD_ARGUMENT', 'snapshot header needs zxid (bigint), time (number) and sessions (array)');
    }
  }

  private async deleteSnapshotKeys(zxid: bigint, sync: boolean): Promise<void> {
    const ops: BatchOp[] = [];
    for await (const k of this.db.keys(snapshotRange(zxid))) ops.push({ type: 'del', key: k });
    if (ops.length > 0) await this.write(ops, sync);
  }

  /** Removes a snapshot: its keys, then its chunk file (a crash between leaves a file removed at the next opening). */
  private async deleteSnapshot(zxid: bigint, sync: boolean): Promise<void> {
    const c = this.catalog.get(zxid);
    await this.deleteSnapshotKeys(zxid, sync);
    this.catalog.delete(zxid);
    await this.unlinkFilesOf(c);
  }

  async installSnapshot(header: SnapshotHeader, chunks: AsyncIterable<SnapshotNode[]> | Iterable<SnapshotNode[]>): Promise<void> {
    this.assertWritable();
    this.checkHeader(header);
    const zxid = header.zxid;
    await this.exclusive(async () => {
      await this.deleteSnapshot(zxid, false);
      const end = (await this.writeChunks(zxid, chunks, () => true))!;
      const h: SnapshotHeader = { ...header, nodeCount: end.nodes };
      // One atomic batch: the new snapshot becomes complete exactly when the old log and snapshots
      // go. A crash before it leaves the old state (and an unfinished snapshot); after it, the new.
      const ops: BatchOp[] = [
        { type: 'put', key: snapKey(zxid, SNAP_HEADER), value: encodeSnapshotHeader(h) },
        { type: 'put', key: snapKey(zxid, SNAP_END), value: encodeSnapshotEnd(end) },
      ];
      let kept = false;
      try {
        for await (const k of this.db.keys(LOG_RANGE)) ops.push({ type: 'del', key: k });
        for await (const k of this.db.keys(SNAP_RANGE)) if (keyZxid(k) !== zxid) ops.push({ type: 'del', key: k });
        await this.write(ops, true);
        kept = true;
      } finally {
        await this.release(zxid, end, kept);
      }
      const replaced = [...this.catalog.values()];
      this.catalog = new Map([[zxid, { zxid, status: 'valid', header: h, end, chunks: end.chunks }]]);
      this.lastAppended = zxid;
      this.logged.clear();
      for (const c of replaced) await this.unlinkFilesOf(c);
    });
  }

  async setEpochs(e: { currentEpoch?: number; acceptedEpoch?: number }): Promise<void> {
    this.assertWritable();
    const ops: BatchOp[] = [];
    for (const name of ['acceptedEpoch', 'currentEpoch'] as const) {
      const v = e?.[name];
      if (v === undefined) continue;
      if (!Number.isInteger(v) || v < 0) throw new StorageError('BAD_ARGUMENT', `${name} must be an integer ≥ 0 (got ${String(v)})`);
      ops.push({ type: 'put', key: metaKey(name), value: encodeMeta(v) });
    }
    if (ops.length > 0) await this.write(ops, true);
  }

  async purge(retainSnapshots: number): Promise<{ snapshots: number; txns: number }> {
    this.assertWritable();
    if (!Number.isInteger(retainSnapshots) || retainSnapshots < 1) {
      throw new StorageError('BAD_ARGUMENT', `purge needs to retain at least 1 snapshot (got ${String(retainSnapshots)})`);
    }
    const gen = this.generation;
    const all = this.newestFirst().filter((c) => !this.writingSnapshots.has(c.zxid));
    const complete = all.filter((c) => c.status === 'valid' || c.status === 'unverified');
    if (complete.length === 0) return { snapshots: 0, txns: 0 };
    const kept = complete.slice(0, retainSnapshots);
    const oldestKept = kept[kept.length - 1]!.zxid;
    // Older complete snapshots go; so do snapshots known to be corrupt (they were reported when found).
    const drop = all.filter((c) => (c.status === 'corrupt' || c.zxid < oldestKept) && !kept.includes(c) && c.status !== 'unfinished');
    const run = async (ops: BatchOp[]): Promise<boolean> => {
      if (gen !== this.generation || this.closing) return false;
      await this.tracked(this.write(ops, false));
      return true;
    };
    let snapshots = 0;
    for (const c of drop) {
      const ops: BatchOp[] = [];
      for await (const k of this.db.keys(snapshotRange(c.zxid))) ops.push({ type: 'del', key: k });
      if (!(await run(ops))) return { snapshots, txns: 0 };
      this.catalog.delete(c.zxid);
      await this.unlinkFilesOf(c);
      snapshots++;
    }
    // The log the oldest retained snapshot needs is everything after it; the rest goes, deleted by
    // LevelDB's own range clear on its worker thread, in key order (a crash midway leaves a suffix
    // of the old log, which recovery reports and leaves alone). How many records that is comes
    // from the zxids kept in memory: reading the keys to count them cost as much as the delete
    // (75k records: ~120 of ~200 ms of CPU; a JS batch op per record cost 190 ms per 50k). Nothing
    // is appended in that range meanwhile (appends follow the last txn, which is at or after every
    // snapshot). Records are keyed by their last zxid, so a record that also holds txns after the
    // snapshot stays (until a later purge).
    const txns = this.logged.countUpTo(oldestKept);
    if (txns === 0 || gen !== this.generation || this.closing) return { snapshots, txns: 0 };
    await this.tracked(this.db.clear({ gte: logKey(0n), lte: logKey(oldestKept) }));
    this.logged.dropUpTo(oldestKept);
    return { snapshots, txns };
  }

  async close(): Promise<void> {
    if (!this.dbOpen) return;
    if (this.closing) {
      await this.idle();
      return;
    }
    this.closing = true;
    // Snapshot writes in progress notice `closing` at their next chunk and abandon themselves.
    await Promise.all([...this.snapshotWrites].map((p) => p.catch(() => undefined)));
    await this.idle();
    await Promise.all([...this.inflight].map((p) => p.catch(() => undefined)));
    this.recovered = false;
    this.dbOpen = false;
    await this.db.close();
  }

  /** Where a raw LevelDB key points (tests, dump tools). */
  static describeKey(key: Uint8Array): string {
    return describeKey(key);
  }
}

/** LevelDB storage in `directory` (created if missing). */
export function levelStorage(directory: string, options?: LevelStorageOptions): LevelStorage {
  return new LevelStorage(directory, options);
}
