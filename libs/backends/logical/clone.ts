// Cloning into a logical pool: an LV at least the source's size, then the data copied in
// (raw sources in-process, other formats through `qemu-img convert -O raw`); a failure
// removes the new LV (only if it carries the clone's tag: tags.ts).
import { stat } from 'node:fs/promises';
import { VolumeType, type PoolDefinition, type VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { CommandFailedError, FailedPreconditionError, UnimplementedError } from '../../errors/errors.js';
import { checkAbsolutePath, printable } from '../../api/names.js';
import type { BackendContext, CreateVolOptions, PoolContext } from '../backend.js';
import { copyIntoBlock, holdsRawData } from '../block-data.js';
import { statSize } from '../file-io.js';
import { qemuImgCreateArgv } from '../qemu-img-argv.js';
import { lvmError, runLvm } from './lvm.js';
import { createLv, planLv, refuseFileCreateFlags, removeAfterFailure } from './create.js';
import { requireNode } from './data.js';
import { deviceError } from '../fs-errors.js';
import type { LogicalTools } from './tools.js';

/**
 * Clone: an LV at least the source's size, then the data copied in (raw sources
 * in-process, other formats through `qemu-img convert -O raw`). The new LV must be
 * active to be written; a failure removes it.
 */
export async function cloneIntoLv(
  ctx: PoolContext,
  volume: VolumeDefinition,
  source: { pool: PoolDefinition; volume: VolumeDefinition },
  options: CreateVolOptions,
  tools: LogicalTools,
): Promise<void> {
  refuseFileCreateFlags(options);
  const srcPath = checkAbsolutePath(source.volume.target?.path ?? '', 'source.target.path');
  if (source.volume.target?.encryption) throw new UnimplementedError('cloning an encrypted volume is not supported');
  if (source.volume.type === VolumeType.VOLUME_TYPE_DIR || source.volume.target?.format === 'dir') {
    throw new FailedPreconditionError(`cannot clone directory volume '${printable(source.volume.name)}'`);
  }
  const srcCapacity = source.volume.capacity ?? 0n;
  const capacity = volume.capacity === undefined || volume.capacity < srcCapacity ? srcCapacity : volume.capacity;
  // a clone holds a full copy: never a snapshot of anything, never sparse (a sparse LV
  // would overflow while the data is copied in)
  const requested: VolumeDefinition = { ...volume, capacity, allocation: capacity, backingStore: undefined };
  const planned = await planLv(ctx, requested);
  const tag = await createLv(ctx, planned, { preallocMetadata: false, ...(options?.createId ? { createId: options.createId } : {}) }, tools);
  const dst = planned.target!.path;
  try {
    // raw files, iso images and block volumes (a partition's type names no image format)
    // are copied as they are; images are converted
    const srcFormat = source.volume.target?.format || 'raw';
    if (holdsRawData(srcFormat)) await copyRaw(ctx, srcPath, dst);
    else await runLvm(ctx, qemuImgCreateArgv({ format: 'raw', path: dst, inputPath: srcPath, inputFormat: srcFormat }, tools.qemuImg), { timeoutMs: 0 });
  } catch (err) {
    await removeAfterFailure(ctx, planned, tools, tag);
    throw err instanceof CommandFailedError ? lvmError(err, `cannot copy '${srcPath}' into '${dst}'`) : err;
  }
}

async function copyRaw(ctx: BackendContext, src: string, dst: string): Promise<void> {
  await requireNode(dst);
  let length: bigint;
  try {
    const st = await stat(src, { bigint: true });
    length = statSize(st);
  } catch (err) {
    throw deviceError(err, 'open source volume', src);
  }
  await copyIntoBlock(ctx, src, dst, length);
}
