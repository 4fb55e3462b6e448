// The undo of an allocating grow that the agent's death interrupted (resize.ts, growAllocated):
// the grow allocates past the file's end and sets the new size last, so a kill leaves the old
// size with the new blocks past it. Those blocks are the file's (its allocation, the pool's
// space) until something cuts the file: a truncate to its size gives them back, and the volume
// is as it was before the grow. libvirt's posix_fallocate is one system call, which a kill
// does not split.
import { constants as fsc } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { FailedPreconditionError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { AllocatingGrow, GrowUndo, PoolContext } from '../backend.js';
import { fsError } from '../fs-errors.js';
import { poolTarget, volumePath } from './paths.js';
import { openPoolDirectoryDirect, type DirectoryIdentity } from './pool-directory.js';

/**
 * NAME cut back to the size it had before `grow`, if it is still the file that grow opened
 * (inode and birth time) and still at a size that grow left; through the pool directory the
 * grow wrote in (`inDirectory`), never through a target swapped for a link since. The last
 * component is not followed either: a link under the name is not the file.
 */
export async function undoInterruptedGrow(ctx: PoolContext, name: string, grow: AllocatingGrow, inDirectory?: DirectoryIdentity): Promise<GrowUndo> {
  const path = volumePath(ctx.pool, name);
  const dir = await openPoolDirectoryDirect(ctx.pool, inDirectory);
  if (!dir) {
    throw new FailedPreconditionError(
      `pool target '${printable(poolTarget(ctx.pool), 200)}' does not exist; the blocks an interrupted grow of '${printable(name)}' allocated past its end are given back once it does`,
    );
  }
  let fh: FileHandle;
  try {
    fh = await open(dir.pathOf(name), fsc.O_WRONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // gone, a link, a directory, a FIFO: not the file the grow allocated for
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'EISDIR' || code === 'ENXIO') return 'not-found';
    throw fsError(err, 'open volume', path);
  } finally {
    await dir.close();
  }
  try {
    const st = await fh.stat({ bigint: true });
    if (!st.isFile() || st.ino !== grow.file.ino || st.birthtimeNs !== grow.file.birthtimeNs) return 'not-found';
    if (st.size === grow.capacity) return 'finished';
    // the old size (killed between the allocation and the new size), or between the two (the
    // zeros written where the filesystem cannot allocate); any other was set since
    if (st.size < grow.size || st.size > grow.capacity) return 'not-found';
    await fh.truncate(Number(grow.size));
    await fh.sync();
    return 'released';
  } catch (err) {
    throw fsError(err, 'truncate', path);
  } finally {
    await fh.close().catch(() => undefined);
  }
}
