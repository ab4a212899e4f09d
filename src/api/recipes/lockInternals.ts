import { KeeperError } from '../../core/errors.js';
import { CreateMode } from '../../core/createMode.js';
import type { Session } from '../session.js';
import type { Data } from '../types.js';
import { connectionGeneration } from './connection.js';
import { createProtected } from './protected.js';
import {
  checkAborted, childPath, cleanUp, Deadline, deleteEventually, isConnected, isDead, sessionGone, sortBySequence, TIMED_OUT,
  trigger, waitFor, whenConnected, type WaitOptions,
} from './util.js';

/** A lock node this process created and now holds. */
export interface LockNode {
  /** Full path of the ephemeral-sequential node. */
  path: string;
  /** Its child name (`_c_<guid>-<lockName><seq>`). */
  name: string;
  /** The node's czxid: the fencing token (grows with every acquisition of this lock path). */
  czxid: bigint;
}

/**
 * Decides, from the sorted contenders and our position, whether we hold the lock or which single
 * node to watch (never the parent: that would wake every waiter on each change — the herd).
 */
export type LockPredicate = (sorted: readonly string[], ourIndex: number) => { acquired: true } | { acquired: false; watch: string };

/** The standard mutex predicate: first holds; everyone else watches its immediate predecessor. */
export const predecessorPredicate: LockPredicate = (sorted, i) => (i === 0 ? { acquired: true } : { acquired: false, watch: sorted[i - 1]! });

/** Upper bound on re-evaluations of one attempt (each follows a watch, a state change or a vanished predecessor). */
const MAX_ROUNDS = 10_000_000;

/**
 * Curator's LockInternals: the ephemeral-sequential queue that Mutex, ReadWriteLock and
 * Semaphore build on. One attempt = one protected node; the node is deleted (now, or once the
 * session reconnects) whenever the attempt does not end in holding the lock.
 */
export class LockInternals {
  constructor(
    readonly session: Session,
    readonly basePath: string,
    readonly lockName: string,
    readonly match: (name: string) => boolean,
    readonly predicate: LockPredicate,
    readonly what: string,
  ) {}

  /** Sorted child names of the contenders. */
  async sortedChildren(): Promise<string[]> {
    try {
      return sortBySequence(await this.session.getChildren(this.basePath), this.match);
    } catch (e) {
      if (e instanceof KeeperError && e.code === 'NONODE') return [];
      throw e;
    }
  }

  /**
   * Queues for the lock and waits for it. Resolves the held node, or null on timeout; rejects
   * with the abort reason, or SESSIONEXPIRED when the session ends.
   */
  async attempt(options: WaitOptions = {}, data?: Data): Promise<LockNode | null> {
    const deadline = new Deadline(options.timeoutMs);
    const signal = options.signal;
    checkAborted(signal);
    const created = await createProtected(this.session, this.basePath, this.lockName, {
      mode: CreateMode.EPHEMERAL_SEQUENTIAL,
      ...(data !== undefined ? { data } : {}),
      ...(deadline.bounded ? { timeoutMs: deadline.remaining() } : {}),
      ...(signal ? { signal } : {}),
    });
    if (!created) return null;
    let held = false;
    try {
      for (let round = 0; round < MAX_ROUNDS; round++) {
        checkAborted(signal);
        if (isDead(this.session.state)) throw sessionGone(this.session, this.what);
        if (deadline.expired) return null;
        const generation = connectionGeneration(this.session);
        const sorted = await whenConnected(this.session, deadline, signal, this.what, () => this.sortedChildren());
        if (sorted === TIMED_OUT) return null;
        const ours = sorted.indexOf(created.name);
        if (ours < 0) {
          if (isDead(this.session.state)) throw sessionGone(this.session, this.what);
          throw new KeeperError('NONODE', created.path, `${this.what}: our lock node disappeared while waiting (deleted by another client?)`);
        }
        const decision = this.predicate(sorted, ours);
        if (decision.acquired) {
          const stat = await whenConnected(this.session, deadline, signal, this.what, () => this.session.exists(created.path));
          if (stat === TIMED_OUT) return null;
          if (stat === null) continue; // vanished: the next round reports it
          // Only a decision made on an uninterrupted connection counts: if the session was
          // suspended meanwhile, look again once it is back (reconnect races).
          if (!isConnected(this.session.state) || generation !== connectionGeneration(this.session)) continue;
          held = true;
          return { path: created.path, name: created.name, czxid: stat.czxid };
        }
        const t = trigger();
        try {
          await this.session.getData(childPath(this.basePath, decision.watch), { watch: () => t.fire() });
        } catch (e) {
          if (e instanceof KeeperError && e.code === 'NONODE') continue; // gone already: look again
          if (e instanceof KeeperError && e.code === 'CONNECTIONLOSS') continue; // the next round waits for the connection
          throw e;
        }
        const r = await waitFor(this.session, t, deadline, signal, this.what);
        if (r === 'timeout') return null;
      }
      throw new KeeperError('SYSTEMERROR', created.path, `${this.what}: no decision after ${MAX_ROUNDS} rounds`);
    } finally {
      if (!held) await cleanUp(this.session, created.path);
    }
  }

  /** Deletes a held node (now, or once reconnected). */
  async release(node: LockNode): Promise<void> {
    await deleteEventually(this.session, node.path);
  }
}
