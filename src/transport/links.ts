import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import type { PeerAddresses, PeerMessage, Transport, TransportEvents } from './types.js';

/**
 * What the TCP and libp2p transports share: one authenticated channel per member pair, who dials
 * whom, reconnection with bounded backoff, and the up/down bookkeeping.
 *
 * One channel per pair, deterministically: the member with the LOWER id dials the data channel.
 * The higher id only "pokes": it dials and authenticates like any member, and the lower id answers
 * with dial-back (`accept: false`) and dials it at once. A poke is therefore an authenticated
 * statement "I have no channel to you", which lets the lower id drop a channel it still believes
 * in (a half-open connection to a restarted peer), unless the poke is stale (below). Because both
 * ends apply the same rule, two channels for one pair never coexist and no message is silently
 * lost by swapping them: a replaced channel is always reported with 'down' before the new one's 'up'.
 *
 * Telling a stale poke from a real one ({@link LinkInfo}): every start() draws a new random
 * incarnation; hellos and welcomes carry the sender's, the lower id tags each data channel it dials,
 * and a poke names the last data channel the poker had from us and lost. A poke is stale — sent
 * before the poker adopted the channel we hold, crossing it on the wire — when it comes from the
 * same incarnation that adopted our channel and does not name that channel as lost; then the
 * channel stays. It is real when the poker has another incarnation (it restarted: our channel is
 * half-open) or names our channel as lost; then the channel is dropped and dialed again. (A member
 * restarting used to see its new channel to a higher id dropped by such a crossing poke, and the
 * messages sent on it lost, right after both sides had reported 'up'.)
 */

/** The tag of a data channel: the dialing (lower-id) member's incarnation and a number it chose. */
export interface ChannelTag {
  inc: string;
  ch: number;
}

/**
 * What a member's hello (or welcome: `inc` only) says about the link. The dialer's hello carries
 * all three; a peer that sends none of them is treated as unknown (its pokes always count).
 */
export interface LinkInfo {
  /** The sender's incarnation (new at every start()). */
  inc?: string;
  /** The number of the channel this connection becomes if it is the data channel. */
  ch?: number;
  /** In a poke: the last data channel the poker had from the acceptor, which it no longer has. */
  lost?: ChannelTag | null;
}

/** The tag a dialer's hello gives the channel it opens (undefined when the hello has none). */
export function tagOf(info: LinkInfo): ChannelTag | undefined {
  return info.inc !== undefined && info.ch !== undefined ? { inc: info.inc, ch: info.ch } : undefined;
}

const MAX_INC_CHARS = 32;

function isIncarnation(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_INC_CHARS;
}

function isChannelNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * The link fields of a hello or welcome (`inc`, `ch`, `lost`), each optional; a string says what
 * is malformed (the handshake is then refused).
 */
export function parseLinkInfo(msg: Readonly<Record<string, unknown>>): LinkInfo | string {
  const out: LinkInfo = {};
  if (msg.inc !== undefined) {
    if (!isIncarnation(msg.inc)) return `malformed incarnation ${JSON.stringify(msg.inc)?.slice(0, 40)}`;
    out.inc = msg.inc;
  }
  if (msg.ch !== undefined) {
    if (!isChannelNumber(msg.ch)) return `malformed channel number ${String(msg.ch).slice(0, 24)}`;
    out.ch = msg.ch;
  }
  if (msg.lost !== undefined && msg.lost !== null) {
    const l = msg.lost as Record<string, unknown>;
    if (typeof l !== 'object' || !isIncarnation(l.inc) || !isChannelNumber(l.ch)) return 'malformed lost channel';
    out.lost = { inc: l.inc, ch: l.ch };
  } else if (msg.lost === null) {
    out.lost = null;
  }
  return out;
}

/** One authenticated, ordered, bidirectional message channel to a member. */
export interface Channel {
  readonly peer: number;
  send(msg: PeerMessage): void;
  /** Bytes accepted by send() but not yet handed to the OS. */
  queued(): number;
  /** Closes without emitting any transport event (the caller does the bookkeeping). */
  close(): void;
}

export type DialOutcome = 'up' | 'dialback';

interface Link {
  peer: number;
  channel: Channel | undefined;
  /**
   * The tag of the current channel, or of the last one once it closed (undefined when the peer sent
   * none): the lower id checks pokes against it, the higher id names it in its pokes.
   */
  tag: ChannelTag | undefined;
  /** The incarnation of the peer that took part in the current channel's handshake. */
  remoteInc: string | undefined;
  dialing: boolean;
  timer: NodeJS.Timeout | undefined;
  attempts: number;
}

export interface LinkOptions {
  /** First reconnect delay (default 50 ms); doubles per failed attempt, with jitter. */
  reconnectMinMs?: number;
  /** Reconnect delay bound (default 1000 ms). */
  reconnectMaxMs?: number;
  /** Randomness for backoff jitter (default Math.random). */
  random?: () => number;
}

