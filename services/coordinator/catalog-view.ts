// What clients see: a pool = its catalog entry (definition, autostart, persistent) merged
// with the agent's runtime state (state, sizes, volumes). Reads never leave this process.
import { Pool, PoolState, type Host, type Volume } from '../../libs/proto/cistern/v1/storage.js';
import { hostName, poolName } from '../../libs/api/resource-names.js';
import type { FleetCache } from './cache.js';
import type { HostEntry } from './hosts.js';

export function poolView(cache: FleetCache, host: string, pool: string, stale = false): Pool | undefined {
  const cat = cache.catalogEntry(host, pool);
  const rt = cache.runtimePool(host, pool);
  if (!cat && !rt) return undefined;
  const live = rt?.pool;
  return {
    name: poolName(host, pool),
    host,
    definition: live?.definition ?? cat?.value.definition,
    state: live ? live.state : PoolState.POOL_STATE_INACTIVE,
    persistent: !!cat,
    autostart: cat?.value.autostart ?? false,
    capacity: live?.capacity ?? 0n,
    allocation: live?.allocation ?? 0n,
    available: live?.available ?? 0n,
    volumeCount: rt ? rt.volumes.size : 0,
    stale,
    revision: live?.revision ?? 0n,
    runtimeDevices: live?.runtimeDevices ?? [],
  };
}

/** The stored definition (GetPoolXML --inactive): the catalog's, or the runtime one for a transient pool. */
export function inactiveDefinition(cache: FleetCache, host: string, pool: string) {
  return cache.catalogEntry(host, pool)?.value.definition ?? cache.runtimePool(host, pool)?.pool.definition;
}

export function volumeView(volume: Volume, stale: boolean): Volume {
  return stale === volume.stale ? volume : { ...volume, stale };
}

export function hostView(cache: FleetCache, entry: HostEntry): Host {
  return { ...entry.host, name: hostName(entry.host.hostId), online: entry.online, poolCount: cache.poolCount(entry.host.hostId) };
}

export const isActiveState = (state: PoolState): boolean =>
  state === PoolState.POOL_STATE_RUNNING || state === PoolState.POOL_STATE_DEGRADED || state === PoolState.POOL_STATE_BUILDING;

export { Pool };
