// The agent's in-memory runtime state: the pools it has active, their volumes, and
// the one host-wide revision counter every Pool/Volume state carries (docs/bus.md, item 4).
// Only active pools live here; a stopped pool leaves the map (the catalog keeps the
// persistent ones, the coordinator merges both views). What a persistent pool showed when it
// stopped (sizes, free extents, target permissions) is kept beside them, in memory only: see
// StoppedPool.
import {
  Pool,
  PoolDefinition,
  PoolState,
  Volume,
  VolumeDefinition,
} from '../../libs/proto/cistern/v1/storage.js';
import type { PoolRuntime } from '../../libs/backends/backend.js';
import { poolName, volumeName } from '../../libs/api/resource-names.js';

/** One monotonic counter per agent; starts at Date.now()*1000 so it grows across restarts. */
export class RevisionCounter {
  private value: bigint;
  constructor(start: bigint = BigInt(Date.now()) * 1000n) {
    this.value = start;
  }
  next(): bigint {
    this.value += 1n;
    return this.value;
  }
  get current(): bigint {
    return this.value;
  }
}

export interface VolumeEntry {
  definition: VolumeDefinition;
  revision: bigint;
}

export interface PoolEntry {
  definition: PoolDefinition;
  persistent: boolean;
  autostart: boolean;
  runtime: PoolRuntime;
  volumes: Map<string, VolumeEntry>;
  revision: bigint;
  /**
   * What the pool shows once it stops, when not this run's sizes (libvirt's newDef, which
   * storagePoolDestroy switches to): 'nothing' when it was defined while it ran (a new
   * definition, whatever it says); 'stored' when it runs a definition CreatePool gave for a
   * defined pool (virStoragePoolObjAssignDef with ADD_LIVE moved the stored def, with what its
   * last run kept, to newDef): that StoppedPool stays as it is.
   */
  onStop?: 'nothing' | 'stored';
}

/**
 * A persistent pool that ran on this host since the agent started and is not active now, with
 * what it showed when it stopped. libvirt's storagePoolDestroy leaves the pool's live
 * definition in place (virStoragePoolObj's def, when no define came while it ran), so
 * pool-dumpxml and virStoragePoolGetInfo keep its last capacity, allocation and available, free
 * extents and target permissions; a build, a delete or a failed start leaves them, a define
 * replaces them (virStoragePoolObjAssignDef), an undefine removes the pool, and a restart of
 * libvirtd reads the pool from its config file, without them: an agent restart forgets them.
 */
export interface StoppedPool {
  /** the definition the pool ran with: the sizes are shown only while it is still the defined one */
  definition: PoolDefinition;
  runtime: PoolRuntime;
  revision: bigint;
}

export class AgentState {
  readonly pools = new Map<string, PoolEntry>();
  /** Persistent pools stopped since this agent started, by name (StoppedPool). */
  readonly stopped = new Map<string, StoppedPool>();
  readonly revisions: RevisionCounter;
  /** Called after a pool became active or inactive (the agent keeps a record: running-pools.ts). */
  onPoolSetChanged?: (pool: string) => void;
  /** Per pool, the scans reading it now: each collects the volumes stored or removed meanwhile. */
  private readonly scanWatches = new Map<PoolEntry, Set<Set<string>>>();

  constructor(readonly host: string, revisions = new RevisionCounter()) {
    this.revisions = revisions;
  }

  getPool(name: string): PoolEntry | undefined {
    return this.pools.get(name);
  }

  /**
   * Records a pool that just became active (no volumes yet: a refresh diff fills them in).
   * `overDefined`: a CreatePool of a defined pool, whose stored definition keeps what its last
   * run showed while this one runs and after (PoolEntry.onStop 'stored').
   */
  addPool(definition: PoolDefinition, flags: { persistent: boolean; autostart: boolean; overDefined?: boolean }, runtime: PoolRuntime): PoolEntry {
    const entry: PoolEntry = {
      definition,
      persistent: flags.persistent,
      autostart: flags.autostart,
      runtime,
      volumes: new Map(),
      revision: this.revisions.next(),
    };
    if (flags.overDefined) entry.onStop = 'stored';
    else this.stopped.delete(definition.name);
    this.pools.set(definition.name, entry);
    this.onPoolSetChanged?.(definition.name);
    return entry;
  }

  removePool(name: string): PoolEntry | undefined {
    const entry = this.pools.get(name);
    this.pools.delete(name);
    if (entry) this.onPoolSetChanged?.(name);
    return entry;
  }

