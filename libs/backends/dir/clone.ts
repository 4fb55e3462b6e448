// A new volume with another volume's content (virStorageBackendVolBuildFromLocal): raw to
// raw is copied in-process (a reflink when possible, else a sparse copy); any other pair
// goes through `qemu-img convert -f SRC -O DST`.
import { VolumeType, type PoolDefinition, type VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, UnimplementedError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { CreateVolOptions, PoolContext } from '../backend.js';
import { sourceVolumePath } from './paths.js';
import { inspectVolumeSync } from './inspect.js';
import { planVolume, rawAllocation, resolveCreate } from './volume-plan.js';
import { createRaw } from './create-raw.js';
import { createWithQemuImg } from './create-image.js';
import type { DirTools } from './tools.js';

/** Builds `volume` from `source`'s content; the new capacity is at least the source's. */
export async function cloneVolume(
  ctx: PoolContext,
  volume: VolumeDefinition,
  source: { pool: PoolDefinition; volume: VolumeDefinition },
  options: CreateVolOptions,
  tools: DirTools,
): Promise<void> {
  const srcPath = sourceVolumePath(source);
  const src = inspectVolumeSync(srcPath, source.volume.name, { noerror: false });
  if (!src) throw new NotFoundError(`source volume '${printable(source.volume.name)}' not found`);
  if (src.type === VolumeType.VOLUME_TYPE_DIR || src.target?.format === 'dir') {
    throw new FailedPreconditionError(`cannot clone directory volume '${printable(source.volume.name)}'`);
  }
  const srcCapacity = src.capacity ?? 0n;
  const requested: VolumeDefinition = {
    ...volume,
    capacity: volume.capacity === undefined || volume.capacity < srcCapacity ? srcCapacity : volume.capacity,
  };
  const checked = await planVolume(ctx, requested);
  const r = resolveCreate(ctx, checked);
  if (r.format === 'dir') throw new InvalidArgumentError('volume.target.format', 'cannot copy from a volume to a directory volume');
  // an iso is raw bytes: qemu-img has no iso format
  const srcFormat = src.target?.format === 'iso' ? 'raw' : src.target?.format || 'raw';
  const dstRawPlain = (r.format === 'raw' || r.format === 'iso') && !checked.target?.encryption;
  const srcRawPlain = srcFormat === 'raw' && !src.target?.encryption;
  if (dstRawPlain && srcRawPlain) {
    return createRaw(ctx, r, checked, rawAllocation(r, options), tools, { path: srcPath, capacity: srcCapacity, reflink: !!options.reflink });
  }
  if (options.reflink) throw new InvalidArgumentError('reflink', 'reflink clones are only possible between raw volumes');
  if (src.target?.encryption) throw new UnimplementedError('cloning an encrypted volume is not supported');
  return createWithQemuImg(ctx, r, checked, options, tools.qemuImg, { path: srcPath, format: srcFormat });
}
