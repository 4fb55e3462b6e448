// Resolving a path under /dev that came from a request, as root, without ever leaving /dev.
// /dev has directories any user can write (/dev/shm, /dev/mqueue): realpath(3) followed by a
// stat of its answer leaves a window in which a user swaps /dev/shm/d for a link to /etc, so
// the stat looks at /etc/x; and realpath itself looks up every component a chain of links
// leads through, outside /dev too (a link to a hung NFS mount ties up a thread of the pool).
// So the walk is the kernel's, one component at a time, each opened O_PATH|O_NOFOLLOW
// through the descriptor of the directory before it (/proc/self/fd/N/NAME: the magic link
// jumps to the directory opened, not to whatever its name leads to by now); a link is read and
// its target walked the same way, at most MAX_LINKS of them; the walk stops at the first step
// that leaves /dev (an absolute target elsewhere, a '..' above /dev) without looking there;
// and the answer is the fstat of the last descriptor, never a second look by name. O_PATH opens
// nothing for I/O: no driver's open runs (/dev/watchdog), a FIFO does not block.
import { constants as fsc } from 'node:fs';
import { open, readlink, type FileHandle } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { O_PATH } from './safe-open.js';

/** Links followed in one walk at most: the kernel's MAXSYMLINKS (ELOOP beyond). */
export const MAX_LINKS = 40;
/** Directories deep below /dev at most (held open at once): /dev/disk/by-path/NAME is 3. */
export const MAX_DEPTH = 32;
/** Components looked at in one walk at most ('a/..' repeated in a link's target costs each). */
export const MAX_STEPS = 4096;

/**
 * The stat of what `path` (a host path: '/dev' or below) leads to, every link resolved, when
 * every step stays under /dev (`devRoot`: where this host's /dev is, host-roots.ts; an
 * absolute link target /dev/X is X under it); undefined when it leads out of /dev, to nothing,
 * through more than MAX_LINKS links, or is /dev itself.
 */
export async function statUnderDev(path: string, devRoot: string): Promise<BigIntStats | undefined> {
  if (!path.startsWith('/dev/')) return undefined;
  const root = await open(devRoot, O_PATH | fsc.O_DIRECTORY).catch(() => undefined);
  if (!root) return undefined;
  // the directories from /dev down to where the walk is: '..' goes back one, never above /dev
  const dirs: FileHandle[] = [root];
  const pending = components(path.slice('/dev'.length));
  let links = 0;
  let steps = 0;
  try {
    while (pending.length > 0) {
      if (++steps > MAX_STEPS) return undefined;
      const name = pending.shift()!;
      if (name === '.') continue;
      if (name === '..') {
        if (dirs.length === 1) return undefined; // above /dev: not looked at
        await dirs.pop()!.close();
        continue;
      }
      const at = `/proc/self/fd/${dirs[dirs.length - 1]!.fd}/${name}`;
      const fh = await open(at, O_PATH | fsc.O_NOFOLLOW);
      let keep = false;
      try {
        const st = await fh.stat({ bigint: true });
        if (st.isSymbolicLink()) {
          if (++links > MAX_LINKS) return undefined;
          // read by name in the directory held: a link swapped since for another link gives
          // that one's target, walked with the same checks
          const target = await readlink(at);
          if (target.startsWith('/')) {
            if (target !== '/dev' && !target.startsWith('/dev/')) return undefined; // out of /dev: not followed
            while (dirs.length > 1) await dirs.pop()!.close();
            pending.unshift(...components(target.slice('/dev'.length)));
          } else {
            pending.unshift(...components(target));
          }
          continue;
        }
        if (pending.length === 0) return st;
        if (!st.isDirectory()) return undefined; // ENOTDIR
        if (dirs.length > MAX_DEPTH) return undefined;
        dirs.push(fh);
        keep = true;
      } finally {
        if (!keep) await fh.close();
      }
    }
    // ended on a directory reached through '.', '..' or a link: /dev itself is no device
    return dirs.length === 1 ? undefined : await dirs[dirs.length - 1]!.stat({ bigint: true });
  } catch {
    return undefined; // not there (any more), not a directory where one was walked through
  } finally {
    for (const d of dirs) await d.close().catch(() => undefined);
  }
}

function components(rest: string): string[] {
  return rest.split('/').filter((c) => c !== '');
}
