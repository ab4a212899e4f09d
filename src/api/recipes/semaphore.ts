import { EventEmitter } from 'eventemitter3';
import { KeeperError } from '../../core/errors.js';
import { CreateMode } from '../../core/createMode.js';
import type { Session } from '../session.js';
import type { Data, SessionState } from '../types.js';
import { Mutex, type InterProcessLock, type LockEvents } from './mutex.js';
import { createProtected } from './protected.js';
import {
  checkAborted, checkPath, childPath, cleanUp, Deadline, deleteEventually, isConnected, isDead, sortBySequence, TIMED_OUT, trigger,
  waitFor, whenConnected, type WaitOptions,
} from './util.js';

const LEASE_NAME = 'lease-';

/**
 * One lease of a Semaphore: an ephemeral node under `<path>/leases`. Emits `lost` when its session
 * is interrupted (it is then given back as soon as possible).
 */
export class Lease extends EventEmitter<LockEvents> {
  private released = false;
  private lostState: SessionState | undefined;
  private readonly controller = new AbortController();
  private readonly unlisten: () => void;

  /** @internal */
  constructor(private readonly session: Session, readonly path: string, readonly fencingToken: bigint) {
    super();
    const onState = (s: SessionState): void => {
      if (!isConnected(s)) this.lose(s);
    };
    session.on('state', onState);
    this.unlisten = () => session.off('state', onState);
  }

  /** True until released or lost. */
  get valid(): boolean {
    return !this.released && this.lostState === undefined;
  }

  /** Aborts when the lease ends (lost or released). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  private lose(state: SessionState): void {
    if (!this.valid) return;
    this.lostState = state;
    this.unlisten();
    this.controller.abort(new KeeperError(isDead(state) ? 'SESSIONEXPIRED' : 'CONNECTIONLOSS', this.path, `lease lost (session ${state})`));
    void deleteEventually(this.session, this.path);
    this.emit('lost', state);
  }

  /** Gives the lease back (idempotent; a lost lease is already being given back). */
  async release(): Promise<void> {
    if (this.released) return;
    const wasLost = this.lostState !== undefined;
    this.released = true;
    this.unlisten();
    if (!this.controller.signal.aborted) this.controller.abort(new KeeperError('BADARGUMENTS', this.path, 'lease released'));
    if (!wasLost) await deleteEventually(this.session, this.path);
  }

  /** Same as release(). */
  close(): Promise<void> {
    return this.release();
  }
}

export interface SemaphoreOptions {
  /** Data stored in each lease node. */
  data?: Data;
}

/**
 * A counting semaphore across processes (Curator's InterProcessSemaphoreV2): at most
 * `maxLeases` leases are out at once. Waiters queue fairly on an internal Mutex at
 * `<path>/locks`; only the head of that queue watches the leases, so a returned lease wakes one
 * waiter. Leases are ephemeral: a crashed holder's lease goes with its session.
 */
export class Semaphore {
  readonly path: string;
  readonly maxLeases: number;
  private readonly leasesPath: string;
  private readonly lock: Mutex;

  constructor(readonly session: Session, path: string, maxLeases: number, private readonly options: SemaphoreOptions = {}) {
    checkPath(path, 'Semaphore');
    if (!Number.isInteger(maxLeases) || maxLeases < 1) throw new KeeperError('BADARGUMENTS', path, `Semaphore: maxLeases must be an integer ≥ 1 (got ${String(maxLeases)})`);
    this.path = path;
    this.maxLeases = maxLeases;
    this.leasesPath = childPath(path, 'leases');
    this.lock = new Mutex(session, childPath(path, 'locks'));
  }

  /** One lease, or null when `timeoutMs` passed. */
  async acquire(options: WaitOptions = {}): Promise<Lease | null> {
    const leases = await this.acquireMany(1, options);
    return leases ? leases[0]! : null;
  }

  /** `qty` leases (all or none), or null when `timeoutMs` passed. */
  async acquireMany(qty: number, options: WaitOptions = {}): Promise<Lease[] | null> {
    if (!Number.isInteger(qty) || qty < 1 || qty > this.maxLeases) {
      throw new KeeperError('BADARGUMENTS', this.path, `Semaphore: qty must be an integer in 1..${this.maxLeases} (got ${String(qty)})`);
    }
    const deadline = new Deadline(options.timeoutMs);
    const signal = options.signal;
    const got: Lease[] = [];
    let ok = false;
    try {
      for (let i = 0; i < qty; i++) {
        const lease = await this.acquireOne(deadline, signal);
        if (!lease) return null;
        got.push(lease);
      }
      ok = true;
      return got;
    } finally {
      if (!ok) await Promise.all(got.map((l) => l.release().catch(() => undefined)));
    }
  }

