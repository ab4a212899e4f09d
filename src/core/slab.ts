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

/** How many of a dense slab's values the tree still holds, of how many were copied into it. */
interface DenseSlab {
  live: number;
  total: number;
}

/**
 * The slabs a tree's snapshot passes copy carved values into, with how many of their values the
 * tree still holds. A pass copies a value only when it shares a buffer it may be pinning: decoded
 * values (frames, log records), Node's Buffer pool, and dense slabs that have lost more than half
 * their values since. A value sitting in a dense slab that is still at least half live stays where
 * it is. Copying every carved value on every pass cost a 200k-node snapshot 40–70 ms of CPU and as
 * many new objects for the GC to promote, for values that had not moved since the last pass.
 */
export class DenseSlabs {
  private readonly slabs = new WeakMap<ArrayBufferLike, DenseSlab>();
  private readonly allocator = new SlabAllocator();
  private current: DenseSlab | undefined;
  private currentBuffer: ArrayBufferLike | undefined;

  /** The value the tree should hold for `data`: `data` itself, or a copy in a dense slab. */
  repack(data: Uint8Array): Uint8Array {
    if (!isCarved(data)) return data;
    const from = this.slabs.get(data.buffer);
    if (from !== undefined) {
      if (from.live * 2 >= from.total) return data;
      from.live--;
    }
    const out = this.allocator.copy(data);
    if (!isCarved(out)) return out; // large: a buffer of its own
    if (out.buffer !== this.currentBuffer) {
      this.currentBuffer = out.buffer;
      this.current = { live: 0, total: 0 };
      this.slabs.set(out.buffer, this.current);
    }
    this.current!.live++;
    this.current!.total++;
    return out;
  }

  /** The tree no longer holds `data` (replaced or deleted). */
  release(data: Uint8Array): void {
    const s = this.slabs.get(data.buffer);
    if (s !== undefined) s.live--;
  }
}

const SLAB_BYTES = 8192;
/** Larger values get a buffer of their own. */
const MAX_CARVED = SLAB_BYTES >>> 2;

/** True when `data` shares its ArrayBuffer with other values (a slab, or Node's Buffer pool). */
export function isCarved(data: Uint8Array): boolean {
  return data.byteLength !== 0 && data.byteLength < data.buffer.byteLength;
}
