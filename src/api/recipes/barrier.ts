import { randomUUID } from 'node:crypto';
import { KeeperError } from '../../core/errors.js';
import { CreateMode } from '../../core/createMode.js';
import type { Session } from '../session.js';
import {
  checkAborted, checkPath, childPath, Deadline, deleteIfExists, isCode, TIMED_OUT, trigger, waitFor, whenConnected,
  type WaitOptions,
} from './util.js';

/**
 * A barrier (Curator's DistributedBarrier): while the node at `path` exists, everyone calling
 * waitOnBarrier() waits; removeBarrier() lets them all through.
 */
export class Barrier {
  readonly path: string;

  constructor(readonly session: Session, path: string) {
    checkPath(path, 'Barrier');
    this.path = path;
  }

  /** Raises the barrier (creating parents; fine if it is already up). */
  async setBarrier(): Promise<void> {
    try {
      await this.session.create(this.path, undefined, { parents: true });
    } catch (e) {
      if (!isCode(e, 'NODEEXISTS')) throw e;
    }
  }

  /** Lowers the barrier (fine if it is already down). */
  async removeBarrier(): Promise<void> {
    await deleteIfExists(this.session, this.path);
  }

  /** Waits until the barrier is down: true, or false when `timeoutMs` passed first. */
  async waitOnBarrier(options: WaitOptions = {}): Promise<boolean> {
    const deadline = new Deadline(options.timeoutMs);
    for (let i = 0; i < 1_000_000; i++) {
      checkAborted(options.signal);
      const t = trigger();
      const stat = await whenConnected(this.session, deadline, options.signal, 'Barrier', () => this.session.exists(this.path, { watch: () => t.fire() }));
      if (stat === TIMED_OUT) return false;
      if (stat === null) return true;
      if ((await waitFor(this.session, t, deadline, options.signal, 'Barrier')) === 'timeout') return false;
    }
    return false;
  }
}

const READY_NODE = 'ready';

/**
 * A double barrier (Curator's DistributedDoubleBarrier): enter() blocks until `memberQty`
 * participants have entered; leave() blocks until all of them have left. Participants are
 * ephemeral nodes, so a crashed participant counts as having left.
 */
export class DoubleBarrier {
  readonly path: string;
  readonly memberQty: number;
  private readonly id = randomUUID();
  private readonly ourPath: string;
  private readonly readyPath: string;

  constructor(readonly session: Session, path: string, memberQty: number) {
    checkPath(path, 'DoubleBarrier');
    if (!Number.isInteger(memberQty) || memberQty < 1) throw new KeeperError('BADARGUMENTS', path, `DoubleBarrier: memberQty must be an integer ≥ 1 (got ${String(memberQty)})`);
    this.path = path;
    this.memberQty = memberQty;
    this.ourPath = childPath(path, this.id);
    this.readyPath = childPath(path, READY_NODE);
  }

  /**
   * Enters; resolves true once `memberQty` participants are in, false when `timeoutMs` passed
   * (our node is then removed again).
   */
  async enter(options: WaitOptions = {}): Promise<boolean> {
    const deadline = new Deadline(options.timeoutMs);
    const signal = options.signal;
    let ok = false;
    try {
      const created = await whenConnected(this.session, deadline, signal, 'DoubleBarrier.enter', async () => {
        try {
          await this.session.create(this.ourPath, undefined, { mode: CreateMode.EPHEMERAL, parents: true });
        } catch (e) {
          if (!isCode(e, 'NODEEXISTS')) throw e; // NODEEXISTS: our earlier attempt's response was lost
        }
      });
      if (created === TIMED_OUT) return false;
      for (let i = 0; i < 1_000_000; i++) {
        checkAborted(signal);
        const t = trigger();
        const ready = await whenConnected(this.session, deadline, signal, 'DoubleBarrier.enter', () => this.session.exists(this.readyPath, { watch: () => t.fire() }));
        if (ready === TIMED_OUT) return false;
        if (ready) {
          ok = true;
          return true;
        }
        const children = await whenConnected(this.session, deadline, signal, 'DoubleBarrier.enter', () => this.session.getChildren(this.path));
        if (children === TIMED_OUT) return false;
        if (children.filter((c) => c !== READY_NODE).length >= this.memberQty) {
          try {
            await this.session.create(this.readyPath);
          } catch (e) {
            if (!isCode(e, 'NODEEXISTS', 'CONNECTIONLOSS')) throw e;
          }
          continue;
        }
        if ((await waitFor(this.session, t, deadline, signal, 'DoubleBarrier.enter')) === 'timeout') return false;
      }
      return false;
    } finally {
      if (!ok) await deleteIfExists(this.session, this.ourPath).catch(() => undefined);
    }
  }

  /**
   * Leaves; resolves true once every participant has left, false when `timeoutMs` passed.
   * Curator's protocol: the lowest participant waits for the highest; everyone else deletes its
   * node and waits for the lowest — so each waits on one node, not on the whole group.
   */
  async leave(options: WaitOptions = {}): Promise<boolean> {
    const deadline = new Deadline(options.timeoutMs);
    const signal = options.signal;
    const ourName = this.id;
    for (let i = 0; i < 1_000_000; i++) {
      checkAborted(signal);
      const all = await whenConnected(this.session, deadline, signal, 'DoubleBarrier.leave', () => this.session.getChildren(this.path).catch((e: unknown) => {
        if (isCode(e, 'NONODE')) return [] as string[];
        throw e;
      }));
      if (all === TIMED_OUT) return false;
      const children = all.filter((c) => c !== READY_NODE).sort();
      const ours = children.indexOf(ourName);
      if (children.length === 0) break;
      if (children.length === 1 && ours === 0) {
        await deleteIfExists(this.session, this.ourPath);
        break;
      }
      let watchName: string;
      if (ours === 0) {
        watchName = children[children.length - 1]!;
      } else {
        if (ours > 0) await deleteIfExists(this.session, this.ourPath);
        watchName = children[0]!;
      }
      const t = trigger();
      const stat = await whenConnected(this.session, deadline, signal, 'DoubleBarrier.leave', () => this.session.exists(childPath(this.path, watchName), { watch: () => t.fire() }));
      if (stat === TIMED_OUT) return false;
      if (stat === null) continue;
      if ((await waitFor(this.session, t, deadline, signal, 'DoubleBarrier.leave')) === 'timeout') return false;
    }
    // Everyone is out: lower the ready flag so the barrier can be used again.
    await deleteIfExists(this.session, this.readyPath).catch(() => undefined);
    return true;
  }
}