  private async acquireOne(deadline: Deadline, signal: AbortSignal | undefined): Promise<Lease | null> {
    const wait = { ...(deadline.bounded ? { timeoutMs: deadline.remaining() } : {}), ...(signal ? { signal } : {}) };
    if (!(await this.lock.acquire(wait))) return null;
    try {
      const created = await createProtected(this.session, this.leasesPath, LEASE_NAME, {
        mode: CreateMode.EPHEMERAL_SEQUENTIAL,
        ...(this.options.data !== undefined ? { data: this.options.data } : {}),
        ...(deadline.bounded ? { timeoutMs: deadline.remaining() } : {}),
        ...(signal ? { signal } : {}),
      });
      if (!created) return null;
      let keep = false;
      try {
        for (let round = 0; round < 1_000_000; round++) {
          checkAborted(signal);
          const t = trigger();
          const children = await whenConnected(this.session, deadline, signal, 'Semaphore', () => this.session.getChildren(this.leasesPath, { watch: () => t.fire() }));
          if (children === TIMED_OUT) return null;
          const leases = sortBySequence(children, LEASE_NAME);
          if (!leases.includes(created.name)) {
            throw new KeeperError('NONODE', created.path, 'Semaphore: our lease node disappeared while waiting (deleted by another client?)');
          }
          if (leases.length <= this.maxLeases) {
            const stat = await whenConnected(this.session, deadline, signal, 'Semaphore', () => this.session.exists(created.path));
            if (stat === TIMED_OUT) return null;
            if (stat === null) continue;
            if (!isConnected(this.session.state)) continue;
            keep = true;
            return new Lease(this.session, created.path, stat.czxid);
          }
          const r = await waitFor(this.session, t, deadline, signal, 'Semaphore');
          if (r === 'timeout') return null;
        }
        throw new KeeperError('SYSTEMERROR', created.path, 'Semaphore: no decision after 1000000 rounds');
      } finally {
        if (!keep) await cleanUp(this.session, created.path);
      }
    } finally {
      await this.lock.release().catch(() => undefined);
    }
  }

  /** Returns leases (Curator's returnAll). */
  async returnAll(leases: Iterable<Lease>): Promise<void> {
    await Promise.all([...leases].map((l) => l.release()));
  }

  /** Paths of the leases currently out. */
  async getParticipantNodes(): Promise<string[]> {
    try {
      return sortBySequence(await this.session.getChildren(this.leasesPath), LEASE_NAME).map((n) => childPath(this.leasesPath, n));
    } catch (e) {
      if (e instanceof KeeperError && e.code === 'NONODE') return [];
      throw e;
    }
  }
}

/**
 * A non-reentrant mutex (Curator's InterProcessSemaphoreMutex): a Semaphore with one lease.
 * Acquiring it again from the same object waits like anyone else (and times out).
 */
export class SemaphoreMutex extends EventEmitter<LockEvents> implements InterProcessLock {
  private readonly semaphore: Semaphore;
  private lease: Lease | undefined;

  constructor(session: Session, path: string) {
    super();
    this.semaphore = new Semaphore(session, path, 1);
  }

  async acquire(options: WaitOptions = {}): Promise<boolean> {
    const lease = await this.semaphore.acquire(options);
    if (!lease) return false;
    if (this.lease?.valid) {
      await lease.release();
      throw new KeeperError('SYSTEMERROR', this.semaphore.path, 'SemaphoreMutex: acquired twice');
    }
    this.lease = lease;
    lease.on('lost', (s) => {
      if (this.lease === lease) this.emit('lost', s);
    });
    if (!lease.valid) this.emit('lost', this.semaphore.session.state);
    return true;
  }

  async release(): Promise<void> {
    const lease = this.lease;
    if (!lease) throw new KeeperError('BADARGUMENTS', this.semaphore.path, 'SemaphoreMutex: release() without holding the lock');
    this.lease = undefined;
    await lease.release();
  }

  isAcquiredInThisProcess(): boolean {
    return this.lease?.valid ?? false;
  }

  get fencingToken(): bigint {
    if (!this.lease) throw new KeeperError('BADARGUMENTS', this.semaphore.path, 'SemaphoreMutex: no fencing token: the lock is not held');
    return this.lease.fencingToken;
  }

  /** Aborts when the holding ends. */
  get holdSignal(): AbortSignal {
    if (!this.lease) throw new KeeperError('BADARGUMENTS', this.semaphore.path, 'SemaphoreMutex: not held');
    return this.lease.signal;
  }
}
