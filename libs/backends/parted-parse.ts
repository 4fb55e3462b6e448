// Parsers for what the disk backend reads from external tools:
//  - `parted -s -m -- DEV unit B print free unit chs print` (machine output: a BYT block
//    with the device, partitions and free regions in bytes, then a CHS block whose third
//    line is the BIOS geometry `cylinders:heads:sectors:cylsize;`), and
//  - `partx -g -o NR,TYPE -- DEV` (partition number and type id: 0x83 on dos, a GUID on gpt).
// libvirt reads the same facts through libparted (libvirt_parthelper); this is the
// command-line equivalent.
import { InternalError } from '../errors/errors.js';

export interface PartedDevice {
  path: string;
  size: bigint;
  transport: string;
  logicalSectorSize: number;
  physicalSectorSize: number;
  /** parted's label name: msdos gpt dvh mac bsd pc98 sun loop unknown ... */
  label: string;
  model: string;
}

export interface PartedEntry {
  /** Partition number (free regions: parted prints 1). */
  number: number;
  start: bigint;
  /** Last byte, inclusive, as parted prints it. */
  end: bigint;
  size: bigint;
  free: boolean;
  /** File system parted probed on the partition ('' when none). */
  fs: string;
  /** Partition name (gpt, mac, pc98); '' elsewhere. */
  name: string;
  flags: string[];
}

export interface DiskGeometry {
  cylinders: number;
  heads: number;
  sectors: number;
}

export interface PartedTable {
  device: PartedDevice;
  /** Partitions and free regions in disk order. */
  entries: PartedEntry[];
  /** BIOS geometry from the CHS block, when it was printed. */
  geometry?: DiskGeometry;
}

/** Splits one machine-output line at ':' (parted escapes ':' and '\' with '\'), dropping the final ';'. */
export function splitMachineLine(line: string): string[] {
  let text = line.trimEnd();
  if (text.endsWith(';')) text = text.slice(0, -1);
  const fields: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      cur += text[++i];
    } else if (c === ':') {
      fields.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  fields.push(cur);
  return fields;
}

function bytes(value: string | undefined, what: string, line: string): bigint {
  const m = /^(\d+)B$/.exec(value ?? '');
  if (!m) throw new InternalError(`cannot parse ${what} '${value ?? ''}' in parted output line '${line}'`);
  return BigInt(m[1]!);
}

function int(value: string | undefined, what: string, line: string): number {
  if (!/^\d+$/.test(value ?? '')) throw new InternalError(`cannot parse ${what} '${value ?? ''}' in parted output line '${line}'`);
  return Number(value);
}

const UNIT_MARKERS = new Set(['BYT', 'CHS', 'CYL']);

/** Parses `parted -m` output holding a `unit B print [free]` block and optionally a `unit chs print` block. */
export function parsePartedMachine(stdout: string): PartedTable {
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  let device: PartedDevice | undefined;
  let geometry: DiskGeometry | undefined;
  const entries: PartedEntry[] = [];
  let block = '';
  let lineInBlock = 0;
  for (const line of lines) {
    const marker = line.replace(/;$/, '');
    if (UNIT_MARKERS.has(marker)) {
      block = marker;
      lineInBlock = 0;
      continue;
    }
    lineInBlock++;
    const f = splitMachineLine(line);
    if (block === 'BYT') {
      if (lineInBlock === 1) {
        if (f.length < 6) throw new InternalError(`cannot parse parted device line '${line}'`);
        device = {
          path: f[0]!,
          size: bytes(f[1], 'device size', line),
          transport: f[2] ?? '',
          logicalSectorSize: int(f[3], 'logical sector size', line),
          physicalSectorSize: int(f[4], 'physical sector size', line),
          label: f[5] ?? '',
          model: f[6] ?? '',
        };
        continue;
      }
      if (f.length < 5) throw new InternalError(`cannot parse parted partition line '${line}'`);
      const free = f.length === 5 && f[4] === 'free';
      entries.push({
        number: int(f[0], 'partition number', line),
        start: bytes(f[1], 'partition start', line),
        end: bytes(f[2], 'partition end', line),
        size: bytes(f[3], 'partition size', line),
        free,
        fs: free ? '' : (f[4] ?? ''),
        name: free ? '' : (f[5] ?? ''),
        flags: free ? [] : (f[6] ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0),
      });
    } else if (block === 'CHS' && lineInBlock === 2) {
      // cylinders:heads:sectors:cylinder size
      if (f.length >= 3 && /^\d+$/.test(f[0]!) && /^\d+$/.test(f[1]!) && /^\d+$/.test(f[2]!)) {
        geometry = { cylinders: Number(f[0]), heads: Number(f[1]), sectors: Number(f[2]) };
      }
    }
  }
  if (!device) throw new InternalError(`parted printed no device line in bytes (BYT block): '${stdout.slice(0, 200)}'`);
  return { device, entries, geometry };
}

/** `partx -g -o NR,TYPE` lines: number -> type id (lower case: '0x83', a GUID, 'apple_free' ...). */
export function parsePartxTypes(stdout: string): Map<number, string> {
  const types = new Map<number, string>();
  for (const line of stdout.split('\n')) {
    const m = /^\s*(\d+)\s+(\S+)\s*$/.exec(line);
    if (m) types.set(Number(m[1]), m[2]!.toLowerCase());
  }
  return types;
}

/** Does parted's stderr/stdout say the device has no partition table it knows? */
export function isUnrecognisedLabel(text: string): boolean {
  return /unrecognised disk label/i.test(text);
}
