// Volumes in an image format, made by qemu-img as libvirt's storageBackendCreateQemuImg
// makes them (create, or convert from a clone's source), LUKS encryption included; a plain
// qcow2 create is written in-process instead (create-qcow2.ts).
import { constants as fsc } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { CommandFailedError, InvalidArgumentError } from '../../errors/errors.js';
import type { BuiltVolume, CreateVolOptions, PoolContext } from '../backend.js';
import { commandError, fsError } from '../fs-errors.js';
import { checkAborted } from '../file-io.js';
import {
  createSizeGiven,
  divUp,
  qemuDescriptorChain,
  qemuImgConvertIntoArgv,
  qemuImgCreateArgv,
  qemuSecretAlias,
  type DescriptorLayer,
  type QemuImgCreateSpec,
} from '../qemu-img-argv.js';
import { openImageChain, type ImageLayer } from '../image-references.js';
import { runQemuImgCalibrated } from '../qemu-img-run.js';
import { poolTarget } from './paths.js';
import { backingVirtualSize } from './backing-size.js';
import { createQcow2, qcow2Plan } from './create-qcow2.js';
import { removeSecretFile, writeSecretFile, type SecretFile } from './secret-file.js';
import { RESERVED_TARGET_FD, qemuImgTarget, withoutTargetCleanupNoise, type QemuImgTarget } from './qemu-img-target.js';
import { noteMadeFile, removeReservedFile } from './new-file.js';
import type { ResolvedCreate } from './volume-plan.js';
import { inStartedPoolDirectory } from './new-volume-name.js';

/** An image a clone converts from. */
export interface ImageInput {
  /** its name, for messages */
  path: string;
  format: string;
  /** it and its backing chain, opened and checked: qemu-img reads them as /dev/fd/N, nothing by name */
  layers: readonly ImageLayer[];
  /** a LUKS-encrypted source: the passphrase file that unlocks it, and the secret object's id */
  secret?: { alias: string; file: string };
}

/**
 * storageBackendCreateQemuImg: reserve the path (O_EXCL), run qemu-img on the reserved file,
 * set its permissions through the descriptor; a failure removes the file. A plain qcow2 create (see qcow2Plan) writes the image
 * in-process instead, byte for byte what that qemu-img command would write.
 */
export async function createWithQemuImg(
  ctx: PoolContext,
  r: ResolvedCreate,
  volume: VolumeDefinition,
  options: CreateVolOptions,
  qemuImg: string,
  input?: ImageInput,
): Promise<BuiltVolume | void> {
  const t = volume.target!;
  const encrypted = !!t.encryption;
  const qemuFormat = (r.format === 'raw' || r.format === 'iso') && encrypted ? 'luks' : r.format === 'iso' ? 'raw' : r.format;
  const backing = input ? undefined : volume.backingStore?.path ? volume.backingStore : undefined;
  if ((options.preallocMetadata || options.preallocation === 'metadata') && r.format !== 'qcow2') {
    throw new InvalidArgumentError('prealloc_metadata', 'metadata preallocation is only available with qcow2');
  }
  if ((options.preallocMetadata || options.preallocation) && backing) {
    throw new InvalidArgumentError('prealloc_metadata', 'metadata preallocation conflicts with a backing store');
  }
  // the backing chain as the agent opened and checked it; read from those descriptors only
  const chain = backing ? (options.backingImage ?? openImageChain(backingAbsolute(ctx, backing.path), backing.format, () => undefined, 'backing store', { wholeChain: true })) : undefined;
  try {
    return await buildImage(ctx, r, volume, options, qemuImg, qemuFormat, input, backing && chain ? { path: backing.path, layer: chain.layers[0]! } : undefined);
  } finally {
    if (!options.backingImage) chain?.close();
  }
}

/** A create's backing store: the path as the volume gives it (and the image records it), and its checked layer. */
interface CheckedBacking {
  path: string;
  layer: ImageLayer;
}

function backingAbsolute(ctx: PoolContext, path: string): string {
  return isAbsolute(path) ? path : join(poolTarget(ctx.pool), path);
}

