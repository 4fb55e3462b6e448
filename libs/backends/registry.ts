// Backends are found by pool type, like libvirt's virStorageBackendRegister.
import { PoolType, poolTypeToJSON } from '../proto/cistern/v1/storage.js';
import { UnimplementedError } from '../errors/errors.js';
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
    throw new UnimplementedError(`pool type ${poolTypeToJSON(type)} is not supported on this host`);
  }
  return backend;
}

export function registeredBackends(): StorageBackend[] {
  return [...backends.values()].sort((a, b) => a.type - b.type);
}
