// The dir pool's lifecycle on its target directory (virStorageBackendFileSystemBuild,
// Check, Delete): build creates it with the pool's permissions, start requires it,
// delete removes it when empty.
import { fchmodSync, fchownSync, fstatSync } from 'node:fs';
import { mkdir, rmdir, stat, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { BuildFlags } from '../../proto/cistern/v1/storage.js';
import { FailedPreconditionError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { PoolContext } from '../backend.js';
import { fsError } from '../fs-errors.js';
import { wantedOwner } from '../stat-fields.js';
import { poolTarget } from './paths.js';
import { refuseConflictingBuildFlags } from '../build-flags.js';
import { openBuildTarget } from './build-target.js';

/** libvirt's VIR_STORAGE_DEFAULT_POOL_PERM_MODE. */
export const DEFAULT_POOL_MODE = 0o711;

/** statfs(2)'s f_type of btrfs, the one filesystem whose copy-on-write can be switched. */
const BTRFS_SUPER_MAGIC = 0x9123683en;

/** True when the pool's target is a directory (libvirt's checkPool: is the pool running?). */
export async function isPoolDirectory(ctx: PoolContext): Promise<boolean> {
  const target = poolTarget(ctx.pool);
  try {
    return (await stat(target)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * virStorageBackendFileSystemBuild for a dir pool: parents with default permissions,
 * the target with the pool's mode (0711 when new and unset), owner and group; an
 * existing directory only gets its permissions set. overwrite and no_overwrite exclude
 * each other; both ask to format a source device, which a dir pool does not have, so
 * (as in libvirt) they fail -- here before anything is changed.
 *
 * The owner and mode are set on the directory this build opened (build-target.ts), not by
 * name: by name, someone who can write in the parent could swap the new directory for a link
 * to /etc between the mkdir and the chown, and root would hand /etc to the pool's owner.
 */
export async function buildPoolDirectory(ctx: PoolContext, flags: BuildFlags, chattr: string): Promise<void> {
  const target = poolTarget(ctx.pool);
  refuseConflictingBuildFlags(flags);
  if (flags?.overwrite || flags?.noOverwrite) {
    throw new FailedPreconditionError(
      `no source device specified when formatting pool '${printable(ctx.pool.name)}': a dir pool has no source device to format; build it without overwrite/no_overwrite`,
    );
  }
  const perms = ctx.pool.target?.permissions;
  const { uid, gid } = wantedOwner(perms);
  const parent = dirname(target);
  try {
    // libvirt's g_mkdir_with_parents(parent, 0777): by name, links followed, as libvirt does
    if (parent !== target) await mkdir(parent, { recursive: true, mode: 0o777 });
  } catch (err) {
    throw fsError(err, 'create parent directories of', target);
  }
  const dir = openBuildTarget(target, (existing) => perms?.mode ?? (existing ? undefined : DEFAULT_POOL_MODE));
  try {
    const now = fstatSync(dir.fd, { bigint: true });
    if ((uid !== -1 && BigInt(uid) !== now.uid) || (gid !== -1 && BigInt(gid) !== now.gid)) {
      fchownSync(dir.fd, uid, gid);
    }
    if (dir.mode !== undefined) fchmodSync(dir.fd, dir.mode);
    await setCow(ctx, target, dir.fd, chattr);
  } catch (err) {
    dir.removeIfCreated();
    throw fsError(err, 'build pool directory', target);
  } finally {
    dir.close();
  }
}

/**
 * virFileSetCOW: only btrfs can switch copy-on-write; elsewhere asking for it fails. The
 * filesystem is read from the opened directory; chattr takes a name (it refuses to act through
 * a link, /proc/PID/fd/N included), so it gets the target's.
 */
async function setCow(ctx: PoolContext, target: string, fd: number, chattr: string): Promise<void> {
  const cow = ctx.pool.features?.cow ?? 0;
  if (cow === 0) return;
  const fs = await statfs(`/proc/self/fd/${fd}`, { bigint: true });
  if (fs.type !== BTRFS_SUPER_MAGIC) {
    throw new FailedPreconditionError(`unable to control the COW flag on '${printable(target, 200)}': the filesystem is not btrfs`);
  }
  // TRISTATE_YES = 1 (cow on => clear +C), TRISTATE_NO = 2 (cow off => set +C)
  await ctx.runner.run([chattr, cow === 1 ? '-C' : '+C', '--', target], { signal: ctx.signal });
}

/** Start's check: the target must be an existing directory (build makes it). */
export async function requirePoolDirectory(target: string): Promise<void> {
  let st;
  try {
    st = await stat(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new FailedPreconditionError(`pool target directory '${printable(target, 200)}' does not exist; build the pool first`);
    }
    throw fsError(err, 'stat pool target', target);
  }
  if (!st.isDirectory()) throw new FailedPreconditionError(`pool target '${printable(target, 200)}' is not a directory`);
}

/** Removes the target directory; one that still holds volumes is refused (ENOTEMPTY). */
export async function removePoolDirectory(ctx: PoolContext): Promise<void> {
  const target = poolTarget(ctx.pool);
  try {
    await rmdir(target);
  } catch (err) {
    throw fsError(err, 'remove pool directory', target);
  }
}
