// Deleting a dir pool's volume (virStorageBackendVolDeleteLocal): unlink a file or link,
// remove an empty directory volume or a whole ploop image directory; a volume already
// gone is deleted.
import { lstatSync, unlinkSync } from 'node:fs';
import { lstat, rm, rmdir, unlink } from 'node:fs/promises';
import { PoolType, type VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import type { PoolContext } from '../backend.js';
import { fsError } from '../fs-errors.js';
import { volumePath } from './paths.js';
import { isPloopDirectory } from './inspect.js';

/** A file with at most this many bytes allocated is deleted with a direct unlink (deleteFileSync). */
export const SYNC_UNLINK_MAX_ALLOCATED = 1024 * 1024;

/** Unlinks the file (or the link itself), removes an empty directory volume; a vanished volume is fine. */
export async function deleteVolume(ctx: PoolContext, volume: VolumeDefinition): Promise<void> {
  const path = volumePath(ctx.pool, volume.name);
  if (ctx.pool.type !== PoolType.POOL_TYPE_NETFS && deleteFileSync(path)) return;
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw fsError(err, 'stat', path);
  }
  try {
    if (st.isDirectory()) {
      // only a ploop image directory is removed with its files (as libvirt's virFileDeleteTree);
      // any other directory volume must be empty (rmdir)
      if (isPloopDirectory(path)) await rm(path, { recursive: true });
      else await rmdir(path);
    } else {
      await unlink(path);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw fsError(err, st.isDirectory() ? 'remove directory' : 'unlink file', path);
  }
}

/**
 * deleteVolume of a small file on a local filesystem as two direct system calls (lstat,
 * unlink: a few microseconds each) rather than two thread-pool round trips; true when it
 * is done. unlink frees the file's blocks before it returns, which for a large allocated
 * file takes long enough to stop the agent's heartbeats: those, directories (and ploop
 * ones) take the general path, as do netfs pools (a hung NFS server must not stall the
 * agent's event loop).
 */
function deleteFileSync(path: string): boolean {
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw fsError(err, 'stat', path);
  }
  if (st.isDirectory() || st.blocks * 512 > SYNC_UNLINK_MAX_ALLOCATED) return false;
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw fsError(err, 'unlink file', path);
  }
  return true;
}
