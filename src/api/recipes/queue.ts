import { randomUUID } from 'node:crypto';
import { KeeperError } from '../../core/errors.js';
import { CreateMode } from '../../core/createMode.js';
import { op, type Session } from '../session.js';
import { bytesCodec, type Codec } from './codec.js';
import { createProtected, isProtectedName, unprotectedName } from './protected.js';
import {
  awaitConnected, checkAborted, checkPath, childPath, Deadline, ensurePath, isCode, sequenceOf, sleep, TIMED_OUT,
  trigger, waitFor, whenConnected, type Trigger, type WaitOptions,
} from './util.js';

export interface QueueOptions<T> {
  /** How items are stored (default: raw bytes). */
  codec?: Codec<T>;
}

/** A consumed item with where it came from. */
export interface TakenItem<T> {
  value: T;
  /** The item node's name (its 10-digit suffix is the queue position). */
  name: string;
  /** Sequence number of the item in its queue. */
  sequence: number;
  /** zxid of the transaction that consumed it: consumptions are totally ordered by it. */
  zxid: bigint;
}

interface ItemKind {
  /** Marker in item names. */
  marker: string;
  /** Sort key of an item name; items are attempted in ascending key order. */
  key(name: string): [number, number];
  /** Milliseconds until the item may be consumed (≤ 0: now). */
  dueIn?(name: string, now: number): number;
  /** Re-list before each take when the children changed (new items may sort first). */
  relistOnChange: boolean;
}

const RECEIPT_PREFIX = '_r_';
const MAX_ROUNDS = 10_000_000;

/**
 * The queue machinery shared by Queue, PriorityQueue and DelayQueue. Items are persistent
 * sequential nodes with protected names (a producer whose create response is lost never adds the
 * item twice). A consumer owns an item iff its delete succeeded: the delete goes in one
 * transaction with a write to the consumer's own receipt node, so that even a consumption whose
 * response was lost is resolved exactly (the receipt names the item) instead of losing the item.
 * Each consumer attempts items strictly in queue order, so consumptions are FIFO: if item A
 * precedes item B, A is consumed by an earlier transaction than B.
 * @internal
 */
class BaseQueue<T> {
  readonly path: string;
  protected readonly codec: Codec<T>;
  private buffer: string[] = [];
  private listingTrigger: Trigger | undefined;
  private receipt: { path: string; version: number } | undefined;
  private readonly consumerId = randomUUID();
  private takeChain: Promise<unknown> = Promise.resolve();

  constructor(readonly session: Session, path: string, private readonly kind: ItemKind, codec: Codec<T> | undefined, what: string) {
    checkPath(path, what);
    this.path = path;
    this.codec = (codec ?? bytesCodec) as Codec<T>;
  }

  protected isItem(name: string): boolean {
    return isProtectedName(name) && name.includes(this.kind.marker) && sequenceOf(name) >= 0;
  }

  protected sortItems(names: readonly string[]): string[] {
    const items = names.filter((n) => this.isItem(n)).map((n) => ({ n, k: this.kind.key(n) }));
    items.sort((a, b) => a.k[0] - b.k[0] || a.k[1] - b.k[1]);
    return items.map((x) => x.n);
  }

  protected async putNamed(value: T, name: string, options: WaitOptions = {}): Promise<string> {
    const data = this.codec.encode(value);
    const node = await createProtected(this.session, this.path, name, { data, mode: CreateMode.PERSISTENT_SEQUENTIAL, ...options });
    if (!node) throw new KeeperError('OPERATIONTIMEOUT', this.path, `queue put: no outcome within ${options.timeoutMs} ms (the item is removed if it was created)`);
    return node.path;
  }

  /** Takes the next item, waiting for one; null when `timeoutMs` passed. */
  async take(options: WaitOptions = {}): Promise<T | null> {
    return (await this.takeItem(options))?.value ?? null;
  }

  /** Takes the next item if there is one now (never waits for new ones). */
  async poll(): Promise<T | null> {
    return this.take({ timeoutMs: 0 });
  }

