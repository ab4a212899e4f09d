import { crc32 } from 'node:zlib';
import type { ACL } from '../core/acl.js';
import { decode, encode } from '../core/codec.js';
import type { SnapshotNode } from '../core/tree.js';
import type { Txn } from '../core/txn.js';
import { decodeTxn, decodeTxnList, encodeTxn, encodeTxnList } from '../core/txnCodec.js';
import { formatZxid } from '../core/zxid.js';
import { CorruptRecordError, StorageError } from './errors.js';
import type { SnapshotHeader } from './types.js';

/**
 * The on-disk format of a conclave data directory (LevelDB keys and values, and snapshot chunk
 * files beside them), version 3.
 *
 * Keys (binary, so that LevelDB's byte order is zxid order):
 *   'L' zxid(8)                  one txn of the write-ahead log
 *   'S' zxid(8) 'H'              snapshot header (zxid, time, session table)
 *   'S' zxid(8) 'C' index(4)     snapshot chunk `index` (node records, parents first); formats 1–2
 *   'S' zxid(8) 'E'              snapshot end marker: written last, with the header, in one synced
 *                                batch — a snapshot without it is unfinished and never used
 *   'M' name                     meta: format, currentEpoch, acceptedEpoch
 *
 * Format 3 writes a snapshot's chunks to a file of their own, `snapshots/<zxid>-<id>.snap` in the
 * data directory (see snapshotFile.ts), named by its end marker (type 0x07: chunk and node counts,
 * the file's length and id). Through LevelDB, a 200k-node snapshot was written to its log, then
 * to a table file, then rewritten by compactions together with the older snapshots its key range
 * overlapped, and rewritten again when purged: 440–790 ms of CPU (measured in one process). A file is written
 * once, synced, renamed into place, and unlinked when purged. The file is fsynced and renamed
 * before the header and end marker are written, so the end marker still decides completeness; a
 * file no end marker names is left over from an attempt that did not finish, and is removed.
 *
 * Every value starts with a CRC-32 (IEEE, big-endian) of everything after it, then a type byte.
 * Log records also carry, outside the payload, their zxid and the zxid of the record before them
 * in the log (`prev`): a missing record in the middle of the log (a write LevelDB lost or skipped
 * on recovery) breaks that chain and is detected, where checksums alone would not see it.
 *
 * Versions: 1 wrote log records as msgpack maps (type 0x01); 2 and 3 write them in the binary txn
 * form of core/txnCodec.ts (type 0x06), the form a PROPOSAL carries; 3 writes
 * snapshot chunks to files; 4 writes one log record per group commit (type 0x08: the batch's txns
 * as a PROPOSAL's txn list, keyed by its last zxid) instead of one per txn (~1.5–2 µs of CPU per txn
 * saved, measured on classic-level with 250-txn groups). All four are read: a record of one txn
 * is a batch of one. An older directory is marked version 4 when opened for writing (before any
 * record of the new kind is written), so that an older conclave refuses it with a clear message
 * instead of meeting records it cannot read.
 */
export const FORMAT_VERSION = 4;
/**
 * Formats this code reads (and, when opened for writing, upgrades to FORMAT_VERSION). Format 2
 * snapshots (chunks in LevelDB) are read and purged as they are; new snapshots are files. Older
 * per-txn log records are read and purged as they are; new appends are batch records.
 */
export const READABLE_FORMATS: readonly number[] = [1, 2, 3, 4];

export const KEY_LOG = 0x4c; // 'L'
export const KEY_SNAP = 0x53; // 'S'
export const KEY_META = 0x4d; // 'M'
export const SNAP_HEADER = 0x48; // 'H'
export const SNAP_CHUNK = 0x43; // 'C'
export const SNAP_END = 0x45; // 'E'

/** Format 1 log record: the txn as a msgpack map. */
const T_TXN = 0x01;
/** Format 2 log record: the txn in core/txnCodec's binary form. */
const T_TXN_BINARY = 0x06;
const T_SNAP_HEADER = 0x02;
const T_SNAP_CHUNK = 0x03;
const T_SNAP_END = 0x04;
const T_META = 0x05;
/** Format 3 end marker of a snapshot whose chunks are in a file. */
const T_SNAP_END_FILE = 0x07;
/** Format 4 log record: the txns of one group commit, as a txn list (core/txnCodec). */
const T_TXN_LIST = 0x08;

