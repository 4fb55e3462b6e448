// Opening what a name leads to, for reading, without letting a device driver see the open.
// Checking a name (stat) and then opening it leaves a window in which whoever can write
// where the name is swaps it for a link to /dev/watchdog (whose open starts a reboot
// countdown) or a tape (rewound when closed). Here the name is resolved once into an O_PATH
// descriptor, which opens nothing for I/O; its fstat decides; and only a regular file, block
// device or directory is then opened, through that descriptor (/proc/self/fd/N), so the
// inode opened is the inode checked whatever the name leads to by then.
import { closeSync, constants as fsc, fstatSync, openSync, type BigIntStats } from 'node:fs';

/** Linux's O_PATH (not in Node's constants). */
export const O_PATH = 0o10000000;
/** Read a header: O_NONBLOCK so that a FIFO cannot hang the open, O_NOCTTY so that no terminal becomes ours. */
export const OPEN_PROBE = fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY;
/** Linux's O_NOATIME: reads through the descriptor leave the file's access time as it was. */
const O_NOATIME = fsc.O_NOATIME ?? 0o1000000;

/**
 * open(path, OPEN_PROBE | extra), leaving the access time alone: it says when a guest or a
 * user last read the volume (how an operator finds images nobody uses), and a refresh reading
 * headers is no such read. O_NOATIME takes the file's owner or CAP_FOWNER (the agent runs as
 * root); refused that (EPERM), the file is opened as libvirt opens it, access time and all.
 */
export function openProbeSync(path: string, extra = 0): number {
  try {
    return openSync(path, OPEN_PROBE | O_NOATIME | extra);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    return openSync(path, OPEN_PROBE | extra);
  }
}

export type SafeOpen = { fd: number; stat: BigIntStats } | { fd: -1; stat: BigIntStats; refused: 'not a file, block device or directory' };

/** Whether a stat shows something that may be opened to read it: a regular file, a block device or a directory. */
export function openable(st: BigIntStats): boolean {
  return st.isFile() || st.isBlockDevice() || st.isDirectory();
}

/**
 * Opens what `path` leads to (links followed, or not with `noFollow`) for reading when it
 * is a regular file, block device or directory; otherwise opens nothing and returns its
 * stat with fd -1. Throws what open(2) throws (ENOENT for a dangling link, ELOOP).
 */
export function openReadableSync(path: string, { noFollow = false } = {}): SafeOpen {
  const pathFd = openSync(path, O_PATH | (noFollow ? fsc.O_NOFOLLOW : 0));
  try {
    const stat = fstatSync(pathFd, { bigint: true });
    if (!openable(stat)) return { fd: -1, stat, refused: 'not a file, block device or directory' };
    return { fd: openProbeSync(`/proc/self/fd/${pathFd}`), stat };
  } finally {
    closeSync(pathFd);
  }
}