/** At most `burst` warnings at once, refilled at `perSecond`; the count of suppressed ones is reported. */
class WarnLimiter {
  private tokens: number;
  private last = Date.now();
  suppressed = 0;
  constructor(private readonly perSecond: number, private readonly burst: number) {
    this.tokens = burst;
  }
  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.suppressed++;
    return false;
  }
}

export function validatePeers(self: number, peers: PeerAddresses): void {
  if (!Number.isInteger(self) || self < 1) throw new RangeError(`member id must be an integer ≥ 1 (got ${String(self)})`);
  for (const id of peers.keys()) {
    if (!Number.isInteger(id) || id < 1) throw new RangeError(`peer id must be an integer ≥ 1 (got ${String(id)})`);
  }
}

export abstract class LinkTransport extends EventEmitter<TransportEvents> implements Transport {
  abstract readonly kind: string;
  protected self = 0;
  protected peers: PeerAddresses = new Map();
  protected running = false;
  private starting = false;
  /** Numbers the data channels this member dials. */
  private seq = 0;
  /** This start()'s incarnation: random, drawn anew by every start() (see the module comment). */
  protected incarnation = '';
  private readonly links = new Map<number, Link>();
  /** Bumped by stop(), so that a start() in progress notices it was cancelled. */
  private generation = 0;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;
  private readonly random: () => number;
  private readonly warnLimiter = new WarnLimiter(20, 50);
  /** Messages dropped because no channel to the destination was up. */
  droppedUnconnected = 0;

  constructor(options: LinkOptions) {
    super();
    this.reconnectMinMs = options.reconnectMinMs ?? 50;
    this.reconnectMaxMs = options.reconnectMaxMs ?? 1000;
    this.random = options.random ?? Math.random;
    if (!(this.reconnectMinMs > 0) || !(this.reconnectMaxMs >= this.reconnectMinMs)) {
      throw new RangeError(`reconnect delays must satisfy 0 < reconnectMinMs ≤ reconnectMaxMs (got ${this.reconnectMinMs}, ${this.reconnectMaxMs})`);
    }
  }

  /** Binds the listener (idempotent) and returns the address peers should use for this member. */
  abstract listen(): Promise<string>;
  /** Closes the listener and everything that is not a channel (handshakes in progress, dials). */
  protected abstract shutdown(): Promise<void>;
  /** Dials `peer` and authenticates; on 'up' the implementation has called established(). */
  protected abstract dial(peer: number): Promise<DialOutcome>;
  /** Checks implementation-specific configuration before anything starts. */
  protected abstract configure(self: number, peers: PeerAddresses): void;

  /** Async preparation before configure() (loading modules, parsing keys). */
  protected async beforeStart(): Promise<void> {}

  async start(self: number, peers: PeerAddresses): Promise<void> {
    if (this.running || this.starting) throw new Error(`${this.kind} transport is already started (as member ${this.self})`);
    validatePeers(self, peers);
    this.starting = true;
    const generation = this.generation;
    try {
      await this.beforeStart();
      this.configure(self, peers);
      this.self = self;
      this.peers = new Map(peers);
      this.incarnation = randomBytes(8).toString('hex');
      await this.listen();
      if (generation !== this.generation) {
        await this.shutdown(); // the listener may have been bound after stop() ran
        throw new Error(`${this.kind} transport was stopped while starting`);
      }
      this.running = true;
    } finally {
      this.starting = false;
    }
    for (const id of this.peers.keys()) {
      if (id === self) continue;
      this.links.set(id, { peer: id, channel: undefined, tag: undefined, remoteInc: undefined, dialing: false, timer: undefined, attempts: 0 });
      void this.runDial(id);
    }
  }

  send(to: number, msg: PeerMessage): void {
    const ch = this.links.get(to)?.channel;
    if (ch) ch.send(msg);
    else this.droppedUnconnected++;
  }

  connected(): number[] {
    const out: number[] = [];
    for (const l of this.links.values()) if (l.channel) out.push(l.peer);
    return out;
  }

  /** Bytes queued for `peer` and not yet handed to the OS (0 when not connected). */
  queued(peer: number): number {
    return this.links.get(peer)?.channel?.queued() ?? 0;
  }

  async stop(): Promise<void> {
    this.generation++;
    if (!this.running && !this.starting) {
      await this.shutdown();
      return;
    }
    this.running = false;
    for (const l of this.links.values()) {
      if (l.timer) clearTimeout(l.timer);
      l.timer = undefined;
      const ch = l.channel;
      l.channel = undefined;
      ch?.close();
    }
    this.links.clear();
    await this.shutdown();
  }

  /** Whether member `from` dialing us gets the data channel (it has the lower id) or a dial-back. */
  protected accepts(from: number): boolean {
    return from < this.self;
  }

  protected isMember(id: unknown): id is number {
    return typeof id === 'number' && id !== this.self && this.links.has(id);
  }