export const MAX_ZXID = (1n << 64n) - 1n;

/** Log keys are carved from shared slabs (one small view each), written through one DataView. */
const KEY_SLAB_BYTES = 16 * 1024;
let keySlab = Buffer.allocUnsafeSlow(KEY_SLAB_BYTES);
let keyView = new DataView(keySlab.buffer, keySlab.byteOffset, keySlab.byteLength);
let keyUsed = 0;

export function logKey(zxid: bigint): Buffer {
  if (keyUsed + 9 > KEY_SLAB_BYTES) {
    keySlab = Buffer.allocUnsafeSlow(KEY_SLAB_BYTES);
    keyView = new DataView(keySlab.buffer, keySlab.byteOffset, keySlab.byteLength);
    keyUsed = 0;
  }
  const at = keyUsed;
  keyUsed += 16;
  keySlab[at] = KEY_LOG;
  // DataView's setBigUint64 is several times faster than Buffer#writeBigUInt64BE (measured).
  keyView.setBigUint64(at + 1, zxid);
  return keySlab.subarray(at, at + 9);
}

export function snapKey(zxid: bigint, kind: number, index = 0): Buffer {
  const b = Buffer.allocUnsafe(kind === SNAP_CHUNK ? 14 : 10);
  b[0] = KEY_SNAP;
  b.writeBigUInt64BE(zxid, 1);
  b[9] = kind;
  if (kind === SNAP_CHUNK) b.writeUInt32BE(index, 10);
  return b;
}

export function metaKey(name: string): Buffer {
  return Buffer.concat([Buffer.from([KEY_META]), Buffer.from(name, 'utf8')]);
}

export function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Reads the zxid out of a log or snapshot key. */
export function keyZxid(key: Uint8Array): bigint {
  return asBuffer(key).readBigUInt64BE(1);
}

export function describeKey(key: Uint8Array): string {
  const k = asBuffer(key);
  if (k[0] === KEY_LOG && k.length === 9) return `log ${formatZxid(k.readBigUInt64BE(1))}`;
  if (k[0] === KEY_SNAP && k.length >= 10) {
    const z = formatZxid(k.readBigUInt64BE(1));
    if (k[9] === SNAP_HEADER) return `snapshot ${z} header`;
    if (k[9] === SNAP_END) return `snapshot ${z} end marker`;
    if (k[9] === SNAP_CHUNK && k.length === 14) return `snapshot ${z} chunk ${k.readUInt32BE(10)}`;
  }
  if (k[0] === KEY_META) return `meta ${k.subarray(1).toString('utf8')}`;
  return `key ${k.toString('hex')}`;
}

function crcOf(b: Buffer, start: number): number {
  return crc32(b.subarray(start)) >>> 0;
}

/** Checks a value's CRC and type byte (`type`, or `alt` when given); returns it as a Buffer. */
function checked(where: string, value: Uint8Array, type: number, minLength: number, alt = type): Buffer {
  const b = asBuffer(value);
  if (b.length < Math.max(5, minLength)) throw new CorruptRecordError(where, `record too short (${b.length} bytes)`);
  const stored = b.readUInt32BE(0);
  const computed = crcOf(b, 4);
  if (stored !== computed) {
    throw new CorruptRecordError(where, `checksum mismatch (stored ${stored.toString(16).padStart(8, '0')}, computed ${computed.toString(16).padStart(8, '0')})`);
  }
  if (b[4] !== type && b[4] !== alt) throw new CorruptRecordError(where, `unexpected record type 0x${b[4]!.toString(16)} (wanted 0x${type.toString(16)})`);
  return b;
}

function sealBytes(type: number, head: number, payload: Uint8Array, fill?: (b: Buffer) => void): Buffer {
  const out = Buffer.allocUnsafe(5 + head + payload.length);
  out[4] = type;
  fill?.(out);
  out.set(payload, 5 + head);
  out.writeUInt32BE(crcOf(out, 4), 0);
  return out;
}

// ------------------------------------------------------------------ log records

const LOG_HEAD = 16; // zxid(8) prev(8)

