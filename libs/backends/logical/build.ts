// Building a logical pool (virStorageBackendLogicalBuildPool): its devices checked, their
// old headers cleared, each made a PV, then the VG created over them; a failure takes the
// PV labels it wrote away again, a label a killed pvcreate left included, and the VG a
// killed vgcreate recorded.
import { constants as fsc } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { BuildFlags } from '../../proto/cistern/v1/storage.js';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { PoolContext } from '../backend.js';
import { requireEmptyDevice } from '../device-probe.js';
import { checkAborted, zeroEnds } from '../file-io.js';
import { LVM_ENV, lvm } from './lvm.js';
import { sourceDevices, vgName } from './paths.js';
import { deviceError } from '../fs-errors.js';
import { refuseConflictingBuildFlags } from '../build-flags.js';

/** libvirt clears this much at the start and the end of every device before pvcreate. */
export const CLEAR_BYTES = 1024 * 1024;

/**
 * virStorageBackendLogicalBuildPool: every device is checked before any is touched
 * (exists, is a block device, not in use, and empty unless overwrite); then each gets
 * its first and last MiB cleared and pvcreate; then vgcreate VG DEVICES. A failure
 * pvremoves every device pvcreate ran on: libvirt pvremoves only those whose pvcreate
 * succeeded, which leaves the label of a pvcreate killed, timed out or cancelled after
 * writing it. The device's header was cleared just before, so a label there is that
 * pvcreate's own; where it wrote none, pvremove finds nothing and its failure is ignored.
 * A vgcreate that failed after recording the VG (killed, timed out, cancelled) would keep
 * those PVs in it (pvremove refuses a PV of a VG): that VG is removed first (removeOwnVolumeGroup).
 * `allowRegularFiles`: files stand in for devices (unit tests only; LVM itself refuses them).
 */
export async function buildVolumeGroup(ctx: PoolContext, flags: BuildFlags, allowRegularFiles: boolean): Promise<void> {
  refuseConflictingBuildFlags(flags);
  const vg = vgName(ctx.pool);
  const devices = sourceDevices(ctx.pool);
  if (devices.length === 0) {
    throw new InvalidArgumentError('source.devices', `no source device given for volume group '${vg}'; a logical pool is built on one or more <device path='...'/>`);
  }
  for (const dev of devices) await checkDevice(dev, allowRegularFiles);
  if (!flags?.overwrite) {
    for (const dev of devices) await requireEmptyDevice(ctx.runner, dev, ctx.signal);
  }
  /** devices pvcreate ran on, whether it succeeded or not */
  const initialised: string[] = [];
  let vgcreateRan = false;
  try {
    for (const dev of devices) {
      checkAborted(ctx.signal, 'build');
      await clearDeviceEnds(dev);
      initialised.push(dev);
      await lvm(ctx, ['pvcreate', dev], `cannot initialise '${dev}' as a physical volume`);
    }
    vgcreateRan = true;
    await lvm(ctx, ['vgcreate', vg, ...devices], `cannot create volume group '${vg}'`);
  } catch (err) {
    if (vgcreateRan) await removeOwnVolumeGroup(ctx, vg, initialised);
    for (const dev of initialised) {
      try {
        await ctx.runner.run(['pvremove', dev], { env: LVM_ENV });
      } catch {
        // best effort, as libvirt: the build error is what the caller needs
      }
    }
    throw err;
  }
}

/**
 * After a failed vgcreate: `vgremove -f VG` if one of `devices` (PVs this build just made)
 * is in VG. Only this build's vgcreate can have put a PV it just made into a VG; a VG of
 * that name that was there before (vgcreate then fails with "already exists") holds none
 * of them and is left alone. Best effort, without the caller's signal, as the pvremoves.
 */
async function removeOwnVolumeGroup(ctx: PoolContext, vg: string, devices: string[]): Promise<void> {
  try {
    const { stdout } = await ctx.runner.run(['pvs', '--noheadings', '-o', 'vg_name', ...devices], { env: LVM_ENV });
    if (!stdout.split('\n').some((line) => line.trim() === vg)) return;
    await ctx.runner.run(['vgremove', '-f', vg], { env: LVM_ENV });
  } catch {
    // the build error is what the caller needs; pvremove below fails on a PV still in a VG
  }
}

/** A device a PV can be made of: there, a block device, not held by anyone. */
async function checkDevice(dev: string, allowRegularFiles: boolean): Promise<void> {
  let st;
  try {
    st = await stat(dev, { bigint: true });
  } catch (err) {
    throw deviceError(err, 'use device', dev);
  }
  if (!st.isBlockDevice() && !(allowRegularFiles && st.isFile())) {
    throw new FailedPreconditionError(`device '${printable(dev, 200)}' is not a block device; a logical pool needs disks, partitions or other block devices`);
  }
  // O_EXCL on a block device fails with EBUSY while it is mounted or held
  let fh: FileHandle | undefined;
  try {
    fh = await open(dev, fsc.O_RDONLY | fsc.O_EXCL);
  } catch (err) {
    throw deviceError(err, 'open device', dev);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** virStorageBackendZeroPartitionTable(path, 1 MiB): zeros over the first and the last MiB. */
async function clearDeviceEnds(dev: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dev, fsc.O_WRONLY | fsc.O_EXCL);
    await zeroEnds(fh, CLEAR_BYTES);
  } catch (err) {
    throw deviceError(err, 'clear the header of device', dev);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
