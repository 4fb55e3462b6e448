// The data path of a disk pool's volumes: wipe, upload and download on the partition's
// node as the table names it now (block-data.ts does the I/O); an extended partition
// holds no data of its own.
import type { VolumeDefinition, WipeAlgorithm } from '../../proto/cistern/v1/storage.js';
import { UnimplementedError } from '../../errors/errors.js';
import type { PoolContext } from '../backend.js';
import { downloadBlock, uploadBlock, wipeBlock } from '../block-data.js';
import { diskSource } from './paths.js';
import { findListedPartition, readLayout } from './table.js';
import type { DiskTools } from './tools.js';

async function dataPath(ctx: PoolContext, tools: DiskTools, volume: VolumeDefinition, what: string): Promise<string> {
  const source = diskSource(ctx.pool);
  const layout = await readLayout(tools, ctx.runner, source, ctx.signal);
  // the partition the pool listed, not another that holds its number since (table.ts)
  const p = findListedPartition(layout, volume);
  if (p.kind === 'extended') throw new UnimplementedError(`cannot ${what} extended partition '${p.path}'`);
  return p.path;
}

export async function wipePartition(ctx: PoolContext, tools: DiskTools, volume: VolumeDefinition, algorithm: WipeAlgorithm): Promise<void> {
  await wipeBlock(ctx, await dataPath(ctx, tools, volume, 'wipe'), algorithm, tools.scrub);
}

export async function uploadIntoPartition(
  ctx: PoolContext,
  tools: DiskTools,
  volume: VolumeDefinition,
  offset: bigint,
  length: bigint,
  data: AsyncIterable<Buffer>,
): Promise<bigint> {
  return uploadBlock(ctx, await dataPath(ctx, tools, volume, 'upload to'), offset, length, data);
}

export async function* downloadPartition(ctx: PoolContext, tools: DiskTools, volume: VolumeDefinition, offset: bigint, length: bigint): AsyncIterable<Buffer> {
  yield* downloadBlock(ctx, await dataPath(ctx, tools, volume, 'download from'), offset, length);
}
