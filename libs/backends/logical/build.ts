// Building a logical pool (virStorageBackendLogicalBuildPool): its devices checked, their
// old headers cleared, each made a PV, then the VG created over them; a failure takes the
// PV labels it wrote away again, a label a killed pvcreate left included, and the VG a
// killed vgcreate recorded. What a build left because the agent itself died is removed by
// cleanupInterruptedBuild at the agent's next start.
import { constants as fsc } from 'node:fs';
import { lstat, open, realpath, stat, type FileHandle } from 'node:fs/promises';
import type { BuildFlags } from '../../proto/cistern/v1/storage.js';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, asCisternError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { PoolContext } from '../backend.js';
import { requireEmptyDevice } from '../device-probe.js';
import { checkAborted, zeroEnds } from '../file-io.js';
import { LVM_ENV, lvm } from './lvm.js';
import { poolTarget, sourceDevices, vgName } from './paths.js';
import { deviceError } from '../fs-errors.js';
import { splitDevT } from '../device-number.js';
import { refuseConflictingBuildFlags } from '../build-flags.js';
import { buildTag, selectTaggedVg } from './tags.js';
import { pvGroups } from './sources.js';

/** libvirt clears this much at the start and the end of every device before pvcreate. */
export const CLEAR_BYTES = 1024 * 1024;

/**
 * virStorageBackendLogicalBuildPool: every device is checked before any is touched
 * (exists, is a block device, not in use, and empty unless overwrite), and the VG name
 * before them (not taken, its /dev entry free: what vgcreate refuses); then each gets
 * its first and last MiB cleared and pvcreate; then vgcreate VG DEVICES. A failure
 * pvremoves every device pvcreate ran on: libvirt pvremoves only those whose pvcreate
 * succeeded, which leaves the label of a pvcreate killed, timed out or cancelled after
 * writing it. The device's header was cleared just before, so a label there is that
 * pvcreate's own; where it wrote none, pvremove finds nothing and its failure is ignored.
 * A vgcreate that failed after recording the VG (killed, timed out, cancelled) would keep
 * those PVs in it (pvremove refuses a PV of a VG): that VG is removed first (removeOwnVolumeGroup).
 * `buildId`: the VG carries its tag (tags.ts) until the build is done.
 * `allowRegularFiles`: files stand in for devices (unit tests only; LVM itself refuses them).
 */
export async function buildVolumeGroup(ctx: PoolContext, flags: BuildFlags, allowRegularFiles: boolean, buildId?: string): Promise<void> {
  refuseConflictingBuildFlags(flags);
  const vg = vgName(ctx.pool);
  const devices = sourceDevices(ctx.pool);
  const tag = buildId === undefined ? undefined : buildTag(buildId);
  if (devices.length === 0) {
    throw new InvalidArgumentError('source.devices', `no source device given for volume group '${vg}'; a logical pool is built on one or more <device path='...'/>`);
  }
  const seen = new Map<string, string>();
  for (const dev of devices) refuseSameDevice(seen, dev, await checkDevice(dev, allowRegularFiles));
  if (!flags?.overwrite) {
    for (const dev of devices) await requireEmptyDevice(ctx.runner, dev, ctx.signal);
  }
  // vgcreate refuses a name that is taken, but only after the devices were cleared and
  // pvcreated: asked first, such a build changes nothing (libvirt wipes them, then fails)
  const taken = (await pvGroups(ctx)).get(vg);
  if (taken) {
    throw new AlreadyExistsError(`volume group '${vg}' already exists on ${taken.join(', ') || 'no physical volume'}; nothing was written to ${devices.join(', ')}`, { vg });
  }
  await refuseTakenDevName(ctx, vg, devices);
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
    await lvm(ctx, ['vgcreate', ...(tag ? ['--addtag', tag] : []), vg, ...devices], `cannot create volume group '${vg}'`);
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
  if (tag) {
    try {
      await ctx.runner.run(['vgchange', '--deltag', tag, vg], { env: LVM_ENV });
    } catch {
      // the VG is built; the tag left on it only names this build (see `vgs -o +vg_tags`)
    }
  }
}

