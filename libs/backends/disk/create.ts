// Creating a partition: createVol checks the request against the table as it is now (the
// name must be the next partition's, a free extent must fit it); buildVol re-plans under
// the device's queue, runs mkpart, and returns only once the kernel has the partition's
// node. A failed create leaves no partition behind.
import { VolumeType, type VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { InternalError, InvalidArgumentError } from '../../errors/errors.js';
import { checkNewObjectName, checkSize, printable } from '../../api/names.js';
import type { CreateVolOptions, PoolContext } from '../backend.js';
import {
  checkVolumeFormat,
  kindToCreate,
  mkpartArgv,
  nextPartitionNumber,
  partitionPath,
  partitionSeparator,
  placePartition,
  rmArgv,
  type DiskLayout,
  type DiskPartition,
} from '../partition-plan.js';
import { plainTarget } from '../volume-target.js';
import { removeSecretFile } from '../dir/secret-file.js';
import { diskSource, stablePath, type DiskSource } from './paths.js';
import { checkPartitionEncryption, formatLuks, partitionSizeFor, passphraseFile } from './luks.js';
import { deletePartition } from './delete.js';
import { requireDevice } from './device.js';
import type { DeviceQueue } from './device-queue.js';
import { readLayout, syncKernel, waitForNode } from './table.js';
import type { DiskTools } from './tools.js';
import { readTableId } from './table-id.js';

/**
 * Checks the request against the table as it is now: the name must be the next
 * partition's name, the type known, a free extent large enough. Writes nothing.
 */
export async function planPartition(ctx: PoolContext, tools: DiskTools, volume: VolumeDefinition): Promise<VolumeDefinition> {
  const source = diskSource(ctx.pool);
  checkNewObjectName(volume.name, 'name', 'volume name');
  const format = checkVolumeFormat(volume.target?.format);
  checkPartitionEncryption(volume.target?.encryption, format);
  const capacity = checkSize(volume.capacity ?? 0n, 'capacity');
  if (capacity === 0n) throw new InvalidArgumentError('capacity', 'a partition needs a capacity above 0 bytes');
  requireDevice(tools, source.device);
  const layout = await readLayout(tools, ctx.runner, source, ctx.signal);
  const plan = placeNamed(layout, source, volume.name, format, partitionSizeFor(volume, capacity));
  const path = await stablePath(ctx.pool.target?.path, plan.path);
  return {
    ...volume,
    type: VolumeType.VOLUME_TYPE_BLOCK,
    key: path,
    capacity,
    allocation: capacity,
    sourceDevices: [{ path: source.device, extents: [{ start: plan.placement.start, end: plan.placement.end + 1n }] }],
    target: { ...(volume.target ?? plainTarget(path, format)), path, format, timestamps: undefined },
  };
}

/** The partition a create makes in `layout`: its kind, number and place; `name` must be its node's name. */
function placeNamed(layout: DiskLayout, source: DiskSource, name: string, format: ReturnType<typeof checkVolumeFormat>, capacity: bigint) {
  const kind = kindToCreate(layout, format);
  const number = nextPartitionNumber(layout, kind);
  const path = partitionPath(source.nodeDevice, partitionSeparator(source.nodeDevice, source.partSeparator), number);
  const expected = path.slice(path.lastIndexOf('/') + 1);
  if (name !== expected) {
    throw new InvalidArgumentError('name', `invalid partition name '${printable(name)}', expected '${expected}': a disk pool names a new partition after its device node`, {
      expected,
    });
  }
  const placement = placePartition(layout, kind, capacity);
  return { kind, number, path, expected, placement };
}

/**
 * Creates the partition planned by createVol: mkpart, kernel sync, node check; undone on
 * failure. `onMade` hears of the partition as soon as it is found in the table.
 */
export async function createPartition(
  ctx: PoolContext,
  tools: DiskTools,
  queue: DeviceQueue,
  volume: VolumeDefinition,
  onMade?: CreateVolOptions['onPartitionMade'],
): Promise<DiskPartition> {
  const source = diskSource(ctx.pool);
  const format = checkVolumeFormat(volume.target?.format);
  const capacity = partitionSizeFor(volume, checkSize(volume.capacity ?? 0n, 'capacity'));
  return queue.exclusive(source.device, async () => {
    // re-plan against the table as it is now (another create may have run since)
    const before = await readLayout(tools, ctx.runner, source, ctx.signal);
    const plan = placeNamed(before, source, volume.name, format, capacity);
    // the disk mkpart writes on, recorded before it runs (an agent killed while mkpart runs
    // leaves no later record) with the bytes it is given: by the undo, the pool's path may lead
    // to another disk, with a partition at the same bytes
    const table = onMade ? await readTableId(source.device) : undefined;
    if (table !== undefined) onMade?.({ start: plan.placement.start, end: plan.placement.end + 1n, table });
    // a mkpart that fails or is cancelled may still have written the table: what it left is
    // looked for below and removed like any other failed create
    let mkpartFailure: unknown;
    await ctx.runner.run(mkpartArgv(tools.parted, before, plan.kind, format, plan.placement), { signal: ctx.signal }).catch((err: unknown) => {
      mkpartFailure = err;
    });
    let created: DiskPartition | undefined;
    try {
      // not under the caller's signal either: a cancel that comes once mkpart has written the
      // table must not stop the read that finds what it wrote (it would stay behind)
      const after = await readLayout(tools, ctx.runner, source);
      created = after.partitions.find((p) => !before.partitions.some((q) => q.number === p.number && q.start === p.start));
      // recorded before anything else can fail or be killed: its undo finds it by these bytes
      if (created) onMade?.({ start: created.start, end: created.end, ...(table === undefined ? {} : { table }) });
      if (mkpartFailure !== undefined) throw mkpartFailure;
      if (!created) throw new InternalError(`parted reported success but no new partition appeared on '${printable(source.device, 200)}'`);
      if (created.number !== plan.number) {
        throw new InternalError(`parted created partition ${created.number} ('${created.name}'), not the expected '${plan.expected}'`);
      }
      await syncKernel(ctx, tools, source, after);
      if (!(await waitForNode(tools, created.path, true))) {
        throw new InternalError(`partition ${created.number} was created but its device node '${created.path}' did not appear`);
      }
      return created;
    } catch (err) {
      if (created) {
        // a failed create leaves nothing behind; not under the caller's signal: a cancelled
        // create must still remove what it made (every command would be refused)
        await ctx.runner.run(rmArgv(tools.parted, source.device, created)).catch(() => undefined);
        const now = await readLayout(tools, ctx.runner, source).catch(() => undefined);
        if (now) await syncKernel({ ...ctx, signal: undefined }, tools, source, now).catch(() => undefined);
      }
      throw err;
    }
  });
}

/**
 * buildVol: the partition, formatted LUKS when the volume is encrypted. The passphrase's file
 * is written first (none given: nothing is made); a failed format removes the partition.
 */
export async function buildPartition(
  ctx: PoolContext,
  tools: DiskTools,
  queue: DeviceQueue,
  volume: VolumeDefinition,
  onMade?: CreateVolOptions['onPartitionMade'],
): Promise<DiskPartition> {
  const secret = await passphraseFile(ctx, volume);
  try {
    const created = await createPartition(ctx, tools, queue, volume, onMade);
    if (!secret) return created;
    try {
      await formatLuks(ctx, tools, diskSource(ctx.pool), volume, created, secret);
    } catch (err) {
      // not under the caller's signal: a cancelled create must still remove what it made
      // the partition it made, by its bytes: the table may have changed since (by hand)
      await deletePartition({ ...ctx, signal: undefined }, tools, queue, { ...volume, name: created.name }, created).catch(() => undefined);
      throw err;
    }
    return created;
  } finally {
    await removeSecretFile(secret);
  }
}
