// Parsers for dmsetup(8) output and its command lines: what libvirt's mpath backend
// asks libdevmapper (DM_DEVICE_LIST, DM_DEVICE_TABLE, DM_DEVICE_INFO), asked of the
// dmsetup tool through the command runner.
//   dmsetup ls --target multipath            name<TAB>(major:minor)   | "No devices found"
//   dmsetup table                            name: start length target params...
//     (read for the names ls listed only: any other device's name may hold anything but /)
//     (not --target: it drops the table lines of other target types, not just the devices)
//   dmsetup info -c --noheadings -o name,major,minor --separator :    name:major:minor
import { CommandFailedError, FailedPreconditionError, InternalError, asCisternError, type CisternError } from '../errors/errors.js';

export interface DmDevice {
  name: string;
  major: number;
  minor: number;
}

export interface DmTarget {
  start: bigint;
  /** In 512-byte sectors. */
  length: bigint;
  type: string;
  params: string;
}

export function dmsetupLsArgv(dmsetup: string, target: string): string[] {
  return [dmsetup, 'ls', '--target', target];
}

export function dmsetupTableArgv(dmsetup: string, target?: string): string[] {
  return target ? [dmsetup, 'table', '--target', target] : [dmsetup, 'table'];
}

/** `dmsetup ls` lines: `name\t(253:2)` (or the old `(253, 2)`); "No devices found" is none. */
export function parseDmsetupLs(output: string): DmDevice[] {
  const devices: DmDevice[] = [];
  for (const line of output.split('\n')) {
    if (!line.trim() || /^No devices found/.test(line)) continue;
    // dmsetup prints NAME<TAB>(MAJ:MIN): the name is all before the last tab, blanks included
    const m = /^(.+)\t\((\d+)(?::|,\s*)(\d+)\)\s*$/.exec(line) ?? /^(.+?)\s+\((\d+)(?::|,\s*)(\d+)\)\s*$/.exec(line);
    if (!m) throw new InternalError(`cannot parse dmsetup ls output line '${line.slice(0, 200)}'`);
    devices.push({ name: m[1]!, major: Number(m[2]), minor: Number(m[3]) });
  }
  return devices;
}

/**
 * `dmsetup table` for all devices: `name: start length type params`, one line per
 * target (a device with several targets has several lines). With `single`, the output
 * of `dmsetup table NAME` (no name prefix) for that device. With `only`, the tables of
 * those devices alone: each line goes to the longest of them it starts with (`NAME: `),
 * and the lines of every other device are passed over unread, so a device this caller
 * does not want, whatever its name holds (a blank, ': ', a newline), cannot fail it.
 */
export function parseDmsetupTable(output: string, single?: string, only?: readonly string[]): Map<string, DmTarget[]> {
  const tables = new Map<string, DmTarget[]>();
  const wanted = only ? [...only].sort((a, b) => b.length - a.length) : undefined;
  for (const line of output.split('\n')) {
    if (!line.trim() || /^No devices found/.test(line)) continue;
    let name: string;
    let rest: string;
    if (single !== undefined) {
      name = single;
      rest = line;
    } else if (wanted) {
      const n = wanted.find((w) => line.startsWith(`${w}: `) || line === `${w}:`);
      if (n === undefined) continue;
      name = n;
      rest = line.slice(n.length + 1);
    } else {
      const m = /^(.*?): (\d+ \d+ \S+.*)$/.exec(line) ?? /^(.*?):\s*$/.exec(line);
      if (!m) throw new InternalError(`cannot parse dmsetup table output line '${line.slice(0, 200)}'`);
      name = m[1]!;
      rest = m[2] ?? '';
    }
    const list = tables.get(name) ?? [];
    tables.set(name, list);
    if (!rest) continue; // a device without a table
    const t = /^(\d+) (\d+) (\S+)\s*(.*)$/.exec(rest.trim());
    if (!t) throw new InternalError(`cannot parse dmsetup table line '${line.slice(0, 200)}'`);
    list.push({ start: BigInt(t[1]!), length: BigInt(t[2]!), type: t[3]!, params: t[4]! });
  }
  return tables;
}

/** Size in bytes of a mapped device: the sum of its targets' lengths x 512. */
export function tableBytes(targets: readonly DmTarget[]): bigint {
  return targets.reduce((s, t) => s + t.length, 0n) * 512n;
}

/** libvirt's virStorageBackendIsMultipath: the first target is 'multipath'. */
export function isMultipathTable(targets: readonly DmTarget[] | undefined): boolean {
  return targets !== undefined && targets.length > 0 && targets[0]!.type === 'multipath';
}

/**
 * The block major the kernel gave device-mapper (dynamic: 253 or 254 on most hosts), from
 * /proc/devices ("Block devices:" then "MAJOR NAME" lines); undefined when it is not there.
 */
export function deviceMapperMajor(procDevices: string): number | undefined {
  const block = procDevices.split(/^Block devices:\s*$/m)[1];
  const m = block?.match(/^\s*(\d+)\s+device-mapper\s*$/m);
  return m ? Number(m[1]) : undefined;
}

export const NO_DEVICE_MAPPER =
  'device-mapper is not available in this kernel (no "device-mapper" in /proc/misc; /dev/mapper/control cannot be opened): load the dm_mod and dm_multipath modules, or use a kernel with CONFIG_BLK_DEV_DM';

/** A dmsetup failure as the user should see it: missing kernel support or tool, else INTERNAL. */
export function dmsetupError(err: unknown): CisternError {
  if (err instanceof CommandFailedError) {
    if (/kernel device-mapper driver|device-mapper is available|\/dev\/mapper\/control: open failed/i.test(err.stderr)) {
      return new FailedPreconditionError(NO_DEVICE_MAPPER, { command: err.argv.join(' '), stderr: err.stderr.trim() });
    }
    if (err.exitCode === undefined && /ENOENT|not found|No such file/i.test(err.stderr || err.message)) {
      return new FailedPreconditionError(`dmsetup is not installed on this host (Debian package dmsetup): ${err.message}`);
    }
  }
  return asCisternError(err);
}
