// Where the cache's pending pools (cache.ts PendingVolumes) keep their bytes: carved out of
// large slabs instead of one allocation per pool.
//
// A fleet's resync after a coordinator restart leaves ~10,000 pools pending at once (500 hosts
// x 20 pools, ~33 KB of volume bytes each, ~330 MB), all indexed and freed a few seconds later.
// One Buffer per pool is one malloc() per pool: below glibc's mmap threshold, from the main
// arena's brk heap, interleaved with whatever else is allocated meanwhile. Freed, that heap is
// not given back to the system (glibc trims only its top, and something still in use sits
// above), so a restarted coordinator stayed at ~1.07 GiB RSS with the same ~550 MiB JS heap
// as a fresh one at ~760 MiB (docs/benchmarks.md, "Fleet simulation").
//
// A slab is larger than glibc's largest dynamic mmap threshold (32 MiB on 64-bit: a request
// that size always gets its own mapping, whatever frees raised the threshold to), so it is
// mapped on its own and unmapped when the garbage collector frees it: once the last pool
// carved from it is indexed (or dropped), its memory goes back to the system. Pages of a slab
// that nothing was written to are never resident. Other allocators (musl) lose nothing by it.
//
// The slab being filled is dropped by release() (the cache calls it when no pool is pending),
// so that nothing but its pools keeps it alive.

/** Larger than glibc's DEFAULT_MMAP_THRESHOLD_MAX (4 MiB x sizeof(long) = 32 MiB): always its own mapping. */
export const SLAB_BYTES = 40 * 1024 * 1024;

export class SlabArena {
  private slab: Buffer | undefined;
  private used = 0;
  /** slabs started so far (tests, logs) */
  slabs = 0;

  constructor(private readonly slabBytes = SLAB_BYTES) {}

  /**
   * `n` bytes, uninitialised: a view of the current slab, or of a new one when the rest of
   * this one is too small. A request over an eighth of a slab gets a buffer of its own (it
   * is large enough not to fragment anything, and would waste much of a slab's tail).
   */
  alloc(n: number): Buffer {
    if (n > this.slabBytes / 8) return Buffer.allocUnsafeSlow(n);
    if (!this.slab || this.slab.length - this.used < n) {
      this.slab = Buffer.allocUnsafeSlow(this.slabBytes);
      this.used = 0;
      this.slabs++;
    }
    const out = this.slab.subarray(this.used, this.used + n);
    // 8-byte steps: every view starts aligned, as its own allocation would
    this.used += (n + 7) & ~7;
    return out;
  }

  /** Starts the next allocation on a new slab: the current one is freed once the views carved from it are. */
  release(): void {
    this.slab = undefined;
    this.used = 0;
  }

  /** Bytes of the current slab handed out (0 after release). */
  get filled(): number {
    return this.used;
  }
}
