import { EventEmitter } from 'eventemitter3';
import { KeeperError } from '../../core/errors.js';
import type { Session } from '../session.js';
import type { Data, SessionState } from '../types.js';
import { LockInternals, predecessorPredicate, type LockNode, type LockPredicate } from './lockInternals.js';
import { checkPath, childPath, deleteEventually, isConnected, isDead, type WaitOptions } from './util.js';

/** Events of every lock recipe. */
export interface LockEvents {
  /**
   * The lock is no longer safely held: its session was SUSPENDED (it may expire, and then
   * someone else acquires) or LOST/CLOSED. Stop touching the protected resource. The lock node
   * is deleted as soon as the session can do so (or with the session).
   */
  lost: (state: SessionState) => void;
}

/** What Mutex, SemaphoreMutex and the read and write locks share (Curator's InterProcessLock). */
export interface InterProcessLock {
  /** Waits for the lock; true when held, false when `timeoutMs` passed. Rejects on abort or session loss. */
  acquire(options?: WaitOptions): Promise<boolean>;
  /** Releases one acquisition (the node goes with the last one of a reentrant lock). */
  release(): Promise<void>;
  /** True while this object holds the lock and its session has not been interrupted since. */
  isAcquiredInThisProcess(): boolean;
  /** The fencing token of the held lock: its node's czxid (larger for every later holder). */
  readonly fencingToken: bigint;
  on(event: 'lost', listener: (state: SessionState) => void): this;
  off(event: 'lost', listener?: (state: SessionState) => void): this;
}

interface Holding {
  node: LockNode;
  count: number;
  controller: AbortController;
  unlisten: () => void;
}

/**
 * The holding half shared by the sequential-node locks: reentrancy (per object), fencing
 * token, and giving the lock up the moment the session is interrupted.
 * @internal
 */
export class ReentrantNodeLock extends EventEmitter<LockEvents> implements InterProcessLock {
  private holding: Holding | undefined;
  private pending: Promise<boolean> | undefined;
  /** release() calls still owed for acquisitions that were lost (they become no-ops). */
  private owed = 0;

  /**
   * When the holding is given up: 'SUSPENDED' (default — safe: the session may expire and someone
   * else acquire while we are cut off) or 'LOST' (keep holding across a suspension; on
   * RECONNECTED the node is checked and the lock is lost if it is gone).
   */
  loseOn: 'SUSPENDED' | 'LOST' = 'SUSPENDED';

  constructor(readonly session: Session, readonly internals: LockInternals, private readonly reentrant: boolean, private readonly data?: Data) {
    super();
  }

  async acquire(options: WaitOptions = {}): Promise<boolean> {
    if (this.holding && this.reentrant) {
      this.holding.count++;
      return true;
    }
    if (this.pending && this.reentrant) {
      // Another call on this object is queued: share its outcome, as a re-entry.
      const ok = await this.pending.catch(() => false);
      if (ok && this.holding) {
        this.holding.count++;
        return true;
      }
    }
    const attempt = this.internals.attempt(options, this.data).then((node) => {
      if (!node) return false;
      this.hold(node);
      return true;
    });
    this.pending = attempt;
    try {
      return await attempt;
    } finally {
      if (this.pending === attempt) this.pending = undefined;
    }
  }

  private hold(node: LockNode): void {
    if (this.holding) {
      // Two concurrent acquisitions of a non-reentrant object both succeeded: keep the first.
      void deleteEventually(this.session, node.path);
      throw new KeeperError('SYSTEMERROR', node.path, `${this.internals.what}: acquired while already holding`);
    }
    const controller = new AbortController();
    const onState = (s: SessionState): void => {
      if (isConnected(s)) {
        if (s === 'RECONNECTED' && this.holding?.node === node) this.verify(node);
        return;
      }
      // Not connected but not dead (SUSPENDED, READ_ONLY) is a suspension: the session may expire.
      if (this.loseOn === 'SUSPENDED' || isDead(s)) this.lose(s);
    };
    this.session.on('state', onState);
    this.owed = 0;
    this.holding = { node, count: 1, controller, unlisten: () => this.session.off('state', onState) };
    if (!isConnected(this.session.state)) onState(this.session.state);
  }

