// Where a dir pool's volumes are, and the checks that keep every write inside the pool:
// names are checked before they become paths, and what is opened for writing is checked
// where it really is (after links), since the agent writes as root.
import { constants as fsc, type BigIntStats } from 'node:fs';
import { open, readlink, type FileHandle } from 'node:fs/promises';
import { isAbsolute, normalize } from 'node:path';
import type { PoolDefinition, VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError } from '../../errors/errors.js';
import { checkAbsolutePath, checkExistingVolumeName, checkNewObjectName, printable } from '../../api/names.js';
import { fsError } from '../fs-errors.js';
import { openPoolDirectory, openPoolDirectoryDirect } from './pool-directory.js';
import { FILE_POOL_TYPES, onLocalFilesystem } from '../pool-kinds.js';
import { onOwnMount } from '../../os/mount-namespace.js';

/** C0, DEL and C1 controls: names the API refuses (libs/api/names.ts), so never listed. */
export function hasControlChars(name: string): boolean {
  return /[\x00-\x1f\x7f-\x9f]/.test(name);
}

/** The pool's target directory, checked (absolute, normalised, no control characters). */
export function poolTarget(pool: PoolDefinition): string {
  return checkAbsolutePath(pool.target?.path ?? '', 'pool.target.path');
}

/** `name` in `directory`, without a doubled '/' when the directory is the root. */
export function pathIn(directory: string, name: string): string {
  return directory === '/' ? `/${name}` : `${directory}/${name}`;
}

/**
 * target + '/' + name, the path libvirt gives a volume of a dir pool; the name is checked as
 * one path component, of a volume that may be there already (newVolumePath for one to make).
 */
export function volumePath(pool: PoolDefinition, name: string, field = 'volume.name'): string {
  checkExistingVolumeName(name, field);
  return pathIn(poolTarget(pool), name);
}

/** volumePath of a volume to make: its name also may not start with '-' nor hide what it shows (checkNewObjectName). */
export function newVolumePath(pool: PoolDefinition, name: string, field = 'volume.name'): string {
  checkNewObjectName(name, field, 'volume name');
  return volumePath(pool, name, field);
}

/** A volume opened after poolVolumeDescriptor's check: its descriptor and real path. */
export interface CheckedVolume {
  fh: FileHandle;
  /** where the descriptor's file is, as the kernel resolved it at the open */
  path: string;
  stat: BigIntStats;
  /** the open file for a command that reads or writes it: the same inode whatever the path holds by then */
  fdPath: string;
}

/** Refuses a volume whose real path (`real`, links resolved) is not under the pool's real root. */
function requireInsidePool(path: string, real: string, root: string, what: string): void {
  if (!real.startsWith(root === '/' ? '/' : `${root}/`)) {
    throw new PermissionDeniedError(
      `volume path '${printable(path, 200)}' resolves to '${printable(real, 200)}', outside the pool target '${printable(root, 200)}'; refusing to ${what} it through a link that leaves the pool`,
    );
  }
}

/**
 * Refuses a file reached through another mount namespace (a link to /proc/PID/root/...): its
 * /proc/self/fd name is its path there, which its owner chooses, so requireInsidePool's
 * check of that name would prove nothing (mount-namespace.ts).
 */
export function requireOwnMountNamespace(path: string, fd: number, what: string): void {
  if (onOwnMount(fd)) return;
  throw new PermissionDeniedError(
    `volume path '${printable(path, 200)}' leads into another mount namespace (a link through /proc/PID/root or /proc/PID/fd), ` +
      `where its real place cannot be checked; refusing to ${what} it through that link`,
  );
}

function volumeNotFound(name: string, path: string): NotFoundError {
  return new NotFoundError(`volume '${printable(name)}' not found: '${printable(path, 200)}' does not exist (or is a dangling link)`);
}

