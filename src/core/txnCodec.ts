import type { ACL, AuthId } from './acl.js';
import type { CreateMode } from './createMode.js';
import type { MultiOpRequest, Request, RequestOp } from './request.js';
import { SlabAllocator } from './slab.js';
import type { ErrorCode } from './errors.js';
import type { CheckTxn, CreateTxn, DeleteTxn, NodeKind, SetDataTxn, Txn, TxnOp } from './txn.js';

/**
 * The compact binary form of a txn, used for the txn log and inside PROPOSAL/DIFF frames. Fixed
 * field order instead of msgpack maps: no key names on the wire or on disk, and encoding or
 * decoding is a few reads or writes per field (~0.7 us for a create, against 1.4 / 2.5 us for
 * msgpack). Nothing is cached per txn object: associating bytes with objects (a WeakMap) costs
 * more than encoding again (measured), so the log encodes what it writes, and a list of txns sent
 * to several followers is encoded once by the message codec (core/codec.ts).
 *
 *   u8 version (1) | u64 zxid | u64 sessionId | num cxid | num time | u8 op | op fields
 *
 * num: one byte 0–0xef for small non-negative integers, else a tag — 0xf0 u16, 0xf1 u32,
 * 0xf2 i32 (negative), 0xf3 f64 — so every JS number round-trips exactly. str: varint byte
 * length + UTF-8. bytes: varint length + bytes. acl: varint count × (num perms, str scheme,
 * str id). u64: 8 bytes big-endian.
 *
 * Decoding never trusts its input: every read is bounds-checked, counts are bounded by the bytes
 * left, and anything malformed throws TxnCodecError (the caller drops the frame or reports the
 * record corrupt). Values it produces still go through the structural checks of the layer above
 * (isValidTxn for messages).
 */

export class TxnCodecError extends Error {
  override readonly name = 'TxnCodecError';
}

const VERSION = 1;

const OP_CREATE = 1;
const OP_DELETE = 2;
const OP_SET_DATA = 3;
const OP_SET_ACL = 4;
const OP_CHECK = 5;
const OP_MULTI = 6;
const OP_ERROR = 7;
const OP_CREATE_SESSION = 8;
const OP_CLOSE_SESSION = 9;

const NUM_U16 = 0xf0;
const NUM_U32 = 0xf1;
const NUM_I32 = 0xf2;
const NUM_F64 = 0xf3;

const ERR_PATH = 1;
const ERR_FAILED_OP = 2;
const ERR_OP_COUNT = 4;

// ------------------------------------------------------------------ encoding

// Encoding is synchronous and not re-entrant: module-level buffers serve every call.
const SCRATCH_BYTES = 64 * 1024;
/** The growable scratch buffer (encodeTxnList, large txns). */
let scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
let scratchView = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);
/** Where the w*() functions write: the scratch buffer, or a slab while encodeTxn runs. */
let buf = scratch;
let view = scratchView;
let pos = 0;

function ensure(n: number): void {
  if (pos + n <= buf.length) return;
  if (buf !== scratch) throw new SlabFull();
  let len = scratch.length * 2;
  while (len < pos + n) len *= 2;
  const nb = Buffer.allocUnsafeSlow(len);
  scratch.copy(nb, 0, 0, pos);
  scratch = buf = nb;
  scratchView = view = new DataView(nb.buffer, nb.byteOffset, nb.byteLength);
}

function wU8(v: number): void {
  ensure(1);
  buf[pos++] = v;
}

function wVarint(v: number): void {
  ensure(5);
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
}

function wNum(v: number): void {
  // First: `>>>` on a bigint would throw a TypeError, not the codec's error that callers expect.
  if (typeof v !== 'number') throw new TxnCodecError(`not a number: ${typeof v}`);
  ensure(9);
  if (v >>> 0 === v && !Object.is(v, -0)) {
    if (v < NUM_U16) {
      buf[pos++] = v;
    } else if (v <= 0xffff) {
      buf[pos++] = NUM_U16;
      view.setUint16(pos, v);
      pos += 2;
    } else {
      buf[pos++] = NUM_U32;
      view.setUint32(pos, v);
      pos += 4;
    }
  } else if ((v | 0) === v && !Object.is(v, -0)) {
    buf[pos++] = NUM_I32;
    view.setInt32(pos, v);
    pos += 4;
  } else {
    buf[pos++] = NUM_F64;
    view.setFloat64(pos, v);
    pos += 8;
  }
}

