// Name resolution from the cache, with the errors a user expects.
import { FailedPreconditionError, NotFoundError, UnavailableError, UnimplementedError, VolumeNotFoundError } from '../../libs/errors/errors.js';
import type { PoolRef, VolumeRef } from '../../libs/api/resource-names.js';
import { PoolType, type Pool, type PoolDefinition, type Volume } from '../../libs/proto/cistern/v1/storage.js';
import { isActiveState, poolView, volumeView, type Freshness } from './catalog-view.js';
import type { CoordinatorServices } from './context.js';
import type { HostEntry } from './hosts/entry.js';
import { decodeStored, type StoredVolume } from './stored-volume.js';

export interface ResolvedPool {
  ref: PoolRef;
  host: HostEntry;
  pool: Pool;
  definition: PoolDefinition;
  active: boolean;
  stale: boolean;
  freshness: Freshness;
}

export function resolvePool(svc: CoordinatorServices, ref: PoolRef): ResolvedPool {
  const host = svc.hosts.requireKnown(ref.host);
  const freshness = svc.hosts.freshness(ref.host);
  const stale = freshness !== 'current';
  const pool = poolView(svc.cache, ref.host, ref.pool, freshness);
  if (!pool || !pool.definition) {
    // a transient pool is known from its host's sync alone
    if (freshness === 'unknown') {
      throw new UnavailableError(`storage pool '${ref.pool}' is not known on host '${ref.host}': ${whyNotCurrent(host)}`, { host: ref.host, pool: ref.pool });
    }
    throw new NotFoundError(`storage pool '${ref.pool}' not found on host '${ref.host}'`, { host: ref.host, pool: ref.pool });
  }
  return { ref, host, pool, definition: pool.definition, active: isActiveState(pool.state), stale, freshness };
}

export function requireActive(p: ResolvedPool): ResolvedPool {
  if (!p.active && p.freshness === 'unknown') {
    // nothing known of the host yet: the pool may well be running there, 'not active' could be false
    throw new UnavailableError(`the state of storage pool '${p.ref.pool}' is not known: ${whyNotCurrent(p.host)}`, { host: p.ref.host, pool: p.ref.pool });
  }
  if (!p.active) {
    throw new FailedPreconditionError(`storage pool '${p.ref.pool}' is not active`, { host: p.ref.host, pool: p.ref.pool });
  }
  return p;
}

function whyNotCurrent(host: HostEntry): string {
  const id = host.host.hostId;
  if (!host.online) return `host '${id}' is offline (last seen ${host.host.lastSeen?.toISOString() ?? 'never'}); try again when its agent is back`;
  return `host '${id}' has not sent its state to this coordinator yet (a coordinator that just started waits for each host's full sync); try again in a few seconds`;
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

/**
 * The volume a call that changes or streams it names. A name this coordinator does not have
 * may be one its host is creating or cloning now (libvirt lists a volume while it is built):
 * while the host is online its agent answers for that name, ABORTED "still being allocated"
 * or NOT_FOUND, and `volume` is undefined. The agent's answer is the truth, also for a volume
 * another coordinator made that this one has not read yet.
 */
export function resolveVolumeForWork(svc: CoordinatorServices, ref: VolumeRef): { pool: ResolvedPool; volume?: Volume } {
  const pool = requireActive(resolvePool(svc, ref));
  const stored = svc.cache.storedVolume(ref.host, ref.pool, ref.volume);
  if (stored !== undefined) return { pool, volume: volumeView(decodeStored(stored), pool.stale) };
  if (!svc.hosts.isOnline(ref.host)) throw volumeNotFound(ref);
  return { pool };
}

function volumeNotFound(ref: VolumeRef): VolumeNotFoundError {
  return new VolumeNotFoundError(ref.host, ref.pool, ref.volume);
}

/** resolveVolume without decoding the volume: its stored bytes (stored-volume.ts). */
export function resolveStoredVolume(svc: CoordinatorServices, ref: VolumeRef): { pool: ResolvedPool; stored: StoredVolume } {
  const pool = requireActive(resolvePool(svc, ref));
  const stored = svc.cache.storedVolume(ref.host, ref.pool, ref.volume);
  if (stored === undefined) throw volumeNotFound(ref);
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
