import { EventEmitter } from 'eventemitter3';
import { KeeperError } from '../../core/errors.js';
import type { Session } from '../session.js';
import type { SessionState } from '../types.js';
import { Mutex, type InterProcessLock, type LockEvents } from './mutex.js';
import { Deadline, type WaitOptions } from './util.js';

/**
 * Several locks held as one (Curator's InterProcessMultiLock): acquired in the given order, all
 * or none — if one cannot be acquired in time, the ones already held are released in reverse
 * order. Pass paths (each becomes a reentrant Mutex) or existing lock objects. `lost` fires when
 * any of the held locks is lost; the others are then released too.
 */
export class MultiLock extends EventEmitter<LockEvents> implements InterProcessLock {
  readonly locks: readonly InterProcessLock[];
  private held: InterProcessLock[] = [];
  private count = 0;
  private owed = 0;
  private readonly onLost = (state: SessionState): void => this.lose(state);

  constructor(session: Session, locks: readonly (string | InterProcessLock)[]) {
    super();
    if (!Array.isArray(locks) || locks.length === 0) throw new KeeperError('BADARGUMENTS', undefined, 'MultiLock: needs at least one path or lock');
    this.locks = locks.map((l) => (typeof l === 'string' ? new Mutex(session, l) : l));
  }

  async acquire(options: WaitOptions = {}): Promise<boolean> {
    if (this.count > 0) {
      this.count++;
      return true;
    }
    const deadline = new Deadline(options.timeoutMs);
    const got: InterProcessLock[] = [];
    let ok = false;
    try {
      for (const lock of this.locks) {
        const wait: WaitOptions = { ...(deadline.bounded ? { timeoutMs: deadline.remaining() } : {}), ...(options.signal ? { signal: options.signal } : {}) };
        if (!(await lock.acquire(wait))) return false;
        got.push(lock);
        lock.on('lost', this.onLost);
      }
      ok = true;
      this.held = got;
      this.count = 1;
      this.owed = 0;
      return true;
    } finally {
      if (!ok) {
        for (const lock of got.reverse()) {
          lock.off('lost', this.onLost);
          await lock.release().catch(() => undefined);
        }
      }
    }
  }

  private lose(state: SessionState): void {
    if (this.count === 0) return;
    const held = this.held;
    this.owed = this.count;
    this.count = 0;
    this.held = [];
    for (const lock of held.reverse()) {
      lock.off('lost', this.onLost);
      void lock.release().catch(() => undefined);
    }
    this.emit('lost', state);
  }

  async release(): Promise<void> {
    if (this.count === 0) {
      if (this.owed > 0) {
        this.owed--;
        return;
      }
      throw new KeeperError('BADARGUMENTS', undefined, 'MultiLock: release() without holding the locks');
    }
    if (--this.count > 0) return;
    const held = this.held;
    this.held = [];
    let first: unknown;
    for (const lock of held.reverse()) {
      lock.off('lost', this.onLost);
      try {
        await lock.release();
      } catch (e) {
        first ??= e;
      }
    }
    if (first) throw first;
  }

  isAcquiredInThisProcess(): boolean {
    return this.count > 0;
  }

  /** The largest fencing token of the held locks (each lock's own token is in `fencingTokens`). */
  get fencingToken(): bigint {
    const tokens = this.fencingTokens;
    return tokens.reduce((a, b) => (b > a ? b : a), tokens[0]!);
  }

  /** Fencing tokens of the held locks, in lock order. */
  get fencingTokens(): bigint[] {
    if (this.count === 0) throw new KeeperError('BADARGUMENTS', undefined, 'MultiLock: no fencing tokens: not held');
    return this.held.map((l) => l.fencingToken);
  }
}