function wU64(v: bigint): void {
  if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) throw new TxnCodecError(`not a 64-bit unsigned bigint: ${String(v)}`);
  ensure(8);
  view.setBigUint64(pos, v);
  pos += 8;
}

function wStr(s: string): void {
  if (typeof s !== 'string') throw new TxnCodecError(`not a string: ${typeof s}`);
  const n = s.length;
  if (n < 0x80) {
    // ASCII fast path: one length byte, one byte per char; falls back on the first non-ASCII char.
    ensure(1 + n);
    const start = pos;
    buf[pos++] = n;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[pos++] = c;
    }
    if (i === n) return;
    pos = start;
  }
  const bytes = Buffer.byteLength(s, 'utf8');
  wVarint(bytes);
  ensure(bytes);
  pos += buf.write(s, pos, bytes, 'utf8');
}

function wBytes(b: Uint8Array): void {
  if (!(b instanceof Uint8Array)) throw new TxnCodecError('data is not a Uint8Array');
  wVarint(b.length);
  ensure(b.length);
  buf.set(b, pos);
  pos += b.length;
}

function wAcl(acl: readonly ACL[]): void {
  if (!Array.isArray(acl)) throw new TxnCodecError('acl is not a list');
  wVarint(acl.length);
  for (let i = 0; i < acl.length; i++) {
    const a = acl[i]!;
    wNum(a.perms);
    wStr(a.scheme);
    wStr(a.id);
  }
}

function wSubOp(op: CreateTxn | DeleteTxn | SetDataTxn | CheckTxn): void {
  switch (op.type) {
    case 'create':
      wU8(OP_CREATE);
      wStr(op.path);
      wBytes(op.data);
      wAcl(op.acl);
      wU64(op.ephemeralOwner);
      wNum(op.kind);
      wNum(op.ttl);
      wNum(op.pcv);
      wNum(op.pseq);
      return;
    case 'delete':
      wU8(OP_DELETE);
      wStr(op.path);
      wNum(op.pcv);
      return;
    case 'setData':
      wU8(OP_SET_DATA);
      wStr(op.path);
      wBytes(op.data);
      wNum(op.version);
      return;
    case 'check':
      wU8(OP_CHECK);
      wStr(op.path);
      return;
    default:
      throw new TxnCodecError(`unknown op type ${String((op as { type?: unknown }).type)}`);
  }
}

function wOp(op: TxnOp): void {
  switch (op.type) {
    case 'create': case 'delete': case 'setData': case 'check':
      wSubOp(op);
      return;
    case 'setACL':
      wU8(OP_SET_ACL);
      wStr(op.path);
      wAcl(op.acl);
      wNum(op.aversion);
      return;
    case 'multi':
      wU8(OP_MULTI);
      if (!Array.isArray(op.ops)) throw new TxnCodecError('multi ops is not a list');
      wVarint(op.ops.length);
      for (const sub of op.ops) {
        if (sub === null || typeof sub !== 'object' || sub.type === undefined || !['create', 'delete', 'setData', 'check'].includes(sub.type)) {
          throw new TxnCodecError('bad multi sub-op');
        }
        wSubOp(sub);
      }
      return;
    case 'error': {
      wU8(OP_ERROR);
      wStr(op.code);
      const flags = (op.path !== undefined ? ERR_PATH : 0) | (op.failedOp !== undefined ? ERR_FAILED_OP : 0) | (op.opCount !== undefined ? ERR_OP_COUNT : 0);
      wU8(flags);
      if (op.path !== undefined) wStr(op.path);
      if (op.failedOp !== undefined) wNum(op.failedOp);
      if (op.opCount !== undefined) wNum(op.opCount);
      return;
    }
    case 'createSession':
      wU8(OP_CREATE_SESSION);
      wNum(op.timeoutMs);
      wStr(op.origin);
      return;
    case 'closeSession':
      wU8(OP_CLOSE_SESSION);
      wStr(op.reason);
      if (!Array.isArray(op.deletes)) throw new TxnCodecError('closeSession deletes is not a list');
      wVarint(op.deletes.length);
      for (const d of op.deletes) {
        wStr(d.path);
        wNum(d.pcv);
      }
      return;
    default:
      throw new TxnCodecError(`unknown op type ${String((op as { type?: unknown } | null)?.type)}`);
  }
}