/**
 * What a build with `buildId` left when the agent died during it: the VG its vgcreate
 * recorded, found by the build's tag (a same-named VG made since carries none), then every
 * device of the pool that is a PV in no VG. The build had found those devices empty
 * (without overwrite) or was to overwrite them, so such a label is its pvcreate's; one an
 * admin made on the same device between the agent's death and this start would go too.
 */
export async function cleanupInterruptedBuild(ctx: PoolContext, buildId: string): Promise<void> {
  const vg = vgName(ctx.pool);
  const tag = buildTag(buildId);
  await lvm(ctx, ['vgremove', '-f', ...selectTaggedVg(tag), vg], `cannot remove volume group '${vg}' of an interrupted build`).catch((err: unknown) => {
    if (asCisternError(err).code !== 'NOT_FOUND') throw err;
  });
  const lonePvs = await pvsInNoVolumeGroup(ctx);
  for (const dev of sourceDevices(ctx.pool)) {
    const real = await realpath(dev).catch(() => dev);
    if (lonePvs.has(dev) || lonePvs.has(real)) {
      await lvm(ctx, ['pvremove', dev], `cannot remove the physical volume label on '${dev}' of an interrupted build`);
    }
  }
}

/** The PVs LVM sees that are in no VG, by device path as pvs names them. */
async function pvsInNoVolumeGroup(ctx: PoolContext): Promise<Set<string>> {
  const { stdout } = await ctx.runner.run(['pvs', '--noheadings', '--separator', ':', '-o', 'pv_name,vg_name'], { env: LVM_ENV, signal: ctx.signal });
  const out = new Set<string>();
  for (const line of stdout.split('\n')) {
    const [pv, vgOf] = line.trim().split(':');
    if (pv && !vgOf) out.add(pv);
  }
  return out;
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

/**
 * vgcreate refuses a name whose /dev/<name> exists (lvm2's validate_new_vg_name: "/dev/null:
 * already exists in filesystem"): LVM puts the VG's LVs there. It says so only after the
 * devices were cleared and pvcreated, so the same question is asked here first. The pool's
 * target is /dev/<vg> (the definition sets it so, as libvirt does); the VG is not there
 * (asked just before), so whatever is at that path is not its directory.
 */
async function refuseTakenDevName(ctx: PoolContext, vg: string, devices: string[]): Promise<void> {
  const path = poolTarget(ctx.pool);
  const there = await lstat(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw deviceError(err, 'look up', path);
    },
  );
  if (!there) return;
  throw new InvalidArgumentError(
    ctx.pool.source?.name ? 'source.name' : 'name',
    `volume group name '${vg}' cannot be used on this host: '${printable(path, 200)}' exists and is not a volume group's directory (LVM makes /dev/<volume group> for its logical volumes, and vgcreate refuses a name whose /dev entry exists); choose another name; nothing was written to ${devices.join(', ')}`,
    { vg },
  );
}

/**
 * sourceDevices refuses a path listed twice, but not two names of one device (/dev/loop5 and
 * a link to it, /dev/disk/by-id/...): the build would clear and pvcreate it, then clear it
 * again under the other name, over the first one's fresh label. `seen`: the identity of each
 * device checked so far, with the name it was listed under.
 */
function refuseSameDevice(seen: Map<string, string>, dev: string, identity: string): void {
  const first = seen.get(identity);
  if (first !== undefined) {
    throw new InvalidArgumentError(
      'source.devices',
      `'${printable(first, 200)}' and '${printable(dev, 200)}' are the same device (${identity}); list each device once; nothing was written`,
    );
  }
  seen.set(identity, dev);
}

/**
 * A device a PV can be made of: there, a block device, not held by anyone. Returns what
 * identifies it whatever its name: the device number (major:minor) of a block device, the
 * file's device and inode for a regular file standing in for one.
 */
async function checkDevice(dev: string, allowRegularFiles: boolean): Promise<string> {
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
  if (st.isBlockDevice()) {
    const { major, minor } = splitDevT(st.rdev);
    return `device ${major}:${minor}`;
  }
  return `file ${st.dev}:${st.ino}`;
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
