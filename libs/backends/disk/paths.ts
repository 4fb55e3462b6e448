// Where a disk pool's things are: its one source device, the node its partitions are
// named after (links resolved, as libvirt_parthelper does), and the stable path of a
// partition in the pool's target directory (e.g. /dev/disk/by-path).
import { realpathSync } from 'node:fs';
import { readdir, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { Tristate, type PoolDefinition } from '../../proto/cistern/v1/storage.js';
import { InvalidArgumentError } from '../../errors/errors.js';
import { checkAbsolutePath } from '../../api/names.js';

export interface DiskSource {
  /** the device as the pool names it: what parted and partx are given */
  device: string;
  /** the device node the partitions are named after (nodeDevice + separator + number) */
  nodeDevice: string;
  partSeparator: Tristate;
}

/**
 * The node a device path leads to, as libvirt_parthelper resolves it (virFileResolveLink)
 * for all but device-mapper devices: a pool over /dev/disk/by-id/ata-X has its partitions
 * at /dev/sdb1, not at /dev/disk/by-id/ata-X1 (udev names those ...-part1).
 */
function nodeDeviceOf(device: string): string {
  if (device.startsWith('/dev/mapper/') || /^\/dev\/dm-[0-9]+$/.test(device)) return device;
  try {
    return realpathSync(device);
  } catch {
    return device; // not there (yet): the commands that need it say so
  }
}

/** The pool's one source device (libvirt: exactly one), checked. */
export function diskSource(pool: PoolDefinition): DiskSource {
  const devices = pool.source?.devices ?? [];
  if (devices.length !== 1) {
    throw new InvalidArgumentError('source.devices', `a disk pool needs exactly one source device, ${devices.length} given`);
  }
  const device = checkAbsolutePath(devices[0]!.path, 'source.devices[0].path');
  return { device, nodeDevice: nodeDeviceOf(device), partSeparator: devices[0]!.partSeparator ?? Tristate.TRISTATE_ABSENT };
}

/**
 * virStorageBackendStablePath: with the pool target /dev (or none) the node itself;
 * otherwise the entry of the target directory (e.g. /dev/disk/by-path) that resolves to
 * the node, falling back to the node.
 */
export async function stablePath(target: string | undefined, devpath: string): Promise<string> {
  if (!target || target === '/dev' || target === '/dev/') return devpath;
  let entries: string[];
  try {
    entries = await readdir(target);
  } catch {
    return devpath;
  }
  for (const e of entries.sort()) {
    const candidate = join(target, e);
    try {
      if ((await realpath(candidate)) === devpath) return candidate;
    } catch {
      // dangling link: not ours
    }
  }
  return devpath;
}