/** A log record (format 2) for `txn`: the txn in the form PROPOSAL frames carry it. */
export function encodeLogRecord(txn: Txn, prev: bigint): Buffer {
  const out = encodeTxn(txn, 5 + LOG_HEAD);
  out[4] = T_TXN_BINARY;
  const v = new DataView(out.buffer, out.byteOffset, 5 + LOG_HEAD);
  v.setBigUint64(5, txn.zxid);
  v.setBigUint64(13, prev);
  out.writeUInt32BE(crcOf(out, 4), 0);
  return out;
}

/** A format 1 log record (msgpack), as older versions wrote them (tests of reading old directories). */
export function encodeLogRecordV1(txn: Txn, prev: bigint): Buffer {
  return sealBytes(T_TXN, LOG_HEAD, encode(txn), (b) => {
    b.writeBigUInt64BE(txn.zxid, 5);
    b.writeBigUInt64BE(prev, 13);
  });
}

/**
 * A log record (format 4) for the txns of one group commit: `last(8) prev(8) first(8) count(4)`,
 * then the txns as encodeTxnList writes them (the form of a PROPOSAL's list). Keyed by the last
 * zxid, so that "records after z" (reading, truncating) and "records up to z" (purging) are key
 * ranges; a record that holds both sides of z is handled where that matters (readLog skips, a
 * truncation rewrites it).
 */
export function encodeLogBatch(txns: readonly Txn[], prev: bigint): Buffer {
  const first = txns[0]!.zxid;
  const last = txns[txns.length - 1]!.zxid;
  const out = encodeTxnList(txns, 5 + BATCH_HEAD);
  out[4] = T_TXN_LIST;
  const v = new DataView(out.buffer, out.byteOffset, 5 + BATCH_HEAD);
  v.setBigUint64(5, last);
  v.setBigUint64(13, prev);
  v.setBigUint64(21, first);
  v.setUint32(29, txns.length);
  out.writeUInt32BE(crcOf(out, 4), 0);
  return out;
}

const BATCH_HEAD = LOG_HEAD + 12; // + first(8) count(4)

/** What can be learned from a log record without decoding its txns. */
export interface LogRecordHead {
  /** The record's last zxid (its key). */
  zxid: bigint;
  /** The last zxid of the record before it (0 for the first ever). */
  prev: bigint;
  /** Its first zxid and how many txns it holds (one for the per-txn records of formats 1–3). */
  first: bigint;
  count: number;
}

/** Verifies a log record's checksum and that it belongs under `keyZxid`; cheap (no decoding). */
export function checkLogRecord(keyZxid: bigint, value: Uint8Array): LogRecordHead {
  const where = `log ${formatZxid(keyZxid)}`;
  const b = asBuffer(value);
  const batch = b.length > 4 && b[4] === T_TXN_LIST;
  checked(where, value, batch ? T_TXN_LIST : T_TXN_BINARY, 5 + (batch ? BATCH_HEAD : LOG_HEAD) + 1, batch ? T_TXN_LIST : T_TXN);
  const zxid = b.readBigUInt64BE(5);
  const prev = b.readBigUInt64BE(13);
  if (zxid !== keyZxid) throw new CorruptRecordError(where, `record says zxid ${formatZxid(zxid)} (key and record disagree)`);
  const first = batch ? b.readBigUInt64BE(21) : zxid;
  const count = batch ? b.readUInt32BE(29) : 1;
  if (first > zxid || count < 1 || (count === 1) !== (first === zxid) || BigInt(count) > zxid - first + 1n) {
    throw new CorruptRecordError(where, `says it holds ${count} txn(s) from ${formatZxid(first)}`);
  }
  if (prev >= first) throw new CorruptRecordError(where, `previous zxid ${formatZxid(prev)} is not below the record's own`);
  return { zxid, prev, first, count };
}

