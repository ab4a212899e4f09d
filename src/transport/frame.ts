import { decodeMessage, encodeMessageAfter } from '../core/codec.js';
import type { PeerMessage } from './types.js';

/**
 * Wire framing shared by the TCP and libp2p transports: a frame is a 4-byte big-endian payload
 * length followed by one message (core/codec encodeMessage: a msgpackr value — bigint-safe, no
 * records — or, for messages carrying txns, the binary form; either way every frame decodes on
 * its own). The length is checked against a maximum as soon as the 4 header bytes
 * arrive, so a hostile peer cannot make us buffer more than `maxFrameBytes` (plus one chunk).
 */

export const FRAME_HEADER_BYTES = 4;
/** Default largest payload accepted or sent: 64 MiB (a snapshot chunk or a big DIFF fits). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** The length field is 32 bits; frames above this can never be expressed. */
export const ABSOLUTE_MAX_FRAME_BYTES = 0xffffffff;

export type FrameErrorReason = 'encode' | 'oversize' | 'decode' | 'shape';

/** A frame that cannot be sent or was rejected on receipt. Never escapes a socket handler. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(message: string, readonly reason: FrameErrorReason) {
    super(message);
  }
}

export function checkMaxFrameBytes(n: number, what = 'maxFrameBytes'): number {
  if (!Number.isInteger(n) || n < 64 || n > ABSOLUTE_MAX_FRAME_BYTES) {
    throw new RangeError(`${what} must be an integer between 64 and ${ABSOLUTE_MAX_FRAME_BYTES} (got ${String(n)})`);
  }
  return n;
}

/** One frame (header + payload) for `value`; throws FrameError('encode' | 'oversize'). */
export function encodeFrame(value: unknown, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Buffer {
  let frame: Buffer;
  try {
    frame = encodeMessageAfter(value, FRAME_HEADER_BYTES);
  } catch (e) {
    throw new FrameError(`message cannot be encoded: ${(e as Error).message}`, 'encode');
  }
  const length = frame.length - FRAME_HEADER_BYTES;
  if (length > maxFrameBytes) {
    throw new FrameError(`message of ${length} bytes exceeds the maximum frame size of ${maxFrameBytes} bytes`, 'oversize');
  }
  frame.writeUInt32BE(length, 0);
  return frame;
}

/** Decodes one payload; throws FrameError('decode') on anything that is not exactly one msgpack value. */
export function decodePayload(payload: Uint8Array): unknown {
  if (payload.length === 0) throw new FrameError('empty frame', 'decode');
  try {
    return decodeMessage(payload);
  } catch (e) {
    throw new FrameError(`undecodable frame of ${payload.length} bytes: ${(e as Error).message}`, 'decode');
  }
}

/** What every transport accepts as a message: a plain object with a string `t`. */
export function isPeerMessage(v: unknown): v is PeerMessage {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v)
    && typeof (v as { t?: unknown }).t === 'string';
}

/**
 * Incremental frame decoder: push socket chunks as they come (any split), pull complete payloads
 * one at a time with `next()` — one at a time so that the caller can change `maxFrameBytes`
 * between frames (small during a handshake, large after it) or stop reading after a refusal.
 * Each payload is returned in its own exactly-sized buffer so that values decoded from it (msgpackr
 * returns byte arrays as views) never pin a larger socket chunk or pool slab in memory.
 * After a framing error the decoder is dead: the stream cannot be resynchronized.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  /** Read offset into chunks[0]. */
  private offset = 0;
  private buffered = 0;
  /** Payload length of the frame being read, or -1 while reading a header. */
  private need = -1;
  private failed: FrameError | undefined;

  constructor(public maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  /** Bytes held (received but not yet returned). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Whether a frame has been partly received (for "truncated at close" diagnostics). */
  get midFrame(): boolean {
    return this.buffered > 0 || this.need >= 0;
  }

  push(chunk: Uint8Array): void {
    if (this.failed || chunk.length === 0) return;
    this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.buffered += chunk.length;
  }

  /** The next complete payload, or null if more bytes are needed. Throws FrameError('oversize') once. */
  next(): Uint8Array | null {
    if (this.failed) throw this.failed;
    if (this.need < 0) {
      if (this.buffered < FRAME_HEADER_BYTES) return null;
      const length = this.readHeader();
      if (length > this.maxFrameBytes) {
        this.failed = new FrameError(`frame length ${length} exceeds the maximum of ${this.maxFrameBytes} bytes`, 'oversize');
        this.chunks = [];
        this.buffered = 0;
        throw this.failed;
      }
      this.need = length;
    }
    if (this.buffered < this.need) return null;
    const payload = this.take(this.need);
    this.need = -1;
    return payload;
  }

  /** Drops everything buffered (the connection is gone). */
  clear(): void {
    this.chunks = [];
    this.offset = 0;
    this.buffered = 0;
    this.need = -1;
  }

  private readHeader(): number {
    const head = this.chunks[0]!;
    if (head.length - this.offset >= FRAME_HEADER_BYTES) {
      const v = head.readUInt32BE(this.offset);
      this.offset += FRAME_HEADER_BYTES;
      if (this.offset === head.length) {
        this.chunks.shift();
        this.offset = 0;
      }
      this.buffered -= FRAME_HEADER_BYTES;
      return v;
    }
    return this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
  }

  /**
   * Removes exactly n ≤ buffered bytes from the front, copied into a buffer of its own (not from
   * Node's shared pool: a 3-byte znode value decoded from a frame must not pin an 8 KiB slab).
   */
  private take(n: number): Buffer {
    const out = Buffer.allocUnsafeSlow(n);
    let filled = 0;
    while (filled < n) {
      const head = this.chunks[0]!;
      const available = head.length - this.offset;
      const k = Math.min(available, n - filled);
      head.copy(out, filled, this.offset, this.offset + k);
      filled += k;
      if (k === available) {
        this.chunks.shift();
        this.offset = 0;
      } else {
        this.offset += k;
      }
    }
    this.buffered -= n;
    return out;
  }
}