  /** Like take(), with the item's name, sequence and consuming zxid. */
  takeItem(options: WaitOptions = {}): Promise<TakenItem<T> | null> {
    // One take at a time per queue object keeps this consumer's attempts in queue order.
    const p = this.takeChain.then(() => this.takeOnce(options));
    this.takeChain = p.catch(() => undefined);
    return p;
  }

  private async ensureReceipt(): Promise<{ path: string; version: number }> {
    if (this.receipt) return this.receipt;
    const path = childPath(this.path, `${RECEIPT_PREFIX}${this.consumerId}`);
    try {
      await this.session.create(path, undefined, { mode: CreateMode.EPHEMERAL, parents: true });
    } catch (e) {
      if (!isCode(e, 'NODEEXISTS')) throw e;
    }
    const stat = await this.session.exists(path);
    if (!stat) throw new KeeperError('NONODE', path, 'queue: the consumer receipt node vanished');
    this.receipt = { path, version: stat.version };
    return this.receipt;
  }

  private async takeOnce(options: WaitOptions): Promise<TakenItem<T> | null> {
    const deadline = new Deadline(options.timeoutMs);
    const signal = options.signal;
    const what = `queue ${this.path}`;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      checkAborted(signal);
      const receipt = await whenConnected(this.session, deadline, signal, what, () => this.ensureReceipt());
      if (receipt === TIMED_OUT) return null;
      if (this.buffer.length === 0 || (this.kind.relistOnChange && this.listingTrigger?.fired)) {
        const t = trigger();
        const children = await whenConnected(this.session, deadline, signal, what, async () => {
          try {
            return await this.session.getChildren(this.path, { watch: () => t.fire() });
          } catch (e) {
            if (!isCode(e, 'NONODE')) throw e;
            await ensurePath(this.session, this.path);
            return this.session.getChildren(this.path, { watch: () => t.fire() });
          }
        });
        if (children === TIMED_OUT) return null;
        this.listingTrigger = t;
        this.buffer = this.sortItems(children);
        if (this.buffer.length === 0) {
          if (deadline.expired) return null;
          if ((await waitFor(this.session, t, deadline, signal, what)) === 'timeout') return null;
          continue;
        }
      }
      const name = this.buffer[0]!;
      if (this.kind.dueIn) {
        const wait = this.kind.dueIn(name, Date.now());
        if (wait > 0) {
          // The earliest item is not due yet: wait for it, or for a change (an earlier item).
          if (deadline.expired) return null;
          const t = this.listingTrigger ?? trigger();
          const until = new Deadline(Math.min(wait, deadline.remaining()));
          const r = await waitFor(this.session, t, until, signal, what);
          if (r !== 'timeout' || t.fired) this.buffer = []; // relist
          continue;
        }
      }
      this.buffer.shift();
      const itemPath = childPath(this.path, name);
      let data: Uint8Array;
      try {
        data = (await this.session.getData(itemPath)).data;
      } catch (e) {
        if (isCode(e, 'NONODE')) continue; // taken by someone else
        if (isCode(e, 'CONNECTIONLOSS')) {
          this.buffer.unshift(name);
          if (!(await awaitConnected(this.session, deadline, signal, what))) return null;
          continue;
        }
        throw e;
      }
      const outcome = await this.consume(itemPath, name, receipt, deadline, signal);
      if (outcome === 'taken') continue;
      if (outcome === 'timeout') return null;
      if (outcome === 'retry') {
        this.buffer.unshift(name);
        continue;
      }
      return { value: this.codec.decode(data), name: unprotectedName(name), sequence: sequenceOf(name), zxid: outcome.zxid };
    }
    throw new KeeperError('SYSTEMERROR', this.path, `queue take: no outcome after ${MAX_ROUNDS} rounds`);
  }

  /** Deletes the item together with a receipt write; decides ownership even if the response is lost. */
  private async consume(itemPath: string, name: string, receipt: { path: string; version: number }, deadline: Deadline, signal: AbortSignal | undefined): Promise<{ zxid: bigint } | 'taken' | 'retry' | 'timeout'> {
    try {
      const results = await this.session.multi([op.delete(itemPath), op.setData(receipt.path, name, receipt.version)]);
      const r = results[1];
      if (r?.type !== 'setData') throw new KeeperError('SYSTEMERROR', itemPath, 'queue: unexpected multi result');
      receipt.version = r.stat.version;
      return { zxid: r.stat.mzxid };
    } catch (e) {
      if (isCode(e, 'CONNECTIONLOSS')) {
        // Did our transaction happen? The receipt says so: it names the item at the next version.
        for (let attempt = 0; attempt < 1000; attempt++) {
          if (!(await awaitConnected(this.session, deadline, signal, `queue ${this.path}`))) return 'timeout';
          try {
            await this.session.sync(this.path);
            const { data, stat } = await this.session.getData(receipt.path);
            if (stat.version === receipt.version + 1 && new TextDecoder().decode(data) === name) {
              receipt.version = stat.version;
              return { zxid: stat.mzxid };
            }
            if (stat.version !== receipt.version) {
              throw new KeeperError('SYSTEMERROR', receipt.path, 'queue: receipt changed by someone else');
            }
            return (await this.session.exists(itemPath)) ? 'retry' : 'taken';
          } catch (e2) {
            if (!isCode(e2, 'CONNECTIONLOSS')) throw e2;
            await sleep(Math.min(100, 5 * (attempt + 1)));
          }
        }
        return 'timeout';
      }
      if (e instanceof KeeperError && e.results) {
        const [del, rec] = e.results;
        if (del?.type === 'error' && del.code === 'NONODE') {
          // Gone — by our own hand if a session retry policy re-sent our transaction after a lost
          // response (the copy then fails here): the receipt tells.
          return (await this.receiptNames(receipt, name)) ? this.ownedByReceipt(receipt) : 'taken';
        }
        if (rec?.type === 'error' && (rec.code === 'NONODE' || rec.code === 'BADVERSION')) {
          this.receipt = undefined; // re-created (or re-read) on the next round
          return 'retry';
        }
      }
      if (isCode(e, 'NONODE')) return 'taken';
      throw e;
    }
  }

  private receiptStat: { version: number; mzxid: bigint } | undefined;

  /** True when the receipt sits at the next version and names the item. */
  private async receiptNames(receipt: { path: string; version: number }, name: string): Promise<boolean> {
    try {
      const { data, stat } = await this.session.getData(receipt.path);
      this.receiptStat = { version: stat.version, mzxid: stat.mzxid };
      return stat.version === receipt.version + 1 && new TextDecoder().decode(data) === name;
    } catch (e) {
      if (isCode(e, 'NONODE')) return false;
      throw e;
    }
  }

  private ownedByReceipt(receipt: { path: string; version: number }): { zxid: bigint } {
    const st = this.receiptStat!;
    receipt.version = st.version;
    return { zxid: st.mzxid };
  }

  /** Number of items currently in the queue. */
  async size(): Promise<number> {
    try {
      return (await this.session.getChildren(this.path)).filter((n) => this.isItem(n)).length;
    } catch (e) {
      if (isCode(e, 'NONODE')) return 0;
      throw e;
    }
  }

  /** The next item without taking it (null when empty). */
  async peek(): Promise<T | null> {
    let children: string[];
    try {
      children = await this.session.getChildren(this.path);
    } catch (e) {
      if (isCode(e, 'NONODE')) return null;
      throw e;
    }
    for (const name of this.sortItems(children)) {
      if (this.kind.dueIn && this.kind.dueIn(name, Date.now()) > 0) return null;
      try {
        return this.codec.decode((await this.session.getData(childPath(this.path, name))).data);
      } catch (e) {
        if (!isCode(e, 'NONODE')) throw e;
      }
    }
    return null;
  }

  /** Removes this consumer's receipt node (items are untouched). */
  async close(): Promise<void> {
    const r = this.receipt;
    this.receipt = undefined;
    this.buffer = [];
    if (r) {
      try {
        await this.session.delete(r.path);
      } catch {
        // ephemeral: it goes with the session anyway
      }
    }
  }
}

