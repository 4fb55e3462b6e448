// A disk pool's refresh: one read of the table gives the pool's sizes, its free extents
// and a volume per partition (an extended one allocated as its logical ones).
import { lstat } from 'node:fs/promises';
import { VolumeType, type PoolDefinition, type SourceDevice, type VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import type { PoolContext, PoolRuntime, RefreshResult } from '../backend.js';
import { blockDeviceSize } from '../file-io.js';
import { permsOf, timestampsOf } from '../stat-fields.js';
import { layoutSizes, type DiskLayout, type DiskPartition } from '../partition-plan.js';
import { plainTarget } from '../volume-target.js';
import { diskSource, stablePath, type DiskSource } from './paths.js';
import { requireDevice } from './device.js';
import { findPartition, readLayout } from './table.js';
import { encryptedView } from './luks.js';
import type { DiskTools } from './tools.js';

export async function refreshTable(ctx: PoolContext, tools: DiskTools): Promise<RefreshResult> {
  const source = diskSource(ctx.pool);
  requireDevice(tools, source.device);
  const layout = await readLayout(tools, ctx.runner, source, ctx.signal);
  const volumes = await Promise.all(layout.partitions.map((p) => volumeOf(ctx.pool, source, layout, p)));
  return { runtime: runtimeOf(source, layout), volumes };
}

/** Pool sizes and free extents without listing volumes (the agent's hook after a volume op). */
export async function tableSizes(ctx: PoolContext, tools: DiskTools): Promise<PoolRuntime> {
  const source = diskSource(ctx.pool);
  return runtimeOf(source, await readLayout(tools, ctx.runner, source, ctx.signal));
}

/**
 * One partition read again from the table. A volume known as encrypted (created so) keeps its
 * encryption and the LUKS payload's size, as libvirt keeps the created volume until a pool
 * refresh, which reads every partition plainly.
 */
export async function refreshPartition(ctx: PoolContext, tools: DiskTools, volume: VolumeDefinition): Promise<VolumeDefinition> {
  const source = diskSource(ctx.pool);
  const layout = await readLayout(tools, ctx.runner, source, ctx.signal);
  return encryptedView(await volumeOf(ctx.pool, source, layout, findPartition(layout, volume.name)), volume);
}

async function volumeOf(pool: PoolDefinition, source: DiskSource, layout: DiskLayout, p: DiskPartition): Promise<VolumeDefinition> {
  const path = await stablePath(pool.target?.path, p.path);
  let allocation = p.size;
  if (p.kind === 'extended') {
    allocation = 0n;
    for (const q of layout.partitions) if (q.kind === 'logical') allocation += q.size;
  }
  let permissions;
  let timestamps;
  // libvirt's physical is where an lseek to the end of the node lands: the partition's size,
  // but 1024 bytes for an extended one (the kernel exposes only its first two sectors)
  let physical;
  try {
    const st = await lstat(p.path, { bigint: true });
    permissions = permsOf(st);
    timestamps = timestampsOf(st);
    if (st.isBlockDevice()) physical = blockDeviceSize(st) || undefined;
  } catch {
    // node not (yet) there: sizes and extents still come from the table
  }
  return {
    type: VolumeType.VOLUME_TYPE_BLOCK,
    name: p.name,
    key: path,
    capacity: p.size,
    allocation,
    physical,
    sourceDevices: [{ path: source.device, extents: [{ start: p.start, end: p.end }] }],
    target: plainTarget(path, p.format, permissions, timestamps),
    backingStore: undefined,
  };
}

function runtimeOf(source: DiskSource, layout: DiskLayout): PoolRuntime {
  const device: SourceDevice = {
    path: source.device,
    partSeparator: source.partSeparator,
    freeExtents: layout.free.map((f) => ({ start: f.start, end: f.end })),
  };
  return { ...layoutSizes(layout), devices: [device] };
}
