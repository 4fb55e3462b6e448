// Concurrency rules of docs/bus.md, item 10.
// - Volume work: one writer or many readers per volume; a conflicting op is ABORTED at once.
//   Creates reserve their name: a second create of the same name is ALREADY_EXISTS.
// - Pool state changes (create/build/start/stop/delete/refresh) run one at a time per pool
//   (later ones wait their turn). Stop/delete refuse while volume work runs
//   (FAILED_PRECONDITION naming it); volume work is refused while the pool is starting,
//   stopping, building or being deleted. A refresh runs beside volume work and skips busy volumes;
//   a refresh that failed stops its pool as a StopPool would (turnIntoStop): not under volume work.
// - An undefine takes the pool's turn too, so that it meets a start of the same pool (undefine.ts),
//   and so does a define, so that it meets a transient create of the same name (pool-ops.ts).
import { AbortedError, AlreadyExistsError, CancelledError, FailedPreconditionError } from '../../libs/errors/errors.js';

export type PoolOp = 'create' | 'build' | 'start' | 'stop' | 'delete' | 'refresh' | 'define' | 'undefine';
export type LockMode = 'shared' | 'exclusive';

interface VolumeHold {
  op: string;
  mode: LockMode;
  count: number;
  creating: boolean;
  /** a create's or clone's: settles when it lets go of the name */
  ended?: Promise<void>;
  end?: () => void;
}

interface PoolLockState {
  /** The pool state change running now, if any. */
  poolOp?: PoolOp;
  /** Tail of the queue of pool state changes. */
  tail: Promise<void>;
  volumes: Map<string, VolumeHold>;
  /** The scans reading the pool now (watchWriters): each collects the volumes a writer took. */
  scans: Set<Set<string>>;
}

export type Release = () => void;

/** Pool ops during which no volume work may start. */
const BLOCKS_VOLUME_WORK: ReadonlySet<PoolOp> = new Set(['create', 'build', 'start', 'stop', 'delete']);

export class LockTable {
  private readonly pools = new Map<string, PoolLockState>();

  private pool(name: string): PoolLockState {
    let state = this.pools.get(name);
    if (!state) {
      state = { tail: settled, volumes: new Map(), scans: new Set() };
      this.pools.set(name, state);
    }
    return state;
  }

  private gc(name: string): void {
    const state = this.pools.get(name);
    if (state && !state.poolOp && state.volumes.size === 0 && state.scans.size === 0 && state.tail === settled) this.pools.delete(name);
  }

  /**
   * Runs `fn` as the pool's only state change (waiting for earlier ones). Stop and delete
   * are refused while a volume of the pool has work in progress. `signal` is the caller's:
   * once it has aborted (the client cancelled, its deadline passed) while the call waited for
   * its turn, `fn` does not run at all (CANCELLED): a stop or delete given up on must not
   * happen later, behind a long refresh or build.
   */
  async withPool<T>(pool: string, op: PoolOp, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const state = this.pool(pool);
    const previous = state.tail;
    let done!: () => void;
    const mine = new Promise<void>((r) => (done = r));
    state.tail = mine;
    await previous;
    try {
      if (signal?.aborted) {
        throw new CancelledError(`the caller cancelled '${op}' of storage pool '${pool}' while it waited for its turn; nothing was done`, { pool, operation: op });
      }
      if (op === 'stop' || op === 'delete') this.requireNoVolumeWork(pool, op);
      state.poolOp = op;
      return await fn();
    } finally {
      state.poolOp = undefined;
      if (state.tail === mine) state.tail = settled;
      done();
      this.gc(pool);
    }
  }

  /**
   * The pool's turn, running `refresh`, goes on as a stop (a refresh that failed stops its
   * pool, as libvirt's): refused as a StopPool is while volume work runs, since a refresh runs
   * beside it (FAILED_PRECONDITION naming the work); otherwise no volume work starts from now
   * until the turn ends. Call inside that turn.
   */
  turnIntoStop(pool: string): void {
    this.requireNoVolumeWork(pool, 'stop');
    const state = this.pools.get(pool);
    if (state?.poolOp) state.poolOp = 'stop';
  }

  private requireNoVolumeWork(pool: string, op: 'stop' | 'delete'): void {
    const busy = this.volumeWork(pool);
    if (busy) {
      throw new FailedPreconditionError(`storage pool '${pool}' has operations in progress: ${busy}; cannot ${op} it now`, { pool, operation: busy });
    }
  }

  /** The pool state change running now (for messages and tests). */
  poolOp(pool: string): PoolOp | undefined {
    return this.pools.get(pool)?.poolOp;
  }

  /** "wipe of volume 'v', ..." or undefined when no volume work runs in the pool. */
  volumeWork(pool: string): string | undefined {
    const state = this.pools.get(pool);
    if (!state || state.volumes.size === 0) return undefined;
    return [...state.volumes].map(([vol, h]) => `${h.op} of volume '${vol}'`).join(', ');
  }

