// Backends are found by pool type, like libvirt's virStorageBackendRegister.
import { PoolType, poolTypeToJSON } from '../proto/cistern/v1/storage.js';
import { UnimplementedError } from '../errors/errors.js';
import { poolTypeToString } from '../xml/formats.js';
import type { StorageBackend } from './backend.js';

const backends = new Map<PoolType, StorageBackend>();

export function registerBackend(backend: StorageBackend): void {
  backends.set(backend.type, backend);
}

export function findBackend(type: PoolType): StorageBackend | undefined {
  return backends.get(type);
}

export function getBackend(type: PoolType): StorageBackend {
  const backend = backends.get(type);
  if (!backend) {
    const served = registeredBackends().map((b) => poolTypeToString(b.type)).join(', ');
    // a number the enum has no name for is a type added by a newer version: a pool a newer
    // coordinator defined, met here during a rolling upgrade (docs/upgrades.md)
    if (PoolType[type] === undefined) {
      throw new UnimplementedError(
        `pool type ${type} is not one this build of Cistern knows: the pool was defined by a newer version; upgrade this host's agent (it serves ${served})`,
        { type: String(type) },
      );
    }
    throw new UnimplementedError(`pool type ${poolTypeToJSON(type)} is not supported on this host (it serves ${served})`, { type: String(type) });
  }
  return backend;
}

export function registeredBackends(): StorageBackend[] {
  return [...backends.values()].sort((a, b) => a.type - b.type);
}
