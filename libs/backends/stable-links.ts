// Which entries of a stable target directory (/dev/disk/by-path, by-id ...) lead to the device
// a path under /dev names: libvirt's virStorageBackendStablePath as storageVolLookupByPath uses
// it, so that `vol-info /dev/sdb1` finds the volume whose path is /dev/disk/by-path/...-part1.
//
// The path comes from a request and the agent runs as root: it is walked one component at a
// time without leaving /dev and only its last descriptor (O_PATH: nothing opened for I/O) is
// stat'ed (dev-walk.ts). A link under /dev that leads out of it (to /etc/shadow, to a file a
// user can write, to a hung NFS mount) leads to nothing here, and is not looked at, where
// libvirt would compare whatever it leads to.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_DEV_ROOT } from './host-roots.js';
import { devFsPath } from './scsi-scan.js';
import { mapLimit } from './map-limit.js';
import { statUnderDev } from './dev-walk.js';

/** stat calls in flight at once: a by-id directory has a few hundred entries, a dir pool under /dev many more. */
const STAT_PARALLEL = 32;

/** The identity libvirt's virFileLinkPointsTo compares: the file's device and inode. */
export type FileIdentity = string;

/**
 * The file `path` (a host path under /dev, checked and normalised by the caller) leads to, as
 * device:inode; undefined when it does not exist or leads outside /dev (`devRoot`: where this
 * host's /dev is, host-roots.ts).
 */
export async function deviceIdentity(path: string, devRoot: string = DEFAULT_DEV_ROOT): Promise<FileIdentity | undefined> {
  const st = await statUnderDev(path, devRoot);
  return st === undefined ? undefined : `${st.dev}:${st.ino}`;
}

/**
 * The entries of `targetDir` (a pool's stable target directory, a host path) that lead to the
 * file `identity` names, as host paths (targetDir + '/' + entry), by name. A directory that
 * cannot be read has none: libvirt falls back to the path as given, which the caller has
 * already looked for.
 */
export async function stableLinksTo(targetDir: string, identity: FileIdentity, devRoot: string = DEFAULT_DEV_ROOT): Promise<string[]> {
  const dir = targetDir.length > 1 ? targetDir.replace(/\/+$/, '') : targetDir;
  const dirFs = devFsPath(devRoot, dir);
  let names: string[];
  try {
    names = (await readdir(dirFs)).sort();
  } catch {
    return [];
  }
  const found: string[] = [];
  // an entry is walked as the looked-up path is: a pool under /dev (a dir pool on /dev/shm)
  // holds links any user made, to anywhere
  const stats = await mapLimit(names, STAT_PARALLEL, (n) => statUnderDev(join(dir, n), devRoot));
  names.forEach((n, i) => {
    const st = stats[i];
    if (st && `${st.dev}:${st.ino}` === identity) found.push(join(dir, n));
  });
  return found;
}