async function buildImage(
  ctx: PoolContext,
  r: ResolvedCreate,
  volume: VolumeDefinition,
  options: CreateVolOptions,
  qemuImg: string,
  qemuFormat: string,
  input: ImageInput | undefined,
  backing: CheckedBacking | undefined,
): Promise<BuiltVolume | void> {
  const t = volume.target!;
  const encrypted = !!t.encryption;
  // as given, else as the checked file's header says (the chain check reads it so)
  const backingFormat = backing ? volume.backingStore?.format || backing.layer.format : '';
  // a clone of or into a LUKS volume takes libvirt's two steps (VIR_STORAGE_VOL_ENCRYPT_CREATE,
  // then _CONVERT): the target is created at its capacity with its encryption, then the
  // source's data is converted into it with `-n`, each end unlocked by its own secret
  const twoStep = !!input && (encrypted || !!input.secret);
  if (!input) {
    // the in-process writer reads the base's header through the checked descriptor too
    const plan = qcow2Plan(ctx, r, t, options, backing ? { path: backing.path, abs: `/proc/self/fd/${backing.layer.fd}`, format: backingFormat } : undefined);
    if (plan) return createQcow2(ctx, r, plan);
  }
  // qemu-img records the backing store without opening it (-u): it needs the size, the backing's when none is asked for
  const sizeK = divUp(r.capacity ?? 0n, 1024n);
  const backingSize = backing && sizeK === 0n ? await backingVirtualSize(ctx, backing.layer, qemuImg) : undefined;
  let secret: SecretFile | undefined;
  let reserved: FileHandle | undefined;
  let target: QemuImgTarget | undefined;
  try {
    if (encrypted) secret = await writeSecretFile(ctx, volume);
    checkAborted(ctx.signal, 'create');
    reserved = await inStartedPoolDirectory(r, false, (at) => open(at(), fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, r.mode));
    noteMadeFile(r, reserved.fd);
    const spec: QemuImgCreateSpec = {
      format: qemuFormat,
      path: r.path,
      capacity: r.capacity,
      allocation: r.allocation ?? r.capacity,
      preallocMetadata: options.preallocMetadata,
      preallocation: options.preallocation,
      backingPath: backing?.path,
      backingFormat,
      sizeBytes: backingSize,
      compat: t.compat || undefined,
      clusterSize: t.clusterSize,
      lazyRefcounts: t.lazyRefcounts,
      extendedL2: t.extendedL2,
      nocow: t.nocow,
      // the source chain as the descriptors after the target's (fd 3): 4, 5 ...
      inputPath: input && !twoStep ? qemuDescriptorChain(input.layers.map(descriptorLayer), RESERVED_TARGET_FD + 1) : undefined,
      inputFormat: input && !twoStep ? input.format : undefined,
      secret: secret ? { alias: qemuSecretAlias(volume.name), file: secret.file, qcow2: r.format === 'qcow2', cipher: t.encryption?.cipher, ivgen: t.encryption?.ivgen } : undefined,
    };
    // qemu-img writes into the file reserved above, not whatever r.path holds by then (qemu-img-target.ts)
    target = await qemuImgTarget({ fd: reserved.fd, path: r.path, name: volume.name, format: qemuFormat, backingPath: backing?.path, sizeGiven: createSizeGiven(spec) });
    // a convert's target is always its fd 3 (it has no backing path to keep it by name)
    if (input && target.fds.length !== 1) throw new Error('qemu-img convert without the reserved target as its fd 3');
    const inputFds = input?.layers.map((l) => l.fd) ?? [];
    const argv = qemuImgCreateArgv({ ...spec, path: target.path, backingUnopened: !!backing }, qemuImg);
    const long = !!input || !!options.preallocation || !!options.preallocMetadata;
    await runQemuImgCalibrated(ctx.runner, argv, { signal: ctx.signal, fds: [...target.fds, ...inputFds], ...(long ? { timeoutMs: 0 } : {}) });
    if (input && twoStep) {
      const into = convertIntoArgv(input, qemuFormat, r.format, spec.secret, qemuImg);
      checkAborted(ctx.signal, 'create');
      await ctx.runner.run(into, { signal: ctx.signal, fds: [...target.fds, ...inputFds], timeoutMs: 0 });
    }
    await reserved.chmod(r.mode);
    if (r.uid !== -1 || r.gid !== -1) await reserved.chown(r.uid, r.gid);
    await reserved.close();
    reserved = undefined;
  } catch (err) {
    if (reserved) await removeReservedFile(r.path, reserved);
    throw err instanceof CommandFailedError ? commandError(withoutTargetCleanupNoise(err), { field: 'volume.capacity', bytes: r.capacity ?? 0n }) : fsError(err, 'create volume', r.path);
  } finally {
    await target?.dispose();
    await removeSecretFile(secret);
  }
}

/**
 * The convert step of a two-step clone: the source chain (its head unlocked by its secret) into
 * the target created at fd 3 (unlocked by its own). The secret ids differ even when both volumes
 * have one name (a clone across pools): qemu refuses a second object of one id.
 */
function convertIntoArgv(input: ImageInput, qemuFormat: string, format: string, secret: { alias: string; file: string } | undefined, qemuImg: string): string[] {
  const inputSecret = input.secret && secret && input.secret.alias === secret.alias ? { ...input.secret, alias: 'input_encrypt0' } : input.secret;
  const layers = input.layers.map((l, i) => (i === 0 && inputSecret ? { ...descriptorLayer(l), keySecret: inputSecret.alias } : descriptorLayer(l)));
  // a raw + LUKS target is qemu's 'luks' format over the file; qemuDescriptorChain reads raw + a key so
  const targetLayer: DescriptorLayer = { format: qemuFormat === 'luks' ? 'raw' : format === 'iso' ? 'raw' : format, blockDevice: false, keySecret: secret?.alias };
  return qemuImgConvertIntoArgv(
    { image: qemuDescriptorChain(layers, RESERVED_TARGET_FD + 1), format: inputSecret && input.format === 'raw' ? 'luks' : input.format },
    { image: qemuDescriptorChain([targetLayer], RESERVED_TARGET_FD), format: qemuFormat },
    [secret, inputSecret].filter((s): s is { alias: string; file: string } => !!s),
    qemuImg,
  );
}

/** How qemu is to open one checked layer of a chain. */
function descriptorLayer(layer: ImageLayer): DescriptorLayer {
  return { format: layer.format, blockDevice: layer.stat.isBlockDevice() };
}