  /** After a suspension we kept holding through ('LOST' mode): is our node still there? */
  private verify(node: LockNode): void {
    this.session.exists(node.path).then((stat) => {
      if (this.holding?.node === node && (stat === null || stat.czxid !== node.czxid || stat.ephemeralOwner !== this.session.id)) this.lose('LOST');
    }, () => {
      // CONNECTIONLOSS: the next state change decides.
    });
  }

  private lose(state: SessionState): void {
    const h = this.holding;
    if (!h) return;
    this.holding = undefined;
    this.owed = h.count;
    h.unlisten();
    h.controller.abort(new KeeperError(isDead(state) ? 'SESSIONEXPIRED' : 'CONNECTIONLOSS', h.node.path, `${this.internals.what}: lock lost (session ${state})`));
    void deleteEventually(this.session, h.node.path);
    this.emit('lost', state);
  }

  async release(): Promise<void> {
    const h = this.holding;
    if (!h) {
      if (this.owed > 0) {
        this.owed--;
        return;
      }
      throw new KeeperError('BADARGUMENTS', this.internals.basePath, `${this.internals.what}: release() without holding the lock`);
    }
    if (--h.count > 0) return;
    this.holding = undefined;
    h.unlisten();
    h.controller.abort(new KeeperError('BADARGUMENTS', h.node.path, `${this.internals.what}: released`));
    await this.internals.release(h.node);
  }

  isAcquiredInThisProcess(): boolean {
    return this.holding !== undefined;
  }

  /** The held node (undefined when not held). */
  get node(): LockNode | undefined {
    return this.holding?.node;
  }

  get fencingToken(): bigint {
    const h = this.holding;
    if (!h) throw new KeeperError('BADARGUMENTS', this.internals.basePath, `${this.internals.what}: no fencing token: the lock is not held`);
    return h.node.czxid;
  }

  /** Aborts when this holding ends (lost or released); pass it to the work the lock protects. */
  get holdSignal(): AbortSignal {
    const h = this.holding;
    if (!h) throw new KeeperError('BADARGUMENTS', this.internals.basePath, `${this.internals.what}: not held`);
    return h.controller.signal;
  }

  /** Paths of every node queued for this lock, first (holder) first. */
  async getParticipantNodes(): Promise<string[]> {
    return (await this.internals.sortedChildren()).map((n) => childPath(this.internals.basePath, n));
  }

  /**
   * Acquires, runs `fn` with a signal that aborts if the lock is lost, and releases. Rejects with
   * OPERATIONTIMEOUT when the lock was not acquired within `timeoutMs`.
   */
  async withLock<T>(fn: (signal: AbortSignal, fencingToken: bigint) => Promise<T> | T, options: WaitOptions = {}): Promise<T> {
    if (!(await this.acquire(options))) {
      throw new KeeperError('OPERATIONTIMEOUT', this.internals.basePath, `${this.internals.what}: not acquired within ${options.timeoutMs} ms`);
    }
    try {
      return await fn(this.holdSignal, this.fencingToken);
    } finally {
      await this.release();
    }
  }
}

export interface MutexOptions {
  /** Node name prefix (default 'lock-'). */
  lockName?: string;
  /** Data stored in the lock node (e.g. who holds it). */
  data?: Data;
}

/**
 * A distributed, reentrant, fair mutex (Curator's InterProcessMutex). Contenders queue as
 * protected ephemeral-sequential nodes under `path`; each waits only on its immediate
 * predecessor, so a release wakes exactly one waiter. Reentrancy is per Mutex object: use one
 * object per logical owner. A held lock has a fencing token and emits `lost` as soon as its
 * session is SUSPENDED or LOST (and is then released).
 */
export class Mutex extends ReentrantNodeLock {
  readonly path: string;

  constructor(session: Session, path: string, options: MutexOptions = {}) {
    const lockName = options.lockName ?? 'lock-';
    checkPath(path, 'Mutex');
    super(session, new LockInternals(session, path, lockName, (n) => n.includes(lockName), predecessorPredicate, `Mutex ${path}`), true, options.data);
    this.path = path;
  }
}

/** @internal builds internals with a custom predicate (read-write lock). */
export function lockWithPredicate(session: Session, path: string, lockName: string, match: (n: string) => boolean, predicate: LockPredicate, what: string, reentrant: boolean): ReentrantNodeLock {
  return new ReentrantNodeLock(session, new LockInternals(session, path, lockName, match, predicate, what), reentrant);
}
