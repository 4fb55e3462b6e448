// The directory a pool build sets the owner and mode of, opened: made (when missing) in its
// parent opened once (/proc/self/fd/N/NAME: mkdir does not follow the final name), then opened
// O_NOFOLLOW, so a directory the build made and someone swapped for a link since is refused,
// not followed. A target that exists before the build is opened as libvirt's virDirCreate
// finds it, following links (/var/lib/libvirt/images -> /srv/images). Every change afterwards
// goes through the descriptor (fchown, fchmod): the file changed is the file opened.
import { closeSync, constants as fsc, mkdirSync, openSync, rmdirSync, statSync, type Stats } from 'node:fs';
import { basename, dirname } from 'node:path';
import { AlreadyExistsError, FailedPreconditionError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import { fsError } from '../fs-errors.js';

/** Linux's O_PATH (not in Node's constants): the parent is only a place to name things in. */
const O_PATH = 0o10000000;

export interface BuildTarget {
  /** the target directory, open read-only */
  fd: number;
  /** the mode to set: the pool's, else 0711 for a directory this build made, else none */
  mode: number | undefined;
  /** rmdir of the directory this build made (when it did), through the parent opened: a failed build leaves nothing */
  removeIfCreated(): void;
  close(): void;
}

/**
 * Opens (making it when missing, with `modeFor(false)`) the pool target `target`, whose parent
 * exists. `modeFor(existing)`: the mode the target is to get.
 */
export function openBuildTarget(target: string, modeFor: (existing: boolean) => number | undefined): BuildTarget {
  const parent = dirname(target);
  // the root directory has no parent to make it in: it exists
  if (parent === target) return openExisting(target, modeFor(true));
  let parentFd: number;
  try {
    parentFd = openSync(parent, O_PATH | fsc.O_DIRECTORY);
  } catch (err) {
    throw fsError(err, 'open the parent directory of', target);
  }
  const at = `/proc/self/fd/${parentFd}/${basename(target)}`;
  let created = false;
  const removeIfCreated = (): void => {
    if (!created) return;
    try {
      rmdirSync(at); // not followed: a link in its place stays, and so does what it leads to
    } catch {
      /* swapped, or gone: nothing of ours to remove */
    }
  };
  try {
    const existing = statIfThere(at, target);
    if (existing && !existing.isDirectory()) {
      throw new AlreadyExistsError(`pool target '${printable(target, 200)}' exists and is not a directory`);
    }
    const mode = modeFor(!!existing);
    if (!existing) {
      try {
        mkdirSync(at, mode);
      } catch (err) {
        throw fsError(err, 'create pool directory', target);
      }
      created = true;
    }
    let fd: number;
    try {
      fd = openSync(at, fsc.O_RDONLY | fsc.O_DIRECTORY | (created ? fsc.O_NOFOLLOW : 0));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (created && (code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENOENT')) {
        throw new FailedPreconditionError(
          `pool target '${printable(target, 200)}' was replaced (${code}) between its mkdir and its open; ` +
            'refusing to set an owner or mode on whatever is there now; build the pool again',
        );
      }
      throw fsError(err, 'open pool directory', target);
    }
    return {
      fd,
      mode,
      removeIfCreated,
      close: () => {
        closeSync(fd);
        closeSync(parentFd);
      },
    };
  } catch (err) {
    removeIfCreated();
    closeSync(parentFd);
    throw err;
  }
}

function openExisting(target: string, mode: number | undefined): BuildTarget {
  let fd: number;
  try {
    fd = openSync(target, fsc.O_RDONLY | fsc.O_DIRECTORY);
  } catch (err) {
    throw fsError(err, 'open pool directory', target);
  }
  return { fd, mode, removeIfCreated: () => undefined, close: () => closeSync(fd) };
}

/** What the name leads to (links followed, as libvirt's virFileExists), or undefined when nothing is there. */
function statIfThere(at: string, target: string): Stats | undefined {
  try {
    return statSync(at);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(err, 'stat pool target', target);
  }
}
