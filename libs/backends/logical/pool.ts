// A logical pool's lifecycle after its build: check (is the VG there, with the pool's
// devices, all LVs active?), start (vgchange -aly), stop (vgchange -aln) and delete
// (vgremove, pvremove), as storage_backend_logical.c runs them.
import { FailedPreconditionError, NotFoundError } from '../../errors/errors.js';
import type { PoolContext } from '../backend.js';
import type { LvRecord } from '../lvm-parse.js';
import { LVM_ENV, listLvs, lvm } from './lvm.js';
import { sourceDevices, vgName } from './paths.js';
import { matchPoolSource, pvGroups } from './sources.js';

/**
 * Active when the VG is there with the pool's devices and none of its LVs waits for the
 * activation a start does (libvirt 9.0 asks only the first; the second makes a start after
 * someone's vgchange -an activate the LVs again).
 */
export async function isPoolActive(ctx: PoolContext): Promise<boolean> {
  try {
    await matchPoolSource(ctx);
  } catch (err) {
    if (err instanceof FailedPreconditionError) return false;
    throw err;
  }
  const records = await listLvs(ctx);
  return !records.some(waitsForActivation);
}

/**
 * An LV a start (vgchange -aly) would activate and that is not active. Not one with the
 * activation-skip flag (vgchange -ay leaves it as it is), nor one device-mapper has mapped in
 * another state than 'a' (an overflowed snapshot 'I', a suspended or merging one, a raid LV
 * that needs a check): a start changes neither, and counting them would keep the pool
 * "stopped" for good, so the agent's restart would drop a running pool. Thin pools have no node.
 */
function waitsForActivation(r: LvRecord): boolean {
  if (r.thinPool || r.activationSkip) return false;
  return r.state === 'inactive' || r.state === 'unknown';
}

/** Checks the VG is there (with the pool's devices), then `vgchange -aly VG`. */
export async function activateVolumeGroup(ctx: PoolContext): Promise<void> {
  await matchPoolSource(ctx);
  const vg = vgName(ctx.pool);
  await lvm(ctx, ['vgchange', '-aly', vg], `cannot activate volume group '${vg}'`);
}

/** `vgchange -aln VG` (fails while an LV is open, e.g. mounted). */
export async function deactivateVolumeGroup(ctx: PoolContext): Promise<void> {
  const vg = vgName(ctx.pool);
  await lvm(ctx, ['vgchange', '-aln', vg], `cannot deactivate volume group '${vg}'`);
}

/**
 * `vgremove -f VG`, then `pvremove DEV` for each device (failures there are ignored, as libvirt).
 * First the check a start makes: the VG must be there on the pool's devices. A pool naming
 * someone else's VG (or one whose disks are not the pool's) would otherwise remove it.
 */
export async function removeVolumeGroup(ctx: PoolContext): Promise<void> {
  const vg = vgName(ctx.pool);
  const devices = sourceDevices(ctx.pool);
  const groups = await pvGroups(ctx);
  if (!groups.has(vg)) throw new NotFoundError(`cannot remove volume group '${vg}': volume group '${vg}' not found`, { vg });
  await matchPoolSource(ctx, groups);
  await lvm(ctx, ['vgremove', '-f', vg], `cannot remove volume group '${vg}'`);
  for (const dev of devices) {
    try {
      await ctx.runner.run(['pvremove', dev], { signal: ctx.signal, env: LVM_ENV });
    } catch {
      // libvirt only logs this: the VG is gone, a stale PV label does no harm
    }
  }
}
