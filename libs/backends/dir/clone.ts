// A new volume with another volume's content (virStorageBackendVolBuildFromLocal): raw to
// raw is copied in-process (a reflink when possible, else a sparse copy); any other pair
// goes through `qemu-img convert -f SRC -O DST`. Either way the source and its backing chain
// are read through the descriptors the agent's check opened (options.sourceImage), never by
// name: a name swapped for a link to /etc/shadow after the check would otherwise be copied
// into a volume an operator can download. A clone of or into a LUKS volume takes libvirt's two
// steps (create-image.ts), the source unlocked with its passphrase.
import type { PoolDefinition, VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, UnimplementedError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { CreateVolOptions, PoolContext } from '../backend.js';
import { openImageChain, type ImageChain, type ImageLayer } from '../image-references.js';
import { blockDeviceSize } from '../file-io.js';
import { sourceVolumePath } from './paths.js';
import { planVolume, rawAllocation, resolveCreate } from './volume-plan.js';
import { createRaw } from './create-raw.js';
import { createWithQemuImg } from './create-image.js';
import type { DirTools } from './tools.js';
import { removeSecretFile, writeSecretFile } from './secret-file.js';
import { qemuSecretAlias } from '../qemu-img-argv.js';
import { FILE_POOL_TYPES } from '../pool-kinds.js';

/** Builds `volume` from `source`'s content; the new capacity is at least the source's. */
export async function cloneVolume(
  ctx: PoolContext,
  volume: VolumeDefinition,
  source: { pool: PoolDefinition; volume: VolumeDefinition },
  options: CreateVolOptions,
  tools: DirTools,
): Promise<void> {
  const srcPath = sourceVolumePath(source);
  // a block volume (an LV, a partition, a LUN) holds raw data, whatever header its guest
  // wrote: libvirt reads a VIR_STORAGE_VOL_BLOCK input as raw (storageBackendCreateQemuImgSetInput)
  const block = !FILE_POOL_TYPES.has(source.pool.type);
  // a caller without a host view (the backend driven directly) gets the chain opened here, unchecked
  const chain = options.sourceImage ?? openImageChain(srcPath, block ? 'raw' : 'probe', () => undefined, 'clone source');
  try {
    return await cloneFrom(ctx, volume, source.volume, srcPath, sourceHead(chain, source.volume.name), options, tools, block);
  } finally {
    if (!options.sourceImage) chain.close();
  }
}

/** The source's own layer, or why it cannot be cloned; the whole chain must have opened (qemu would fail on a missing file). */
function sourceHead(chain: ImageChain, name: string): { layer: ImageLayer; layers: ImageLayer[] } {
  const layer = chain.layers[0];
  if (chain.notAFile?.isDirectory()) throw new FailedPreconditionError(`cannot clone directory volume '${printable(name)}'`);
  if (!layer) {
    if (chain.notAFile) throw new FailedPreconditionError(`cannot clone volume '${printable(name)}': it is not a regular file or block device`);
    throw new NotFoundError(`source volume '${printable(name)}' not found${chain.unopened ? ` (${chain.unopened.code})` : ''}`);
  }
  if (chain.unopened) {
    throw new FailedPreconditionError(
      `cannot clone volume '${printable(name)}': its backing chain names '${printable(chain.unopened.name, 200)}', which cannot be opened (${chain.unopened.code})`,
    );
  }
  return { layer, layers: chain.layers };
}

async function cloneFrom(
  ctx: PoolContext,
  volume: VolumeDefinition,
  sourceVolume: VolumeDefinition,
  srcPath: string,
  { layer, layers }: { layer: ImageLayer; layers: ImageLayer[] },
  options: CreateVolOptions,
  tools: DirTools,
  block: boolean,
): Promise<void> {
  const sourceName = sourceVolume.name;
  const size = layer.stat.isBlockDevice() ? blockDeviceSize(layer.stat) : layer.stat.size;
  // a block volume's header (its probe) is its guest's data: neither its size nor an encryption
  const srcCapacity = block ? size : layer.probe.capacity || size;
  const requested: VolumeDefinition = {
    ...volume,
    capacity: volume.capacity === undefined || volume.capacity < srcCapacity ? srcCapacity : volume.capacity,
  };
  const checked = await planVolume(ctx, requested);
  const r = resolveCreate(ctx, checked, options);
  if (r.format === 'dir') throw new InvalidArgumentError('volume.target.format', 'cannot copy from a volume to a directory volume');
  // an iso is raw bytes: qemu-img has no iso format (the chain reads it as raw)
  const srcFormat = block ? 'raw' : layer.format;
  const encrypted = !block && !!layer.probe.encryption;
  const dstRawPlain = (r.format === 'raw' || r.format === 'iso') && !checked.target?.encryption;
  const srcRawPlain = srcFormat === 'raw' && !encrypted;
  if (dstRawPlain && srcRawPlain) {
    await createRaw(ctx, r, checked, rawAllocation(r, options), tools, { path: srcPath, fd: layer.fd, capacity: srcCapacity, reflink: !!options.reflink });
    return;
  }
  if (options.reflink) throw new InvalidArgumentError('reflink', 'reflink clones are only possible between raw volumes');
  if (!encrypted) {
    await createWithQemuImg(ctx, r, checked, options, tools.qemuImg, { path: srcPath, format: srcFormat, layers });
    return;
  }
  // libvirt 9.0 reads a LUKS source with its passphrase (storageBackendCreateQemuImgSecretPath
  // of the input volume); legacy qcow (AES) encryption it refuses, as here
  if (layer.probe.encryption !== 'luks') {
    throw new UnimplementedError(`cannot clone volume '${printable(sourceName)}': encryption format of inputvol must be LUKS (it is '${layer.probe.encryption}')`);
  }
  // the passphrase its definition names, else the secret of its path (the image records none)
  const secret = await writeSecretFile(ctx, sourceVolume, srcPath);
  try {
    const input = { path: srcPath, format: srcFormat, layers, secret: { alias: qemuSecretAlias(sourceName), file: secret.file } };
    await createWithQemuImg(ctx, r, checked, options, tools.qemuImg, input);
  } finally {
    await removeSecretFile(secret);
  }
}
