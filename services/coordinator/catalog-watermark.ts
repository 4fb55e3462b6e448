// How far this coordinator's catalog watch has read: the highest revision of a pool entry it
// has delivered to the cache. The watch delivers the bucket's changes in revision order, so
// once it has delivered revision R, every pool change before R is in the cache too: what a
// write at R must be checked against (define-conflicts.ts).
export class CatalogWatermark {
  private seen = 0;
  private waiters: Array<{ revision: number; resolve: () => void }> = [];

  get revision(): number {
    return this.seen;
  }

  /** The watch delivered `revision`. */
  advance(revision: number): void {
    if (revision <= this.seen) return;
    this.seen = revision;
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) (w.revision <= revision ? w.resolve() : still.push(w));
    this.waiters = still;
  }

  /** Resolves true once the watch has delivered `revision`, false after `timeoutMs`. */
  waitFor(revision: number, timeoutMs: number): Promise<boolean> {
    if (revision <= this.seen) return Promise.resolve(true);
    return new Promise((resolve) => {
      const entry = {
        revision,
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
