// The data path of a logical pool's volumes: wipe, upload and download on the LV's device
// node (block-data.ts does the I/O), once the LV is known to be there, active and, for a
// wipe, not sparse.
import { constants as fsc } from 'node:fs';
import { access } from 'node:fs/promises';
import type { VolumeDefinition, WipeAlgorithm } from '../../proto/cistern/v1/storage.js';
import { FailedPreconditionError, NotFoundError, UnimplementedError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { PoolContext } from '../backend.js';
import { downloadBlock, uploadBlock, wipeBlock } from '../block-data.js';
import { listLvs } from './lvm.js';
import { lvPath, vgName } from './paths.js';

/** An LV's data is reachable only through its device node, which exists while it is active. */
export async function requireNode(path: string): Promise<void> {
  try {
    await access(path, fsc.F_OK);
  } catch {
    throw new FailedPreconditionError(`logical volume '${printable(path, 200)}' has no device node: it does not exist or is not active`);
  }
}

/**
 * Wipes a non-sparse LV: zero in-process, the other algorithms with scrub. Sparse LVs
 * (snapshots, --virtualsize LVs: lvs attr 's') are refused as libvirt refuses them: writing
 * fills their copy-on-write area until they drop out. A thin volume is wiped, as libvirt wipes
 * it: every block written is then allocated in its thin pool.
 */
export async function wipeLv(ctx: PoolContext, volume: VolumeDefinition, algorithm: WipeAlgorithm, scrub: string): Promise<void> {
  const path = lvPath(ctx.pool, volume.name);
  const rec = (await listLvs(ctx)).find((r) => r.name === volume.name);
  if (!rec || rec.thinPool) throw new NotFoundError(`logical volume '${printable(volume.name)}' not found in volume group '${vgName(ctx.pool)}'`);
  if (rec.sparse) throw new UnimplementedError(`logical volume '${path}' is sparse, volume wipe not supported`);
  if (!rec.active) {
    // the pool runs (its start activated every LV then): this one was deactivated since
    throw new FailedPreconditionError(`logical volume '${path}' is not active (state ${rec.state}); activate it (lvchange -ay ${vgName(ctx.pool)}/${printable(volume.name)}) before wiping`);
  }
  await requireNode(path);
  await wipeBlock(ctx, path, algorithm, scrub);
}

/** Writes the stream into the LV's device at `offset`, at most `length` bytes (0 = all). */
export async function uploadIntoLv(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint, data: AsyncIterable<Buffer>): Promise<bigint> {
  const path = lvPath(ctx.pool, volume.name);
  await requireNode(path);
  return uploadBlock(ctx, path, offset, length, data);
}

/** Reads `length` bytes (0 = to the end) from `offset` of the LV's device. */
export async function* downloadLv(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint): AsyncIterable<Buffer> {
  const path = lvPath(ctx.pool, volume.name);
  await requireNode(path);
  yield* downloadBlock(ctx, path, offset, length);
}
