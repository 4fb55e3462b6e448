// How far an ordered stream has been taken in, and the calls waiting for a point of it: the
// event log's applied sequence (cache.ts) and the catalog watch's revision
// (catalog-watermark.ts) both move only forward, and a waiter needs every entry up to its own.
export class Watermark<T extends number | bigint> {
  private waiters: Array<{ at: T; resolve: () => void }> = [];

  constructor(private reached: T) {}

  get value(): T {
    return this.reached;
  }

  /** Everything up to `at` has been taken in; a lower or equal `at` changes nothing. */
  advance(at: T): void {
    if (at <= this.reached) return;
    this.reached = at;
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) (w.at <= at ? w.resolve() : still.push(w));
    this.waiters = still;
  }

  /** Resolves true once `at` has been taken in, false after `timeoutMs`. */
  waitFor(at: T, timeoutMs: number): Promise<boolean> {
    if (at <= this.reached) return Promise.resolve(true);
    return new Promise((resolve) => {
      const entry = {
        at,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== entry);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(entry);
    });
  }
}
