import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import { KeeperError } from '../../core/errors.js';
import type { Session } from '../session.js';
import type { RetryPolicy } from '../types.js';
import { NodeCache } from './cache.js';
import { ExponentialBackoffRetry } from './retry.js';
import { awaitConnected, checkPath, Deadline, isCode, sleep } from './util.js';

/** A value with the node version it was read at (for trySetCount). */
export interface VersionedValue<T> {
  value: T;
  version: number;
}

function encodeInt32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n, false);
  return b;
}

function decodeInt32(b: Uint8Array, path: string): number {
  if (b.length < 4) throw new KeeperError('BADARGUMENTS', path, `SharedCount: node data is ${b.length} bytes, expected a 4-byte integer`);
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getInt32(0, false);
}

function checkInt32(n: number, path: string): void {
  if (!Number.isInteger(n) || n < -(2 ** 31) || n >= 2 ** 31) throw new KeeperError('BADARGUMENTS', path, `SharedCount: ${String(n)} is not a 32-bit integer`);
}

export interface SharedCountEvents {
  /** The count changed (by anyone). */
  countChanged: (count: number) => void;
  error: (error: Error) => void;
}

/**
 * A shared integer (Curator's SharedCount): a 4-byte big-endian value at `path`, seeded on
 * first use, watched through a NodeCache so that every client sees changes.
 */
export class SharedCount extends EventEmitter<SharedCountEvents> {
  readonly path: string;
  private cache: NodeCache | undefined;
  private last: VersionedValue<number> | undefined;

  constructor(readonly session: Session, path: string, private readonly seedValue: number) {
    super();
    checkPath(path, 'SharedCount');
    checkInt32(seedValue, path);
    this.path = path;
  }

  /** Creates the node with the seed value if missing and starts following it. */
  async start(): Promise<void> {
    if (this.cache) throw new KeeperError('BADARGUMENTS', this.path, 'SharedCount: already started');
    try {
      await this.session.create(this.path, encodeInt32(this.seedValue), { parents: true });
    } catch (e) {
      if (!isCode(e, 'NODEEXISTS')) throw e;
    }
    const cache = new NodeCache(this.session, this.path);
    this.cache = cache;
    cache.on('nodeChanged', (d) => {
      if (!d?.data) return;
      try {
        const v = { value: decodeInt32(d.data, this.path), version: d.stat.version };
        const changed = this.last === undefined || this.last.value !== v.value;
        this.last = v;
        if (changed) this.emit('countChanged', v.value);
      } catch (e) {
        this.emit('error', e as Error);
      }
    });
    cache.on('error', (e) => this.emit('error', e));
    await cache.start(true);
    const d = cache.getCurrentData();
    if (d?.data) this.last = { value: decodeInt32(d.data, this.path), version: d.stat.version };
  }

  /** The current count (as last seen). */
  getCount(): number {
    return this.getVersionedValue().value;
  }

  /** The current count with its version (as last seen). */
  getVersionedValue(): VersionedValue<number> {
    if (!this.last) throw new KeeperError('BADARGUMENTS', this.path, 'SharedCount: not started (or the node was deleted)');
    return { ...this.last };
  }

  /** Sets the count unconditionally. */
  async setCount(n: number): Promise<void> {
    checkInt32(n, this.path);
    const stat = await this.session.setData(this.path, encodeInt32(n));
    this.note(n, stat.version);
  }

  /** Sets the count only if it is still at `previous.version`; false when someone changed it first. */
  async trySetCount(previous: VersionedValue<number>, n: number): Promise<boolean> {
    checkInt32(n, this.path);
    try {
      const stat = await this.session.setData(this.path, encodeInt32(n), { version: previous.version });
      this.note(n, stat.version);
      return true;
    } catch (e) {
      if (isCode(e, 'BADVERSION')) return false;
      throw e;
    }
  }

