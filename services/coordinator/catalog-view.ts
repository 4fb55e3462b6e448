// What clients see: a pool = its catalog entry (definition, autostart, persistent) merged
// with the agent's runtime state (state, sizes, volumes), or for a stopped pool with what it
// showed when it stopped (lastRun). Reads never leave this process.
import { Pool, PoolDefinition, PoolState, type Host, type Volume } from '../../libs/proto/cistern/v1/storage.js';
import { hostName, poolName } from '../../libs/api/resource-names.js';
import type { CatalogPool } from '../../libs/proto/cistern/agent/v1/agent.js';
import { sameDefinition, type CatalogRecord, type FleetCache } from './cache.js';
import type { HostEntry } from './hosts/entry.js';
import { offlineReason } from './hosts/offline-reason.js';

/**
 * How much the cache knows of a host's runtime state: 'current' (online, synced), 'stale' (the
 * last known: the host is offline) or 'unknown' (no full sync of it since this coordinator
 * started: which of its pools run is not known at all).
 */
export type Freshness = 'current' | 'stale' | 'unknown';

export function poolView(cache: FleetCache, host: string, pool: string, freshness: Freshness = 'current'): Pool | undefined {
  const cat = cache.catalogEntry(host, pool);
  const rt = cache.runtimePool(host, pool);
  if (!cat && !rt) return undefined;
  return viewOf(host, pool, cat, rt?.pool, rt ? rt.volumeCount : 0, freshness, undefined, rt ? undefined : cache.stoppedPool(host, pool));
}

/** The last view of a pool whose definition was removed from the catalog and that has no runtime state (POOL_UNDEFINED). */
export function undefinedPoolView(host: string, pool: string, value: CatalogPool): Pool {
  return viewOf(host, pool, undefined, undefined, 0, 'current', value.definition);
}

/** The view of a pool from everything it shows: its catalog record, runtime state, volume count, host online. */
function viewOf(
  host: string,
  pool: string,
  cat: CatalogRecord | undefined,
  live: Pool | undefined,
  volumeCount: number,
  freshness: Freshness,
  definition = live?.definition ?? cat?.value.definition,
  stopped?: Pool,
): Pool {
  const stale = freshness !== 'current';
  const last = live ?? lastRun(cat, stopped, freshness);
  return {
    name: poolName(host, pool),
    host,
    definition,
    // without a sync, no running state means nothing: not 'inactive'
    state: live ? live.state : freshness === 'unknown' ? PoolState.POOL_STATE_UNSPECIFIED : PoolState.POOL_STATE_INACTIVE,
    persistent: !!cat,
    autostart: cat?.value.autostart ?? false,
    capacity: last?.capacity ?? 0n,
    allocation: last?.allocation ?? 0n,
    available: last?.available ?? 0n,
    volumeCount,
    stale,
    revision: live?.revision ?? 0n,
    runtimeDevices: last?.runtimeDevices ?? [],
    targetPermissions: last?.targetPermissions,
  };
}

/**
 * What an inactive, defined pool shows of its last run (FleetCache.stoppedPool), as libvirt's
 * def after pool-destroy: only while the catalog's definition is the one it ran with (a
 * definition stored while it ran, or since, replaced it: virStoragePoolObjAssignDef, newDef),
 * and not for a host whose state is not known.
 */
function lastRun(cat: CatalogRecord | undefined, stopped: Pool | undefined, freshness: Freshness): Pool | undefined {
  const defined = cat?.value.definition;
  if (!stopped?.definition || !defined || freshness === 'unknown') return undefined;
  return sameDefinition(stopped.definition, defined) ? stopped : undefined;
}

/**
 * What a pending definition (pendingDefinition) keeps of its last run: a pool CreatePool
 * started over its stored definition, as libvirt's ADD_LIVE newDef; undefined for a
 * definition stored while the pool ran (sizes 0).
 */
export function pendingLastRun(cache: FleetCache, host: string, pool: string, pending: PoolDefinition): Pool | undefined {
  const kept = cache.stoppedPool(host, pool);
  return kept?.definition && sameDefinition(kept.definition, pending) ? kept : undefined;
}

interface HeldView {
  cat: CatalogRecord | undefined;
  live: Pool | undefined;
  stopped: Pool | undefined;
  volumeCount: number;
  freshness: Freshness;
  view: Pool;
}

