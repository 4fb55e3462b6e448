// What storage a pool's start would use, as this host's kernel names it: a directory by its
// device and inode, a block device by its device number, an image file by its inode. The
// source-conflict rule (libs/api/pool-conflicts.ts) compares paths as written, which is all the
// coordinator can do: two pools over one directory or disk named through a symlink, a bind
// mount or /dev/disk/by-id pass it, and each would then lock its volumes (or serialise its
// partition table writes) on its own. The agent can look. A scsi pool's storage is its SCSI
// host: an fc_host adapter (by WWNs) and a scsi_host one (by name or PCI address) can name
// the same HBA, which libvirt's virStoragePoolObjSourceMatchTypeISCSI resolves through sysfs.
// An fs or netfs pool's volumes are the files in its target directory, as a dir pool's are, so
// its target is its storage too: libvirt compares only pools of one type (a dir pool over an fs
// pool's mount point passes), and two pools listing one set of files each lock them on their
// own. The directory is named by its resolved path, not by its inode: the mount changes the
// inode the path leads to, and an fs pool's identity is read before its start mounts.
import { access, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { AdapterType, PoolType, type PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { hostRoots } from '../../libs/backends/host-roots.js';
import { scsiHostNumberOf } from '../../libs/api/scsi-host-name.js';
import { findFcHostByWwn, findScsiHostByPci, formatPciAddress, scsiHostClassDir } from '../../libs/backends/vhba.js';

export interface StorageIdentity {
  /** The same for two paths of one directory or device, and only then. */
  key: string;
  /** What the pool calls it, for the error. */
  path: string;
  what: 'target directory' | 'source device' | 'SCSI host';
}

/** Types whose storage is their source devices (as pool-conflicts.ts's DEVICE_POOLS, iSCSI aside: its devices are target names). */
const DEVICE_POOLS: ReadonlySet<PoolType> = new Set([PoolType.POOL_TYPE_FS, PoolType.POOL_TYPE_LOGICAL, PoolType.POOL_TYPE_DISK]);

/** Types whose volumes are the files of their target directory once it is mounted. */
const MOUNTED_DIR_POOLS: ReadonlySet<PoolType> = new Set([PoolType.POOL_TYPE_FS, PoolType.POOL_TYPE_NETFS]);

/**
 * The target directory of a dir, fs or netfs pool by its resolved path (the key an fs pool
 * over it and a dir pool over it share). A target not made yet (a start with build makes it
 * after its claim) is where it will be: in its resolved parent; none when that is missing too.
 * `parentOnly` (netfs): the directory's own name is never looked up: a netfs pool's target is
 * read again when a restarted agent takes the pool back (storage-claims.ts), and a lookup of a
 * mount point whose NFS server is gone hangs, and every start on the host would wait for it. A
 * netfs target that is itself a link is then not followed.
 */
async function targetDirectoryIdentity(path: string, parentOnly = false): Promise<StorageIdentity[]> {
  const inParent = () => realpath(dirname(path)).then((parent) => join(parent, basename(path)), () => undefined);
  const real = parentOnly ? await inParent() : await realpath(path).catch(inParent);
  return real ? [{ key: `at:${real}`, path, what: 'target directory' }] : [];
}

/**
 * The identities of what `def` would use. A path that cannot be read yet (a directory the start
 * builds, a device not there) has none: its start fails or makes it, and the text rule stands.
 */
export async function storageIdentities(def: PoolDefinition): Promise<StorageIdentity[]> {
  if (def.type === PoolType.POOL_TYPE_DIR) {
    const path = def.target?.path;
    if (!path) return [];
    const st = await statOrUndefined(path);
    return st?.isDirectory() ? [{ key: `dir:${st.dev}:${st.ino}`, path, what: 'target directory' }, ...(await targetDirectoryIdentity(path))] : [];
  }
  if (def.type === PoolType.POOL_TYPE_SCSI) return scsiHostIdentity(def);
  const out: StorageIdentity[] = [];
  if (MOUNTED_DIR_POOLS.has(def.type) && def.target?.path) {
    out.push(...(await targetDirectoryIdentity(def.target.path, def.type === PoolType.POOL_TYPE_NETFS)));
  }
  if (!DEVICE_POOLS.has(def.type)) return out;
  for (const device of def.source?.devices ?? []) {
    if (!device.path) continue;
    const st = await statOrUndefined(device.path);
    if (st?.isBlockDevice()) out.push({ key: `blk:${st.rdev}`, path: device.path, what: 'source device' });
    else if (st?.isFile()) out.push({ key: `file:${st.dev}:${st.ino}`, path: device.path, what: 'source device' });
  }
  return out;
}

/**
 * The SCSI host a scsi pool's adapter names on this host (sysfs as the agent's backends read
 * it), as `hostN`. None for an adapter naming no host here yet (a vHBA its start creates, a
 * PCI address or host that is not there: that start fails on its own).
 */
async function scsiHostIdentity(def: PoolDefinition): Promise<StorageIdentity[]> {
  const a = def.source?.adapter;
  if (!a) return [];
  const sysfs = hostRoots().sysfs;
  let host: string | undefined;
  if (a.type === AdapterType.ADAPTER_TYPE_FC_HOST) {
    if (a.wwnn && a.wwpn) host = await findFcHostByWwn(sysfs, a.wwnn, a.wwpn);
  } else if (a.type === AdapterType.ADAPTER_TYPE_SCSI_HOST) {
    if (a.hasParentAddress && a.parentAddress) host = await findScsiHostByPci(sysfs, formatPciAddress(a.parentAddress), a.uniqueId);
    else {
      const n = scsiHostNumberOf(a.name);
      if (n !== undefined) host = `host${n}`;
    }
  }
  if (!host) return [];
  const exists = await access(join(scsiHostClassDir(sysfs), host)).then(() => true, () => false);
  return exists ? [{ key: `scsi:${host}`, path: host, what: 'SCSI host' }] : [];
}

async function statOrUndefined(path: string) {
  try {
    return await stat(path, { bigint: true });
  } catch {
    return undefined;
  }
}