  private note(value: number, version: number): void {
    if (this.last && this.last.version >= version) return;
    const changed = this.last?.value !== value;
    this.last = { value, version };
    if (changed) this.emit('countChanged', value);
  }

  async close(): Promise<void> {
    await this.cache?.close();
  }
}

/** The outcome of an AtomicLong operation (Curator's AtomicValue). */
export interface AtomicValue<T> {
  /** False when the retry policy gave up (contention) or, for compareAndSet, the value differed. */
  succeeded: boolean;
  preValue: T;
  postValue: T;
}

export interface AtomicLongOptions {
  /** Retries of the optimistic CAS under contention (default ExponentialBackoffRetry(2 ms, 29 retries, 200 ms)). */
  retry?: RetryPolicy;
}

const TAG_BYTES = 8;

/**
 * A distributed 64-bit counter (Curator's DistributedAtomicLong): optimistic compare-and-set on
 * the node version, retried with backoff under contention. The value is 8 bytes big-endian (a
 * missing node reads as 0), followed by a random tag of the write — so that a CAS whose response
 * was lost is resolved exactly (our tag is there, or the version has not moved) instead of being
 * applied twice; when neither can be told, the call rejects with CONNECTIONLOSS.
 */
export class AtomicLong {
  readonly path: string;
  private readonly retry: RetryPolicy;

  constructor(readonly session: Session, path: string, options: AtomicLongOptions = {}) {
    checkPath(path, 'AtomicLong');
    this.path = path;
    this.retry = options.retry ?? new ExponentialBackoffRetry(2, 29, 200);
  }

  private decode(b: Uint8Array): bigint {
    if (b.length === 0) return 0n;
    if (b.length < 8) throw new KeeperError('BADARGUMENTS', this.path, `AtomicLong: node data is ${b.length} bytes, expected 8`);
    return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigInt64(0, false);
  }

  private encode(v: bigint, tag: Uint8Array): Uint8Array {
    const b = new Uint8Array(8 + TAG_BYTES);
    new DataView(b.buffer).setBigInt64(0, BigInt.asIntN(64, v), false);
    b.set(tag, 8);
    return b;
  }

  private async read(): Promise<{ value: bigint; version: number; data: Uint8Array } | null> {
    try {
      const { data, stat } = await this.session.getData(this.path);
      return { value: this.decode(data), version: stat.version, data };
    } catch (e) {
      if (isCode(e, 'NONODE')) return null;
      throw e;
    }
  }

  /** The current value. */
  async get(): Promise<AtomicValue<bigint>> {
    const r = await this.read();
    const v = r?.value ?? 0n;
    return { succeeded: true, preValue: v, postValue: v };
  }

  increment(): Promise<AtomicValue<bigint>> {
    return this.add(1n);
  }

  decrement(): Promise<AtomicValue<bigint>> {
    return this.add(-1n);
  }

  add(delta: bigint | number): Promise<AtomicValue<bigint>> {
    const d = BigInt(delta);
    return this.modify((v) => BigInt.asIntN(64, v + d));
  }

  subtract(delta: bigint | number): Promise<AtomicValue<bigint>> {
    const d = BigInt(delta);
    return this.modify((v) => BigInt.asIntN(64, v - d));
  }

  /** Sets to `newValue` unless someone changed it meanwhile (retried under contention). */
  trySet(newValue: bigint | number): Promise<AtomicValue<bigint>> {
    const n = BigInt(newValue);
    return this.modify(() => n);
  }

  /** Sets `newValue` only if the current value is `expected`. */
  async compareAndSet(expected: bigint | number, newValue: bigint | number): Promise<AtomicValue<bigint>> {
    const e = BigInt(expected);
    const n = BigInt(newValue);
    return this.modify((v) => (v === e ? n : undefined));
  }