/** Writes `txn` at the scratch buffer's position. */
function wTxn(txn: Txn): void {
  if (txn === null || typeof txn !== 'object' || txn.op === null || typeof txn.op !== 'object') throw new TxnCodecError('not a txn');
  wU8(VERSION);
  wU64(txn.zxid);
  wU64(txn.sessionId);
  wNum(txn.cxid);
  wNum(txn.time);
  wOp(txn.op);
}

/**
 * Encodes `txn` after `headBytes` reserved bytes (left for the caller to fill: a log record's
 * head). Small results are views of a shared slab, written in place (no copy, one small object):
 * that part of the slab is never written again, and the slab lives as long as any view of it.
 * Throws TxnCodecError for anything that is not a txn.
 */
export function encodeTxn(txn: Txn, headBytes = 0): Buffer {
  for (let attempt = 0; attempt < 2; attempt++) {
    if (outUsed + headBytes + 64 > outSlab.length) newOutSlab();
    const start = outUsed;
    buf = outSlab;
    view = outView;
    pos = start + headBytes;
    try {
      wTxn(txn);
      outUsed = (pos + 7) & ~7;
      return outSlab.subarray(start, pos);
    } catch (e) {
      if (!(e instanceof SlabFull)) throw e;
      // What is left of this slab is too small: the next txns start in a fresh one (and so does
      // this one, once; a txn too large for a fresh slab goes below).
      if (attempt === 0) newOutSlab();
    } finally {
      buf = scratch;
      view = scratchView;
    }
  }
  // Larger than a slab: in the growable scratch buffer, then copied into a buffer of its own.
  pos = headBytes;
  wTxn(txn);
  const out = Buffer.allocUnsafe(pos);
  buf.copy(out, headBytes, headBytes, pos);
  shrinkScratch();
  return out;
}

const OUT_SLAB_BYTES = 64 * 1024;
let outSlab = Buffer.allocUnsafeSlow(OUT_SLAB_BYTES);
let outView = new DataView(outSlab.buffer, outSlab.byteOffset, outSlab.byteLength);
let outUsed = 0;

function newOutSlab(): void {
  outSlab = Buffer.allocUnsafeSlow(OUT_SLAB_BYTES);
  outView = new DataView(outSlab.buffer, outSlab.byteOffset, outSlab.byteLength);
  outUsed = 0;
}

/** Thrown by ensure() when a txn does not fit in the slab (never escapes encodeTxn). */
class SlabFull extends Error {}

/**
 * A list of txns as `varint count | count × (varint length | txn)`, in one buffer of its own
 * (the txns section of a binary message). Throws TxnCodecError if any element is not a txn.
 */
export function encodeTxnList(txns: readonly Txn[], headBytes = 0): Buffer {
  return encodeList(txns, wTxn, headBytes);
}

/**
 * `varint count | count × (varint length | item written by `write`)`, in one buffer of its own,
 * after `headBytes` left for the caller (a log record's head).
 */
function encodeList<T>(items: readonly T[], write: (item: T) => void, headBytes = 0): Buffer {
  pos = 0;
  const ends: number[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    write(items[i]!);
    ends[i] = pos;
  }
  let size = varintSize(items.length);
  for (let i = 0, start = 0; i < items.length; start = ends[i]!, i++) size += varintSize(ends[i]! - start) + ends[i]! - start;
  const out = Buffer.allocUnsafe(headBytes + size);
  let at = putVarint(out, headBytes, items.length);
  for (let i = 0, start = 0; i < items.length; start = ends[i]!, i++) {
    at = putVarint(out, at, ends[i]! - start);
    at += buf.copy(out, at, start, ends[i]!);
  }
  shrinkScratch();
  return out;
}

