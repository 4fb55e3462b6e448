// The creates that need no image format (storageBackendCreateRaw, libvirt's directory
// volumes): raw files, sparse, preallocated or copied from another raw volume (by reflink
// where possible), and directories. All in-process but fallocate and chattr.
import { constants as fsc, ftruncateSync } from 'node:fs';
import { copyFile, mkdir, open, readdir, rmdir, type FileHandle } from 'node:fs/promises';
import type { VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { CancelledError, FailedPreconditionError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { BackendContext, BuiltVolume, PoolContext } from '../backend.js';
import { fsError } from '../fs-errors.js';
import { checkAborted, zeroFill } from '../file-io.js';
import { CopyCancelledError, copyFileData } from '../sparse-copy.js';
import { INPROCESS_ALLOCATE_LIMIT, allocate } from './allocate.js';
import { createFileDirect, createFileThreaded, noteMadeFile, removeReservedFile } from './new-file.js';
import type { DirTools } from './tools.js';
import type { ResolvedCreate } from './volume-plan.js';
import { inStartedPoolDirectory } from './new-volume-name.js';
import { onLocalFilesystem } from '../pool-kinds.js';

/** A raw volume a new raw volume copies. */
export interface RawInput {
  /** its name, for messages */
  path: string;
  /** the descriptor every byte is read from (the agent's checked one): never the name */
  fd: number;
  capacity: bigint;
  /** the clone must share extents (reflink) or fail */
  reflink: boolean;
}

/**
 * O_CREAT|O_EXCL with the volume's mode, owner and group, ftruncate to the capacity,
 * allocate `allocation` bytes, copy the input (sparse when the new allocation is below the
 * input's capacity). A failure removes the file.
 */
export async function createRaw(
  ctx: PoolContext,
  r: ResolvedCreate,
  volume: VolumeDefinition,
  allocation: bigint,
  tools: Pick<DirTools, 'fallocate' | 'chattr'>,
  input?: RawInput,
): Promise<BuiltVolume | void> {
  if (!input && allocation === 0n && !volume.target?.nocow && onLocalFilesystem(ctx.pool.type)) {
    return createSparseRaw(ctx, r);
  }
  if (input && (input.reflink || allocation < input.capacity)) {
    checkAborted(ctx.signal, 'create');
    if (await cloneByReflink(ctx, r, input)) return;
  }
  return createFileThreaded(
    ctx,
    r,
    'create raw volume',
    async (fh) => {
      if (volume.target?.nocow) await setNocow(ctx, r.path, tools.chattr);
      await fh.truncate(Number(r.capacity ?? input?.capacity ?? 0n));
      // a clone to a smaller allocation copies sparsely and allocates nothing more
      let allocationPending = !(input && allocation < input.capacity);
      let pos = 0n;
      if (allocation > 0n && allocationPending && allocation > BigInt(INPROCESS_ALLOCATE_LIMIT)) {
        // before a copy the one fallocate reports no progress: the copy's would start again at 0
        await allocate(input ? { ...ctx, progress: undefined } : ctx, fh, 0n, allocation, tools.fallocate, 'volume.allocation');
        allocationPending = false;
      }
      if (input) pos = await copyData(ctx, input.fd, fh, input.capacity, !allocationPending);
      if (allocationPending && allocation > pos) await zeroFill(fh, pos, allocation, ctx, allocation);
    },
    // libvirt 9's createRawFile ends with fsync whatever it wrote
    { cancelAfterSync: input ? 'copy' : undefined },
  );
}

/**
 * A copy-on-write clone of the input (O(1), keeps holes), resized to the volume's capacity;
 * false when the filesystem cannot share extents and the clone may be a copy instead. The
 * extents go into a file reserved with O_EXCL, through its descriptor: copyFile opens its
 * destination by name, and /proc/self/fd/N opens the reserved file whatever the volume's name
 * holds by then (whoever can write in the pool could have put a link to /etc/shadow there,
 * which root would otherwise truncate, chmod and chown).
 */
async function cloneByReflink(ctx: PoolContext, r: ResolvedCreate, input: RawInput): Promise<boolean> {
  let fh: FileHandle | undefined;
  try {
    fh = await inStartedPoolDirectory(r, false, (at) => open(at(), fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, r.mode));
    noteMadeFile(r, fh.fd);
  } catch (err) {
    throw fsError(err, 'create raw volume', r.path, 'volume.capacity');
  }
  try {
    // without COPYFILE_EXCL: the destination exists (reserved above); libuv truncates it and shares the extents (FICLONE)
    // the source through its checked descriptor too (the magic link opens the same file)
    await copyFile(`/proc/self/fd/${input.fd}`, `/proc/self/fd/${fh.fd}`, fsc.COPYFILE_FICLONE_FORCE);
  } catch (err) {
    await removeReservedFile(r.path, fh);
    if (!input.reflink) return false;
    const code = (err as NodeJS.ErrnoException).code;
    throw new FailedPreconditionError(`failed to clone files from '${printable(input.path, 200)}' by reflink: ${code ?? err}; the filesystem cannot share extents`);
  }
  try {
    await fh.chmod(r.mode);
    if (r.uid !== -1 || r.gid !== -1) await fh.chown(r.uid, r.gid);
    await fh.truncate(Number(r.capacity ?? input.capacity));
    // the shared extents and the new size on disk before the clone is answered, as libvirt's
    // createRawFile fsyncs after its reflink: an answered clone survives a power cut
    await fh.sync();
    ctx.progress?.(input.capacity, input.capacity);
    await fh.close();
    return true;
  } catch (err) {
    await removeReservedFile(r.path, fh);
    throw fsError(err, 'create raw volume', r.path, 'volume.capacity');
  }
}

/**
 * A sparse raw volume without input on a local filesystem: open(O_CREAT|O_EXCL) + fchmod
 * (+ fchown) + ftruncate as direct system calls, fsync in the thread pool (createFileDirect:
 * returned as `durable`). Not for netfs pools: a hung NFS server must not stall the agent's
 * event loop.
 */
function createSparseRaw(ctx: PoolContext, r: ResolvedCreate): Promise<BuiltVolume> {
  return createFileDirect(ctx, r, 'create raw volume', (fd) => ftruncateSync(fd, Number(r.capacity ?? 0n)));
}

/** libvirt sets FS_NOCOW_FL and ignores failures (only btrfs knows it). */
async function setNocow(ctx: BackendContext, path: string, chattr: string): Promise<void> {
  await ctx.runner.run([chattr, '+C', '--', path], { signal: ctx.signal }).catch(() => undefined);
}

/**
 * Copies `total` bytes of the descriptor `src` into `dst` (sparse-copy.ts: a worker thread, all-zero
 * 4 KiB blocks skipped with `sparse`, written data flushed while the copy runs).
 */
async function copyData(ctx: BackendContext, src: number, dst: FileHandle, total: bigint, sparse: boolean): Promise<bigint> {
  try {
    return await copyFileData(src, dst, total, sparse, { signal: ctx.signal, progress: ctx.progress });
  } catch (err) {
    if (err instanceof CopyCancelledError) throw new CancelledError('copy cancelled');
    throw err;
  }
}

/**
 * A directory volume with the volume's mode and owner; a failure to set them removes it. They
 * are set through a descriptor of the directory made here (O_NOFOLLOW, and it must still be
 * empty): chmod and chown by name follow a link, which whoever can write in the pool could
 * have put in its place meanwhile, and root would chmod /etc/shadow to the volume's mode.
 */
export async function createDirectoryVolume(r: ResolvedCreate): Promise<void> {
  return inStartedPoolDirectory(r, false, (at) => makeDirectoryVolume(r, at));
}

/** createDirectoryVolume with `at`, where to make its name. */
async function makeDirectoryVolume(r: ResolvedCreate, at: () => string): Promise<void> {
  try {
    await mkdir(at(), { mode: r.mode });
  } catch (err) {
    throw fsError(err, 'create directory volume', r.path);
  }
  let dir: FileHandle | undefined;
  try {
    dir = await open(at(), fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
    noteMadeFile(r, dir.fd);
    // an empty directory of someone else's renamed into the name gets the permissions: nothing to read there
    if ((await readdir(`/proc/self/fd/${dir.fd}`)).length > 0) {
      throw new FailedPreconditionError(`directory volume '${printable(r.path, 200)}' was replaced by a directory with files in it while it was being created`);
    }
    await dir.chmod(r.mode);
    if (r.uid !== -1 || r.gid !== -1) await dir.chown(r.uid, r.gid);
  } catch (err) {
    await rmdir(at()).catch(() => undefined);
    throw err instanceof FailedPreconditionError ? err : fsError(err, 'set permissions of', r.path);
  } finally {
    await dir?.close().catch(() => undefined);
  }
}