const QUEUE_MARKER = 'qn-';

/**
 * A distributed FIFO queue (Curator's DistributedQueue) on persistent sequential nodes: any
 * number of producers and consumers; each item is consumed exactly once, in queue order.
 * Besides the items (`_c_<guid>-qn-<seq>`), the queue path holds one small ephemeral receipt node
 * per consumer object (`_r_<guid>`, removed by close() or with the session).
 */
export class Queue<T = Uint8Array> extends BaseQueue<T> {
  constructor(session: Session, path: string, options: QueueOptions<T> = {}) {
    super(session, path, { marker: QUEUE_MARKER, key: (n) => [0, sequenceOf(n)], relistOnChange: false }, options.codec, 'Queue');
  }

  /** Adds an item; resolves to its node path. */
  async put(value: T, options: WaitOptions = {}): Promise<string> {
    return this.putNamed(value, QUEUE_MARKER, options);
  }
}

const PRIORITY_MARKER = 'qp-';
const PRIORITY_OFFSET = 2 ** 31;

function priorityOf(name: string): number {
  const i = name.indexOf(PRIORITY_MARKER);
  return Number.parseInt(name.slice(i + PRIORITY_MARKER.length, i + PRIORITY_MARKER.length + 8), 16) - PRIORITY_OFFSET;
}

