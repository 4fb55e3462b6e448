// Name resolution from the cache, with the errors a user expects.
import { FailedPreconditionError, NotFoundError, UnimplementedError } from '../../libs/errors/errors.js';
import type { PoolRef, VolumeRef } from '../../libs/api/resource-names.js';
import { PoolType, type Pool, type PoolDefinition, type Volume } from '../../libs/proto/cistern/v1/storage.js';
import { isActiveState, poolView, volumeView } from './catalog-view.js';
import type { CoordinatorServices } from './context.js';
import type { HostEntry } from './hosts.js';
import { decodeStored, type StoredVolume } from './stored-volume.js';

export interface ResolvedPool {
  ref: PoolRef;
  host: HostEntry;
  pool: Pool;
  definition: PoolDefinition;
  active: boolean;
  stale: boolean;
}

export function resolvePool(svc: CoordinatorServices, ref: PoolRef): ResolvedPool {
  const host = svc.hosts.requireKnown(ref.host);
  const stale = !host.online;
  const pool = poolView(svc.cache, ref.host, ref.pool, stale);
  if (!pool || !pool.definition) {
    throw new NotFoundError(`storage pool '${ref.pool}' not found on host '${ref.host}'`, { host: ref.host, pool: ref.pool });
  }
  return { ref, host, pool, definition: pool.definition, active: isActiveState(pool.state), stale };
}

export function requireActive(p: ResolvedPool): ResolvedPool {
  if (!p.active) {
    throw new FailedPreconditionError(`storage pool '${p.ref.pool}' is not active`, { host: p.ref.host, pool: p.ref.pool });
  }
  return p;
}

export function requireInactive(p: ResolvedPool): ResolvedPool {
  if (p.active) {
    throw new FailedPreconditionError(`storage pool '${p.ref.pool}' is already active`, { host: p.ref.host, pool: p.ref.pool });
  }
  return p;
}

export function resolveVolume(svc: CoordinatorServices, ref: VolumeRef): { pool: ResolvedPool; volume: Volume } {
  const { pool, stored } = resolveStoredVolume(svc, ref);
  const volume = decodeStored(stored);
  return { pool, volume: volumeView(volume, pool.stale) };
}

/** resolveVolume without decoding the volume: its stored bytes (stored-volume.ts). */
export function resolveStoredVolume(svc: CoordinatorServices, ref: VolumeRef): { pool: ResolvedPool; stored: StoredVolume } {
  const pool = requireActive(resolvePool(svc, ref));
  const stored = svc.cache.storedVolume(ref.host, ref.pool, ref.volume);
  if (stored === undefined) {
    throw new NotFoundError(`storage volume '${ref.volume}' not found in pool '${ref.pool}' on host '${ref.host}'`, {
      host: ref.host,
      pool: ref.pool,
      volume: ref.volume,
    });
  }
  return { pool, stored };
}

/** The host's agent has a backend for this pool type (hosts that never said are given the benefit). */
export function requireBackend(host: HostEntry, type: PoolType): void {
  const types = host.host.poolTypes;
  if (types.length === 0 || types.includes(type)) return;
  const name = (t: PoolType): string => PoolType[t]?.replace('POOL_TYPE_', '').toLowerCase().replace('_', '-') ?? String(t);
  throw new UnimplementedError(
    `host '${host.host.hostId}' has no backend for pool type '${name(type)}'; it supports: ${types.map(name).join(', ')}`,
    { host: host.host.hostId },
  );
}
