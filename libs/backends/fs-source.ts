// An fs pool's source device or image file, opened once for a build that formats it. The
// checks before mkfs (not mounted, not held, not backing a loop device, empty for
// no_overwrite) and mkfs itself must see one file: by name, whoever can write where the name
// is (an image in a dir pool's directory, writable by the qemu user; a /dev/disk/by-* link
// udev repoints) swaps it for a link to a host disk after the checks, and root formats that
// disk. So the name is resolved once into an O_PATH descriptor (no driver's open runs), its
// fstat decides, only a block device or regular file is opened, and the checks, blkid and
// mkfs all go through that descriptor (`/proc/self/fd/N` here, `/dev/fd/3` for the tools).
import { closeSync, fstatSync, openSync, readlinkSync } from 'node:fs';
import type { PoolDefinition } from '../proto/cistern/v1/storage.js';
import { FailedPreconditionError } from '../errors/errors.js';
import { printable } from '../api/names.js';
import { fsError } from './fs-errors.js';
import { O_PATH, openProbeSync } from './safe-open.js';
import { splitDevT } from './device-number.js';
import type { MountSource } from './mount.js';

export interface OpenedFsSource {
  /** open read-only: hand it to a tool as `/dev/fd/3` */
  fd: number;
  /** what the descriptor is, for the mount table checks */
  described: Extract<MountSource, { kind: 'device' }>;
  close(): void;
}

/** What a stat shows, in the words of the refusal. */
function kindOf(st: ReturnType<typeof fstatSync>): string {
  return st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device' : st.isSocket() ? 'a socket' : 'not a file';
}

/**
 * Opens the source `device` of `pool` to format it: FAILED_PRECONDITION when it does not
 * exist or is not a block device or regular file (nothing of it is opened for I/O then).
 */
export function openFsSourceForFormat(device: string, pool: PoolDefinition): OpenedFsSource {
  let pathFd: number;
  try {
    pathFd = openSync(device, O_PATH);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new FailedPreconditionError(`source device '${printable(device, 200)}' does not exist when formatting pool '${printable(pool.name)}'`, { device });
    }
    throw fsError(err, 'open source device', device);
  }
  let fd: number;
  let st;
  try {
    st = fstatSync(pathFd, { bigint: true });
    if (!st.isBlockDevice() && !st.isFile()) {
      throw new FailedPreconditionError(
        `source device '${printable(device, 200)}' of pool '${printable(pool.name)}' is ${kindOf(fstatSync(pathFd))}; an fs pool's source is a block device or a filesystem image file`,
        { device },
      );
    }
    fd = openProbeSync(`/proc/self/fd/${pathFd}`);
  } catch (err) {
    throw fsError(err, 'open source device', device);
  } finally {
    closeSync(pathFd);
  }
  const realPath = readlinkSync(`/proc/self/fd/${fd}`);
  const described: OpenedFsSource['described'] = st.isBlockDevice()
    ? { kind: 'device', path: device, realPath, ...splitDevT(st.rdev) }
    : { kind: 'device', path: device, realPath, file: { dev: st.dev, ino: st.ino } };
  return { fd, described, close: () => closeSync(fd) };
}
