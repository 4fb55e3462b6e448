// Checks on the disk itself before its table is read or changed: it is there and is a
// block device, and neither it nor any partition the kernel has of it is held (mounted,
// an LVM PV, swap, a guest).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FailedPreconditionError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import { sysfsBlockDir } from '../device-number.js';
import type { DiskTools } from './tools.js';

export function defaultIsBlockDevice(path: string): boolean {
  try {
    return statSync(path).isBlockDevice();
  } catch {
    return false;
  }
}

/**
 * The partitions the kernel has of a block device (sysfs: the children of its
 * /sys/dev/block/MAJ:MIN directory that have a 'partition' file), as /dev nodes. A path
 * that is not a block device (the tests' image files) has none.
 */
function kernelPartitions(device: string): string[] {
  let st;
  try {
    st = statSync(device, { bigint: true });
  } catch {
    return [];
  }
  if (!st.isBlockDevice()) return [];
  const dir = sysfsBlockDir(st.rdev);
  try {
    return readdirSync(dir)
      .filter((e) => existsSync(join(dir, e, 'partition')))
      .sort()
      .map((e) => `/dev/${e}`);
  } catch {
    return [];
  }
}

export function requireDevice(tools: DiskTools, device: string): void {
  if (!existsSync(device)) throw new FailedPreconditionError(`device path '${printable(device, 200)}' doesn't exist`, { device });
  if (!tools.isBlockDevice(device)) throw new FailedPreconditionError(`device path '${printable(device, 200)}' is not a block device`, { device });
}

/**
 * Refuses to rewrite or wipe the table of a disk that is in use: the device itself held
 * (a PV, a filesystem on the whole disk) or any partition the kernel has of it (mounted,
 * swap, LVM). libvirt zeroes and relabels regardless; parted then writes the new label
 * and only fails at telling the kernel, so the table of a disk in use was gone and the
 * caller saw an internal error. Checked before anything is written.
 */
export function requireNotInUse(tools: DiskTools, device: string, action: string): void {
  const busy = [device, ...kernelPartitions(device)].filter((p) => tools.isBusy(p));
  if (busy.length === 0) return;
  const own = busy.filter((p) => p !== device);
  throw new FailedPreconditionError(
    own.length > 0
      ? `cannot ${action} '${printable(device, 200)}': its partition${own.length > 1 ? 's' : ''} ${own.map((p) => printable(p, 200)).join(', ')} ${own.length > 1 ? 'are' : 'is'} in use (mounted, or held by LVM, swap or a guest); release ${own.length > 1 ? 'them' : 'it'} first`
      : `cannot ${action} '${printable(device, 200)}': the device is in use (mounted, or held by LVM, swap or a guest); release it first`,
    { device, busy: busy.join(',') },
  );
}
