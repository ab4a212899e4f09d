import type { Clock } from '../api/clock.js';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  every: number;
  cancelled: boolean;
}

/**
 * Virtual time for deterministic simulation: timers fire in (time, scheduling order) and the
 * driver advances time only when it runs them. Nothing here reads the real clock.
 */
export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private heap: Timer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    return this.push(fn, Math.max(0, ms), 0);
  }

  clearTimeout(handle: unknown): void {
    if (handle) (handle as Timer).cancelled = true;
  }

  setInterval(fn: () => void, ms: number): unknown {
    return this.push(fn, Math.max(1, ms), Math.max(1, ms));
  }

  clearInterval(handle: unknown): void {
    if (handle) (handle as Timer).cancelled = true;
  }

  yield(): Promise<void> {
    return new Promise((r) => this.setTimeout(r, 0));
  }

  immediate(fn: () => void): void {
    this.push(fn, 0, 0);
  }

  /** Number of pending timers (including cancelled ones not yet popped). */
  get pending(): number {
    return this.heap.length;
  }

  /** Time of the next timer, or undefined. */
  peek(): number | undefined {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap[0]?.at;
  }

  /**
   * Runs the next timer (advancing time to it) if it is due at or before `until`.
   * Returns false when there is none.
   */
  runNext(until: number): boolean {
    for (;;) {
      const top = this.heap[0];
      if (!top || top.at > until) return false;
      this.pop();
      if (top.cancelled) continue;
      if (top.at > this.t) this.t = top.at;
      if (top.every > 0) {
        top.at = this.t + top.every;
        top.seq = this.seq++;
        this.insert(top);
      }
      top.fn();
      return true;
    }
  }

  /** Moves time forward to `t` (no timer may be skipped: call after running them). */
  advanceTo(t: number): void {
    if (t > this.t) this.t = t;
  }

  private push(fn: () => void, delay: number, every: number): Timer {
    const timer: Timer = { at: this.t + delay, seq: this.seq++, fn, every, cancelled: false };
    this.insert(timer);
    return timer;
  }

  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private insert(x: Timer): void {
    const h = this.heap;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Timer | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