  /**
   * Removes an active pool that has stopped; a persistent one keeps what it showed (StoppedPool),
   * or what PoolEntry.onStop says. Returns its last entry.
   */
  stopPool(name: string): PoolEntry | undefined {
    const entry = this.removePool(name);
    if (!entry || entry.onStop === 'stored') return entry;
    if (entry.persistent && entry.onStop !== 'nothing') this.stopped.set(name, { definition: entry.definition, runtime: entry.runtime, revision: entry.revision });
    else this.stopped.delete(name);
    return entry;
  }

  /**
   * The definition a pool that just stopped (stopPool) shows: the one it ran with, or the stored
   * one a CreatePool ran over, when that kept what its last run showed (PoolEntry.onStop).
   */
  stoppedDefinition(entry: PoolEntry): PoolDefinition {
    if (entry.onStop !== 'stored') return entry.definition;
    return this.stopped.get(entry.definition.name)?.definition ?? entry.definition;
  }

  /** A define or an undefine of a pool that is not active: what it kept goes. True when it had some. */
  forgetStopped(name: string): boolean {
    return this.stopped.delete(name);
  }

  /** New pool sizes (after a volume op or refresh): a new revision. */
  touchPool(entry: PoolEntry, runtime?: PoolRuntime): void {
    if (runtime) entry.runtime = runtime;
    entry.revision = this.revisions.next();
  }

  setVolume(pool: PoolEntry, definition: VolumeDefinition): VolumeEntry {
    const entry = { definition, revision: this.revisions.next() };
    pool.volumes.set(definition.name, entry);
    this.noteWrite(pool, definition.name);
    return entry;
  }

  /** Removes a volume; returns its last state with a new revision (for VOLUME_DELETED). */
  deleteVolume(pool: PoolEntry, name: string): VolumeEntry | undefined {
    const entry = pool.volumes.get(name);
    if (!entry) return undefined;
    pool.volumes.delete(name);
    this.noteWrite(pool, name);
    return { definition: entry.definition, revision: this.revisions.next() };
  }

  /**
   * Adds to `into` every volume of `pool` stored or removed from now until the returned
   * function is called (a scan's ScanWrites, while it reads).
   */
  watchWrites(pool: PoolEntry, into: Set<string>): () => void {
    let watches = this.scanWatches.get(pool);
    if (!watches) this.scanWatches.set(pool, (watches = new Set()));
    watches.add(into);
    return () => {
      watches.delete(into);
      if (watches.size === 0 && this.scanWatches.get(pool) === watches) this.scanWatches.delete(pool);
    };
  }

  private noteWrite(pool: PoolEntry, name: string): void {
    if (this.scanWatches.size === 0) return;
    const watches = this.scanWatches.get(pool);
    if (watches) for (const into of watches) into.add(name);
  }

  /** The public Pool message for an active pool. */
  poolMessage(entry: PoolEntry): Pool {
    return Pool.create({
      name: poolName(this.host, entry.definition.name),
      host: this.host,
      definition: entry.definition,
      state: PoolState.POOL_STATE_RUNNING,
      persistent: entry.persistent,
      autostart: entry.autostart,
      capacity: entry.runtime.capacity,
      allocation: entry.runtime.allocation,
      available: entry.runtime.available,
      volumeCount: entry.volumes.size,
      revision: entry.revision,
      runtimeDevices: entry.runtime.devices ?? [],
      targetPermissions: entry.runtime.targetPermissions,
    });
  }

  /**
   * A pool that is not (or no longer) active on this host, with a new revision; with what it
   * kept from its last run (StoppedPool) while `definition` is the one it ran with.
   */
  inactivePoolMessage(definition: PoolDefinition, flags: { persistent: boolean; autostart: boolean }): Pool {
    const kept = this.stopped.get(definition.name);
    const shown = kept && sameDefinition(kept.definition, definition) ? kept : undefined;
    const revision = this.revisions.next();
    if (shown) shown.revision = revision;
    return this.stoppedMessage(definition, flags, revision, shown?.runtime);
  }

  private stoppedMessage(definition: PoolDefinition, flags: { persistent: boolean; autostart: boolean }, revision: bigint, runtime?: PoolRuntime): Pool {
    return Pool.create({
      name: poolName(this.host, definition.name),
      host: this.host,
      definition,
      state: PoolState.POOL_STATE_INACTIVE,
      persistent: flags.persistent,
      autostart: flags.autostart,
      capacity: runtime?.capacity ?? 0n,
      allocation: runtime?.allocation ?? 0n,
      available: runtime?.available ?? 0n,
      revision,
      runtimeDevices: runtime?.devices ?? [],
      targetPermissions: runtime?.targetPermissions,
    });
  }

  volumeMessage(pool: string, entry: VolumeEntry): Volume {
    return Volume.create({
      name: volumeName(this.host, pool, entry.definition.name),
      host: this.host,
      pool,
      definition: entry.definition,
      revision: entry.revision,
    });
  }