/** A scratch buffer grown for a big list (a DIFF) or txn goes back to its usual size. */
function shrinkScratch(): void {
  if (scratch.length <= SCRATCH_BYTES * 16) return;
  scratch = buf = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
  scratchView = view = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);
}

export function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v >>>= 7;
    n++;
  }
  return n;
}

export function putVarint(out: Uint8Array, at: number, v: number): number {
  while (v >= 0x80) {
    out[at++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[at++] = v;
  return at;
}

// ------------------------------------------------------------------ decoding

/** A bounds-checked reader over one buffer region. */
class Reader {
  private readonly view: DataView;
  pos: number;

  constructor(readonly b: Buffer, start: number, readonly end: number) {
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    this.pos = start;
  }

  need(n: number): void {
    if (n > this.end - this.pos) throw new TxnCodecError(`truncated (needs ${n} more bytes at ${this.pos})`);
  }

  u8(): number {
    this.need(1);
    return this.b[this.pos++]!;
  }

  varint(): number {
    const first = this.u8();
    if (first < 0x80) return first; // most lengths and counts: one byte
    let v = first & 0x7f;
    // A running multiplier, not 2 ** shift: a variable exponent is a call to pow() per byte.
    for (let scale = 0x80; scale <= 0x10000000; scale *= 0x80) {
      const byte = this.u8();
      v += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (v > 0xffffffff) break;
        return v;
      }
    }
    throw new TxnCodecError('bad length');
  }

  num(): number {
    const tag = this.u8();
    if (tag < NUM_U16) return tag;
    let v: number;
    switch (tag) {
      case NUM_U16: this.need(2); v = this.view.getUint16(this.pos); this.pos += 2; return v;
      case NUM_U32: this.need(4); v = this.view.getUint32(this.pos); this.pos += 4; return v;
      case NUM_I32: this.need(4); v = this.view.getInt32(this.pos); this.pos += 4; return v;
      case NUM_F64: this.need(8); v = this.view.getFloat64(this.pos); this.pos += 8; return v;
      default: throw new TxnCodecError(`bad number tag 0x${tag.toString(16)}`);
    }
  }

  u64(): bigint {
    this.need(8);
    const at = this.pos;
    this.pos += 8;
    // Zero (no ephemeral owner, system session) is common: no BigInt to allocate for it.
    if (this.view.getUint32(at) === 0 && this.view.getUint32(at + 4) === 0) return 0n;
    return this.view.getBigUint64(at);
  }

  str(): string {
    const n = this.varint();
    this.need(n);
    const start = this.pos;
    this.pos += n;
    return this.b.toString('utf8', start, start + n);
  }

  /** A copy of the bytes: a znode's value must not pin the frame or record it came in. */
  bytes(): Uint8Array {
    const n = this.varint();
    this.need(n);
    const out = values.alloc(n);
    this.b.copy(out, 0, this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  acl(): readonly ACL[] {
    // Consecutive txns almost always carry the same ACL. The encoding is self-delimiting, so when
    // the next bytes are exactly the last ACL decoded, they decode to it: share that (frozen) array.
    const last = lastAcl;
    if (last !== undefined && last.bytes.length <= this.end - this.pos
      && this.b.compare(last.bytes, 0, last.bytes.length, this.pos, this.pos + last.bytes.length) === 0) {
      this.pos += last.bytes.length;
      return last.acl;
    }
    const start = this.pos;
    const count = this.varint();
    // Each entry takes at least 3 bytes.
    if (count * 3 > this.end - this.pos) throw new TxnCodecError('acl count exceeds the bytes left');
    const acl: ACL[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const perms = this.num();
      const scheme = this.str();
      const id = this.str();
      acl[i] = Object.freeze({ perms, scheme, id });
    }
    const frozen = Object.freeze(acl);
    if (this.pos - start <= 256) lastAcl = { bytes: Buffer.from(this.b.subarray(start, this.pos)), acl: frozen };
    return frozen;
  }

  count(minBytesEach: number): number {
    const n = this.varint();
    if (n * minBytesEach > this.end - this.pos) throw new TxnCodecError('count exceeds the bytes left');
    return n;
  }
}

/** Where decoded znode values are carved from (see core/slab.ts). */
const values = new SlabAllocator();

/** The last ACL decoded and its bytes (a module-level memo: ACL arrays in txns are never modified). */
let lastAcl: { bytes: Buffer; acl: readonly ACL[] } | undefined;

function rSubOp(r: Reader, type: number): CreateTxn | DeleteTxn | SetDataTxn | CheckTxn {
  switch (type) {
    case OP_CREATE: {
      const path = r.str();
      const data = r.bytes();
      const acl = r.acl() as ACL[];
      const ephemeralOwner = r.u64();
      const kind = r.num() as NodeKind;
      const ttl = r.num();
      const pcv = r.num();
      const pseq = r.num();
      return { type: 'create', path, data, acl, ephemeralOwner, kind, ttl, pcv, pseq };
    }
    case OP_DELETE: {
      const path = r.str();
      return { type: 'delete', path, pcv: r.num() };
    }
    case OP_SET_DATA: {
      const path = r.str();
      const data = r.bytes();
      return { type: 'setData', path, data, version: r.num() };
    }
    case OP_CHECK:
      return { type: 'check', path: r.str() };
    default:
      throw new TxnCodecError(`bad op type ${type}`);
  }
}

function rOp(r: Reader): TxnOp {
  const type = r.u8();
  switch (type) {
    case OP_CREATE: case OP_DELETE: case OP_SET_DATA: case OP_CHECK:
      return rSubOp(r, type);
    case OP_SET_ACL: {
      const path = r.str();
      const acl = r.acl() as ACL[];
      return { type: 'setACL', path, acl, aversion: r.num() };
    }
    case OP_MULTI: {
      const n = r.count(2);
      const ops: (CreateTxn | DeleteTxn | SetDataTxn | CheckTxn)[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const t = r.u8();
        if (t !== OP_CREATE && t !== OP_DELETE && t !== OP_SET_DATA && t !== OP_CHECK) throw new TxnCodecError(`bad multi sub-op type ${t}`);
        ops[i] = rSubOp(r, t);
      }
      return { type: 'multi', ops };
    }
    case OP_ERROR: {
      const code = r.str() as ErrorCode;
      const flags = r.u8();
      if (flags & ~(ERR_PATH | ERR_FAILED_OP | ERR_OP_COUNT)) throw new TxnCodecError('bad error flags');
      const op: TxnOp = { type: 'error', code };
      if (flags & ERR_PATH) op.path = r.str();
      if (flags & ERR_FAILED_OP) op.failedOp = r.num();
      if (flags & ERR_OP_COUNT) op.opCount = r.num();
      return op;
    }
    case OP_CREATE_SESSION: {
      const timeoutMs = r.num();
      return { type: 'createSession', timeoutMs, origin: r.str() };
    }
    case OP_CLOSE_SESSION: {
      const reason = r.str() as 'close' | 'expire';
      const n = r.count(2);
      const deletes: DeleteTxn[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const path = r.str();
        deletes[i] = { type: 'delete', path, pcv: r.num() };
      }
      return { type: 'closeSession', reason, deletes };
    }
    default:
      throw new TxnCodecError(`bad op type ${type}`);
  }
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Reads one txn that must end exactly at `end`. */
function rTxn(r: Reader, end: number): Txn {
  const version = r.u8();
  if (version !== VERSION) throw new TxnCodecError(`unknown txn encoding version ${version}`);
  const zxid = r.u64();
  const sessionId = r.u64();
  const cxid = r.num();
  const time = r.num();
  const op = rOp(r);
  if (r.pos !== end) throw new TxnCodecError(`${end - r.pos} trailing bytes`);
  return { zxid, sessionId, cxid, time, op };
}

/**
 * Decodes the txn in `b[start, end)`; it must fill the region exactly. Byte arrays in it are
 * copies; strings and numbers are values. Throws TxnCodecError when malformed.
 */
export function decodeTxn(b: Uint8Array, start = 0, end = b.length): Txn {
  const buffer = asBuffer(b);
  if (start < 0 || end > buffer.length || start > end) throw new TxnCodecError('bad region');
  return rTxn(new Reader(buffer, start, end), end);
}

/**
 * Decodes a list in the form of encodeTxnList that fills `b[start, end)` exactly. Throws
 * TxnCodecError when malformed (an empty list too: nobody sends one).
 */
export function decodeTxnList(b: Uint8Array, start = 0, end = b.length): Txn[] {
  return decodeList(b, start, end, rTxn, 'txn');
}

/** A list in the form of encodeList that fills `b[start, end)` exactly (never empty). */
function decodeList<T>(b: Uint8Array, start: number, end: number, read: (r: Reader, end: number) => T, what: string): T[] {
  const buffer = asBuffer(b);
  if (start < 0 || end > buffer.length || start > end) throw new TxnCodecError('bad region');
  const r = new Reader(buffer, start, end);
  // Every item takes more than 2 bytes: a hostile count cannot make us allocate much.
  const count = r.count(3);
  if (count === 0) throw new TxnCodecError(`empty ${what} list`);
  const items: T[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const len = r.varint();
    r.need(len);
    items[i] = read(r, r.pos + len);
  }
  if (r.pos !== end) throw new TxnCodecError(`${end - r.pos} trailing bytes`);
  return items;
}

// ------------------------------------------------------------------ forwarded requests

/**
 * Requests a follower forwards to the leader (the `reqs` of a REQUEST message), in the same style:
 *
 *   u8 version (1) | u64 sessionId | num cxid | varint n × (str scheme, str id) | u8 op | op fields
 *
 * Op fields: create path, data, acl, num mode, num ttl; delete and check path, num version;
 * setData path, data, num version; setACL path, acl, num version; multi varint n × sub-op
 * (create, delete, setData, check); createSession num timeoutMs, str origin; closeSession str
 * reason; reap path, u8 ttl (0/1). Fields are what the request types declare; decoded values have
 * exactly those, and the leader's prep still validates them as it validates any request.
 */
const REQ_VERSION = 1;
const RQ_CREATE = 1;
const RQ_DELETE = 2;
const RQ_SET_DATA = 3;
const RQ_SET_ACL = 4;
const RQ_CHECK = 5;
const RQ_MULTI = 6;
const RQ_CREATE_SESSION = 7;
const RQ_CLOSE_SESSION = 8;
const RQ_REAP = 9;

function wReqOp(op: RequestOp, inMulti: boolean): void {
  if (op === null || typeof op !== 'object') throw new TxnCodecError('request op is not an object');
  switch (op.type) {
    case 'create':
      wU8(RQ_CREATE);
      wStr(op.path);
      wBytes(op.data);
      wAcl(op.acl);
      wNum(op.mode);
      wNum(op.ttl);
      return;
    case 'delete':
      wU8(RQ_DELETE);
      wStr(op.path);
      wNum(op.version);
      return;
    case 'setData':
      wU8(RQ_SET_DATA);
      wStr(op.path);
      wBytes(op.data);
      wNum(op.version);
      return;
    case 'check':
      wU8(RQ_CHECK);
      wStr(op.path);
      wNum(op.version);
      return;
  }
  if (inMulti) throw new TxnCodecError(`bad multi sub-op ${String(op.type)}`);
  switch (op.type) {
    case 'setACL':
      wU8(RQ_SET_ACL);
      wStr(op.path);
      wAcl(op.acl);
      wNum(op.version);
      return;
    case 'multi':
      wU8(RQ_MULTI);
      if (!Array.isArray(op.ops)) throw new TxnCodecError('multi ops is not a list');
      wVarint(op.ops.length);
      for (const sub of op.ops) wReqOp(sub, true);
      return;
    case 'createSession':
      wU8(RQ_CREATE_SESSION);
      wNum(op.timeoutMs);
      wStr(op.origin);
      return;
    case 'closeSession':
      wU8(RQ_CLOSE_SESSION);
      wStr(op.reason);
      return;
    case 'reap':
      wU8(RQ_REAP);
      wStr(op.path);
      if (typeof op.ttl !== 'boolean') throw new TxnCodecError('reap ttl is not a boolean');
      wU8(op.ttl ? 1 : 0);
      return;
    default:
      throw new TxnCodecError(`unknown request op type ${String((op as { type?: unknown }).type)}`);
  }
}

function wRequest(req: Request): void {
  if (req === null || typeof req !== 'object' || !Array.isArray(req.auth)) throw new TxnCodecError('not a request');
  wU8(REQ_VERSION);
  wU64(req.sessionId);
  wNum(req.cxid);
  wVarint(req.auth.length);
  for (const a of req.auth) {
    wStr(a.scheme);
    wStr(a.id);
  }
  wReqOp(req.op, false);
}

function rReqOp(r: Reader, inMulti: boolean): RequestOp {
  const type = r.u8();
  switch (type) {
    case RQ_CREATE: {
      const path = r.str();
      const data = r.bytes();
      const acl = r.acl() as ACL[];
      const mode = r.num() as CreateMode;
      return { type: 'create', path, data, acl, mode, ttl: r.num() };
    }
    case RQ_DELETE: {
      const path = r.str();
      return { type: 'delete', path, version: r.num() };
    }
    case RQ_SET_DATA: {
      const path = r.str();
      const data = r.bytes();
      return { type: 'setData', path, data, version: r.num() };
    }
    case RQ_CHECK: {
      const path = r.str();
      return { type: 'check', path, version: r.num() };
    }
  }
  if (inMulti) throw new TxnCodecError(`bad multi sub-op type ${type}`);
  switch (type) {
    case RQ_SET_ACL: {
      const path = r.str();
      const acl = r.acl() as ACL[];
      return { type: 'setACL', path, acl, version: r.num() };
    }
    case RQ_MULTI: {
      const n = r.count(2);
      const ops: MultiOpRequest[] = new Array(n);
      for (let i = 0; i < n; i++) ops[i] = rReqOp(r, true) as MultiOpRequest;
      return { type: 'multi', ops };
    }
    case RQ_CREATE_SESSION: {
      const timeoutMs = r.num();
      return { type: 'createSession', timeoutMs, origin: r.str() };
    }
    case RQ_CLOSE_SESSION: {
      const reason = r.str();
      if (reason !== 'close' && reason !== 'expire') throw new TxnCodecError(`bad closeSession reason ${reason}`);
      return { type: 'closeSession', reason };
    }
    case RQ_REAP: {
      const path = r.str();
      const ttl = r.u8();
      if (ttl > 1) throw new TxnCodecError('bad reap flag');
      return { type: 'reap', path, ttl: ttl === 1 };
    }
    default:
      throw new TxnCodecError(`bad request op type ${type}`);
  }
}

function rRequest(r: Reader, end: number): Request {
  const version = r.u8();
  if (version !== REQ_VERSION) throw new TxnCodecError(`unknown request encoding version ${version}`);
  const sessionId = r.u64();
  const cxid = r.num();
  const n = r.count(2);
  const auth: AuthId[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const scheme = r.str();
    auth[i] = { scheme, id: r.str() };
  }
  const op = rReqOp(r, false);
  if (r.pos !== end) throw new TxnCodecError(`${end - r.pos} trailing bytes`);
  return { sessionId, cxid, op, auth };
}

/** A list of forwarded requests (see above), in one buffer of its own. Throws TxnCodecError for anything else. */
export function encodeRequestList(reqs: readonly Request[]): Buffer {
  return encodeList(reqs, wRequest);
}

/** Decodes a list of encodeRequestList filling `b[start, end)` exactly; TxnCodecError when malformed. */
export function decodeRequestList(b: Uint8Array, start = 0, end = b.length): Request[] {
  return decodeList(b, start, end, rRequest, 'request');
}