/** A log record's txns, checked against its head (ascending zxids from `first` to its key). */
export function decodeLogRecord(keyZxid: bigint, value: Uint8Array): LogRecordHead & { txns: Txn[] } {
  const head = checkLogRecord(keyZxid, value);
  const where = `log ${formatZxid(keyZxid)}`;
  const b = asBuffer(value);
  let txns: Txn[];
  try {
    if (b[4] === T_TXN_LIST) {
      txns = decodeTxnList(b, 5 + BATCH_HEAD, b.length);
    } else if (b[4] === T_TXN_BINARY) {
      txns = [decodeTxn(b, 5 + LOG_HEAD, b.length)];
    } else {
      const txn = decode(b.subarray(5 + LOG_HEAD)) as Txn;
      if (txn !== null && typeof txn === 'object' && typeof txn.op === 'object' && txn.op !== null) ownData(txn.op);
      txns = [txn];
    }
  } catch (e) {
    throw new CorruptRecordError(where, `undecodable txn (${(e as Error).message})`);
  }
  if (txns.length !== head.count) throw new CorruptRecordError(where, `holds ${txns.length} txn(s), its head says ${head.count}`);
  let before = head.prev;
  for (const txn of txns) {
    if (txn === null || typeof txn !== 'object' || typeof txn.zxid !== 'bigint' || txn.zxid <= before || typeof txn.op !== 'object' || txn.op === null) {
      throw new CorruptRecordError(where, 'payload is not the txns the record claims');
    }
    before = txn.zxid;
  }
  if (txns[0]!.zxid !== head.first || before !== keyZxid) throw new CorruptRecordError(where, 'payload is not the txns the record claims');
  return { ...head, txns };
}

/**
 * msgpackr decodes binary as a Buffer *view* into the record it came from; the tree keeps txn
 * data as the node's data, so give it its own plain Uint8Array (no aliasing of the LevelDB value,
 * and `.slice()` on it copies as callers expect, which Buffer's does not).
 */
function ownData(op: Txn['op']): void {
  if (op.type === 'create' || op.type === 'setData') {
    op.data = new Uint8Array(op.data);
  } else if (op.type === 'multi') {
    for (const sub of op.ops) if (sub.type === 'create' || sub.type === 'setData') sub.data = new Uint8Array(sub.data);
  }
}

// ------------------------------------------------------------------ meta

export function encodeMeta(value: unknown): Buffer {
  return sealBytes(T_META, 0, encode(value));
}

export function decodeMeta(name: string, value: Uint8Array): unknown {
  const b = checked(`meta ${name}`, value, T_META, 6);
  try {
    return decode(b.subarray(5));
  } catch (e) {
    throw new CorruptRecordError(`meta ${name}`, `undecodable (${(e as Error).message})`);
  }
}

// ------------------------------------------------------------------ snapshots

export function encodeSnapshotHeader(header: SnapshotHeader): Buffer {
  return sealBytes(T_SNAP_HEADER, 0, encode({
    zxid: header.zxid,
    time: header.time,
    sessions: header.sessions.map(sessionRecord),
    nodeCount: header.nodeCount ?? 0,
  }));
}

export function decodeSnapshotHeader(zxid: bigint, value: Uint8Array): SnapshotHeader {
  const where = `snapshot ${formatZxid(zxid)} header`;
  const b = checked(where, value, T_SNAP_HEADER, 6);
  let h: SnapshotHeader;
  try {
    h = decode(b.subarray(5)) as SnapshotHeader;
  } catch (e) {
    throw new CorruptRecordError(where, `undecodable (${(e as Error).message})`);
  }
  if (!h || h.zxid !== zxid || typeof h.time !== 'number' || !Array.isArray(h.sessions)) {
    throw new CorruptRecordError(where, 'header does not describe this snapshot');
  }
  for (const s of h.sessions) {
    if (!s || typeof s.id !== 'bigint' || typeof s.timeoutMs !== 'number' || typeof s.origin !== 'string') {
      throw new CorruptRecordError(where, 'malformed session entry');
    }
    // Optional (absent in snapshots written before remote sessions): last applied request id, recent results.
    if (s.lastCxid !== undefined && !(Number.isSafeInteger(s.lastCxid) && s.lastCxid >= 0)) {
      throw new CorruptRecordError(where, 'malformed session entry (lastCxid)');
    }
    if (s.replies !== undefined && !(Array.isArray(s.replies) && s.replies.every((r) => r !== null && typeof r === 'object'
      && Number.isSafeInteger(r.cxid) && r.result !== null && typeof r.result === 'object' && typeof r.result.ok === 'boolean'))) {
      throw new CorruptRecordError(where, 'malformed session entry (replies)');
    }
  }
  return h;
}

