// Removing a ploop image directory with everything in it (libvirt's virFileDeleteTree), as
// root, in a directory its owner can write. fs.rm({recursive}) walks by path: lstat a child,
// find it a directory, then list it and unlink its entries by path; the owner who swaps the
// child for a link to /etc in between has root unlink what /etc holds. Here every directory
// is opened O_NOFOLLOW through the descriptor of the one above it (/proc/self/fd/N/NAME: the
// magic link jumps to the directory opened, whatever its name leads to by now), checked to be
// the one the lstat found, listed and emptied through its own descriptor; unlink and rmdir do
// not follow the final name. A link found or swapped in is unlinked or refused, never walked.
import { constants as fsc } from 'node:fs';
import { lstat, open, readdir, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import { fsError } from '../fs-errors.js';

/** Directories deep below the removed one at most: a ploop image directory is flat (its snapshots beside root.hds). */
export const MAX_TREE_DEPTH = 16;

/**
 * Removes NAME in the opened directory `parentFd` with everything below it; a name gone
 * (meanwhile) is fine. `path`: NAME's path as errors name it.
 */
export async function removeTreeAt(parentFd: number, name: string, path: string, depth = 0): Promise<void> {
  const at = `/proc/self/fd/${parentFd}/${name}`;
  let st;
  try {
    st = await lstat(at, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw fsError(err, 'stat', path);
  }
  if (!st.isDirectory()) {
    await unlink(at).catch((err) => gone(err) || Promise.reject(fsError(err, 'unlink file', path)));
    return;
  }
  if (depth >= MAX_TREE_DEPTH) {
    throw new FailedPreconditionError(`'${printable(path, 200)}' is more than ${MAX_TREE_DEPTH} directories deep in the directory being removed; not removed (a ploop image directory is flat)`);
  }
  let dir;
  try {
    dir = await open(at, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
  } catch (err) {
    if (gone(err)) return;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') throw replaced(path);
    throw fsError(err, 'open directory', path);
  }
  try {
    const opened = await dir.stat({ bigint: true });
    if (opened.dev !== st.dev || opened.ino !== st.ino) throw replaced(path);
    const names = await readdir(`/proc/self/fd/${dir.fd}`).catch((err) => Promise.reject(fsError(err, 'list directory', path)));
    for (const child of names) await removeTreeAt(dir.fd, child, join(path, child), depth + 1);
  } finally {
    await dir.close().catch(() => undefined);
  }
  try {
    await rmdir(at);
  } catch (err) {
    if (gone(err)) return;
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') throw replaced(path);
    throw fsError(err, 'remove directory', path);
  }
}

function gone(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

function replaced(path: string): FailedPreconditionError {
  return new FailedPreconditionError(
    `directory '${printable(path, 200)}' was replaced while it was being removed (by a link or another file); not followed, and what is left of it stays`,
  );
}