  /**
   * Every active pool and every volume of those pools (a full sync snapshot), and the stopped
   * pools' last states (StoppedPool: persistent, autostart as they were when they stopped; the
   * coordinator shows the catalog's flags), a pool running over its stored definition included
   * (PoolEntry.onStop 'stored').
   */
  snapshot(): { pools: Pool[]; volumes: Volume[]; stoppedPools: Pool[]; revision: bigint } {
    const pools: Pool[] = [];
    const volumes: Volume[] = [];
    for (const [name, entry] of this.pools) {
      pools.push(this.poolMessage(entry));
      for (const vol of entry.volumes.values()) volumes.push(this.volumeMessage(name, vol));
    }
    const stoppedPools: Pool[] = [];
    for (const kept of this.stopped.values()) {
      stoppedPools.push(this.stoppedMessage(kept.definition, { persistent: true, autostart: false }, kept.revision, kept.runtime));
    }
    return { pools, volumes, stoppedPools, revision: this.revisions.current };
  }
}

export interface VolumeDiff {
  /** New or changed volumes (VOLUME_CHANGED), already stored with a new revision. */
  changed: VolumeEntry[];
  /** Volumes gone from the pool (VOLUME_DELETED), last state with a new revision. */
  removed: VolumeEntry[];
}

/**
 * Applies a refresh scan to a pool's volume map and returns only what changed.
 * Volumes with an operation in progress (`isBusy`) are left alone: that operation
 * publishes their state when it ends. The scan's caller also counts as busy the volumes
 * written while the scan read (ScanWrites): what their writer left is newer than the scan.
 */
export function applyRefresh(
  state: AgentState,
  pool: PoolEntry,
  scan: readonly VolumeDefinition[],
  isBusy: (name: string) => boolean = () => false,
): VolumeDiff {
  const changed: VolumeEntry[] = [];
  const removed: VolumeEntry[] = [];
  const seen = new Set<string>();
  for (const def of scan) {
    seen.add(def.name);
    if (isBusy(def.name)) continue;
    const old = pool.volumes.get(def.name);
    if (old && sameVolume(old.definition, def)) continue;
    changed.push(state.setVolume(pool, def));
  }
  for (const name of [...pool.volumes.keys()]) {
    if (seen.has(name) || isBusy(name)) continue;
    removed.push(state.deleteVolume(pool, name)!);
  }
  return { changed, removed };
}

/**
 * Equal for a user: everything but the access time (reading a file changes it) and the
 * backing file's timestamps (a base image written or read is not a change of each overlay
 * on it). A field by field comparison: a refresh compares every volume of the pool, so no
 * encoding here. `accessTime`: the access time counts too (one volume read again on request,
 * whose answer must show it as it is, as libvirt's vol-dumpxml does).
 */
export function sameVolume(a: VolumeDefinition, b: VolumeDefinition, { accessTime = false } = {}): boolean {
  if (!equalFields(a, b, 'target', 'backingStore')) return false;
  const ba = a.backingStore;
  const bb = b.backingStore;
  if ((ba === undefined) !== (bb === undefined) || (ba && bb && !equalFields(ba, bb, 'timestamps'))) return false;
  const ta = a.target;
  const tb = b.target;
  if (!ta || !tb) return ta === tb;
  if (!equalFields(ta, tb, 'timestamps')) return false;
  const sa = ta.timestamps;
  const sb = tb.timestamps;
  if (!sa || !sb) return sa === sb;
  return equalFields(sa, sb, accessTime ? '' : 'atime');
}

/** Deep equality of two messages' fields, but `skip` and `skipToo`. */
function equalFields(a: object, b: object, skip: string, skipToo = skip): boolean {
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  for (const k in ra) if (k !== skip && k !== skipToo && !equalValues(ra[k], rb[k])) return false;
  for (const k in rb) if (k !== skip && k !== skipToo && !(k in ra) && rb[k] !== undefined) return false;
  return true;
}

/** Deep equality of plain message values: scalars, bigint, arrays, bytes, dates, nested messages. */
function equalValues(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!equalValues(a[i], b[i])) return false;
    return true;
  }
  if (a instanceof Uint8Array) return b instanceof Uint8Array && Buffer.compare(a, b) === 0;
  if (a instanceof Date) return b instanceof Date && a.getTime() === b.getTime();
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  for (const k in ra) if (!equalValues(ra[k], rb[k])) return false;
  for (const k in rb) if (!(k in ra) && rb[k] !== undefined) return false;
  return true;
}

/** The same pool definition, field for field (compared encoded). */
export function sameDefinition(a: PoolDefinition, b: PoolDefinition): boolean {
  return Buffer.from(PoolDefinition.encode(a).finish()).equals(PoolDefinition.encode(b).finish());
}
