// The two writes every journal under the agent's root makes: one line appended (a torn line
// cut off again, so that a full disk leaves no half record behind), and the whole file
// replaced by a compacted one that is on disk before it is used (temp file, fsync, rename,
// fsync of the directory). Both are synchronous: a journal line is on disk before the
// operation it records goes on.
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, renameSync, unlinkSync, writeSync, constants as fsc } from 'node:fs';
import { dirname } from 'node:path';

/** Appends `line` to the file open (O_APPEND) as `fd`; returns where it begins. Throws what the write throws, the file as it was. */
export function appendLine(fd: number, line: Buffer): number {
  // only this agent appends, one line at a time: the end is where this one starts
  const at = fstatSync(fd).size;
  let off = 0;
  try {
    while (off < line.length) off += writeSync(fd, line, off, line.length - off);
  } catch (err) {
    if (off > 0) {
      try {
        ftruncateSync(fd, at); // shrinking needs no space
      } catch {
        // the torn line stays; readers skip it
      }
    }
    throw err;
  }
  return at;
}

/** Replaces `path` by a file holding `data` (mode 0600), on disk before it returns; false when it could not (no space): the old file stays. */
export function replaceDurably(path: string, data: Buffer): boolean {
  const tmp = `${path}.tmp`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_NOFOLLOW, 0o600);
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // not created
    }
    return false;
  }
  syncDir(dirname(path));
  return true;
}

/** fsync(2) of a directory: a rename in it is on disk. Best effort. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
    fsyncSync(fd);
  } catch {
    // the rename is done; only a host crash could undo it
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
