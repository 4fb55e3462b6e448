// The mount an fs or netfs pool's start made (or found running), as the kernel numbers it:
// its mount id and device number in /proc/self/mountinfo. The pool's source name is no fixed
// point while the pool runs: an image file moved aside or replaced, a /dev/disk/by-* name udev
// repoints at another disk. Judged by the name alone, the stop finds "something else" on the
// target, unmounts nothing and reports the pool stopped, and the next start is refused over
// the pool's own filesystem. So the stop looks for this mount first, and unmounts exactly it
// (the loop device mount(8) attached for an image goes with it: autoclear). Kept in memory,
// as pool-directory.ts keeps the started directory, and in the agent's running-pools record
// (mount ids last as long as the boot the record is of): a restarted agent takes it back
// before its check, which then finds the pool up on that mount whatever its name leads to.
import type { PoolDefinition } from '../proto/cistern/v1/storage.js';
import { poolTarget } from './dir/paths.js';
import type { MountInfoEntry } from './mount.js';

/** What identifies one mount while it lasts. */
export interface PoolMount {
  mountId: number;
  major: number;
  minor: number;
}

/** pool name + NUL + target -> the mount its start made or found */
const mounts = new Map<string, PoolMount>();

function keyOf(pool: PoolDefinition): string {
  return `${pool.name}\0${poolTarget(pool)}`;
}

/** Records `entry` (what the start mounted, or the check found on top of the target) as the pool's mount. */
export function rememberPoolMount(pool: PoolDefinition, entry: MountInfoEntry): void {
  mounts.set(keyOf(pool), { mountId: entry.mountId, major: entry.major, minor: entry.minor });
}

/**
 * The pool's remembered mount among `here` (the mounts on its target, bottom first), if it is
 * still there. A mount id is reused only after its mount is gone: with the device number too,
 * another mount made since on the target is not taken for the pool's.
 */
export function poolMountAmong(pool: PoolDefinition, here: readonly MountInfoEntry[]): MountInfoEntry | undefined {
  const known = mounts.get(keyOf(pool));
  if (!known) return undefined;
  return here.find((e) => e.mountId === known.mountId && e.major === known.major && e.minor === known.minor);
}

/** The mount the pool's start made or found, for the agent's record. */
export function poolMountOf(pool: PoolDefinition): PoolMount | undefined {
  const known = mounts.get(keyOf(pool));
  return known ? { ...known } : undefined;
}

/** A restarted agent's record of the pool's mount, taken back before its check (unless this run knows one). */
export function adoptPoolMount(pool: PoolDefinition, mount: PoolMount): void {
  if (!mounts.has(keyOf(pool))) mounts.set(keyOf(pool), { mountId: mount.mountId, major: mount.major, minor: mount.minor });
}

/** Forgets it when the pool stops or is deleted. */
export function forgetPoolMount(pool: PoolDefinition): void {
  mounts.delete(keyOf(pool));
}
