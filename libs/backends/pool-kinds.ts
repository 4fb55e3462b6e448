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

/** libvirt's virStorageBackendPoolPathIsStable: under /dev/ but not /dev itself. */
export function isStableTargetDir(path: string): boolean {
  const p = path.replace(/\/+$/, '');
  return p !== '/dev' && path.startsWith('/dev/');
}

/**
 * Pool types libvirt's storageVolLookupByPathCallback turns a path into the pool's stable form
 * for (virStorageBackendStablePath); the others (gluster, rbd, zfs ...) compare the path as
 * given. Logical is in libvirt's list, but virStorageBackendStablePath leaves its paths alone
 * ("logical pools are under /dev but already have stable paths"). iscsi-direct is in libvirt
 * 9.0's list too, but its volumes' paths are ip-HOST:PORT-iscsi-IQN-lun-N names, never links
 * in a directory: no link can lead to one, so it is left out (no agent round trip for it).
 */
const STABLE_LOOKUP_TYPES: ReadonlySet<PoolType> = new Set([
  PoolType.POOL_TYPE_DIR,
  PoolType.POOL_TYPE_FS,
  PoolType.POOL_TYPE_NETFS,
  PoolType.POOL_TYPE_DISK,
  PoolType.POOL_TYPE_ISCSI,
  PoolType.POOL_TYPE_SCSI,
  PoolType.POOL_TYPE_MPATH,
]);

/**
 * Whether a lookup by path looks for the path among the links of this pool's target directory,
 * as libvirt does: a pool of those types whose target is a stable directory (/dev/disk/by-path,
 * by-id ...), where `vol-info /dev/sdb1` finds the volume whose path is the link to sdb1. A
 * target of /dev itself or outside /dev: the path must be the volume's own.
 */
export function looksUpThroughStableLinks(type: PoolType, targetPath: string | undefined): boolean {
  return STABLE_LOOKUP_TYPES.has(type) && targetPath !== undefined && isStableTargetDir(targetPath);
}
