/**
 * Small byte values carved out of shared 8 KiB slabs, as Node's Buffer pool does (a backing store
 * of its own per value costs several times more, in allocation and in GC work), but as plain
 * Uint8Arrays: `.slice()` on them copies, as callers of a Uint8Array expect.
 *
 * A slab lives as long as any value carved from it. Values that die young (a hot node rewritten
 * over and over) can leave a long-lived neighbour pinning a whole slab; the tree therefore copies
 * carved values into a fresh, dense allocator when it takes a snapshot ({@link isCarved}), which
 * bounds that waste by what was decoded since the last snapshot ({@link DenseSlabs}).
 */
export class SlabAllocator {
  private slab = new ArrayBuffer(SLAB_BYTES);
  private used = 0;

  /** `n` bytes (uninitialised past what the caller writes): carved when small, else their own. */
  alloc(n: number): Uint8Array {
    if (n > MAX_CARVED) return new Uint8Array(n);
    if (this.used + n > SLAB_BYTES) {
      this.slab = new ArrayBuffer(SLAB_BYTES);
      this.used = 0;
    }
    const out = new Uint8Array(this.slab, this.used, n);
    this.used = (this.used + n + 7) & ~7;
    return out;
  }

  /** A copy of `data` from this allocator. */
  copy(data: Uint8Array): Uint8Array {
    const out = this.alloc(data.length);
    out.set(data);
    return out;
  }
}

/** A dense slab: values copied into it, and how many the tree held at the last passes. */
interface DenseSlab {
  total: number;
  /** Values found in it by the last complete pass (all of them until a pass has seen it). */
  live: number;
  /** Values found in it by pass `pass` so far. */
  seen: number;
  pass: number;
}

/**
 * The slabs a tree's snapshot passes copy carved values into. A pass copies a value only when it
 * shares a buffer it may be pinning: decoded values (frames, log records), Node's Buffer pool, and
 * dense slabs that the previous pass found less than half full of live values. A value sitting in
 * a dense slab that is still at least half live stays where it is. Liveness is counted by the
 * passes themselves (every pass visits every value), so applying txns does no bookkeeping; a slab
 * emptied since the last pass is noticed by the next one, so a dead neighbour is pinned for at most
 * two snapshot intervals. Copying every carved value on every pass cost a 200k-node snapshot
 * 40–70 ms of CPU and as many new objects for the GC to promote, for values that had not moved.
 */
export class DenseSlabs {
  private readonly slabs = new WeakMap<ArrayBufferLike, DenseSlab>();
  private allocator = new SlabAllocator();
  private current: DenseSlab | undefined;
  private currentBuffer: ArrayBufferLike | undefined;
  private pass = 0;

  /** A new pass over the tree begins (its counts replace the previous pass's as it goes). */
  beginPass(): void {
    this.pass++;
    // Each pass fills slabs of its own, so that a slab's counts belong to one pass.
    this.allocator = new SlabAllocator();
    this.currentBuffer = undefined;
  }

  /** The value the tree should hold for `data`: `data` itself, or a copy in a dense slab. */
  repack(data: Uint8Array): Uint8Array {
    if (!isCarved(data)) return data;
    const from = this.slabs.get(data.buffer);
    if (from !== undefined) {
      if (from.pass !== this.pass) {
        // First value of this slab in this pass: what the previous pass counted becomes its
        // liveness. A slab that pass never reached counts as empty and one a pass cut short
        // counted only in part: their values are copied again rather than left pinning.
        from.live = from.pass === this.pass - 1 ? from.seen : 0;
        from.seen = 0;
        from.pass = this.pass;
      }
      if (from.live * 2 >= from.total) {
        from.seen++;
        return data;
      }
    }
    const out = this.allocator.copy(data);
    if (!isCarved(out)) return out; // large: a buffer of its own
    if (out.buffer !== this.currentBuffer) {
      this.currentBuffer = out.buffer;
      this.current = { total: 0, live: 0, seen: 0, pass: this.pass };
      this.slabs.set(out.buffer, this.current);
    }
    const c = this.current!;
    c.total++;
    c.live++;
    c.seen++;
    return out;
  }
}

const SLAB_BYTES = 8192;
/** Larger values get a buffer of their own. */
const MAX_CARVED = SLAB_BYTES >>> 2;

/** True when `data` shares its ArrayBuffer with other values (a slab, or Node's Buffer pool). */
export function isCarved(data: Uint8Array): boolean {
  return data.byteLength !== 0 && data.byteLength < data.buffer.byteLength;
}