  /** Sets unconditionally. */
  async forceSet(newValue: bigint | number): Promise<void> {
    const data = this.encode(BigInt(newValue), randomBytes(TAG_BYTES));
    try {
      await this.session.setData(this.path, data);
    } catch (e) {
      if (!isCode(e, 'NONODE')) throw e;
      try {
        await this.session.create(this.path, data, { parents: true });
      } catch (e2) {
        if (!isCode(e2, 'NODEEXISTS')) throw e2;
        await this.session.setData(this.path, data);
      }
    }
  }

  /** Creates the node with `value` if it does not exist; false when it already did. */
  async initialize(value: bigint | number): Promise<boolean> {
    try {
      await this.session.create(this.path, this.encode(BigInt(value), randomBytes(TAG_BYTES)), { parents: true });
      return true;
    } catch (e) {
      if (isCode(e, 'NODEEXISTS')) return false;
      throw e;
    }
  }

  /** The CAS loop. `fn` returns the new value, or undefined to stop without writing (failed compare). */
  private async modify(fn: (v: bigint) => bigint | undefined): Promise<AtomicValue<bigint>> {
    const start = Date.now();
    let pre = 0n;
    let last: { tag: Uint8Array; result: AtomicValue<bigint> } | undefined;
    for (let attempt = 0; attempt < 1_000_000; attempt++) {
      const cur = await this.read();
      // A session retry policy may have re-sent our previous write after a lost response and
      // reported BADVERSION for the copy: our tag tells that the first one took effect.
      if (last && cur && this.hasTag(cur.data, last.tag)) return last.result;
      pre = cur?.value ?? 0n;
      const next = fn(pre);
      if (next === undefined) return { succeeded: false, preValue: pre, postValue: pre };
      const tag = randomBytes(TAG_BYTES);
      const data = this.encode(next, tag);
      last = { tag, result: { succeeded: true, preValue: pre, postValue: next } };
      try {
        if (cur) await this.session.setData(this.path, data, { version: cur.version });
        else await this.session.create(this.path, data, { parents: true });
        return { succeeded: true, preValue: pre, postValue: next };
      } catch (e) {
        if (isCode(e, 'CONNECTIONLOSS')) {
          const outcome = await this.resolveLost(cur?.version ?? -1, tag);
          if (outcome === 'applied') return { succeeded: true, preValue: pre, postValue: next };
          // 'not applied': fall through to retry
        } else if (!isCode(e, 'BADVERSION', 'NODEEXISTS', 'NONODE')) {
          throw e;
        }
      }
      const delay = this.retry.allowRetry(attempt, Date.now() - start);
      if (delay === false) return { succeeded: false, preValue: pre, postValue: pre };
      if (delay > 0) await sleep(delay);
    }
    return { succeeded: false, preValue: pre, postValue: pre };
  }

  private hasTag(data: Uint8Array, tag: Uint8Array): boolean {
    return data.length >= 8 + TAG_BYTES && Buffer.from(data.subarray(8, 8 + TAG_BYTES)).equals(Buffer.from(tag));
  }

  /** After a lost response: did our write (identified by its tag) happen? */
  private async resolveLost(version: number, tag: Uint8Array): Promise<'applied' | 'not applied'> {
    for (let attempt = 0; attempt < 100; attempt++) {
      if (!(await awaitConnected(this.session, new Deadline(this.session.timeoutMs * 2), undefined, 'AtomicLong'))) break;
      try {
        await this.session.sync(this.path);
        const cur = await this.read();
        if (cur && this.hasTag(cur.data, tag)) return 'applied';
        const unmoved = version === -1 ? cur === null : cur !== null && cur.version === version;
        if (unmoved) return 'not applied';
        break;
      } catch (e) {
        if (!isCode(e, 'CONNECTIONLOSS')) throw e;
        await sleep(Math.min(100, 5 * (attempt + 1)));
      }
    }
    throw new KeeperError('CONNECTIONLOSS', this.path, 'AtomicLong: the connection was lost during a write and its outcome cannot be told (the value moved on); re-read before retrying');
  }
}
