// A disk pool's lifecycle on its device (virStorageBackendDiskBuildPool, CheckPool,
// DeletePool): build writes a new empty table of the pool's format, start and check
// require one, delete wipes it; the partitions themselves are the volumes.
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { BuildFlags } from '../../proto/cistern/v1/storage.js';
import { FailedPreconditionError, NotFoundError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { PoolContext } from '../backend.js';
import { requireEmptyDevice } from '../device-probe.js';
import { fsError } from '../fs-errors.js';
import { zeroEnds } from '../file-io.js';
import { checkPoolFormat, DISK_POOL_FORMATS, partedLabelOf } from '../partition-plan.js';
import { diskSource } from './paths.js';
import { requireDevice, requireNotInUse } from './device.js';
import type { DeviceQueue } from './device-queue.js';
import { readLayout, syncKernel } from './table.js';
import type { DiskTools } from './tools.js';
import { refuseConflictingBuildFlags } from '../build-flags.js';

/** Bytes zeroed at the start and the end of a device before an overwriting build (virStorageBackendZeroPartitionTable). */
export const ZERO_TABLE_BYTES = 1024 * 1024;

/**
 * Writes a new, empty partition table of the pool's format. Without overwrite the
 * device must hold nothing blkid recognises (libvirt 9 treats no flag like
 * no_overwrite); with overwrite the first and last MiB are zeroed first.
 */
export async function buildTable(ctx: PoolContext, tools: DiskTools, queue: DeviceQueue, flags: BuildFlags): Promise<void> {
  refuseConflictingBuildFlags(flags);
  const source = diskSource(ctx.pool);
  const format = checkPoolFormat(ctx.pool.source?.format);
  requireDevice(tools, source.device);
  await queue.exclusive(source.device, async () => {
    requireNotInUse(tools, source.device, 'write a new partition table on');
    if (!flags?.overwrite) await requireEmptyDevice(ctx.runner, source.device, ctx.signal);
    else await zeroTable(source.device);
    await ctx.runner.run([tools.parted, '-s', source.device, 'mklabel', partedLabelOf(format)], { signal: ctx.signal });
    const layout = await readLayout(tools, ctx.runner, source, ctx.signal);
    await syncKernel(ctx, tools, source, layout);
  });
}

/** The table's first and last MiB zeroed (virStorageBackendZeroPartitionTable). */
async function zeroTable(device: string): Promise<void> {
  let fh;
  try {
    fh = await open(device, 'r+');
    await zeroEnds(fh, ZERO_TABLE_BYTES);
  } catch (err) {
    throw fsError(err, 'clear the partition table of', device);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** The device exists and carries a table of the pool's format. */
export async function requireTable(ctx: PoolContext, tools: DiskTools): Promise<void> {
  const source = diskSource(ctx.pool);
  const format = checkPoolFormat(ctx.pool.source?.format);
  requireDevice(tools, source.device);
  const layout = await readLayout(tools, ctx.runner, source, ctx.signal);
  if (layout.label !== partedLabelOf(format)) {
    // only a format a pool can be defined with is worth proposing (amiga, atari ... are not)
    const other = (DISK_POOL_FORMATS as readonly string[]).includes(layout.format)
      ? `, or define the pool with format '${layout.format}'`
      : `; no disk pool format takes it; allowed: ${DISK_POOL_FORMATS.join(', ')}`;
    throw new FailedPreconditionError(
      `device '${printable(source.device, 200)}' has a '${printable(layout.format)}' partition table but the pool's format is '${format}'; build the pool with overwrite to replace it${other}`,
      { device: source.device, found: layout.format, expected: format },
    );
  }
}

/** virStorageBackendDiskCheckPool: active when the device is there with a table of the pool's format. */
export async function hasTable(ctx: PoolContext, tools: DiskTools): Promise<boolean> {
  const source = diskSource(ctx.pool);
  if (!existsSync(source.device)) return false;
  try {
    await requireTable(ctx, tools);
    return true;
  } catch (err) {
    if (err instanceof FailedPreconditionError || err instanceof NotFoundError) return false;
    throw err;
  }
}

/**
 * virStorageBackendDiskDeletePool: the partition table is wiped (its first and last MiB);
 * the kernel is told to drop the partitions it still shows. Refused while the disk or
 * one of its partitions is in use.
 */
export async function wipeTable(ctx: PoolContext, tools: DiskTools, queue: DeviceQueue): Promise<void> {
  const source = diskSource(ctx.pool);
  requireDevice(tools, source.device);
  await queue.exclusive(source.device, async () => {
    requireNotInUse(tools, source.device, 'wipe the partition table of');
    await zeroTable(source.device);
    await ctx.runner.run([tools.partx, '-d', '--', source.device], { okExitCodes: [0, 1], signal: ctx.signal }).catch(() => undefined);
  });
}