  isVolumeBusy(pool: string, volume: string): boolean {
    return this.pools.get(pool)?.volumes.has(volume) ?? false;
  }

  /** Does a writer (an exclusive hold: create, delete, resize, wipe, upload) hold the volume now? */
  isVolumeWritten(pool: string, volume: string): boolean {
    return this.pools.get(pool)?.volumes.get(volume)?.mode === 'exclusive';
  }

  /**
   * Adds to `into` every volume of the pool a writer holds now or takes from now until the
   * returned function is called: a scan reading the pool meanwhile cannot tell what such a
   * writer did (it may have made a volume and removed it, or failed and taken back the file
   * the scan found), only that the scan's view of the volume is not the latest.
   */
  watchWriters(pool: string, into: Set<string>): () => void {
    const state = this.pool(pool);
    for (const [volume, hold] of state.volumes) if (hold.mode === 'exclusive') into.add(volume);
    state.scans.add(into);
    return () => {
      state.scans.delete(into);
      this.gc(pool);
    };
  }

  /**
   * Takes a volume lock at once or throws: ABORTED when a conflicting op holds it,
   * FAILED_PRECONDITION while the pool itself is changing state.
   */
  acquireVolume(pool: string, volume: string, op: string, mode: LockMode = 'exclusive'): Release {
    const state = this.pool(pool);
    this.checkPoolIdle(pool, state);
    const hold = state.volumes.get(volume);
    if (hold) {
      if (hold.mode === 'shared' && mode === 'shared') {
        hold.count += 1;
        return this.releaser(pool, volume, hold);
      }
      throw new AbortedError(`volume '${volume}' is busy: ${hold.op} in progress`, { pool, volume, operation: hold.op });
    }
    const mine: VolumeHold = { op, mode, count: 1, creating: false };
    state.volumes.set(volume, mine);
    if (mode === 'exclusive') for (const into of state.scans) into.add(volume);
    return this.releaser(pool, volume, mine);
  }

  /**
   * Waits until no create or clone holds `volume`'s name (at once when none does). For work on
   * a volume its create has already published while it still flushes it: the caller reacting
   * to VOLUME_CREATED waits those milliseconds instead of being told the volume is busy.
   * `signal`: the caller gave up meanwhile (CANCELLED, nothing done).
   */
  async untilCreated(pool: string, volume: string, op: string, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const hold = this.pools.get(pool)?.volumes.get(volume);
      if (!hold?.creating || !hold.ended) return;
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void =>
          reject(new CancelledError(`the caller cancelled '${op}' of volume '${volume}' while its ${hold.op} ended; nothing was done`, { pool, volume, operation: op }));
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
        void hold.ended!.then(() => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        });
      });
    }
  }

  /** The create or clone that holds `volume`'s name while it makes the volume, if any. */
  allocating(pool: string, volume: string): string | undefined {
    const hold = this.pools.get(pool)?.volumes.get(volume);
    return hold?.creating ? hold.op : undefined;
  }

  /**
   * Reserves a new volume name for a create or clone. `exists` says whether the pool
   * already has it; a name being created by someone else counts as existing.
   */
  reserveVolumeName(pool: string, volume: string, op: string, exists: boolean): Release {
    const state = this.pool(pool);
    this.checkPoolIdle(pool, state);
    const hold = state.volumes.get(volume);
    if (exists || hold?.creating) {
      throw new AlreadyExistsError(`storage volume '${volume}' exists already`, { pool, volume });
    }
    if (hold) {
      throw new AbortedError(`volume '${volume}' is busy: ${hold.op} in progress`, { pool, volume, operation: hold.op });
    }
    const mine: VolumeHold = { op, mode: 'exclusive', count: 1, creating: true };
    mine.ended = new Promise<void>((resolve) => (mine.end = resolve));
    state.volumes.set(volume, mine);
    for (const into of state.scans) into.add(volume);
    return this.releaser(pool, volume, mine);
  }

  private checkPoolIdle(pool: string, state: PoolLockState): void {
    if (state.poolOp && BLOCKS_VOLUME_WORK.has(state.poolOp)) {
      throw new FailedPreconditionError(`storage pool '${pool}' is busy: ${state.poolOp} in progress`, {
        pool,
        operation: state.poolOp,
      });
    }
  }

  private releaser(pool: string, volume: string, hold: VolumeHold): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      hold.count -= 1;
      if (hold.count > 0) return;
      hold.end?.();
      const state = this.pools.get(pool);
      if (state?.volumes.get(volume) === hold) state.volumes.delete(volume);
      this.gc(pool);
    };
  }
}

const settled: Promise<void> = Promise.resolve();
