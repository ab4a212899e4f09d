import { EventEmitter } from 'eventemitter3';
import { realClock, type Clock } from '../api/clock.js';
import { decodeMessage, encodeMessage } from '../core/codec.js';
import { checkMaxFrameBytes, DEFAULT_MAX_FRAME_BYTES, isPeerMessage } from './frame.js';
import { validatePeers } from './links.js';
import type { PeerAddresses, PeerMessage, Transport, TransportEvents } from './types.js';

/**
 * Many members in one process, with the faults of a real network on demand.
 *
 * Semantics (what the compliance suite and the simulation rely on):
 * - A link between members a and b is up while both transports are started and each lists the
 *   other in its peers. Going up, both sides get 'up'; when one side stops, the other gets 'down'
 *   (never a 'down' without a prior 'up'). A stopped transport emits nothing more.
 * - Per ordered pair, messages are delivered in send order (FIFO) unless reorder() is on: a
 *   delayed message holds back the ones sent after it, as on a TCP connection. Messages in flight
 *   when the link goes down are lost, as with a closed connection.
 * - Every message is encoded with the wire codec at send() and decoded at delivery, so members
 *   never share objects and a message that could not cross a real wire fails loudly: with
 *   `strict` (default) send() throws a TypeError for an un-encodable or oversize message — the one
 *   exception to "send never throws", because it is a programming error, not a network condition.
 * - Faults are silent, like a real network: partition(), drop(), delay(), duplicate(), reorder()
 *   and pause() never emit 'up'/'down'. A partition takes effect at once, for messages already in
 *   flight too. 'up'/'down' themselves are never dropped, delayed or partitioned.
 * - Each pair's backlog (messages sent, not yet delivered — e.g. to a paused member) is bounded by
 *   maxPendingBytes; exceeding it resets the link, as a TCP transport closes a connection whose
 *   receiver does not read: backlog discarded, 'down' on both sides, 'up' again once the receiver
 *   is not paused.
 * - Delivery runs through `schedule(fn, delayMs)`: one task per message, so a simulator that passes
 *   its own seeded scheduler decides the interleaving (FIFO per pair still holds whatever order it
 *   runs tasks in). By default zero-delay messages are delivered in batches from one setImmediate,
 *   delayed ones by the clock's (unref'd) setTimeout.
 */

export interface MemoryNetworkOptions {
  /** Time source for delays when no `schedule` is given (default: the real clock). */
  clock?: Clock;
  /** Randomness for every fault decision (default Math.random); pass a seeded one to replay runs. */
  random?: () => number;
  /** Runs `fn` after `delayMs` (a simulator's scheduler); overrides the clock-based default. */
  schedule?: (fn: () => void, delayMs: number) => void;
  /** Largest encoded message, as on the TCP/libp2p wire (default 64 MiB). */
  maxFrameBytes?: number;
  /** Backlog bound per ordered pair before the link is reset (default 256 MiB). */
  maxPendingBytes?: number;
  /** Throw from send() on un-encodable/oversize messages (default true); false: 'warn' and drop. */
  strict?: boolean;
}

export type DropRule = number | ((from: number, to: number, msg: PeerMessage) => boolean);

export interface MemoryNetworkStats {
  /** Messages accepted by send() for a connected peer (duplicates not counted). */
  sent: number;
  /** Messages handed to a receiver ('message' events, duplicates included). */
  delivered: number;
  /** Encoded bytes accepted by send(). */
  bytes: number;
  dropped: {
    /** No link to the destination at send(). */
    unconnected: number;
    /** Across a partition (at send or in flight). */
    partition: number;
    /** By the drop() rule. */
    rule: number;
    /** In flight when the link went down (a side stopped, or the link was reset). */
    closed: number;
  };
  duplicated: number;
  reordered: number;
  /** Messages given a non-zero delay. */
  delayed: number;
  /** Links reset because their backlog exceeded maxPendingBytes. */
  resets: number;
}