/**
 * The views ListPools and GetPool hand out: one frozen object per pool while nothing it
 * shows changes, so that its encoded bytes can be kept beside it (pool-list-encoding.ts).
 * A view is a function of its inputs alone (viewOf): the catalog record, the runtime pool
 * state, the volume count and the host's freshness. A held view is returned only
 * while all four are the same (the same objects, the same numbers) as when it was built;
 * any change builds a new one. The cache never edits those objects in place: every catalog
 * write stores a new record, every sync, event and reply a new Pool, so the held view (and
 * the bytes kept for it) is always what poolView, and Pool.encode of it, would give now.
 */
export class PoolViews {
  private readonly held = new Map<string, Map<string, HeldView>>();
  private keysSeen: unknown;
  private count = 0;

  /** The pool as clients see it now, or undefined when the cache has no such pool. */
  get(cache: FleetCache, host: string, pool: string, freshness: Freshness): Pool | undefined {
    const cat = cache.catalogEntry(host, pool);
    const rt = cache.runtimePool(host, pool);
    if (!cat && !rt) return undefined;
    const live = rt?.pool;
    const stopped = rt ? undefined : cache.stoppedPool(host, pool);
    const volumeCount = rt ? rt.volumeCount : 0;
    let ofHost = this.held.get(host);
    const h = ofHost?.get(pool);
    if (h && h.cat === cat && h.live === live && h.stopped === stopped && h.volumeCount === volumeCount && h.freshness === freshness) return h.view;
    const view = viewOf(host, pool, cat, live, volumeCount, freshness, undefined, stopped);
    if (view.runtimeDevices.length === 0) view.runtimeDevices = NO_DEVICES;
    Object.freeze(view);
    if (!ofHost) this.held.set(host, (ofHost = new Map()));
    if (!h) this.count++;
    ofHost.set(pool, { cat, live, stopped, volumeCount, freshness, view });
    return view;
  }

  /** Forgets the views of pools the cache no longer has (checked when its set of pools changed). */
  sweep(cache: FleetCache): void {
    const keys = cache.poolKeys();
    if (keys === this.keysSeen) return;
    this.keysSeen = keys;
    for (const [host, ofHost] of this.held) {
      for (const pool of ofHost.keys()) {
        if (cache.catalogEntry(host, pool) || cache.runtimePool(host, pool)) continue;
        ofHost.delete(pool);
        this.count--;
      }
      if (ofHost.size === 0) this.held.delete(host);
    }
  }

  /** How many views are held. */
  get size(): number {
    return this.count;
  }
}

const NO_DEVICES = Object.freeze([]) as unknown as Pool['runtimeDevices'];

const viewsOf = new WeakMap<FleetCache, PoolViews>();

/** The held views for this cache (one set per FleetCache). */
export function poolViews(cache: FleetCache): PoolViews {
  let views = viewsOf.get(cache);
  if (!views) viewsOf.set(cache, (views = new PoolViews()));
  return views;
}

/** The stored definition (GetPoolXML --inactive): the catalog's, or the runtime one for a transient pool. */
export function inactiveDefinition(cache: FleetCache, host: string, pool: string) {
  return cache.catalogEntry(host, pool)?.value.definition ?? cache.runtimePool(host, pool)?.pool.definition;
}

/**
 * libvirt's newDef: a define while the pool runs stores a definition that takes effect at the
 * next start. Here: the catalog's definition when it differs from the one the running pool
 * was started with (compared encoded); undefined while the pool is not running or nothing
 * is pending. (A redefinition that changes nothing leaves nothing pending: libvirt keeps it
 * as newDef all the same, and prints its zero sizes for --inactive.)
 */
export function pendingDefinition(cache: FleetCache, host: string, pool: string): PoolDefinition | undefined {
  const running = cache.runtimePool(host, pool)?.pool.definition;
  const stored = cache.catalogEntry(host, pool)?.value.definition;
  if (!running || !stored) return undefined;
  return sameDefinition(running, stored) ? undefined : stored;
}

export function volumeView(volume: Volume, stale: boolean): Volume {
  return stale === volume.stale ? volume : { ...volume, stale };
}

/**
 * A host as ListHosts and GetHost answer it. `staleSince`: this coordinator is not connected to
 * NATS since then, and hears no heartbeat: online and last seen are as it last knew them.
 */
export function hostView(cache: FleetCache, entry: HostEntry, staleSince?: Date): Host {
  return {
    ...entry.host,
    name: hostName(entry.host.hostId),
    online: entry.online,
    poolCount: cache.poolCount(entry.host.hostId),
    stale: staleSince !== undefined,
    staleSince,
    offlineReason: offlineReason(entry),
  };
}

export const isActiveState = (state: PoolState): boolean =>
  state === PoolState.POOL_STATE_RUNNING || state === PoolState.POOL_STATE_DEGRADED || state === PoolState.POOL_STATE_BUILDING;

export { Pool };
