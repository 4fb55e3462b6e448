// What a block device holds, before anything overwrites it: libvirt's
// virStorageBackendDeviceIsEmpty (libblkid) through `blkid -p` (low-level probe,
// no cache). fs, logical and disk builds refuse a device that holds anything
// unless told to overwrite. And whether something holds the device itself (mounted,
// an LVM PV in use, swap, a guest): fs and disk refuse to format or relabel it then.
import { closeSync, constants as fsc, openSync } from 'node:fs';
import { FailedPreconditionError } from '../errors/errors.js';
import { checkAbsolutePath } from '../api/names.js';
import type { CommandRunner } from './runner.js';

export interface DeviceContent {
  /** Nothing blkid recognises: no filesystem, no partition table, no RAID/LVM signature. */
  empty: boolean;
  /** blkid found more than one signature and would not choose (exit 8, "ambivalent result"). */
  ambivalent?: boolean;
  /** TYPE: ext4, xfs, LVM2_member, swap ... */
  type?: string;
  /** PTTYPE: gpt, dos ... */
  partitionTable?: string;
  /** USAGE: filesystem, raid, crypto, other. */
  usage?: string;
}

/** `blkid -p -o export` output: KEY=value lines. */
export function parseBlkidExport(stdout: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) values[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return values;
}

export async function probeDeviceContent(
  runner: CommandRunner,
  device: string,
  options: { signal?: AbortSignal; fd?: number } = {},
): Promise<DeviceContent> {
  const path = checkAbsolutePath(device, 'source.device.path');
  // exit 2: nothing found; exit 0: something found; exit 8: several signatures (e.g. a
  // filesystem over an older one of another type), which is not empty either. With `fd`
  // (the device opened and checked by the caller) blkid probes that, not what the name holds now.
  const argv = ['blkid', '-p', '-o', 'export', '--', options.fd === undefined ? path : '/dev/fd/3'];
  const result = await runner.run(argv, { okExitCodes: [0, 2, 8], signal: options.signal, ...(options.fd === undefined ? {} : { fds: [options.fd] }) });
  if (result.exitCode === 2) return { empty: true };
  if (result.exitCode === 8) return { empty: false, ambivalent: true };
  const values = parseBlkidExport(result.stdout);
  return {
    empty: !values.TYPE && !values.PTTYPE,
    type: values.TYPE,
    partitionTable: values.PTTYPE,
    usage: values.USAGE,
  };
}

/**
 * Refuses a device holding a filesystem or partition table, naming what it found (`fd`: probe
 * that open device). `fsType`: the filesystem an fs pool's build would make (blkid's TYPE name).
 * Finding that very one means the pool is built already (libvirt 9.0: "Device '...' already
 * formatted using 'ext4'"): the way on is starting the pool, not the overwrite that would
 * destroy it; another one "does not match the expected format", as libvirt says.
 */
export async function requireEmptyDevice(runner: CommandRunner, device: string, signal?: AbortSignal, fd?: number, fsType?: string): Promise<void> {
  const content = await probeDeviceContent(runner, device, { signal, fd });
  if (content.empty) return;
  if (fsType !== undefined && !content.ambivalent && !content.partitionTable && content.type) {
    if (content.type === fsType) {
      throw new FailedPreconditionError(
        `device '${device}' already holds a filesystem of the pool's format '${fsType}': the pool is built; start the pool to use that filesystem, ` +
          'or build with overwrite only to replace it (and all it holds) with an empty one',
        { device, found: content.type },
      );
    }
    throw new FailedPreconditionError(
      `device '${device}' holds ${content.type} data, not the pool's format '${fsType}'; build with overwrite to destroy it, or choose an empty device`,
      { device, found: content.type },
    );
  }
  const what = content.ambivalent
    ? 'more than one signature (blkid cannot tell which is current; `wipefs --no-act` lists them)'
    : content.partitionTable
      ? `a ${content.partitionTable} partition table`
      : `${content.type} data`;
  throw new FailedPreconditionError(
    `device '${device}' holds ${what}; build with overwrite to destroy it, or choose an empty device`,
    { device, found: content.ambivalent ? 'several signatures' : (content.partitionTable ?? content.type ?? 'data') },
  );
}

/**
 * Whether a block device is held open exclusively (mounted, an LVM PV in use, a swap, a
 * device-mapper or md member): an exclusive open fails with EBUSY exactly then. Any other
 * failure is not an answer to that question (false): the command that follows reports it.
 */
export function isHeldExclusively(path: string): boolean {
  // a /proc/self/fd/N path reopens the very device opened there (O_EXCL still says EBUSY)
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_EXCL | fsc.O_NONBLOCK);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EBUSY';
  }
  closeSync(fd);
  return false;
}
