// LUKS-encrypted partitions, as libvirt 9.0's disk createVol makes them: the partition is
// placed for the capacity plus 2 MiB of room for the LUKS header, then `qemu-img create -f
// luks` formats it with the volume's passphrase for a payload of the partition less that
// room; the volume shows that payload size and its <encryption> until a pool refresh reads
// the partition again as any other (libvirt's refresh does not look for a LUKS header there).
//
// qemu-img gets the passphrase in a file (dir/secret-file.ts), never on its command line, and
// writes through the partition's node as the agent opened it and checked it to be that
// partition of the pool's disk (its fd 3, `/dev/fd/3`): a name under /dev swapped meanwhile
// for a link is not followed.
import { constants as fsc } from 'node:fs';
import { open, readFile, realpath, stat, type FileHandle } from 'node:fs/promises';
import type { Encryption, VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { CommandFailedError, FailedPreconditionError, InvalidArgumentError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { PoolContext } from '../backend.js';
import { sysfsBlockDir } from '../device-number.js';
import { blockDeviceSize } from '../file-io.js';
import { commandError, deviceError } from '../fs-errors.js';
import { qemuImgCreateArgv, qemuSecretAlias } from '../qemu-img-argv.js';
import { runQemuImgCalibrated } from '../qemu-img-run.js';
import type { DiskPartition } from '../partition-plan.js';
import { writeSecretFile, type SecretFile } from '../dir/secret-file.js';
import { RESERVED_TARGET_PATH, withoutTargetCleanupNoise } from '../dir/qemu-img-target.js';
import { LUKS_HEADER_ROOM } from '../luks-header.js';
import type { DiskSource } from './paths.js';
import type { DiskTools } from './tools.js';

export { LUKS_HEADER_ROOM };

/**
 * The encryption a new partition may have: LUKS with one passphrase secret, on a partition
 * that holds data (not an extended one, whose node is its 1024-byte boot record: libvirt runs
 * qemu-img on it, which zeroes that record before failing, and the table no longer reads).
 * Checked before anything is written (libvirt checks once the partition exists).
 */
export function checkPartitionEncryption(enc: Encryption | undefined, format: string): void {
  if (!enc) return;
  const ef = enc.format || 'default';
  if (ef !== 'luks') {
    throw new InvalidArgumentError('target.encryption.format', `storage pool only supports LUKS encrypted volumes, not '${printable(ef)}'; allowed: luks`);
  }
  if (format === 'extended') {
    throw new InvalidArgumentError('target.encryption', 'an extended partition holds no data of its own and cannot be encrypted; encrypt a primary or logical partition');
  }
  if (enc.secrets.length !== 1) {
    throw new InvalidArgumentError('target.encryption.secrets', `a single <secret type='passphrase'> is expected, got ${enc.secrets.length}`);
  }
}

/** What the partition of a new volume must hold: the capacity, and the header's room when encrypted. */
export function partitionSizeFor(volume: VolumeDefinition, capacity: bigint): bigint {
  return volume.target?.encryption ? capacity + LUKS_HEADER_ROOM : capacity;
}

/** The volume as libvirt keeps it after the create: the payload's size, its encryption as given. */
export function encryptedView(read: VolumeDefinition, known: VolumeDefinition): VolumeDefinition {
  const enc = known.target?.encryption;
  if (!enc || !read.target) return read;
  const payload = (n: bigint | undefined): bigint | undefined => (n === undefined ? undefined : n > LUKS_HEADER_ROOM ? n - LUKS_HEADER_ROOM : 0n);
  return { ...read, capacity: payload(read.capacity), allocation: payload(read.allocation), target: { ...read.target, encryption: enc } };
}

/** The passphrase's file, written before the table changes: no passphrase, no partition. */
export function passphraseFile(ctx: PoolContext, volume: VolumeDefinition): Promise<SecretFile | undefined> {
  return volume.target?.encryption ? writeSecretFile(ctx, volume) : Promise.resolve(undefined);
}

/**
 * Formats the new partition LUKS: opens its node (exclusively: refused while something holds
 * it), checks the node opened is partition `created.number` of the pool's disk, and runs
 * qemu-img on that descriptor with the payload size libvirt gives (the partition less the
 * header's room).
 */
export async function formatLuks(ctx: PoolContext, tools: DiskTools, source: DiskSource, volume: VolumeDefinition, created: DiskPartition, secret: SecretFile): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(created.path, fsc.O_RDWR | fsc.O_EXCL);
    const size = await checkPartitionNode(fh, source, created);
    const enc = volume.target!.encryption!;
    const argv = qemuImgCreateArgv(
      {
        format: 'luks',
        path: RESERVED_TARGET_PATH,
        capacity: size - LUKS_HEADER_ROOM,
        secret: { alias: qemuSecretAlias(volume.name), file: secret.file, qcow2: false, cipher: enc.cipher, ivgen: enc.ivgen },
      },
      tools.qemuImg,
    );
    await runQemuImgCalibrated(ctx.runner, argv, { signal: ctx.signal, fds: [fh.fd] });
  } catch (err) {
    throw err instanceof CommandFailedError ? commandError(withoutTargetCleanupNoise(err)) : deviceError(err, 'format LUKS on', created.path);
  } finally {
    await fh?.close();
  }
}

/**
 * The opened node is a block device, partition `created.number` of the pool's disk (sysfs:
 * its `partition` file and its parent's device); returns its size. A device-mapper partition
 * (kpartx) has no such sysfs record: a block device is all that is checked then.
 */
async function checkPartitionNode(fh: FileHandle, source: DiskSource, created: DiskPartition): Promise<bigint> {
  const st = await fh.stat({ bigint: true });
  const name = printable(created.path, 200);
  if (!st.isBlockDevice()) throw new FailedPreconditionError(`'${name}' is not a block device: it is not partition ${created.number} of the pool's disk`);
  const dir = sysfsBlockDir(st.rdev);
  const number = await readFile(`${dir}/partition`, 'utf8').then((s) => s.trim(), () => undefined);
  if (number !== undefined) {
    const disk = await stat(source.nodeDevice, { bigint: true }).catch(() => undefined);
    const parent = await realpath(`${dir}/..`).catch(() => '');
    const diskDir = disk?.isBlockDevice() ? await realpath(sysfsBlockDir(disk.rdev)).catch(() => '') : '';
    if (number !== String(created.number) || !diskDir || parent !== diskDir) {
      throw new FailedPreconditionError(`'${name}' is no longer partition ${created.number} of '${printable(source.device, 200)}'; nothing was written to it`);
    }
  }
  const size = blockDeviceSize(st);
  if (size <= LUKS_HEADER_ROOM) throw new FailedPreconditionError(`partition '${name}' (${size} bytes) has no room for a LUKS payload after its 2 MiB header`);
  return size;
}
