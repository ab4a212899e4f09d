import { Packr } from 'msgpackr';
import { decodeRequestList, decodeTxnList, encodeRequestList, encodeTxnList, putVarint, TxnCodecError, varintSize } from './txnCodec.js';

/**
 * The one msgpackr configuration used for storage records and wire frames: plain maps (no
 * record extension, so every frame decodes on its own), 64-bit integers as bigint (zxids,
 * session ids), byte arrays as binary.
 */
// copyBuffers: decoded byte arrays own their memory (no views pinning a whole frame).
const packr = new Packr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true, moreTypes: false, copyBuffers: true } as ConstructorParameters<typeof Packr>[0]);

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decode(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

// ------------------------------------------------------------------ messages

/**
 * Messages between members and clients. A message whose `txns` field is a list of txns (ZAB's
 * PROPOSAL and DIFF), or whose `reqs` field is a list of forwarded requests (REQUEST), goes in a
 * binary form; anything else is one msgpack value as before:
 *
 *   0xc1 | u8 kind | varint n | n bytes: msgpack of the message without the list
 *        | varint count | count × (varint length | item in the form of txnCodec.ts)
 *
 * kind 1: `txns`, kind 2: `reqs`. 0xc1 is the one byte msgpack never uses, so the first byte
 * tells the forms apart and every payload still decodes on its own. A txns section is encoded
 * once per list: the leader sends the same list to every follower (one message each, differing in
 * the head), and the encoded section is kept with the list (a list is never changed once it is
 * in a message). A follower's REQUEST went as msgpack maps until the requests had a binary form:
 * encoding and decoding them was ~3 µs of CPU per forwarded write (profile of a follower's creates).
 */
const BINARY_MESSAGE = 0xc1;

/** The lists a message can carry in binary form, by kind byte. */
const LISTS = [
  undefined,
  { field: 'txns', encode: encodeTxnList as (items: readonly unknown[]) => Buffer, decode: decodeTxnList as (b: Uint8Array, start: number, end: number) => unknown[], cache: true },
  { field: 'reqs', encode: encodeRequestList as (items: readonly unknown[]) => Buffer, decode: decodeRequestList as (b: Uint8Array, start: number, end: number) => unknown[], cache: false },
] as const;

const sections = new WeakMap<readonly unknown[], { count: number; bytes: Buffer }>();

/** The section for `items` of list `kind`, or undefined when they do not all fit its form (then plain msgpack). */
function section(kind: 1 | 2, items: readonly unknown[]): Buffer | undefined {
  const list = LISTS[kind];
  const cached = list.cache ? sections.get(items) : undefined;
  if (cached !== undefined && cached.count === items.length) return cached.bytes;
  let bytes: Buffer;
  try {
    bytes = list.encode(items);
  } catch (e) {
    if (e instanceof TxnCodecError) return undefined;
    throw e;
  }
  if (list.cache) sections.set(items, { count: items.length, bytes });
  return bytes;
}

/** The parts of a message's binary form, or undefined when it goes as plain msgpack. */
function binaryParts(msg: unknown): { kind: 1 | 2; head: Uint8Array; section: Buffer; size: number } | undefined {
  if (msg === null || typeof msg !== 'object') return undefined;
  const m = msg as { txns?: unknown; reqs?: unknown };
  const kind = Array.isArray(m.txns) ? 1 : Array.isArray(m.reqs) ? 2 : 0;
  if (kind === 0) return undefined;
  const field = LISTS[kind].field;
  const items = (m as Record<string, unknown[]>)[field]!;
  if (items.length === 0) return undefined;
  const bytes = section(kind, items);
  if (bytes === undefined) return undefined;
  const rest: Record<string, unknown> = {};
  for (const k in msg) if (k !== field) rest[k] = (msg as Record<string, unknown>)[k];
  const head = packr.pack(rest);
  return { kind, head, section: bytes, size: 2 + varintSize(head.length) + head.length + bytes.length };
}

function writeBinary(p: { kind: 1 | 2; head: Uint8Array; section: Buffer }, out: Uint8Array, at: number): number {
  out[at++] = BINARY_MESSAGE;
  out[at++] = p.kind;
  at = putVarint(out, at, p.head.length);
  out.set(p.head, at);
  at += p.head.length;
  out.set(p.section, at);
  return at + p.section.length;
}

/** Encodes a message; see above. Throws what msgpack throws for values it cannot encode. */
export function encodeMessage(msg: unknown): Uint8Array {
  const p = binaryParts(msg);
  if (p === undefined) return packr.pack(msg);
  const out = Buffer.allocUnsafeSlow(p.size);
  writeBinary(p, out, 0);
  return out;
}

/**
 * Encodes a message after `headerBytes` reserved bytes, in one buffer of its own (a frame's length
 * prefix goes there). Returns the buffer; the payload is everything after the reserved bytes.
 */
export function encodeMessageAfter(msg: unknown, headerBytes: number): Buffer {
  const p = binaryParts(msg);
  if (p === undefined) {
    const payload = packr.pack(msg);
    const out = Buffer.allocUnsafe(headerBytes + payload.length);
    out.set(payload, headerBytes);
    return out;
  }
  const out = Buffer.allocUnsafe(headerBytes + p.size);
  const end = writeBinary(p, out, headerBytes);
  if (end !== out.length) throw new Error(`message encoding wrote ${end} of ${out.length} bytes`);
  return out;
}

function readVarint(b: Uint8Array, at: number, end: number): [number, number] {
  let v = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (at >= end) throw new RangeError('truncated length');
    const byte = b[at++]!;
    v += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) {
      if (v > 0xffffffff) break;
      return [v, at];
    }
  }
  throw new RangeError('bad length');
}

/** Decodes one message payload in either form; throws on anything malformed (the caller drops the frame). */
export function decodeMessage(payload: Uint8Array): unknown {
  if (payload.length === 0 || payload[0] !== BINARY_MESSAGE) return packr.unpack(payload);
  const bytes = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const end = bytes.length;
  const list = bytes.length < 2 ? undefined : LISTS[bytes[1]!];
  if (list === undefined) throw new RangeError(`unknown binary message kind ${bytes[1]}`);
  const [n, at] = readVarint(bytes, 2, end);
  if (n === 0 || n > end - at) throw new RangeError('bad message head length');
  const msg = packr.unpack(bytes.subarray(at, at + n)) as Record<string, unknown>;
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg) || ArrayBuffer.isView(msg) || list.field in msg) {
    throw new RangeError('binary message head is not a message');
  }
  msg[list.field] = list.decode(bytes, at + n, end);
  return msg;
}

/** CRC-32 (IEEE) for record checksums. */
const TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = -1;
  for (let i = start; i < end; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
