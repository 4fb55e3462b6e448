// Calls waiting for a host's agent to answer, told when that answer can no longer come
// (the host went offline, its agent restarted, the bus dropped), so that they fail at
// once instead of waiting out their timeout.
export class LossWatchers {
  private readonly byHost = new Map<string, Set<(why: string) => void>>();

  /** Calls `onLost` at the host's next loss; returns the function that stops watching. */
  watch(id: string, onLost: (why: string) => void): () => void {
    let set = this.byHost.get(id);
    if (!set) this.byHost.set(id, (set = new Set()));
    set.add(onLost);
    return () => {
      set!.delete(onLost);
      if (set!.size === 0 && this.byHost.get(id) === set) this.byHost.delete(id);
    };
  }

  /** Tells (once) everything watching the host why its answers are lost. */
  lost(id: string, why: string): void {
    const set = this.byHost.get(id);
    if (!set) return;
    this.byHost.delete(id);
    for (const f of set) f(why);
  }

  /** lost() for every watched host. */
  lostAll(why: string): void {
    for (const id of [...this.byHost.keys()]) this.lost(id, why);
  }
}
