// Resizing a dir pool's volume: storageVolResize's checks and virStorageBackendVolResizeLocal.
// Raw files (and iso images, raw bytes to qemu) are truncated (and allocated) in-process;
// qcow2 and qed, and LUKS-encrypted raw or qcow2 volumes, through qemu-img resize. Every
// write goes through a descriptor that writableVolume opened and checked, qemu-img's included.
import { constants as fsc, type BigIntStats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { PoolDefinition, VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import {
  CommandFailedError,
  FailedPreconditionError,
  InvalidArgumentError,
  ResourceExhaustedError,
  UnimplementedError,
} from '../../errors/errors.js';
import { MAX_SIZE, checkSize, printable } from '../../api/names.js';
import type { AllocatingGrow, PoolContext, ResizeFlags } from '../backend.js';
import { commandError, fsError, namingFile } from '../fs-errors.js';
import { checkAborted } from '../file-io.js';
import {
  qemuDescriptorChainNode,
  qemuDescriptorTarget,
  qemuImgResizeArgv,
  qemuImgResizeEncryptedArgv,
  qemuSecretAlias,
} from '../qemu-img-argv.js';
import { checkImageAlone, type ImageChain } from '../image-references.js';
import { FIRST_BACKING_FD, cannotZeroGrownArea, descriptorLayer, openGrownBacking } from './grown-backing.js';
import { poolTarget, volumePath, writableVolume, type CheckedVolume } from './paths.js';
import { isPloopDirectory, probeOpenedVolume } from './inspect.js';
import { openPoolDirectoryDirect } from './pool-directory.js';
import { poolRuntime } from './refresh.js';
import { allocatePastEnd, fallocateRange } from './allocate.js';
import { removeSecretFile, writeSecretFile, type SecretFile } from './secret-file.js';
import type { DirTools } from './tools.js';

/**
 * Delta adds to (or with shrink subtracts from) the current capacity; never below the
 * allocation; shrinking needs the shrink flag; allocate only for unencrypted raw and only if
 * the pool has the space. The volume is opened (and checked) first, and its format and sizes
 * are read from that descriptor: by name, someone who can write in the pool directory could
 * swap it for a link between the read and the open, and the header of a file outside the
 * pool would choose the resize and show its sizes in an error.
 */
export async function resizeVolume(
  ctx: PoolContext,
  volume: VolumeDefinition,
  capacity: bigint,
  flags: ResizeFlags,
  tools: Pick<DirTools, 'qemuImg' | 'fallocate'>,
): Promise<void> {
  checkSize(capacity, 'capacity');
  const opened = await openForResize(ctx.pool, volume.name);
  try {
    await resizeOpened(ctx, volume, opened, capacity, flags, tools);
  } finally {
    await opened.fh.close().catch(() => undefined);
  }
}

/** The volume opened read-write through the checked pool directory; a ploop image directory is refused as unsupported, as before the open. */
async function openForResize(pool: PoolDefinition, name: string): Promise<CheckedVolume> {
  try {
    return await writableVolume(pool, name, fsc.O_RDWR, 'resize');
  } catch (err) {
    if (err instanceof FailedPreconditionError && (await isPloopDirectoryIn(pool, name))) throw ploopUnsupported();
    throw err;
  }
}

/** Whether NAME in the pool directory the pool started with is a ploop image directory (looked up through that directory). */
async function isPloopDirectoryIn(pool: PoolDefinition, name: string): Promise<boolean> {
  const dir = await openPoolDirectoryDirect(pool).catch(() => undefined);
  if (!dir) return false;
  try {
    return isPloopDirectory(dir.pathOf(name));
  } finally {
    await dir.close();
  }
}

function ploopUnsupported(): UnimplementedError {
  return new UnimplementedError('resizing ploop volumes needs the ploop tools, which are not supported');
}

async function resizeOpened(
  ctx: PoolContext,
  volume: VolumeDefinition,
  opened: CheckedVolume,
  capacity: bigint,
  flags: ResizeFlags,
  tools: Pick<DirTools, 'qemuImg' | 'fallocate'>,
): Promise<void> {
  const cur = probeOpenedVolume(opened.fh.fd, opened.stat);
  const format = cur.probe.format;
  const curCap = cur.capacity;
  const curAlloc = cur.allocation;
  let abs: bigint;
  if (flags.delta) abs = flags.shrink ? curCap - (capacity < curCap ? capacity : curCap) : curCap + capacity;
  else abs = capacity;
  if (abs > MAX_SIZE) throw new InvalidArgumentError('capacity', `the new capacity ${abs} is out of range; allowed: up to ${MAX_SIZE} bytes`);
  if (abs < curAlloc) {
    throw new InvalidArgumentError('capacity', `can't shrink capacity (${abs}) below the existing allocation (${curAlloc})`);
  }
  if (abs < curCap && !flags.shrink) {
    throw new InvalidArgumentError('capacity', `can't shrink capacity (${abs}) below the current capacity (${curCap}) unless the shrink flag is given`);
  }
  const encrypted = !!cur.encryption;
  if (flags.allocate) {
    // libvirt's VIR_ERR_OPERATION_UNSUPPORTED, in its words: the request is well formed, this
    // volume cannot do it (UNIMPLEMENTED, as Cistern's other refusals of what a volume cannot do)
    if (format !== 'raw' || encrypted) {
      const what = encrypted ? `an unencrypted raw volume: volume '${printable(volume.name)}' is encrypted` : `raw type volume: volume '${printable(volume.name)}' is ${format}`;
      throw new UnimplementedError(`preallocate is only supported for ${what}; resize it without allocate`, { volume: volume.name });
    }
    const delta = abs - curAlloc;
    const { available } = await poolRuntime(poolTarget(ctx.pool));
    if (delta > available) {
      // the agent adds the pool, its host and the space it has (services/agent/no-space.ts)
      throw new ResourceExhaustedError(`not enough space left in storage pool: the resize would allocate ${delta} more bytes`);
    }
  }
  // an iso is raw bytes to qemu, which has no iso driver: libvirt's `qemu-img resize PATH`
  // reads it as raw and sets its size (allocate was refused above, as libvirt refuses it)
  if ((format === 'raw' || format === 'iso') && !encrypted) return resizeRawFile(ctx, opened, abs, !!flags.allocate, tools.fallocate, flags.onAllocatingPastEnd);
  if (format === 'ploop') throw ploopUnsupported();
  // qemu-img opens what the header names besides the backing chain by name, read-write (a
  // qcow2's data file, whose size it sets; a wrapping VMDK's extents): refused before it runs
  checkImageAlone(volumePath(ctx.pool, volume.name), opened.fh.fd, opened.stat.isFile() ? opened.stat.size : cur.size);
  if (encrypted) {
    // libvirt: "resize of qcow2 encrypted image is not supported" (the legacy AES encryption)
    if (cur.encryption?.format !== 'luks' || (format !== 'raw' && format !== 'qcow2')) {
      throw new InvalidArgumentError(
        'volume',
        `resize of ${format} images with '${cur.encryption?.format ?? ''}' encryption is not supported; only LUKS-encrypted raw and qcow2 volumes can be resized`,
      );
    }
    const chain = abs > curCap ? openGrownBacking(ctx.pool, volume.name, cur.probe.backingStore, flags) : undefined;
    try {
      return await resizeEncrypted(ctx, volume, opened, format, abs, abs < curCap, tools.qemuImg, chain);
    } catch (err) {
      if (err instanceof CommandFailedError && /Failed to zero out new clusters/.test(err.stderr)) throw cannotZeroGrownArea(volume.name, curCap, err);
      throw err;
    } finally {
      chain?.close();
    }
  }
  // qemu-img opens the file this agent opened and checked, not whatever the path holds by
  // then (the formats it cannot resize too: it says so, 'does not support resize', but
  // by name it would probe a link to /etc/shadow as raw and resize that)
  const chain = abs > curCap ? openGrownBacking(ctx.pool, volume.name, cur.probe.backingStore, flags) : undefined;
  try {
    const target = qemuDescriptorTarget(format, opened.fdPath, chain ? qemuDescriptorChainNode(chain.layers.map(descriptorLayer), FIRST_BACKING_FD) : null);
    await ctx.runner.run(qemuImgResizeArgv(target, abs, abs < curCap, tools.qemuImg), { signal: ctx.signal, fds: chain?.layers.map((l) => l.fd) ?? [] });
  } catch (err) {
    // a driver without resize, or none at all in this qemu (cow: removed from qemu long ago)
    if (err instanceof CommandFailedError && /does not support resize|Unknown driver/.test(err.stderr)) throw formatNotResizable(format, err);
    if (err instanceof CommandFailedError && /Failed to zero out new clusters/.test(err.stderr)) throw cannotZeroGrownArea(volume.name, curCap, err);
    throw namingFile(commandError(err, { field: 'capacity', bytes: abs }), opened.fdPath, opened.path);
  } finally {
    chain?.close();
  }
}

/**
 * qemu-img has no resize for this format (vmdk, vdi, vpc, qcow, ...): the refusal names the
 * format, not the json: target of a /proc descriptor path qemu-img was given. Which formats
 * resize is qemu-img's to say (its answer is read, not a list kept here); of those a dir pool
 * creates, qemu-img 7.2 resizes raw, qcow2 and qed, which the message names as the way out.
 */
function formatNotResizable(format: string, err: CommandFailedError): UnimplementedError {
  // its reason, without the "Could not open 'json:{... /proc/PID/fd/N ...}'" it names the image by
  const said = (err.stderr.trim().split('\n').at(-1) ?? '').replace(/^qemu-img: /, '').replace(/^Could not open '.*': /s, '');
  return new UnimplementedError(
    `resizing ${format} volumes is not supported: qemu-img cannot resize the ${format} format (${printable(said, 200)}); it resizes raw, qcow2 and qed`,
    err.details,
  );
}

/** A raw file truncated to `capacity`; with `allocate`, its blocks up to it allocated first. */
async function resizeRawFile(
  ctx: PoolContext,
  opened: CheckedVolume,
  capacity: bigint,
  allocateBlocks: boolean,
  fallocate: string,
  onAllocatingPastEnd?: (grow: AllocatingGrow) => void,
): Promise<void> {
  const { fh, stat, fdPath } = opened;
  try {
    if (!allocateBlocks) await fh.truncate(Number(capacity));
    else if (capacity > stat.size) await growAllocated(ctx, fh, stat, fdPath, capacity, fallocate, onAllocatingPastEnd);
    else await allocateBelow(ctx, fh, stat, fdPath, capacity, fallocate);
  } catch (err) {
    throw fsError(namingFile(err, fdPath, opened.path), 'resize', opened.path);
  }
}

/**
 * An allocating resize to the same or a smaller size: libvirt's virFileResize allocates
 * [0, capacity) whatever the old size, so `vol-resize V <its capacity> --allocate` fills a
 * sparse volume's holes, and an allocating shrink leaves it fully allocated. The holes are
 * allocated before the size is cut, as libvirt does: a failed allocation leaves the volume
 * as it was. A file without holes has nothing to allocate (and a filesystem without
 * fallocate is not asked to).
 */
async function allocateBelow(ctx: PoolContext, fh: FileHandle, opened: BigIntStats, fdPath: string, capacity: bigint, fallocate: string): Promise<void> {
  if (capacity > 0n && opened.isFile() && opened.blocks * 512n < opened.size) await fallocateRange(ctx, fdPath, capacity, fallocate);
  await fh.truncate(Number(capacity));
  await fh.sync();
}

/**
 * Allocates first, past the end without moving the size, and sets the size last: a failed or
 * cancelled allocation puts the old size back, and an agent killed during it leaves the old
 * size, so the volume is never left at a capacity the call did not report done. The blocks
 * such a kill leaves past the end are the next start's to give back (undoInterruptedGrow):
 * `onAllocatingPastEnd` is told before the first of them is allocated.
 */
async function growAllocated(
  ctx: PoolContext,
  fh: FileHandle,
  opened: BigIntStats,
  fdPath: string,
  capacity: bigint,
  fallocate: string,
  onAllocatingPastEnd?: (grow: AllocatingGrow) => void,
): Promise<void> {
  const size = opened.size;
  if (opened.isFile()) onAllocatingPastEnd?.({ file: { ino: opened.ino, birthtimeNs: opened.birthtimeNs }, size, capacity });
  try {
    // libvirt allocates the whole file (virFileAllocate(fd, 0, capacity)): a sparse
    // volume's holes get their blocks too (fallocate never writes over data)
    if (opened.isFile() && opened.blocks * 512n < size) await fallocateRange(ctx, fdPath, capacity, fallocate, true);
    else await allocatePastEnd(ctx, fh, size, capacity, fallocate, 'capacity');
    await fh.truncate(Number(capacity));
    await fh.sync();
  } catch (err) {
    await fh.truncate(Number(size)).catch(() => undefined);
    throw err;
  }
}

/**
 * storageBackendResizeQemuImg for a LUKS-encrypted raw or qcow2 volume: qemu-img unlocks the
 * image with the passphrase (a secret file, removed afterwards whatever happens) and resizes
 * its payload: the file this agent opened and checked (writableVolume), not whatever the
 * path holds by then. The passphrase is the secret the volume's definition
 * names, else the one whose usage is the volume's path (libvirt's default secret).
 */
async function resizeEncrypted(
  ctx: PoolContext,
  volume: VolumeDefinition,
  opened: CheckedVolume,
  format: 'raw' | 'qcow2',
  capacity: bigint,
  shrink: boolean,
  qemuImg: string,
  /** a growing qcow2 overlay's backing chain (openGrownBacking): qemu-img's fd 3, 4 ... */
  chain?: ImageChain,
): Promise<void> {
  const defaultUsage = volumePath(ctx.pool, volume.name);
  let secret: SecretFile | undefined;
  try {
    secret = await writeSecretFile(ctx, volume, defaultUsage);
    checkAborted(ctx.signal, 'resize');
    const argv = qemuImgResizeEncryptedArgv(
      {
        format,
        path: opened.fdPath,
        capacity,
        shrink,
        secret: { alias: qemuSecretAlias(volume.name), file: secret.file },
        backing: chain ? qemuDescriptorChainNode(chain.layers.map(descriptorLayer), FIRST_BACKING_FD) : null,
      },
      qemuImg,
    );
    try {
      await ctx.runner.run(argv, { signal: ctx.signal, fds: chain?.layers.map((l) => l.fd) ?? [] });
    } catch (err) {
      if (err instanceof CommandFailedError && /Invalid password, cannot unlock any keyslot/.test(err.stderr)) {
        throw new FailedPreconditionError(
          `the passphrase given for volume '${printable(volume.name)}' does not unlock it (qemu-img: invalid password, cannot unlock any keyslot); ` +
            `set the volume's passphrase as the value of its secret`,
          err.details,
        );
      }
      throw namingFile(commandError(err, { field: 'capacity', bytes: capacity }), opened.fdPath, opened.path);
    }
  } finally {
    await removeSecretFile(secret);
  }
}
