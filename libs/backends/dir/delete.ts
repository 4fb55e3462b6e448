// Deleting a dir pool's volume (virStorageBackendVolDeleteLocal): unlink a file or link,
// remove an empty directory volume or a whole ploop image directory; a volume already
// gone is deleted. Through the pool directory the pool started with (pool-directory.ts).
import { lstatSync, unlinkSync } from 'node:fs';
import { lstat, rmdir, unlink } from 'node:fs/promises';
import type { VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import type { NewFileIdentity, PoolContext } from '../backend.js';
import { fsError } from '../fs-errors.js';
import { poolTarget, volumePath } from './paths.js';
import { FailedPreconditionError, NotFoundError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import { isPloopDirectory } from './inspect.js';
import { removeTreeAt } from './remove-tree.js';
import { openPoolDirectory, openPoolDirectoryDirect, type DirectoryIdentity } from './pool-directory.js';
import { onLocalFilesystem } from '../pool-kinds.js';

/** A file with at most this many bytes allocated is deleted with a direct unlink (deleteFileSync). */
export const SYNC_UNLINK_MAX_ALLOCATED = 1024 * 1024;

/**
 * Unlinks the file (or the link itself), removes an empty directory volume; a vanished volume
 * is fine. Through the pool directory as the pool started with it (pool-directory.ts), never
 * through whatever the target path leads to by now. `inDirectory`: the directory the volume was
 * made in (the undo of an interrupted create): any other is refused, also one this process
 * has not seen the pool start with. `onlyFile`: the file that create made; another file under
 * the name (made since) stays. For that undo (either given) finding nothing of its own to
 * remove is NOT_FOUND, so that its caller's log says so rather than that it removed something.
 */
export async function deleteVolume(ctx: PoolContext, volume: VolumeDefinition, inDirectory?: DirectoryIdentity, onlyFile?: NewFileIdentity): Promise<void> {
  const path = volumePath(ctx.pool, volume.name);
  const local = onLocalFilesystem(ctx.pool.type);
  const dir = local ? await openPoolDirectoryDirect(ctx.pool, inDirectory) : await openPoolDirectory(ctx.pool, inDirectory);
  if (!dir) {
    // the undo of an interrupted create: a target not there (yet: mounted after the agent
    // started) proves nothing about the directory the create wrote in
    if (inDirectory) {
      throw new FailedPreconditionError(
        `pool target '${printable(poolTarget(ctx.pool), 200)}' does not exist; the directory the interrupted create wrote in (device ${inDirectory.dev} inode ${inDirectory.ino}) may not be mounted yet; nothing is removed`,
      );
    }
    return; // no pool directory: the volume is gone with it
  }
  const undo = inDirectory !== undefined || onlyFile !== undefined;
  /** Nothing to remove: a plain delete is done; the undo says it found nothing of its create's. */
  const nothing = (why: string): void => {
    if (undo) throw new NotFoundError(`volume '${printable(volume.name)}' in pool '${printable(ctx.pool.name)}': ${why}; nothing is removed`, { volume: volume.name });
  };
  try {
    const inDir = dir.pathOf(volume.name);
    if (onlyFile && !(await isFile(inDir, onlyFile, path))) return nothing('the name is not the file the interrupted create made (gone, or made again since)');
    const sync = local ? deleteFileSync(inDir, path) : false;
    if (sync === 'gone') return nothing('it does not exist');
    if (sync === 'done') return;
    let st;
    try {
      st = await lstat(inDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return nothing('it does not exist');
      throw fsError(err, 'stat', path);
    }
    try {
      if (st.isDirectory()) {
        // only a ploop image directory is removed with its files (as libvirt's virFileDeleteTree);
        // any other directory volume must be empty (rmdir)
        // walked through descriptors, never through a link its owner swaps in (remove-tree.ts)
        if (isPloopDirectory(inDir)) await removeTreeAt(dir.fd, volume.name, path);
        else await rmdir(inDir);
      } else {
        await unlink(inDir);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return nothing('it does not exist');
      throw fsError(err, st.isDirectory() ? 'remove directory' : 'unlink file', path);
    }
  } finally {
    await dir.close();
  }
}

/**
 * deleteVolume of a small file on a local filesystem as two direct system calls (lstat,
 * unlink: a few microseconds each) rather than two thread-pool round trips; true when it
 * is done. unlink frees the file's blocks before it returns, which for a large allocated
 * file takes long enough to stop the agent's heartbeats: those, directories (and ploop
 * ones) take the general path, as do netfs pools (a hung NFS server must not stall the
 * agent's event loop). `inDir` is the name in the opened pool directory; `path` names it in
 * errors. 'done': unlinked; 'gone': there was nothing under the name; false: not handled here.
 */
function deleteFileSync(inDir: string, path: string): 'done' | 'gone' | false {
  let st;
  try {
    st = lstatSync(inDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw fsError(err, 'stat', path);
  }
  if (st.isDirectory() || st.blocks * 512 > SYNC_UNLINK_MAX_ALLOCATED) return false;
  try {
    unlinkSync(inDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw fsError(err, 'unlink file', path);
  }
  return 'done';
}

/** Whether NAME (`inDir`) is still the file `file`; false when it is another, or gone. */
async function isFile(inDir: string, file: NewFileIdentity, path: string): Promise<boolean> {
  let st;
  try {
    st = await lstat(inDir, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw fsError(err, 'stat', path);
  }
  return st.ino === file.ino && st.birthtimeNs === file.birthtimeNs;
}