/**
 * A priority queue (Curator's DistributedPriorityQueue): lower numbers are taken first; equal
 * priorities in FIFO order. A consumer re-lists when the queue changed, so an urgent item put
 * while it was working is taken next.
 */
export class PriorityQueue<T = Uint8Array> extends BaseQueue<T> {
  constructor(session: Session, path: string, options: QueueOptions<T> = {}) {
    super(session, path, { marker: PRIORITY_MARKER, key: (n) => [priorityOf(n), sequenceOf(n)], relistOnChange: true }, options.codec, 'PriorityQueue');
  }

  /** Adds an item with a priority (an integer in [-2^31, 2^31); lower is more urgent). */
  async put(value: T, priority: number, options: WaitOptions = {}): Promise<string> {
    if (!Number.isInteger(priority) || priority < -PRIORITY_OFFSET || priority >= PRIORITY_OFFSET) {
      throw new KeeperError('BADARGUMENTS', this.path, `PriorityQueue: priority must be a 32-bit integer (got ${String(priority)})`);
    }
    const p = (priority + PRIORITY_OFFSET).toString(16).padStart(8, '0');
    return this.putNamed(value, `${PRIORITY_MARKER}${p}-`, options);
  }
}

const DELAY_MARKER = 'qd-';

function dueOf(name: string): number {
  const i = name.indexOf(DELAY_MARKER);
  return Number.parseInt(name.slice(i + DELAY_MARKER.length, i + DELAY_MARKER.length + 13), 16);
}

/**
 * A delay queue (Curator's DistributedDelayQueue): an item becomes available at the epoch time
 * given when it was put; items are taken in due-time order. Times are compared with the
 * consumer's clock (keep clocks in sync, as with Curator).
 */
export class DelayQueue<T = Uint8Array> extends BaseQueue<T> {
  constructor(session: Session, path: string, options: QueueOptions<T> = {}) {
    super(session, path, {
      marker: DELAY_MARKER,
      key: (n) => [dueOf(n), sequenceOf(n)],
      dueIn: (n, now) => dueOf(n) - now,
      relistOnChange: true,
    }, options.codec, 'DelayQueue');
  }

  /** Adds an item that becomes available at `delayUntilEpochMs` (ms since the epoch). */
  async put(value: T, delayUntilEpochMs: number, options: WaitOptions = {}): Promise<string> {
    if (!Number.isInteger(delayUntilEpochMs) || delayUntilEpochMs < 0 || delayUntilEpochMs >= 16 ** 13) {
      throw new KeeperError('BADARGUMENTS', this.path, `DelayQueue: delayUntilEpochMs must be an integer ms timestamp (got ${String(delayUntilEpochMs)})`);
    }
    return this.putNamed(value, `${DELAY_MARKER}${delayUntilEpochMs.toString(16).padStart(13, '0')}-`, options);
  }
}