export interface MemoryNetwork {
  /**
   * The transport of member `id` on this network: the same object until it has been started and
   * stopped, then a fresh one (so a restarted member gets clean listeners). A stopped transport
   * may also be started again itself.
   */
  transport(id: number): MemoryTransport;
  /**
   * Only members in the same group can talk; members named in no group form one more group
   * together. Replaces any previous partition. Silent: no 'down'/'up'.
   */
  partition(...groups: number[][]): void;
  /** Cuts `id` off from everyone (on top of the current partition). */
  isolate(id: number): void;
  /** Removes the partition and every fault (drop, delay, duplicate, reorder, pause). */
  heal(): void;
  /** Drops each message with this probability, or when the predicate says so (do not mutate msg). 0 turns it off. */
  drop(rule: DropRule): void;
  /** Delays each message by `ms`, or uniformly in [min, max]; FIFO per pair is kept. 0 turns it off. */
  delay(ms: number | { min: number; max: number }): void;
  /** Delivers a second copy of a message with this probability. */
  duplicate(probability: number): void;
  /** Lets a message skip ahead of the pair's FIFO with this probability, by up to `maxDelayMs` more (default 10). */
  reorder(probability: number, maxDelayMs?: number): void;
  /** Freezes delivery to `id` (like SIGSTOP or a long GC pause): messages queue up, subject to maxPendingBytes. */
  pause(id: number): void;
  resume(id: number): void;
  /** Whether the link between a and b is up. */
  linked(a: number, b: number): boolean;
  stats(): MemoryNetworkStats;
}

type ItemKind = 'msg' | 'up' | 'down';

interface Item {
  kind: ItemKind;
  bytes: Uint8Array | undefined;
  size: number;
  epoch: number;
  ready: boolean;
  /** Removed from its queue (link went down); its task finds nothing to do. */
  gone: boolean;
}

/** One direction of a link: what `from` sent to `to`, in order. */
interface Pair {
  from: number;
  to: number;
  queue: Item[];
  head: number;
  /** Reordered items in flight (outside the FIFO). */
  loose: Set<Item>;
  pendingBytes: number;
  /** The receiver has been told 'up' (so a 'down' is owed when the link drops). */
  announcedUp: boolean;
}

interface Link {
  a: number;
  b: number;
  up: boolean;
  /** Reset for overflow while a side was paused; comes back on resume. */
  broken: boolean;
  epoch: number;
}

const CONTROL_SIZE = 64;
const MSG_OVERHEAD = 64;

/** A member's endpoint on a MemoryNetwork. */
export class MemoryTransport extends EventEmitter<TransportEvents> implements Transport {
  readonly kind = 'memory';
  /** @internal */ started = false;
  /** @internal */ everStarted = false;
  /** @internal */ peerSet: ReadonlySet<number> = new Set();

  /** @internal */
  constructor(readonly id: number, private readonly net: Network) {
    super();
  }

  listen(): Promise<string> {
    return Promise.resolve(this.address());
  }

  address(): string {
    return `memory:${this.id}`;
  }

  start(self: number, peers: PeerAddresses): Promise<void> {
    try {
      validatePeers(self, peers);
      if (self !== this.id) throw new RangeError(`this transport belongs to member ${this.id}; it cannot start as member ${self}`);
      this.net.startTransport(this, peers);
    } catch (e) {
      return Promise.reject(e);
    }
    return Promise.resolve();
  }

  send(to: number, msg: PeerMessage): void {
    this.net.send(this, to, msg);
  }

  connected(): number[] {
    return this.net.connectedOf(this);
  }

  /** Bytes sent to `peer` and not yet delivered. */
  queued(peer: number): number {
    return this.net.pendingBytes(this.id, peer);
  }

  stop(): Promise<void> {
    this.net.stopTransport(this);
    return Promise.resolve();
  }

