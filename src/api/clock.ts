/** Time as the member sees it: injected so that simulation can run on virtual time. */
export interface Clock {
  /** Milliseconds since the epoch (or since the start of a simulation). */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  /** Yields to other work (chunked snapshot writing); virtual clocks run it as a zero-delay task. */
  yield(): Promise<void>;
  /**
   * Optional: runs `fn` once the work already queued has run (after I/O that is ready now);
   * `setImmediate` on the real clock, a zero-delay timer on a virtual one. Without it, yield() is used.
   */
  immediate?(fn: () => void): void;
}

/**
 * The real clock. A running member keeps its process alive (like a server) until `stop()`;
 * its timers are cleared then.
 */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
  yield: () => new Promise((r) => setImmediate(r)),
  immediate: (fn) => {
    setImmediate(fn);
  },
};