/** A session of the header as stored: the optional fields only when present (older readers ignore them). */
function sessionRecord(s: SnapshotHeader['sessions'][number]): Record<string, unknown> {
  const r: Record<string, unknown> = { id: s.id, timeoutMs: s.timeoutMs, origin: s.origin };
  if (s.lastCxid !== undefined) r.lastCxid = s.lastCxid;
  if (s.replies !== undefined && s.replies.length > 0) r.replies = s.replies;
  return r;
}

export interface SnapshotEnd {
  chunks: number;
  nodes: number;
  /** Format 3: the chunks are in the file `snapshotFileName(zxid, file.id)`, of `file.bytes` bytes. */
  file?: { id: number; bytes: number };
}

export function encodeSnapshotEnd(end: SnapshotEnd): Buffer {
  const f = end.file;
  if (f === undefined) {
    return sealBytes(T_SNAP_END, 8, new Uint8Array(0), (b) => {
      b.writeUInt32BE(end.chunks, 5);
      b.writeUInt32BE(end.nodes, 9);
    });
  }
  return sealBytes(T_SNAP_END_FILE, 20, new Uint8Array(0), (b) => {
    b.writeUInt32BE(end.chunks, 5);
    b.writeUInt32BE(end.nodes, 9);
    b.writeUInt32BE(f.id, 13);
    b.writeBigUInt64BE(BigInt(f.bytes), 17);
  });
}

export function decodeSnapshotEnd(zxid: bigint, value: Uint8Array): SnapshotEnd {
  const where = `snapshot ${formatZxid(zxid)} end marker`;
  const b = checked(where, value, T_SNAP_END, 13, T_SNAP_END_FILE);
  const end: SnapshotEnd = { chunks: b.readUInt32BE(5), nodes: b.readUInt32BE(9) };
  if (b[4] === T_SNAP_END_FILE) {
    if (b.length < 25) throw new CorruptRecordError(where, `record too short (${b.length} bytes)`);
    const bytes = b.readBigUInt64BE(17);
    if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptRecordError(where, `implausible file length ${bytes}`);
    end.file = { id: b.readUInt32BE(13), bytes: Number(bytes) };
  }
  return end;
}

/** The chunk file of a format 3 snapshot, relative to the data directory's `snapshots/` folder. */
export function snapshotFileName(zxid: bigint, id: number): string {
  return `${zxid.toString(16).padStart(16, '0')}-${id.toString(16).padStart(8, '0')}.snap`;
}

/** zxid and id of a chunk file name (finished or temporary), or undefined for any other name. */
export function parseSnapshotFileName(name: string): { zxid: bigint; id: number; temporary: boolean } | undefined {
  const m = /^([0-9a-f]{16})-([0-9a-f]{8})\.snap(\.tmp)?$/.exec(name);
  if (!m) return undefined;
  return { zxid: BigInt(`0x${m[1]}`), id: Number.parseInt(m[2]!, 16), temporary: m[3] !== undefined };
}

/**
 * Snapshot chunks use a compact binary layout rather than msgpack maps: recovery of a large tree
 * is dominated by decoding, and fixed-width fields decode several times faster than keyed maps.
 *
 *   u32 nodeCount, u32 aclCount, aclCount × (u32 len, msgpack ACL[])
 *   nodeCount × (u32 pathLen, path utf8, u32 dataLen, data, u32 aclIndex,
 *                u64 czxid, u64 mzxid, u64 pzxid, f64 ctime, f64 mtime,
 *                i32 version, i32 cversion, i32 aversion, u32 numChildren, u64 ephemeralOwner,
 *                u32 seq, u8 kind, f64 ttl)
 */
/** Bytes after the acl index: czxid … ttl. */
const NODE_STAT = 8 * 3 + 8 * 2 + 4 * 3 + 4 + 8 + 4 + 1 + 8;
const NODE_FIXED = 4 + 4 + 4 + NODE_STAT;

/** A zxid or session id as stored: 0 ≤ v < 2^64 (DataView would silently wrap anything else). */
function u64(v: bigint): bigint {
  if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`not a 64-bit unsigned value: ${String(v)}`);
  return v;
}

