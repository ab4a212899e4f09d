import { KeeperError } from '../core/errors.js';
import type { Data } from './types.js';

const EMPTY = new Uint8Array(0);

/** Converts caller data to a private copy of the bytes (callers may reuse their buffer afterwards). */
export function toBytes(data: Data | undefined, path?: string): Uint8Array {
  if (data === undefined || data === null) return EMPTY;
  // Copies come from Node's buffer pool (a fresh backing store per write costs ~10× more).
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof Uint8Array) {
    // A real copy: Buffer#slice would be a view of the caller's memory.
    const copy = Buffer.allocUnsafe(data.length);
    copy.set(data);
    return copy;
  }
  throw new KeeperError('BADARGUMENTS', path, 'data must be a Uint8Array or a string');
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
