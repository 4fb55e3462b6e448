// Deleting a logical volume as libvirt does (virStorageBackendLogicalDeleteVol): udev
// settled, lvremove, and if the LV will not go, deactivated and removed once more. The
// removal after a failed create or clone comes here too, limited to the LV carrying that
// create's tag (tags.ts).
import type { VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { CommandFailedError, asCisternError } from '../../errors/errors.js';
import type { PoolContext } from '../backend.js';
import { lvm, runLvm, settleUdev } from './lvm.js';
import { lvPath, vgName } from './paths.js';
import { selectTagged } from './tags.js';
import type { LogicalTools } from './tools.js';

/**
 * `udevadm settle`, then `lvremove -f VG/LV`; if that fails, `lvchange -aln VG/LV` and once
 * more lvremove (libvirt). An LV that is already gone is fine. `onlyTagged`: each command
 * also selects by that tag, so LVM itself leaves an LV without it alone (and succeeds).
 */
export async function deleteLv(ctx: PoolContext, volume: VolumeDefinition, tools: LogicalTools, onlyTagged?: string): Promise<void> {
  const vg = vgName(ctx.pool);
  lvPath(ctx.pool, volume.name);
  const lv = `${vg}/${volume.name}`;
  const select = selectTagged(onlyTagged);
  await settleUdev(ctx, tools);
  try {
    await runLvm(ctx, ['lvremove', '-f', ...select, lv]);
    return;
  } catch (err) {
    if (err instanceof CommandFailedError && /Failed to find logical volume/i.test(err.stderr)) return;
    if (!(err instanceof CommandFailedError)) throw asCisternError(err);
  }
  await lvm(ctx, ['lvchange', '-aln', ...select, lv], `cannot deactivate logical volume '${lv}' for removal`);
  await lvm(ctx, ['lvremove', '-f', ...select, lv], `cannot remove logical volume '${lv}'`);
}
