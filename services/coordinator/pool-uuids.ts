// One uuid names one pool of a host, defined or transient: libvirt's
// virStoragePoolObjIsDuplicate looks a new definition up by uuid first, among every pool
// (persistent or only running), and refuses one whose uuid another name has ("pool 'x' is
// already defined with uuid ..."). Two pools with one uuid would make every lookup by uuid
// (cisternctl pool-name UUID, a command given a uuid) ambiguous.
import { AlreadyExistsError } from '../../libs/errors/errors.js';
import type { PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import type { FleetCache } from './cache.js';

/** ALREADY_EXISTS when a pool of `host` other than `def.name` has `def`'s uuid, in the catalog or running. */
export function requireUuidFree(cache: FleetCache, host: string, def: PoolDefinition): void {
  if (!def.uuid) return;
  const refuse = (other: string): never => {
    throw new AlreadyExistsError(`pool '${other}' on host '${host}' already has uuid ${def.uuid}`, { host, pool: other });
  };
  for (const [other, rec] of cache.catalogOfHost(host)) {
    if (other !== def.name && rec.value.definition?.uuid === def.uuid) refuse(other);
  }
  // a transient pool is known from its host's state alone
  for (const other of cache.poolsOfHost(host)) {
    if (other !== def.name && cache.runtimePool(host, other)?.pool.definition?.uuid === def.uuid) refuse(other);
  }
}