  /** @internal */
  deliver(event: 'message' | 'up' | 'down', from: number, msg?: PeerMessage): void {
    try {
      if (event === 'message') this.emit('message', from, msg!);
      else this.emit(event, from);
    } catch (e) {
      try {
        this.emit('warn', `a '${event}' listener threw: ${(e as Error)?.message ?? String(e)}`, { event, error: e instanceof Error ? e.stack : String(e) });
      } catch {
        // a throwing warn listener has nowhere left to report to
      }
    }
  }
}

class Network implements MemoryNetwork {
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly scheduleFn: (fn: () => void, delayMs: number) => void;
  private readonly maxFrameBytes: number;
  private readonly maxPendingBytes: number;
  private readonly strict: boolean;
  private readonly transports = new Map<number, MemoryTransport>();
  private readonly links = new Map<string, Link>();
  private readonly pairs = new Map<string, Pair>();
  private groupOf = new Map<number, number>();
  private partitioned = false;
  private nextGroup = 0;
  private dropRule: DropRule = 0;
  private delayRule: { min: number; max: number } = { min: 0, max: 0 };
  private duplicateP = 0;
  private reorderP = 0;
  private reorderMaxMs = 10;
  private readonly paused = new Set<number>();
  private readonly counters: MemoryNetworkStats = newStats();
  private immediate: (() => void)[] = [];
  private immediateScheduled = false;

