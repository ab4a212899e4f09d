import { EventEmitter } from 'eventemitter3';
import { decodeMessage, encodeMessage } from '../core/codec.js';
import type { PeerAddresses, PeerMessage, Transport, TransportEvents } from '../transport/types.js';
import type { Rng } from './random.js';
import type { VirtualClock } from './virtualClock.js';

/** Fault settings of the simulated network (all probabilities per message). */
export interface SimFaults {
  minDelayMs: number;
  maxDelayMs: number;
  drop: number;
  duplicate: number;
  reorder: number;
}

export const NO_FAULTS: SimFaults = { minDelayMs: 0, maxDelayMs: 2, drop: 0, duplicate: 0, reorder: 0 };

/**
 * The network of a simulation: deterministic delivery on the virtual clock, FIFO per ordered
 * pair unless reordering is injected, silent partitions, visible crashes ('down' to peers),
 * and every message encoded and decoded like on a real wire.
 */
export class SimNetwork {
  private readonly nodes = new Map<number, SimTransport>();
  private groups: Map<number, number> | undefined;
  faults: SimFaults = { ...NO_FAULTS };
  /** Last scheduled delivery time per ordered pair, for FIFO. */
  private readonly lastAt = new Map<string, number>();
  delivered = 0;
  dropped = 0;
  /** Per-message decision for scenario tests: false = not delivered now (dropped or held by the caller). */
  filter: ((from: number, to: number, msg: PeerMessage) => boolean) | undefined;

  constructor(private readonly clock: VirtualClock, private readonly rng: Rng) {}

  transport(id: number): SimTransport {
    const t = new SimTransport(id, this);
    return t;
  }

  /** @internal */
  attach(t: SimTransport): void {
    this.nodes.set(t.id, t);
    for (const [id, other] of this.nodes) {
      if (id === t.id || !other.running) continue;
      other.emit('up', t.id);
      t.emit('up', id);
    }
  }

  /** @internal */
  detach(t: SimTransport): void {
    if (this.nodes.get(t.id) !== t) return;
    this.nodes.delete(t.id);
    for (const [id, other] of this.nodes) {
      if (id !== t.id && other.running) other.emit('down', t.id);
    }
  }

  /** Members in different groups cannot exchange messages (silently). */
  partition(groups: number[][]): void {
    const m = new Map<number, number>();
    groups.forEach((g, i) => g.forEach((id) => m.set(id, i)));
    this.groups = m;
  }

  heal(): void {
    this.groups = undefined;
    this.faults = { ...NO_FAULTS };
  }

  reachable(a: number, b: number): boolean {
    if (!this.groups) return true;
    const ga = this.groups.get(a);
    const gb = this.groups.get(b);
    // A member in no group is cut off from everyone.
    return ga !== undefined && ga === gb;
  }

  /** @internal */
  send(from: number, to: number, msg: PeerMessage): void {
    const dst = this.nodes.get(to);
    if (!dst || !dst.running || !this.reachable(from, to)) {
      this.dropped++;
      return;
    }
    if (this.filter && !this.filter(from, to, msg)) return;
    this.schedule(from, to, dst, msg);
  }

  /** Delivers a message as if `from` sent it now, bypassing the filter (releasing held messages). */
  inject(from: number, to: number, msg: PeerMessage): void {
    const dst = this.nodes.get(to);
    if (!dst || !dst.running) return;
    this.schedule(from, to, dst, msg);
  }

  private schedule(from: number, to: number, dst: SimTransport, msg: PeerMessage): void {
    const f = this.faults;
    if (f.drop > 0 && this.rng.chance(f.drop)) {
      this.dropped++;
      return;
    }
    const bytes = encodeMessage(msg);
    const copies = f.duplicate > 0 && this.rng.chance(f.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const key = `${from}>${to}`;
      let at = this.clock.now() + this.rng.int(f.minDelayMs, f.maxDelayMs);
      const reorder = f.reorder > 0 && this.rng.chance(f.reorder);
      if (!reorder) {
        const prev = this.lastAt.get(key) ?? 0;
        if (at < prev) at = prev;
        this.lastAt.set(key, at);
      }
      this.clock.setTimeout(() => {
        const d = this.nodes.get(to);
        // Re-checked at delivery: a partition or crash in between loses the message.
        if (d !== dst || !d.running || !this.reachable(from, to)) {
          this.dropped++;
          return;
        }
        this.delivered++;
        d.emit('message', from, decodeMessage(bytes) as PeerMessage);
      }, at - this.clock.now());
    }
  }
}

/** One member's view of the simulated network. */
export class SimTransport extends EventEmitter<TransportEvents> implements Transport {
  readonly kind = 'sim';
  running = false;

  constructor(readonly id: number, private readonly net: SimNetwork) {
    super();
  }

  async start(self: number, _peers: PeerAddresses): Promise<void> {
    if (self !== this.id) throw new Error(`sim transport ${this.id} started as ${self}`);
    this.running = true;
    this.net.attach(this);
  }

  send(to: number, msg: PeerMessage): void {
    if (!this.running) return;
    this.net.send(this.id, to, msg);
  }

  connected(): number[] {
    return [];
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.net.detach(this);
    this.removeAllListeners();
  }
}