/** Accumulates node records into one chunk value. */
export class ChunkEncoder {
  private buf = Buffer.allocUnsafe(1 << 16);
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  private off = 0;
  private acls: Uint8Array[] = [];
  private aclByRef = new Map<readonly ACL[], number>();
  private aclByKey = new Map<string, number>();
  count = 0;

  get size(): number {
    return this.off;
  }

  private ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    let len = this.buf.length * 2;
    while (len < this.off + n) len *= 2;
    const nb = Buffer.allocUnsafe(len);
    this.buf.copy(nb, 0, 0, this.off);
    this.buf = nb;
    this.view = new DataView(nb.buffer, nb.byteOffset, nb.byteLength);
  }

  private aclIndex(acl: readonly ACL[]): number {
    let i = this.aclByRef.get(acl);
    if (i !== undefined) return i;
    const key = JSON.stringify(acl);
    i = this.aclByKey.get(key);
    if (i === undefined) {
      i = this.acls.length;
      this.acls.push(encode(acl.map((a) => ({ perms: a.perms, scheme: a.scheme, id: a.id }))));
      this.aclByKey.set(key, i);
    }
    this.aclByRef.set(acl, i);
    return i;
  }

  add(n: SnapshotNode): void {
    if (typeof n?.path !== 'string' || !(n.data instanceof Uint8Array) || !Array.isArray(n.acl) || typeof n.stat !== 'object') {
      throw new StorageError('BAD_ARGUMENT', `snapshot node is malformed (path ${JSON.stringify(n?.path)})`);
    }
    const start = this.off;
    try {
      this.put(n);
    } catch (e) {
      this.off = start;
      throw new StorageError('BAD_ARGUMENT', `snapshot node ${n.path} cannot be encoded: ${(e as Error).message}`);
    }
    this.count++;
  }

  private put(n: SnapshotNode): void {
    const s = n.stat;
    const path = n.path;
    this.ensure(NODE_FIXED + 3 * path.length + n.data.length); // UTF-8 takes at most 3 bytes per UTF-16 unit
    const b = this.buf;
    let o = this.off + 4;
    // ASCII paths (nearly all) byte by byte: cheaper than two native calls per node.
    let i = 0;
    for (; i < path.length; i++) {
      const c = path.charCodeAt(i);
      if (c >= 0x80) break;
      b[o + i] = c;
    }
    const pathLen = i === path.length ? i : b.write(path, o, 'utf8');
    b.writeUInt32BE(pathLen, o - 4);
    o += pathLen;
    b.writeUInt32BE(n.data.length, o);
    o += 4;
    b.set(n.data, o);
    o += n.data.length;
    b.writeUInt32BE(this.aclIndex(n.acl), o);
    o += 4;
    // DataView for the 64-bit fields: several times faster than Buffer's writeBigUInt64BE. The
    // same checks as Buffer's (the range of each integer) so that a bad value fails as before.
    const v = this.view;
    v.setBigUint64(o, u64(s.czxid));
    v.setBigUint64(o + 8, u64(s.mzxid));
    v.setBigUint64(o + 16, u64(s.pzxid));
    v.setFloat64(o + 24, s.ctime);
    v.setFloat64(o + 32, s.mtime);
    b.writeInt32BE(s.version, o + 40);
    b.writeInt32BE(s.cversion, o + 44);
    b.writeInt32BE(s.aversion, o + 48);
    b.writeUInt32BE(s.numChildren, o + 52);
    v.setBigUint64(o + 56, u64(s.ephemeralOwner));
    b.writeUInt32BE(n.seq, o + 64);
    b[o + 68] = n.kind;
    v.setFloat64(o + 69, n.ttl);
    this.off = o + NODE_STAT;
  }

  /**
   * The sealed chunk value as two parts to be written one after the other (the head: checksum,
   * type, counts and ACL table; the body: the node records, a view of the encoder's own buffer,
   * valid until the next `add`); the encoder is reset. No copy of the body is made: a snapshot
   * streams ~30 MB per 200k nodes, and copying each chunk twice made as much short-lived external
   * memory, which pushes V8 into full collections of a large heap.
   */
  finishParts(): [Buffer, Buffer] {
    let aclBytes = 4;
    for (const a of this.acls) aclBytes += 4 + a.length;
    const head = Buffer.allocUnsafe(5 + 4 + aclBytes);
    head[4] = T_SNAP_CHUNK;
    head.writeUInt32BE(this.count, 5);
    head.writeUInt32BE(this.acls.length, 9);
    let o = 13;
    for (const a of this.acls) {
      head.writeUInt32BE(a.length, o);
      head.set(a, o + 4);
      o += 4 + a.length;
    }
    const body = this.buf.subarray(0, this.off);
    head.writeUInt32BE(crc32(body, crc32(head.subarray(4))) >>> 0, 0);
    this.off = 0;
    this.count = 0;
    this.acls = [];
    this.aclByRef.clear();
    this.aclByKey.clear();
    return [head, body];
  }

  /** The sealed chunk value in one buffer of its own; the encoder is reset. */
  finish(): Buffer {
    return Buffer.concat(this.finishParts());
  }
}

