// Pool sizes after a volume operation: a statvfs-level look at the pool, not a rescan.
import { statfsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import type { PoolContext, PoolRuntime, StorageBackend } from '../../libs/backends/backend.js';
import { FILE_POOL_TYPES, onLocalFilesystem } from '../../libs/backends/pool-kinds.js';

/** Optional backend hook (not yet in backend.ts): the pool's sizes without a volume scan. */
interface WithPoolSizes {
  poolSizes?(ctx: PoolContext): Promise<PoolRuntime>;
}

/** Sizes of the filesystem holding `path`, as libvirt's dir/fs backends compute them (f_bfree). */
export async function filesystemSizes(path: string): Promise<PoolRuntime> {
  const st = await statfs(path, { bigint: true });
  const capacity = st.blocks * st.bsize;
  const available = st.bfree * st.bsize;
  return { capacity, allocation: capacity - available, available };
}

/** filesystemSizes as one direct statvfs call: for local filesystems (dir, fs), where it takes microseconds. */
export function filesystemSizesSync(path: string): PoolRuntime {
  const st = statfsSync(path, { bigint: true });
  const capacity = st.blocks * st.bsize;
  const available = st.bfree * st.bsize;
  return { capacity, allocation: capacity - available, available };
}

/**
 * libvirt's own accounting after a volume operation on a pool it does not re-read
 * (storageVolCreateXML, storageVolCreateXMLFrom, storageVolDeleteInternal): the pool's
 * allocation grows by the allocation a volume took (shrinks by what a deleted one had) and
 * available goes the other way; capacity stays. Kept within 0..capacity.
 */
export function accountedPoolSizes(last: PoolRuntime, allocationChange: bigint): PoolRuntime {
  if (allocationChange === 0n) return last;
  const within = (n: bigint): bigint => (n < 0n ? 0n : n > last.capacity ? last.capacity : n);
  return { ...last, allocation: within(last.allocation + allocationChange), available: within(last.available - allocationChange) };
}

/**
 * The pool's sizes as the backend can read them now: its own cheap hook when it has one
 * (disk: the partition table), statvfs for filesystem pools. Undefined where they cannot be
 * read (logical pools): the caller then adjusts the sizes it has (accountedPoolSizes), as
 * libvirt does, in the same turn as it stores them, so two operations finishing together
 * both count.
 */
export async function readPoolSizes(backend: StorageBackend, ctx: PoolContext, last: PoolRuntime): Promise<PoolRuntime | undefined> {
  const hook = (backend as StorageBackend & WithPoolSizes).poolSizes;
  if (hook) return { ...last, ...(await hook.call(backend, ctx)) };
  const path = ctx.pool.target?.path;
  if (FILE_POOL_TYPES.has(ctx.pool.type) && path) {
    try {
      return { ...last, ...(onLocalFilesystem(ctx.pool.type) ? filesystemSizesSync(path) : await filesystemSizes(path)) };
    } catch {
      return last;
    }
  }
  return undefined;
}
