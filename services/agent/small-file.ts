// The agent's small state files under its root (revision floor, running pools) are replaced
// whole: a new file written and renamed over the old, so a reader never sees half of one.
// A new file needs a free block, and the agent's root may sit on a filesystem that is full
// (a busy /var): then the old file is overwritten in place instead, which reuses the block it
// already has. Otherwise a full disk would keep the agent from starting at all (it moves its
// revision floor at every start), leaving the host offline when its operator most needs it
// to delete volumes. In place, an agent killed mid-write may leave the file torn: its readers
// already take an unreadable file as absent, as after a first start.
import { closeSync, ftruncateSync, openSync, renameSync, unlinkSync, writeFileSync, writeSync, constants as fsc } from 'node:fs';

/** Replaces `path` with `text` (mode 0600): atomically when there is space, else in place when the file exists. */
export function replaceSmallFile(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  try {
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOSPC' && code !== 'EDQUOT') throw err;
    try {
      unlinkSync(tmp);
    } catch {
      // not created
    }
    if (!overwriteInPlace(path, Buffer.from(text))) throw err;
  }
}

/** Writes `bytes` over the start of the existing file `path` and cuts it there; false when that fails too. */
function overwriteInPlace(path: string, bytes: Buffer): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, fsc.O_WRONLY | fsc.O_NOFOLLOW);
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off, off);
    ftruncateSync(fd, bytes.length);
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
