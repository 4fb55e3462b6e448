// Cloning into a logical pool: an LV at least the source's size, then the data copied in
// (raw sources in-process, other formats through `qemu-img convert -O raw`), read through the
// descriptors the clone's check opened (block-clone-source.ts); a failure removes the new LV
// (only if it carries the clone's tag: tags.ts).
import { VolumeType, type PoolDefinition, type VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { CommandFailedError, FailedPreconditionError, UnimplementedError } from '../../errors/errors.js';
import { checkAbsolutePath, printable } from '../../api/names.js';
import type { BackendContext, CreateVolOptions, PoolContext } from '../backend.js';
import { copyIntoBlock, holdsRawData } from '../block-data.js';
import { statSize } from '../file-io.js';
import { convertIntoBlockArgv, openBlockCloneSource, type BlockCloneSource } from '../block-clone-source.js';
import { lvmError, runLvm } from './lvm.js';
import { createLv, planLv, refuseFileCreateFlags, removeAfterFailure } from './create.js';
import { requireNode } from './data.js';
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
  // libvirt 9.0 formats the new LV LUKS, then copies a raw source's bytes over the header
  if (volume.target?.encryption) throw new UnimplementedError('cloning into an encrypted logical volume is not supported; create the encrypted volume, then upload the data');
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
  // opened (or taken from the agent's check) before the LV is made: a source that is not
  // there, or not what it was read as, fails the clone with nothing to undo
  const src = openBlockCloneSource(srcPath, source.volume.target?.format || 'raw', source.volume.name, options.sourceImage);
  try {
    const tag = await createLv(ctx, planned, { preallocMetadata: false, ...(options?.createId ? { createId: options.createId } : {}) }, tools);
    const dst = planned.target!.path;
    try {
      // raw files, iso images and block volumes (a partition's type names no image format)
      // are copied as they are; images are converted
      if (holdsRawData(source.volume.target?.format || 'raw')) await copyRaw(ctx, src, dst);
      else {
        const { argv, fds } = convertIntoBlockArgv(src, dst, tools.qemuImg);
        await runLvm(ctx, argv, { timeoutMs: 0, fds });
      }
    } catch (err) {
      await removeAfterFailure(ctx, planned, tools, tag);
      throw err instanceof CommandFailedError ? lvmError(err, `cannot copy '${srcPath}' into '${dst}'`) : err;
    }
  } finally {
    src.close();
  }
}

async function copyRaw(ctx: BackendContext, src: BlockCloneSource, dst: string): Promise<void> {
  await requireNode(dst);
  await copyIntoBlock(ctx, { fd: src.head.fd, name: src.head.name }, dst, statSize(src.head.stat));
}