/**
 * Opens a volume to read or write it and checks, on the descriptor, that what was opened is
 * inside the pool. Checking a path and then opening it by name would leave a window in which
 * whoever can write in the pool directory swaps the volume (or a directory on its path) for a
 * link to a file outside the pool, and the agent, as root, would write there. Here the kernel's
 * own record of the opened file (/proc/self/fd) is checked instead, after the open and before
 * anything is written. The name is opened in the pool directory the pool started with
 * (pool-directory.ts): a target, or a directory above it, swapped for a link since the start is
 * refused, not followed (the pool's own directory would otherwise be wherever the link leads).
 * Links in the pool that stay inside it are followed, as libvirt follows them. O_NONBLOCK: a
 * FIFO put in the pool fails the open instead of hanging it.
 */
export async function poolVolumeDescriptor(pool: PoolDefinition, name: string, flags: number, what: string): Promise<CheckedVolume> {
  const path = volumePath(pool, name);
  const dir = onLocalFilesystem(pool.type) ? await openPoolDirectoryDirect(pool) : await openPoolDirectory(pool);
  if (!dir) throw volumeNotFound(name, path);
  let fh: FileHandle;
  let root: string;
  try {
    root = await readlink(`/proc/self/fd/${dir.fd}`);
    fh = await open(dir.pathOf(name), flags | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw volumeNotFound(name, path);
    if (code === 'EISDIR') throw new FailedPreconditionError(`cannot ${what} directory volume '${printable(name)}'`);
    if (code === 'ENXIO') throw new FailedPreconditionError(`cannot ${what} volume '${printable(name)}': it is a FIFO or socket, not a file`);
    throw fsError(err, 'open volume', path);
  } finally {
    await dir.close();
  }
  try {
    const real = await readlink(`/proc/self/fd/${fh.fd}`);
    if (real.endsWith(' (deleted)')) throw new NotFoundError(`volume '${printable(name)}' was removed while it was being opened`);
    requireOwnMountNamespace(path, fh.fd, what);
    requireInsidePool(path, real, root, what);
    const st = await fh.stat({ bigint: true });
    if (!st.isFile() && !st.isBlockDevice()) {
      throw new FailedPreconditionError(`cannot ${what} volume '${printable(name)}': it is not a regular file or block device`);
    }
    return { fh, path: real, stat: st, fdPath: `/proc/${process.pid}/fd/${fh.fd}` };
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/** A volume opened to write it: the writes go through poolVolumeDescriptor's check. */
export const writableVolume = poolVolumeDescriptor;

/**
 * Where a clone reads its source: target + '/' + name in a filesystem pool; elsewhere the
 * volume's own path (libvirt reads inputvol->target.path): a SCSI LUN named 'unit:0:0:1' or
 * a multipath map 'dm-3' is not a file of that name under the pool's target.
 */
export function sourceVolumePath(source: { pool: PoolDefinition; volume: VolumeDefinition }): string {
  if (FILE_POOL_TYPES.has(source.pool.type)) return volumePath(source.pool, source.volume.name, 'source.name');
  checkExistingVolumeName(source.volume.name, 'source.name');
  return checkAbsolutePath(source.volume.target?.path ?? '', 'source.target.path');
}

/**
 * A backing store path as qemu-img will be given it: absolute (checked), or relative to the
 * new volume's directory without '..', control characters, a leading '-' (an option to
 * qemu-img) or a protocol prefix.
 */
export function checkBackingPath(path: string): string {
  if (isAbsolute(path)) return checkAbsolutePath(path, 'volume.backing_store.path');
  if (hasControlChars(path) || path.split('/').includes('..') || path.startsWith('-')) {
    throw new InvalidArgumentError(
      'volume.backing_store.path',
      `relative backing path '${printable(path)}' is not allowed: no '..', no control characters, no leading '-'`,
    );
  }
  // qemu reads 'nbd:HOST:PORT', 'http:...' and the like as a protocol, not a file name, and
  // would make the agent connect wherever it names; './NAME' or an absolute path is a file
  if (/^[^/]*:/.test(path)) {
    throw new InvalidArgumentError(
      'volume.backing_store.path',
      `relative backing path '${printable(path)}' has a ':' before its first '/', which qemu reads as a protocol (nbd:, http:, ...); allowed: an absolute path, or './${printable(path)}'`,
    );
  }
  return normalize(path);
}