  private nextSeq(): number {
    return ++this.seq;
  }

  /**
   * The link fields for a hello to `peer`, sent the moment the connection is open; undefined when
   * the hello need not be sent: this dial is a poke and a channel to the peer came up meanwhile.
   */
  protected helloInfo(peer: number): Required<LinkInfo> | undefined {
    const link = this.links.get(peer);
    if (!link || (this.self > peer && link.channel)) return undefined;
    return { inc: this.incarnation, ch: this.nextSeq(), lost: this.self > peer ? (link.tag ?? null) : null };
  }

  /** The link fields for a welcome. */
  protected welcomeInfo(): { inc: string } {
    return { inc: this.incarnation };
  }

  /**
   * A channel authenticated; replaces (and reports down for) any previous one. False if refused.
   * `tag` names the channel (the dialer's incarnation and number, as sent in its hello) and
   * `remoteInc` is the peer's incarnation; either is undefined when the peer did not send it.
   */
  protected established(channel: Channel, tag: ChannelTag | undefined, remoteInc: string | undefined): boolean {
    const link = this.links.get(channel.peer);
    if (!this.running || !link) {
      channel.close();
      return false;
    }
    const old = link.channel;
    if (old) {
      link.channel = undefined;
      old.close();
      this.safeEmit('down', channel.peer);
    }
    link.channel = channel;
    link.tag = tag;
    link.remoteInc = remoteInc;
    link.attempts = 0;
    if (link.timer) clearTimeout(link.timer);
    link.timer = undefined;
    this.safeEmit('up', channel.peer);
    return true;
  }

  /** The implementation saw `channel` close (error, remote close, overflow). */
  protected channelClosed(channel: Channel): void {
    const link = this.links.get(channel.peer);
    if (!link || link.channel !== channel) return;
    link.channel = undefined;
    this.safeEmit('down', channel.peer);
    if (this.running) this.scheduleDial(link, this.backoff(1));
  }

  /** A higher-id member authenticated a poke; `info` is what its hello said (see the module comment). */
  protected poked(peer: number, info: LinkInfo): void {
    const link = this.links.get(peer);
    if (!this.running || !link) return;
    if (link.channel) {
      const tag = link.tag;
      const namesOurs = tag !== undefined && info.lost?.inc === tag.inc && info.lost.ch === tag.ch;
      if (info.inc !== undefined && info.inc === link.remoteInc && !namesOurs) return; // stale: it crossed our channel
      const old = link.channel;
      link.channel = undefined;
      old.close();
      this.safeEmit('down', peer);
    }
    link.attempts = 0;
    if (link.timer) clearTimeout(link.timer);
    link.timer = undefined;
    void this.runDial(peer);
  }

  /** Reports a problem; rate-limited so that a flood of bad input cannot flood the logs. */
  protected warn(message: string, detail?: Record<string, unknown>): void {
    if (!this.warnLimiter.take()) return;
    const suppressed = this.warnLimiter.suppressed;
    this.warnLimiter.suppressed = 0;
    const d = suppressed > 0 ? { ...detail, suppressedWarnings: suppressed } : detail;
    this.safeEmit('warn', message, d);
  }

  /** Emits without letting a throwing listener unwind into a socket handler. */
  protected safeEmit<E extends keyof TransportEvents>(event: E, ...args: Parameters<TransportEvents[E]>): void {
    try {
      (this.emit as (e: E, ...a: Parameters<TransportEvents[E]>) => boolean)(event, ...args);
    } catch (e) {
      if (event === 'warn') return;
      this.warn(`a '${event}' listener threw: ${(e as Error)?.message ?? String(e)}`, { event, error: e instanceof Error ? e.stack : String(e) });
    }
  }

  private backoff(attempt: number): number {
    const base = Math.min(this.reconnectMaxMs, this.reconnectMinMs * 2 ** Math.min(attempt - 1, 30));
    return Math.max(1, Math.round(base * (0.5 + 0.5 * this.random())));
  }

  private scheduleDial(link: Link, delayMs: number): void {
    if (link.timer || link.dialing || link.channel || !this.running) return;
    link.timer = setTimeout(() => {
      link.timer = undefined;
      void this.runDial(link.peer);
    }, delayMs);
    link.timer.unref();
  }

  private async runDial(peer: number): Promise<void> {
    const link = this.links.get(peer);
    if (!link || link.dialing || link.channel || !this.running) return;
    link.dialing = true;
    let outcome: DialOutcome | undefined;
    try {
      outcome = await this.dial(peer);
    } catch {
      // Refused or unreachable: the implementation warned where it matters; retry with backoff.
    } finally {
      link.dialing = false;
    }
    if (this.links.get(peer) !== link || link.channel || !this.running) return;
    // A dial-back means the peer dials us now; poke again later in case it cannot.
    link.attempts++;
    this.scheduleDial(link, this.backoff(outcome === 'dialback' ? Math.max(link.attempts, 3) : link.attempts));
  }
}
