// Callers waiting until the hosts online at the time have sent their full syncs (a starting
// coordinator serves reads once its cache holds the fleet), each at most until its timeout.
export class SyncWaiters {
  private waiters: Array<{ hosts: Set<string>; resolve: () => void }> = [];

  /** Resolves when every host of `pending` is settled (check()), or after `timeoutMs`. */
  wait(pending: Set<string>, timeoutMs: number): Promise<void> {
    if (pending.size === 0 || timeoutMs <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(), timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve();
      };
      const waiter = { hosts: pending, resolve: done };
      this.waiters.push(waiter);
    });
  }

  /** Drops the hosts that are `settled` from every wait; a wait left with none resolves. */
  check(settled: (id: string) => boolean): void {
    for (const w of [...this.waiters]) {
      for (const id of [...w.hosts]) if (settled(id)) w.hosts.delete(id);
      if (w.hosts.size === 0) w.resolve();
    }
  }

  /** Resolves every wait now (the registry stops). */
  releaseAll(): void {
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }
}
