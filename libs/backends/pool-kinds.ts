// What a pool's type says about where its volumes live, asked in many places (the agent's
// handlers, the dir backend, the coordinator's secret resolution): kept here so they agree.
import { PoolType } from '../proto/cistern/v1/storage.js';

/** Pool types whose volumes are files named target + '/' + name (libvirt's dir, fs and netfs). */
export const FILE_POOL_TYPES: ReadonlySet<PoolType> = new Set([PoolType.POOL_TYPE_DIR, PoolType.POOL_TYPE_FS, PoolType.POOL_TYPE_NETFS]);

/**
 * File pools on a local filesystem (dir, fs): a small metadata call there (stat, open,
 * statvfs) takes microseconds, so the agent makes it directly on its event loop, where a
 * thread-pool round trip would cost more than the call. Not netfs: a hung NFS server would
 * stall the agent's event loop (heartbeats, every other pool) for as long as it hangs.
 */
export function onLocalFilesystem(type: PoolType): boolean {
  return type === PoolType.POOL_TYPE_DIR || type === PoolType.POOL_TYPE_FS;
}
