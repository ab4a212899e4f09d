import type { Socket } from 'node:net';
import { FrameDecoder, FrameError } from './frame.js';

/** Frames batched into one socket write up to this many bytes (fewer syscalls for small messages). */
const WRITE_BATCH_BYTES = 256 * 1024;
/** Each queued frame is charged this much on top of its length (array slot, Buffer object). */
const PER_FRAME_OVERHEAD = 64;

export interface FramedSocketHandlers {
  /** One complete payload. Exceptions are caught and close the socket. */
  frame(payload: Uint8Array): void;
  /** The framing broke (oversize length): the socket is being destroyed. */
  badFraming(error: FrameError): void;
  /** The outbound queue would exceed its bound: the socket is being destroyed. */
  overflow(queuedBytes: number): void;
  /** The socket is closed (exactly once). */
  close(error: Error | undefined): void;
  /** A frame handler threw. */
  handlerError(error: unknown): void;
}

/**
 * A net.Socket carrying length-prefixed frames, with a bounded outbound queue. Writes are batched
 * per microtask and respect socket.write()'s return value ('drain'); when queued bytes (ours plus
 * the socket's own buffer) would exceed `maxQueueBytes`, the socket is destroyed rather than grow
 * memory without bound — the layer above sees the connection drop and recovers (ZAB resyncs).
 */
export class FramedSocket {
  readonly decoder: FrameDecoder;
  private queue: Buffer[] = [];
  private head = 0;
  private queuedBytes = 0;
  private waitingDrain = false;
  private flushScheduled = false;
  private _closed = false;
  private closeError: Error | undefined;
  readonly remoteAddress: string;
  readonly remotePort: number;

  constructor(
    readonly socket: Socket,
    maxFrameBytes: number,
    public maxQueueBytes: number,
    private handlers: FramedSocketHandlers,
  ) {
    this.decoder = new FrameDecoder(maxFrameBytes);
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    socket.setNoDelay(true);
    // Lets the kernel notice a peer machine that vanished while the connection was idle.
    socket.setKeepAlive(true, 10_000);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      this.waitingDrain = false;
      this.flush();
    });
    socket.on('error', (e) => {
      this.closeError ??= e;
    });
    socket.on('close', () => this.onClose());
  }

  get closed(): boolean {
    return this._closed || this.socket.destroyed;
  }

  /** Replaces the handlers (a handshake hands the socket over to a channel). */
  setHandlers(handlers: FramedSocketHandlers): void {
    this.handlers = handlers;
  }

  /** Bytes accepted but not yet taken by the kernel. */
  queued(): number {
    return this.queuedBytes + (this._closed ? 0 : this.socket.writableLength);
  }

  /** Queues one encoded frame; false (and the socket destroyed) if over the bound, false if closed. */
  write(frame: Buffer): boolean {
    if (this.closed) return false;
    const charge = frame.length + PER_FRAME_OVERHEAD;
    const total = this.queuedBytes + this.socket.writableLength + charge;
    if (total > this.maxQueueBytes) {
      const q = this.queued();
      this.destroy();
      this.handlers.overflow(q);
      return false;
    }
    this.queue.push(frame);
    this.queuedBytes += charge;
    if (!this.flushScheduled && !this.waitingDrain) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
    return true;
  }

  /** Flushes what is queued, then half-closes (used after a refusal message). */
  end(): void {
    if (this.closed) return;
    this.flush();
    this.socket.end();
    // A peer that never reads must not keep the socket open.
    const t = setTimeout(() => this.destroy(), 1000);
    t.unref();
  }

  destroy(): void {
    if (this._closed) return;
    this.socket.destroy();
    this.dropQueue();
  }

  private dropQueue(): void {
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
  }

  private flush(): void {
    this.flushScheduled = false;
    const q = this.queue;
    while (this.head < q.length && !this.waitingDrain && !this._closed && !this.socket.destroyed) {
      let batch: Buffer;
      let charged: number;
      const first = q[this.head]!;
      if (first.length >= WRITE_BATCH_BYTES || this.head + 1 === q.length) {
        batch = first;
        q[this.head++] = undefined as unknown as Buffer;
        charged = first.length + PER_FRAME_OVERHEAD;
      } else {
        const parts: Buffer[] = [];
        let size = 0;
        while (this.head < q.length && size + q[this.head]!.length <= WRITE_BATCH_BYTES) {
          const f = q[this.head]!;
          parts.push(f);
          size += f.length;
          q[this.head++] = undefined as unknown as Buffer;
        }
        batch = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
        charged = size + parts.length * PER_FRAME_OVERHEAD;
      }
      this.queuedBytes -= charged;
      if (!this.socket.write(batch)) this.waitingDrain = true;
    }
    if (this.head === q.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > q.length) {
      this.queue = q.slice(this.head);
      this.head = 0;
    }
  }

  private onData(chunk: Buffer): void {
    if (this._closed) return;
    const d = this.decoder;
    d.push(chunk);
    for (;;) {
      if (this._closed || this.socket.destroyed) return;
      let payload: Uint8Array | null;
      try {
        payload = d.next();
      } catch (e) {
        this.destroy();
        this.handlers.badFraming(e as FrameError);
        return;
      }
      if (payload === null) return;
      try {
        this.handlers.frame(payload);
      } catch (e) {
        this.destroy();
        this.handlers.handlerError(e);
        return;
      }
    }
  }

  private onClose(): void {
    if (this._closed) return;
    this._closed = true;
    this.dropQueue();
    this.decoder.clear();
    this.handlers.close(this.closeError);
  }
}
