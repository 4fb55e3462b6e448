// Deleting a partition: exactly the one the table names, the one the pool listed, refused while it (or a logical
// partition the delete would renumber) is in use, and done only once the kernel has
// dropped its node.
import type { VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { FailedPreconditionError, InternalError, NotFoundError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import { readTableId } from './table-id.js';
import type { PartitionExtent, PoolContext } from '../backend.js';
import { rmArgv } from '../partition-plan.js';
import { diskSource } from './paths.js';
import type { DeviceQueue } from './device-queue.js';
import { findListedPartition, findPartitionAt, readLayout, syncKernel, waitForNode } from './table.js';
import type { DiskTools } from './tools.js';

/**
 * Removes exactly the named partition: its number is the one in the table, never
 * parsed out of the name (libvirt 9.0 runs `parted rm p1` for /dev/loop0p1). An
 * extended partition that still holds logical partitions is refused. `onlyExtent`: the
 * partition covering those bytes, whatever its name is now (the undo of a create: the
 * partition it made, never another that took its number since), and only on the disk whose
 * partition table has the id recorded with it, if one was.
 */
export async function deletePartition(ctx: PoolContext, tools: DiskTools, queue: DeviceQueue, volume: VolumeDefinition, onlyExtent?: PartitionExtent): Promise<void> {
  const source = diskSource(ctx.pool);
  await queue.exclusive(source.device, async () => {
    if (onlyExtent?.table !== undefined) {
      // the undo of a create: on the disk it wrote on only, whatever the path leads to now
      const now = await readTableId(source.device);
      if (now !== onlyExtent.table) {
        throw new NotFoundError(
          `the partition table of '${printable(source.device, 200)}' is ${now ?? 'none known'}, not ${onlyExtent.table} where '${printable(volume.name)}' was made: the path leads to another disk now; nothing is removed`,
          { volume: volume.name },
        );
      }
    }
    const layout = await readLayout(tools, ctx.runner, source, ctx.signal);
    const p = onlyExtent ? findPartitionAt(layout, volume.name, onlyExtent) : findListedPartition(layout, volume);
    if (p.kind === 'extended') {
      const logicals = layout.partitions.filter((q) => q.kind === 'logical').map((q) => q.name);
      if (logicals.length) {
        throw new FailedPreconditionError(`extended partition '${p.name}' still holds logical partitions ${logicals.join(', ')}; delete them first`);
      }
    }
    // parted writes the new table even when the kernel cannot take it (a partition in use):
    // the delete would fail yet have happened, and deleting a logical partition renumbers
    // the ones after it. Refused first, with nothing changed.
    const moved = p.kind === 'logical' ? layout.partitions.filter((q) => q.kind === 'logical' && q.number > p.number) : [];
    const busy = [p, ...moved].filter((q) => tools.isBusy(q.path)).map((q) => q.name);
    if (busy.length) {
      throw new FailedPreconditionError(
        busy[0] === p.name
          ? `partition '${p.name}' is in use (mounted, or held by LVM, swap or a guest); release it first`
          : `deleting '${p.name}' renumbers the logical partitions after it, and ${busy.join(', ')} ${busy.length > 1 ? 'are' : 'is'} in use; release ${busy.length > 1 ? 'them' : 'it'} first`,
      );
    }
    await ctx.runner.run(rmArgv(tools.parted, source.device, p), { signal: ctx.signal });
    // the partition is gone from the table now: what is left (the kernel told, its node gone)
    // is not under the caller's signal, so that a cancel arriving now neither reports a delete
    // that happened as not done nor leaves the kernel's view of the table stale
    const after = await readLayout(tools, ctx.runner, source);
    await syncKernel({ ...ctx, signal: undefined }, tools, source, after);
    const stillThere = after.partitions.some((q) => q.path === p.path);
    if (!stillThere && !(await waitForNode(tools, p.path, false))) {
      throw new InternalError(`partition ${p.number} was removed from the table but its device node '${p.path}' remains`);
    }
  });
}