/** Checks a chunk's checksum and returns its node count (no decoding). */
export function checkSnapshotChunk(zxid: bigint, index: number, value: Uint8Array): number {
  const b = checked(`snapshot ${formatZxid(zxid)} chunk ${index}`, value, T_SNAP_CHUNK, 13);
  return b.readUInt32BE(5);
}

export function decodeSnapshotChunk(zxid: bigint, index: number, value: Uint8Array): SnapshotNode[] {
  const where = `snapshot ${formatZxid(zxid)} chunk ${index}`;
  const b = checked(where, value, T_SNAP_CHUNK, 13);
  try {
    const count = b.readUInt32BE(5);
    const aclCount = b.readUInt32BE(9);
    let o = 13;
    const acls: ACL[][] = [];
    for (let i = 0; i < aclCount; i++) {
      const len = b.readUInt32BE(o);
      const acl = decode(b.subarray(o + 4, o + 4 + len)) as ACL[];
      if (!Array.isArray(acl)) throw new Error(`acl ${i} is not a list`);
      acls.push(acl);
      o += 4 + len;
    }
    const nodes: SnapshotNode[] = new Array(count);
    // zxids of one chunk share their epoch (high word) almost always: build each bigint from a
    // cached high part (BigInt arithmetic dominates decoding otherwise).
    let hiWord = -1;
    let hiBig = 0n;
    const u64 = (at: number): bigint => {
      const hi = b.readUInt32BE(at);
      const lo = b.readUInt32BE(at + 4);
      if (hi === 0) return lo === 0 ? 0n : BigInt(lo);
      if (hi !== hiWord) {
        hiWord = hi;
        hiBig = BigInt(hi) << 32n;
      }
      return hiBig | BigInt(lo);
    };
    for (let i = 0; i < count; i++) {
      const pathLen = b.readUInt32BE(o);
      o += 4;
      if (o + pathLen > b.length) throw new RangeError('path runs past the end');
      const path = b.toString('utf8', o, o + pathLen);
      o += pathLen;
      const dataLen = b.readUInt32BE(o);
      o += 4;
      if (o + dataLen + 4 + NODE_STAT > b.length) throw new RangeError('node runs past the end');
      const data = new Uint8Array(dataLen);
      data.set(b.subarray(o, o + dataLen));
      o += dataLen;
      const acl = acls[b.readUInt32BE(o)];
      if (acl === undefined) throw new RangeError('acl index out of range');
      o += 4;
      nodes[i] = {
        path,
        data,
        acl,
        stat: {
          czxid: u64(o),
          mzxid: u64(o + 8),
          pzxid: u64(o + 16),
          ctime: b.readDoubleBE(o + 24),
          mtime: b.readDoubleBE(o + 32),
          version: b.readInt32BE(o + 40),
          cversion: b.readInt32BE(o + 44),
          aversion: b.readInt32BE(o + 48),
          ephemeralOwner: u64(o + 56),
          dataLength: dataLen,
          numChildren: b.readUInt32BE(o + 52),
        },
        seq: b.readUInt32BE(o + 64),
        kind: b[o + 68] as SnapshotNode['kind'],
        ttl: b.readDoubleBE(o + 69),
      };
      o += NODE_STAT;
    }
    if (o !== b.length) throw new RangeError(`${b.length - o} trailing bytes`);
    return nodes;
  } catch (e) {
    if (e instanceof CorruptRecordError) throw e;
    throw new CorruptRecordError(where, `undecodable (${(e as Error).message})`);
  }
}
