// LUKS-encrypted logical volumes, as libvirt 9.0's logical createVol makes them
// (virStorageBackendLogicalLVCreate, then virStorageBackendCreateVolUsingQemuImg): lvcreate for
// the capacity plus 2 MiB of room for the LUKS header (on the virtual size of a sparse LV), then
// `qemu-img create -f luks` on the LV for the capacity asked, with the volume's passphrase.
//
// What the volume shows: an LV has no format (VIR_STORAGE_FILE_NONE), so libvirt reads nothing
// from its header, before or after: capacity and allocation are the LV's whole size (the
// payload is not subtracted, unlike a disk pool's partition), and the <encryption> stays on the
// volume as created until a pool refresh lists the LV again without it (refresh.ts).
//
// qemu-img gets the passphrase in a file (dir/secret-file.ts), never on its command line, and
// writes through the LV's node as the agent opened it (exclusively: refused while something
// holds it) and checked it to be that LV (its device-mapper uuid names the LV's uuid), as its
// fd 3 (`/dev/fd/3`): a name under the pool's target swapped meanwhile is not followed.
import { constants as fsc } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import type { Encryption, VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { CommandFailedError, FailedPreconditionError, InvalidArgumentError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { PoolContext } from '../backend.js';
import type { LvRecord } from '../lvm-parse.js';
import { sysfsBlockDir } from '../device-number.js';
import { blockDeviceSize } from '../file-io.js';
import { commandError, deviceError } from '../fs-errors.js';
import { qemuImgCreateArgv, qemuSecretAlias } from '../qemu-img-argv.js';
import { runQemuImgCalibrated } from '../qemu-img-run.js';
import { writeSecretFile, type SecretFile } from '../dir/secret-file.js';
import { RESERVED_TARGET_PATH, withoutTargetCleanupNoise } from '../dir/qemu-img-target.js';
import { LUKS_HEADER_ROOM } from '../luks-header.js';
import type { LogicalTools } from './tools.js';

/**
 * The encryption a new LV may have: LUKS with one passphrase secret, on an LV that is no
 * snapshot. Checked before anything runs; libvirt 9.0 checks the secrets, and refuses a
 * snapshot ("cannot set backing store for raw volume"), only once lvcreate has made the LV.
 */
export function checkLvEncryption(enc: Encryption | undefined, backingPath: string | undefined): void {
  if (!enc) return;
  const format = enc.format || 'default';
  if (format !== 'luks') {
    throw new InvalidArgumentError('volume.target.encryption.format', `storage pool only supports LUKS encrypted volumes, not '${printable(format)}'; allowed: luks`);
  }
  if (backingPath) {
    throw new InvalidArgumentError(
      'volume.backing_store.path',
      `a snapshot of '${printable(backingPath, 200)}' cannot be LUKS-encrypted: its data is its origin's; create the encrypted volume without a backing store`,
    );
  }
  if (enc.secrets.length !== 1) {
    throw new InvalidArgumentError('volume.target.encryption.secrets', `a single <secret type='passphrase'> is expected, got ${enc.secrets.length}`);
  }
}

/** The room lvcreate adds to an encrypted LV's (virtual) size for the LUKS header; 0 for a plain one. */
export function headerRoomFor(volume: VolumeDefinition): bigint {
  return volume.target?.encryption ? LUKS_HEADER_ROOM : 0n;
}

/** The passphrase's file, written before lvcreate runs: no passphrase, no LV. */
export function passphraseFile(ctx: PoolContext, volume: VolumeDefinition): Promise<SecretFile | undefined> {
  return volume.target?.encryption ? writeSecretFile(ctx, volume) : Promise.resolve(undefined);
}

/** `read` with the encryption `known` has: libvirt keeps a created LV's until a pool refresh. */
export function keepEncryption(read: VolumeDefinition, known: VolumeDefinition): VolumeDefinition {
  const enc = known.target?.encryption;
  return enc && read.target ? { ...read, target: { ...read.target, encryption: enc } } : read;
}

/**
 * Formats the new LV LUKS: opens its node exclusively, checks it is the LV lvcreate made (`rec`,
 * active), and runs qemu-img on that descriptor for the capacity asked (libvirt:
 * vol->target.capacity, rounded up to KiB). `regularFiles`: a regular file stands for the node
 * (unit tests only: no device-mapper there).
 */
export async function formatLuks(ctx: PoolContext, tools: LogicalTools, planned: VolumeDefinition, rec: LvRecord, secret: SecretFile, regularFiles: boolean): Promise<void> {
  const path = planned.target!.path;
  if (!rec.active) {
    throw new FailedPreconditionError(`logical volume '${printable(path, 200)}' is not active (state ${rec.state}): it has no device node to write its LUKS header to`);
  }
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, fsc.O_RDWR | fsc.O_EXCL | fsc.O_NOCTTY);
    const capacity = planned.capacity!;
    await checkLvNode(fh, path, rec, capacity + LUKS_HEADER_ROOM, regularFiles);
    const enc = planned.target!.encryption!;
    const argv = qemuImgCreateArgv(
      {
        format: 'luks',
        path: RESERVED_TARGET_PATH,
        capacity,
        secret: { alias: qemuSecretAlias(planned.name), file: secret.file, qcow2: false, cipher: enc.cipher, ivgen: enc.ivgen },
      },
      tools.qemuImg,
    );
    await runQemuImgCalibrated(ctx.runner, argv, { signal: ctx.signal, fds: [fh.fd] });
  } catch (err) {
    throw err instanceof CommandFailedError ? commandError(withoutTargetCleanupNoise(err)) : deviceError(err, 'format LUKS on', path);
  } finally {
    await fh?.close();
  }
}

/**
 * The opened node is the LV `rec`: a block device whose device-mapper uuid is
 * `LVM-<VG uuid><LV uuid>` (the dashes dropped) with this LV's uuid, at least `needed` bytes.
 */
async function checkLvNode(fh: FileHandle, path: string, rec: LvRecord, needed: bigint, regularFiles: boolean): Promise<void> {
  const st = await fh.stat({ bigint: true });
  const name = printable(path, 200);
  let size: bigint;
  if (st.isBlockDevice()) {
    const dmUuid = await readFile(`${sysfsBlockDir(st.rdev)}/dm/uuid`, 'utf8').then((s) => s.trim(), () => '');
    const lv = /^LVM-[A-Za-z0-9]{32}([A-Za-z0-9]{32})$/.exec(dmUuid)?.[1];
    if (!lv || lv !== rec.uuid.replace(/-/g, '')) {
      throw new FailedPreconditionError(`'${name}' is not the logical volume lvcreate made (uuid ${printable(rec.uuid)}); nothing was written to it`);
    }
    size = blockDeviceSize(st);
  } else if (regularFiles && st.isFile()) {
    size = st.size;
  } else {
    throw new FailedPreconditionError(`'${name}' is not a block device: it is not the logical volume lvcreate made; nothing was written to it`);
  }
  if (size < needed) {
    throw new FailedPreconditionError(`logical volume '${name}' (${size} bytes) has no room for a ${needed - LUKS_HEADER_ROOM}-byte LUKS payload after its 2 MiB header`);
  }
}