  constructor(options: MemoryNetworkOptions) {
    this.clock = options.clock ?? realClock;
    this.random = options.random ?? Math.random;
    this.maxFrameBytes = checkMaxFrameBytes(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    this.maxPendingBytes = options.maxPendingBytes ?? 256 * 1024 * 1024;
    if (!(this.maxPendingBytes > 0)) throw new RangeError('maxPendingBytes must be positive');
    this.strict = options.strict ?? true;
    if (options.schedule) {
      this.scheduleFn = options.schedule;
    } else if (this.clock === realClock) {
      this.scheduleFn = (fn, ms) => (ms <= 0 ? this.runSoon(fn) : this.clock.setTimeout(fn, ms));
    } else {
      this.scheduleFn = (fn, ms) => this.clock.setTimeout(fn, Math.max(0, ms));
    }
  }

  // ------------------------------------------------------------------ public API

  transport(id: number): MemoryTransport {
    if (!Number.isInteger(id) || id < 1) throw new RangeError(`member id must be an integer ≥ 1 (got ${String(id)})`);
    const t = this.transports.get(id);
    if (t && (t.started || !t.everStarted)) return t;
    const fresh = new MemoryTransport(id, this);
    this.transports.set(id, fresh);
    return fresh;
  }

  partition(...groups: number[][]): void {
    const groupOf = new Map<number, number>();
    groups.forEach((g, i) => {
      for (const id of g) {
        if (groupOf.has(id)) throw new RangeError(`member ${id} is in two groups of the partition`);
        groupOf.set(id, i);
      }
    });
    this.groupOf = groupOf;
    this.nextGroup = groups.length;
    this.partitioned = groups.length > 0;
  }

  isolate(id: number): void {
    this.groupOf.set(id, this.nextGroup++);
    this.partitioned = true;
  }

  heal(): void {
    this.groupOf = new Map();
    this.partitioned = false;
    this.nextGroup = 0;
    this.dropRule = 0;
    this.delayRule = { min: 0, max: 0 };
    this.duplicateP = 0;
    this.reorderP = 0;
    for (const id of [...this.paused]) this.resume(id);
  }

  drop(rule: DropRule): void {
    if (typeof rule === 'number') checkProbability(rule, 'drop');
    else if (typeof rule !== 'function') throw new TypeError('drop() takes a probability or a predicate (from, to, msg) => boolean');
    this.dropRule = rule;
  }

  delay(ms: number | { min: number; max: number }): void {
    const r = typeof ms === 'number' ? { min: ms, max: ms } : { min: ms.min, max: ms.max };
    if (!(r.min >= 0) || !(r.max >= r.min) || !Number.isFinite(r.max)) throw new RangeError(`delay must be ms ≥ 0 or { min ≤ max } (got ${JSON.stringify(ms)})`);
    this.delayRule = r;
  }

  duplicate(probability: number): void {
    this.duplicateP = checkProbability(probability, 'duplicate');
  }

  reorder(probability: number, maxDelayMs = 10): void {
    this.reorderP = checkProbability(probability, 'reorder');
    if (!(maxDelayMs >= 0) || !Number.isFinite(maxDelayMs)) throw new RangeError('reorder maxDelayMs must be ≥ 0');
    this.reorderMaxMs = maxDelayMs;
  }

  pause(id: number): void {
    this.paused.add(id);
  }

  resume(id: number): void {
    if (!this.paused.delete(id)) return;
    for (const link of this.links.values()) {
      if ((link.a === id || link.b === id) && link.broken) {
        link.broken = false;
        this.refresh(link.a, link.b);
      }
    }
    for (const pair of this.pairs.values()) {
      if (pair.to !== id) continue;
      for (const item of [...pair.loose]) if (item.ready) this.deliverLoose(pair, item);
      this.drain(pair);
    }
  }

  linked(a: number, b: number): boolean {
    return this.links.get(linkKey(a, b))?.up ?? false;
  }

  stats(): MemoryNetworkStats {
    const c = this.counters;
    return { ...c, dropped: { ...c.dropped } };
  }

  // ------------------------------------------------------------------ transports

  startTransport(t: MemoryTransport, peers: PeerAddresses): void {
    if (t.started) throw new Error(`memory transport of member ${t.id} is already started`);
    const current = this.transports.get(t.id);
    if (current !== t && current?.started) throw new Error(`member ${t.id} is already started on this network (another transport object)`);
    this.transports.set(t.id, t);
    t.peerSet = new Set([...peers.keys()].filter((p) => p !== t.id));
    t.started = true;
    t.everStarted = true;
    for (const other of this.transports.values()) if (other !== t) this.refresh(t.id, other.id);
  }

  stopTransport(t: MemoryTransport): void {
    if (!t.started) return;
    t.started = false;
    for (const other of this.transports.values()) if (other !== t) this.refresh(t.id, other.id);
    // Whatever was still owed to it (a 'down' not yet delivered) is moot: it starts from scratch.
    for (const pair of this.pairs.values()) {
      if (pair.to !== t.id) continue;
      for (let i = pair.head; i < pair.queue.length; i++) pair.queue[i]!.gone = true;
      for (const item of pair.loose) item.gone = true;
      pair.queue = [];
      pair.head = 0;
      pair.loose = new Set();
      pair.pendingBytes = 0;
      pair.announcedUp = false;
    }
  }

  connectedOf(t: MemoryTransport): number[] {
    if (!t.started) return [];
    const out: number[] = [];
    for (const p of t.peerSet) if (this.linked(t.id, p)) out.push(p);
    return out.sort((x, y) => x - y);
  }

  pendingBytes(from: number, to: number): number {
    return this.pairs.get(pairKey(from, to))?.pendingBytes ?? 0;
  }

  send(t: MemoryTransport, to: number, msg: PeerMessage): void {
    if (!t.started || to === t.id) return;
    const link = this.links.get(linkKey(t.id, to));
    if (!link?.up) {
      this.counters.dropped.unconnected++;
      return;
    }
    let bytes: Uint8Array;
    try {
      if (!isPeerMessage(msg)) throw new Error('a message must be an object with a string t');
      // An exactly-sized copy: msgpackr returns a view into a larger shared buffer, and byte arrays
      // decoded from `bytes` are views into it (a small znode value must not pin a big buffer).
      const encoded = encodeMessage(msg);
      bytes = encoded.byteOffset === 0 && encoded.byteLength === encoded.buffer.byteLength ? encoded : Uint8Array.prototype.slice.call(encoded);
      if (bytes.length > this.maxFrameBytes) throw new Error(`encoded size ${bytes.length} exceeds maxFrameBytes ${this.maxFrameBytes}`);
    } catch (e) {
      const text = `cannot send '${String((msg as { t?: unknown })?.t)}' from member ${t.id} to member ${to}: ${(e as Error).message}`;
      if (this.strict) throw new TypeError(text);
      t.emit('warn', text, { peer: to });
      return;
    }
    const c = this.counters;
    c.sent++;
    c.bytes += bytes.length;
    if (this.isCut(t.id, to)) {
      c.dropped.partition++;
      return;
    }
    const rule = this.dropRule;
    if (typeof rule === 'function' ? rule(t.id, to, msg) : rule > 0 && this.random() < rule) {
      c.dropped.rule++;
      return;
    }
    const pair = this.pair(t.id, to);
    this.enqueueMessage(pair, link, bytes);
    if (this.duplicateP > 0 && this.random() < this.duplicateP && link.up) {
      c.duplicated++;
      this.enqueueMessage(pair, link, bytes);
    }
  }

  // ------------------------------------------------------------------ internals

  private runSoon(fn: () => void): void {
    this.immediate.push(fn);
    if (this.immediateScheduled) return;
    this.immediateScheduled = true;
    setImmediate(() => {
      this.immediateScheduled = false;
      const batch = this.immediate;
      this.immediate = [];
      for (const f of batch) f();
    });
  }

  private isCut(a: number, b: number): boolean {
    if (!this.partitioned) return false;
    return (this.groupOf.get(a) ?? -1) !== (this.groupOf.get(b) ?? -1);
  }

  private pair(from: number, to: number): Pair {
    const k = pairKey(from, to);
    let p = this.pairs.get(k);
    if (!p) {
      p = { from, to, queue: [], head: 0, loose: new Set(), pendingBytes: 0, announcedUp: false };
      this.pairs.set(k, p);
    }
    return p;
  }

  private messageDelay(): number {
    const { min, max } = this.delayRule;
    if (max <= 0) return 0;
    return min === max ? min : min + this.random() * (max - min);
  }

  private enqueueMessage(pair: Pair, link: Link, bytes: Uint8Array): void {
    const item: Item = { kind: 'msg', bytes, size: bytes.length + MSG_OVERHEAD, epoch: link.epoch, ready: false, gone: false };
    if (pair.pendingBytes + item.size > this.maxPendingBytes) {
      this.counters.resets++;
      this.counters.dropped.closed++;
      this.resetLink(link);
      return;
    }
    pair.pendingBytes += item.size;
    let delay = this.messageDelay();
    if (delay > 0) this.counters.delayed++;
    if (this.reorderP > 0 && this.random() < this.reorderP) {
      this.counters.reordered++;
      delay += this.random() * this.reorderMaxMs;
      pair.loose.add(item);
      this.scheduleFn(() => {
        item.ready = true;
        this.deliverLoose(pair, item);
      }, delay);
      return;
    }
    this.push(pair, item, delay);
  }

  private push(pair: Pair, item: Item, delay: number): void {
    pair.queue.push(item);
    this.scheduleFn(() => {
      if (item.gone) return;
      item.ready = true;
      this.drain(pair);
    }, delay);
  }

  private deliverLoose(pair: Pair, item: Item): void {
    if (item.gone || this.paused.has(pair.to)) return;
    pair.loose.delete(item);
    pair.pendingBytes -= item.size;
    this.deliverItem(pair, item);
  }

  /** Delivers the ready prefix of the pair's FIFO. */
  private drain(pair: Pair): void {
    const q = pair.queue;
    while (pair.head < q.length && q[pair.head]!.ready && !this.paused.has(pair.to)) {
      const item = q[pair.head]!;
      q[pair.head++] = undefined as unknown as Item;
      pair.pendingBytes -= item.size;
      item.gone = true;
      this.deliverItem(pair, item);
    }
    if (pair.head === q.length) {
      pair.queue = [];
      pair.head = 0;
    } else if (pair.head > 1024 && pair.head * 2 > q.length) {
      pair.queue = q.slice(pair.head);
      pair.head = 0;
    }
  }

  private deliverItem(pair: Pair, item: Item): void {
    const dest = this.transports.get(pair.to);
    if (!dest?.started) {
      if (item.kind === 'msg') this.counters.dropped.closed++;
      return;
    }
    if (item.kind === 'up') {
      pair.announcedUp = true;
      dest.deliver('up', pair.from);
      return;
    }
    if (item.kind === 'down') {
      pair.announcedUp = false;
      dest.deliver('down', pair.from);
      return;
    }
    const link = this.links.get(linkKey(pair.from, pair.to));
    if (!link?.up || link.epoch !== item.epoch) {
      this.counters.dropped.closed++;
      return;
    }
    if (this.isCut(pair.from, pair.to)) {
      this.counters.dropped.partition++;
      return;
    }
    const msg = decodeMessage(item.bytes!) as PeerMessage;
    this.counters.delivered++;
    dest.deliver('message', pair.from, msg);
  }

  private link(a: number, b: number): Link {
    const k = linkKey(a, b);
    let l = this.links.get(k);
    if (!l) {
      l = { a: Math.min(a, b), b: Math.max(a, b), up: false, broken: false, epoch: 0 };
      this.links.set(k, l);
    }
    return l;
  }

  /** Brings the link between a and b to the state its ends call for, with the events that implies. */
  private refresh(a: number, b: number): void {
    const ta = this.transports.get(a);
    const tb = this.transports.get(b);
    const want = !!ta?.started && !!tb?.started && ta.peerSet.has(b) && tb.peerSet.has(a);
    const link = this.link(a, b);
    if (want && link.broken) return;
    if (want === link.up) return;
    link.epoch++;
    link.up = want;
    const ab = this.pair(a, b);
    const ba = this.pair(b, a);
    if (want) {
      this.control(ab, 'up', link.epoch);
      this.control(ba, 'up', link.epoch);
    } else {
      this.closePair(ab, link.epoch);
      this.closePair(ba, link.epoch);
    }
  }

  private resetLink(link: Link): void {
    if (!link.up) return;
    link.up = false;
    link.epoch++;
    this.closePair(this.pair(link.a, link.b), link.epoch);
    this.closePair(this.pair(link.b, link.a), link.epoch);
    if (this.paused.has(link.a) || this.paused.has(link.b)) link.broken = true;
    else this.refresh(link.a, link.b);
  }

  /** Discards the pair's backlog and owes its receiver a 'down' if the last event it got was 'up'. */
  private closePair(pair: Pair, _epoch: number): void {
    for (let i = pair.head; i < pair.queue.length; i++) {
      const item = pair.queue[i]!;
      item.gone = true;
      if (item.kind === 'msg') this.counters.dropped.closed++;
    }
    for (const item of pair.loose) {
      item.gone = true;
      this.counters.dropped.closed++;
    }
    pair.queue = [];
    pair.head = 0;
    pair.loose = new Set();
    pair.pendingBytes = 0;
    if (!pair.announcedUp) return; // an undelivered 'up' went with the backlog: nothing to take back
    if (this.transports.get(pair.to)?.started) this.control(pair, 'down', _epoch);
    else pair.announcedUp = false;
  }

  private control(pair: Pair, kind: 'up' | 'down', epoch: number): void {
    const item: Item = { kind, bytes: undefined, size: CONTROL_SIZE, epoch, ready: false, gone: false };
    pair.pendingBytes += item.size;
    this.push(pair, item, 0);
  }
}

function newStats(): MemoryNetworkStats {
  return { sent: 0, delivered: 0, bytes: 0, dropped: { unconnected: 0, partition: 0, rule: 0, closed: 0 }, duplicated: 0, reordered: 0, delayed: 0, resets: 0 };
}

function checkProbability(p: number, what: string): number {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new RangeError(`${what} probability must be in [0, 1] (got ${String(p)})`);
  return p;
}

function linkKey(a: number, b: number): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}

function pairKey(from: number, to: number): string {
  return `${from}>${to}`;
}

/** A network of in-process members (see MemoryNetwork). */
export function memoryNetwork(options: MemoryNetworkOptions = {}): MemoryNetwork {
  return new Network(options);
}
