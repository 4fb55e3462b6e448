// Cloning into a disk pool: a new partition filled from the source volume, raw data
// copied in-process, any other format converted to raw by `qemu-img convert` (as
// libvirt's storageBackendCreateQemuImg does for a block volume), read through the
// descriptors the clone's check opened (block-clone-source.ts); a failed copy removes the
// partition again.
import { VolumeType, type PoolDefinition, type VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { FailedPreconditionError, InvalidArgumentError, UnimplementedError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { CreateVolOptions, PoolContext } from '../backend.js';
import { copyIntoBlock, holdsRawData } from '../block-data.js';
import { convertIntoBlockArgv, openBlockCloneSource } from '../block-clone-source.js';
import { createPartition } from './create.js';
import { deletePartition } from './delete.js';
import type { DeviceQueue } from './device-queue.js';
import type { DiskTools } from './tools.js';

/**
 * Creates the partition, then fills it from the source volume: raw data (files, other
 * partitions, LVs) copied in-process, any other format (qcow2 ...) converted to raw by
 * `qemu-img convert`. The partition must hold the source's virtual size; a failed copy
 * removes it again.
 */
export async function cloneIntoPartition(
  ctx: PoolContext,
  tools: DiskTools,
  queue: DeviceQueue,
  volume: VolumeDefinition,
  src: { pool: PoolDefinition; volume: VolumeDefinition },
  options: Pick<CreateVolOptions, 'sourceImage' | 'onPartitionMade'> = {},
): Promise<void> {
  const srcPath = src.volume.target?.path || src.volume.key;
  if (!srcPath) throw new InvalidArgumentError('source', 'the source volume has no path');
  if (src.volume.target?.encryption) throw new UnimplementedError('cloning an encrypted volume into a partition is not supported');
  if (volume.target?.encryption) throw new UnimplementedError('cloning into an encrypted partition is not supported; create the encrypted partition, then upload the data');
  const srcFormat = src.volume.target?.format || 'raw';
  if (src.volume.type === VolumeType.VOLUME_TYPE_DIR || srcFormat === 'dir') {
    throw new FailedPreconditionError(`cannot clone directory volume '${printable(src.volume.name)}' into a partition`);
  }
  if (srcFormat === 'extended') throw new UnimplementedError(`cannot clone extended partition '${printable(srcPath, 200)}'`);
  if (!/^[a-z0-9][a-z0-9+._-]*$/.test(srcFormat)) {
    throw new InvalidArgumentError('source.target.format', `the source volume's format '${printable(srcFormat)}' is not a format name qemu-img knows`);
  }
  const raw = holdsRawData(srcFormat);
  // read through the descriptors the clone's check opened (block-clone-source.ts), never by name
  const source = openBlockCloneSource(srcPath, srcFormat, src.volume.name, options.sourceImage);
  try {
    const st = source.head.stat;
    // raw data is copied byte for byte; an image holds its virtual size (the capacity)
    const length = raw && !st.isBlockDevice() ? st.size : (src.volume.capacity ?? 0n);
    if ((volume.capacity ?? 0n) < length) {
      throw new InvalidArgumentError('capacity', `the partition (${volume.capacity ?? 0n} bytes) is smaller than the source volume (${length} bytes)`);
    }
    const created = await createPartition(ctx, tools, queue, volume, options.onPartitionMade);
    try {
      if (raw) await copyIntoBlock(ctx, { fd: source.head.fd, name: source.head.name }, created.path, length);
      else {
        const { argv, fds } = convertIntoBlockArgv(source, created.path, tools.qemuImg);
        await ctx.runner.run(argv, { signal: ctx.signal, timeoutMs: 0, fds });
      }
    } catch (err) {
      // the partition it made, by its bytes: the table may have changed since (by hand)
      await deletePartition({ ...ctx, signal: undefined }, tools, queue, { ...volume, name: created.name }, created).catch(() => undefined);
      throw err;
    }
  } finally {
    source.close();
  }
}
