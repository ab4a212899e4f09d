/**
 * Small byte values carved out of shared 8 KiB slabs, as Node's Buffer pool does (a backing store
 * of its own per value costs several times more, in allocation and in GC work), but as plain
 * Uint8Arrays: `.slice()` on them copies, as callers of a Uint8Array expect.
 *
 * A slab lives as long as any value carved from it. Values that die young (a hot node rewritten
 * over and over) can leave a long-lived neighbour pinning a whole slab; the tree therefore copies
 * carved values into a fresh, dense allocator when it takes a snapshot ({@link isCarved}), which
 * bounds that waste by what was decoded since the last snapshot.
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

const SLAB_BYTES = 8192;
/** Larger values get a buffer of their own. */
const MAX_CARVED = SLAB_BYTES >>> 2;

/** True when `data` shares its ArrayBuffer with other values (a slab, or Node's Buffer pool). */
export function isCarved(data: Uint8Array): boolean {
  return data.byteLength !== 0 && data.byteLength < data.buffer.byteLength;
}
