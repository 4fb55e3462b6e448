// The disk pool's model of a partition table and libvirt's rules on it
// (storage_backend_disk.c): which partitions are volumes and how they are named,
// which free regions count, the pool sizes, which kind of partition a create makes
// (primary / logical / extended by the dos rules), where it goes (the smallest free
// extent that fits, never two; dos ends on a cylinder boundary) and the parted argv.
import { Tristate } from '../proto/cistern/v1/storage.js';
import { FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError } from '../errors/errors.js';
import type { DiskGeometry, PartedTable } from './parted-parse.js';

/** libvirt's SECTOR_SIZE: partition boundaries are computed in 512-byte sectors. */
export const SECTOR_SIZE = 512n;

/** Pool formats (virStoragePoolFormatDisk without unknown/lvm2); 'dos' is parted's 'msdos'. */
export const DISK_POOL_FORMATS = ['dos', 'dvh', 'gpt', 'mac', 'bsd', 'pc98', 'sun'] as const;
export type DiskPoolFormat = (typeof DISK_POOL_FORMATS)[number];

/** Volume formats (virStorageVolFormatDisk): the partition type. */
export const DISK_VOLUME_FORMATS = ['none', 'linux', 'fat16', 'fat32', 'linux-swap', 'linux-lvm', 'linux-raid', 'extended'] as const;
export type DiskVolumeFormat = (typeof DISK_VOLUME_FORMATS)[number];

/** virStoragePartedFs: the FS-TYPE word parted's mkpart gets for each volume format. */
export const PARTED_FS_TYPE: Record<DiskVolumeFormat, string> = {
  none: 'ext2',
  linux: 'ext2',
  fat16: 'fat16',
  fat32: 'fat32',
  'linux-swap': 'linux-swap',
  'linux-lvm': 'ext2',
  'linux-raid': 'ext2',
  extended: 'extended',
};

export type PartitionKind = 'primary' | 'logical' | 'extended';

export interface DiskPartition {
  number: number;
  /** Device node: /dev/loop0p1, /dev/sda1 ... */
  path: string;
  /** Volume name: the node's last component. */
  name: string;
  start: bigint;
  /** Exclusive end (libvirt_parthelper prints (geom.end + 1) * sector size). */
  end: bigint;
  size: bigint;
  kind: PartitionKind;
  format: DiskVolumeFormat;
  fs: string;
  flags: string[];
  /** partx type id when known: 0x83, a GUID ... */
  typeId?: string;
}

export interface FreeExtent {
  start: bigint;
  /** Exclusive end. */
  end: bigint;
  /** Inside the extended partition (VIR_STORAGE_FREE_LOGICAL). */
  logical: boolean;
}

export interface DiskLayout {
  device: string;
  /** parted's label name (msdos, gpt ...). */
  label: string;
  /** The pool format of that label ('dos' for msdos), or the label itself when unknown to libvirt. */
  format: string;
  size: bigint;
  sectorSize: bigint;
  geometry?: DiskGeometry;
  partitions: DiskPartition[];
  free: FreeExtent[];
}

export function partedLabelOf(format: string): string {
  return format === 'dos' ? 'msdos' : format;
}

export function poolFormatOfLabel(label: string): string {
  return label === 'msdos' ? 'dos' : label;
}

/** Checks a pool format; '' and 'unknown' mean libvirt's default, dos. */
export function checkPoolFormat(format: string | undefined): DiskPoolFormat {
  const f = !format || format === 'unknown' ? 'dos' : format;
  if (!(DISK_POOL_FORMATS as readonly string[]).includes(f)) {
    throw new InvalidArgumentError('source.format', `unknown disk pool format '${f}'; allowed: ${DISK_POOL_FORMATS.join(', ')}`);
  }
  return f as DiskPoolFormat;
}

/** Checks a volume format; '' means 'none'. */
export function checkVolumeFormat(format: string | undefined): DiskVolumeFormat {
  const f = format || 'none';
  if (!(DISK_VOLUME_FORMATS as readonly string[]).includes(f)) {
    throw new InvalidArgumentError('target.format', `unknown partition type '${f}'; allowed: ${DISK_VOLUME_FORMATS.join(', ')}`);
  }
  return f as DiskVolumeFormat;
}

/** A device-mapper node (a multipath map, say): /dev/mapper/NAME or /dev/dm-N. */
export function isDeviceMapperPath(device: string): boolean {
  return /^\/dev\/(mapper\/[^/]+|dm-[0-9]+)$/.test(device);
}

/**
 * libvirt_parthelper's separator: a device whose name ends in a digit gets 'p'
 * (/dev/loop0 -> /dev/loop0p1, /dev/nvme0n1 -> /dev/nvme0n1p1), others none
 * (/dev/sda -> /dev/sda1). part_separator applies to a device-mapper node only, whose
 * partitions kpartx names as it is told: 'yes' adds 'p', 'no' drops it. Elsewhere the kernel
 * names them and part_separator is ignored, as libvirt 9.0's parthelper ignores it: /dev/loop1
 * with 'no' would take /dev/loop11, another device, for its first partition (and wipe, upload
 * and download it), and /dev/sdb with 'yes' would look for /dev/sdbp1, which never appears.
 */
export function partitionSeparator(device: string, partSeparator: Tristate = Tristate.TRISTATE_ABSENT): string {
  if (isDeviceMapperPath(device)) {
    if (partSeparator === Tristate.TRISTATE_YES) return 'p';
    if (partSeparator === Tristate.TRISTATE_NO) return '';
  }
  return /[0-9]$/.test(device) ? 'p' : '';
}

export function partitionPath(device: string, separator: string, number: number): string {
  return `${device}${separator}${number}`;
}

const DOS_TYPES: Record<string, DiskVolumeFormat> = {
  '0x0': 'none',
  '0x83': 'linux',
  '0x82': 'linux-swap',
  '0x8e': 'linux-lvm',
  '0xfd': 'linux-raid',
  '0x5': 'extended',
  '0xf': 'extended',
  '0x85': 'extended',
  '0x1': 'fat16', // FAT12
  '0x4': 'fat16',
  '0x6': 'fat16',
  '0xe': 'fat16',
  '0xb': 'fat32',
  '0xc': 'fat32',
};

const GPT_TYPES: Record<string, DiskVolumeFormat> = {
  '0fc63daf-8483-4772-8e79-3d69d8477de4': 'linux',
  '0657fd6d-a4ab-43c4-84e5-0933c84b4f4f': 'linux-swap',
  'e6d6d379-f507-44c2-a23c-238f2a3df928': 'linux-lvm',
  'a19d880f-05fc-4d3b-a006-743f0f84128e': 'linux-raid',
};

const LINUX_FILESYSTEMS = /^(ext[234]|xfs|btrfs|jfs|reiserfs|nilfs2|f2fs)$/;

/** The volume format of a partition: from its type id when partx knows it, else from parted's flags and probed fs. */
export function formatOfPartition(typeId: string | undefined, fs: string, flags: readonly string[]): DiskVolumeFormat {
  if (typeId) {
    const t = typeId.toLowerCase().replace(/^0x0*(?=[0-9a-f])/, '0x');
    const known = DOS_TYPES[t] ?? GPT_TYPES[t];
    if (known) return known;
  }
  if (flags.includes('lvm')) return 'linux-lvm';
  if (flags.includes('raid')) return 'linux-raid';
  if (flags.includes('swap') || fs.startsWith('linux-swap')) return 'linux-swap';
  if (fs === 'fat16' || fs === 'fat12') return 'fat16';
  if (fs === 'fat32') return 'fat32';
  if (LINUX_FILESYSTEMS.test(fs)) return 'linux';
  return 'none';
}

function within(inner: { start: bigint; end: bigint }, outer: { start: bigint; end: bigint }): boolean {
  return inner.start >= outer.start && inner.end <= outer.end;
}

/**
 * Where a dos table's usable space ends as libparted's msdos label sees it with cylinder
 * alignment on, which is how libvirt_parthelper opens the disk: the last, incomplete
 * cylinder (bios geometry heads x sectors) is a metadata region, not free space. parted's
 * command line aligns optimally, turns cylinder alignment off and prints that tail as
 * free; libvirt neither counts it as available nor places a partition in it. Only outside
 * the extended partition: one reaching into that cylinder keeps it as logical free space.
 */
function dosUsableEnd(size: bigint, sectorSize: bigint, geometry: DiskGeometry | undefined): bigint {
  if (!geometry || geometry.heads <= 0 || geometry.sectors <= 0) return size;
  const cylinder = BigInt(geometry.heads) * BigInt(geometry.sectors) * sectorSize;
  const end = size - (size % cylinder);
  return end > 0n ? end : size;
}

/**
 * Builds the layout from parted's table and partx's type ids. Rules (libvirt):
 * - the extended partition (dos, and dvh's volume header) is the one that holds other
 *   partitions or free regions, or carries an extended type id; partitions inside it are
 *   logical, and so is free space inside it;
 * - a free region starting at byte 0 starts at 512 (the first sector is never free);
 *   on dos, free space outside the extended partition ends where the last complete
 *   cylinder does (dosUsableEnd); regions left empty by that are dropped.
 */
export function buildLayout(
  table: PartedTable,
  types: ReadonlyMap<number, string>,
  options: { partSeparator?: Tristate; device?: string } = {},
): DiskLayout {
  const device = options.device ?? table.device.path;
  const sep = partitionSeparator(device, options.partSeparator);
  const label = table.device.label;
  const dos = label === 'msdos';
  const raw = table.entries.filter((e) => !e.free).map((e) => ({ ...e, endx: e.end + 1n }));
  const freeRaw = table.entries.filter((e) => e.free).map((e) => ({ start: e.start, end: e.end + 1n }));
  const extendedNumbers = new Set<number>();
  for (const p of raw) {
    const range = { start: p.start, end: p.endx };
    const typeFmt = types.get(p.number);
    const holdsOther =
      raw.some((q) => q !== p && within({ start: q.start, end: q.endx }, range)) || freeRaw.some((f) => within(f, range));
    const extendedType = typeFmt !== undefined && formatOfPartition(typeFmt, '', []) === 'extended';
    if (holdsOther || (dos && extendedType)) extendedNumbers.add(p.number);
  }
  const extendedRanges = raw.filter((p) => extendedNumbers.has(p.number)).map((p) => ({ start: p.start, end: p.endx }));
  const partitions: DiskPartition[] = raw.map((p) => {
    const range = { start: p.start, end: p.endx };
    const kind: PartitionKind = extendedNumbers.has(p.number)
      ? 'extended'
      : (dos && p.number > 4) || extendedRanges.some((r) => within(range, r))
        ? 'logical'
        : 'primary';
    const path = partitionPath(device, sep, p.number);
    const typeId = types.get(p.number);
    return {
      number: p.number,
      path,
      name: path.slice(path.lastIndexOf('/') + 1),
      start: p.start,
      end: p.endx,
      size: p.endx - p.start,
      kind,
      format: kind === 'extended' ? 'extended' : formatOfPartition(typeId, p.fs, p.flags),
      fs: p.fs,
      flags: p.flags,
      ...(typeId ? { typeId } : {}),
    };
  });
  const sectorSize = BigInt(table.device.logicalSectorSize || 512);
  const usableEnd = dos ? dosUsableEnd(table.device.size, sectorSize, table.geometry) : table.device.size;
  const free: FreeExtent[] = [];
  for (const f of freeRaw) {
    const start = f.start === 0n ? SECTOR_SIZE : f.start;
    const logical = extendedRanges.some((r) => within(f, r));
    // libparted's end-of-disk metadata lies outside every primary and extended partition:
    // logical free space runs to the extended partition's end, even into the last cylinder
    const end = logical || f.end < usableEnd ? f.end : usableEnd;
    if (start >= end) continue;
    free.push({ start, end, logical });
  }
  return {
    device,
    label,
    format: poolFormatOfLabel(label),
    size: table.device.size,
    sectorSize,
    geometry: table.geometry,
    partitions,
    free,
  };
}

/**
 * Pool sizes as virStorageBackendDiskMakeDataVol / MakeFreeExtent sum them: capacity = the
 * furthest end of any partition or free extent (not the device size: the table's own
 * trailing metadata, gpt's backup header or dos's incomplete last cylinder, is not in it),
 * allocation = every partition but the extended one, available = every free extent.
 */
export function layoutSizes(layout: DiskLayout): { capacity: bigint; allocation: bigint; available: bigint } {
  let allocation = 0n;
  let capacity = 0n;
  for (const p of layout.partitions) {
    if (p.kind !== 'extended') allocation += p.size;
    if (p.end > capacity) capacity = p.end;
  }
  let available = 0n;
  for (const f of layout.free) {
    available += f.end - f.start;
    if (f.end > capacity) capacity = f.end;
  }
  return { capacity, allocation, available };
}

/**
 * virStorageBackendDiskPartTypeToCreate + PartFormat: on dos, 'extended' makes the
 * extended partition (only one); otherwise a primary while fewer than four primary and
 * extended partitions exist, then a logical one inside the extended partition. Other
 * labels make primaries only.
 */
export function kindToCreate(layout: DiskLayout, format: DiskVolumeFormat): PartitionKind {
  const dos = layout.label === 'msdos';
  if (!dos) {
    if (format === 'extended') {
      throw new InvalidArgumentError('target.format', `partition type 'extended' exists only on dos partition tables; this disk has a ${layout.format} table`);
    }
    return 'primary';
  }
  const extended = layout.partitions.find((p) => p.kind === 'extended');
  const primaries = layout.partitions.filter((p) => p.kind === 'primary' || p.kind === 'extended').length;
  if (format === 'extended') {
    if (extended) throw new FailedPreconditionError(`extended partition already exists: '${extended.name}'; a dos table holds one`);
    if (primaries >= 4) throw new ResourceExhaustedError('no primary partition slot left for an extended partition: a dos table holds four');
    return 'extended';
  }
  if (primaries < 4) return 'primary';
  if (!extended) {
    throw new ResourceExhaustedError(
      'no extended partition found and no primary partition available: a dos table holds four primary partitions; make one of them an extended partition (format extended) to add logical ones',
    );
  }
  return 'logical';
}

/** The number parted gives the next partition of this kind: the lowest free primary slot, or after the last logical one. */
export function nextPartitionNumber(layout: DiskLayout, kind: PartitionKind): number {
  const used = new Set(layout.partitions.map((p) => p.number));
  if (kind === 'logical') {
    return Math.max(4, ...layout.partitions.filter((p) => p.kind === 'logical').map((p) => p.number)) + 1;
  }
  let n = 1;
  // dvh reserves 9 (volume header) and 11 (whole volume)
  while (used.has(n) || (layout.label === 'dvh' && (n === 9 || n === 11))) n++;
  return n;
}

export interface Placement {
  start: bigint;
  /** Last byte (inclusive), as parted's mkpart takes it. */
  end: bigint;
  extent: FreeExtent;
}

function cylinderBytes(layout: DiskLayout): bigint {
  const g = layout.geometry;
  if (g && g.heads > 0 && g.sectors > 0) return BigInt(g.heads) * BigInt(g.sectors) * SECTOR_SIZE;
  return 1024n * 1024n;
}

/**
 * virStorageBackendDiskPartBoundaries: the smallest free extent that fits (never two);
 * logical partitions only in free space inside the extended partition and start one
 * sector in (room for the EBR), primary and extended ones only outside it. On dos the
 * end is rounded up to a cylinder boundary (an extra cylinder when the start offset
 * does not fit in the rounding); other labels take the size rounded up to a sector.
 */
export function placePartition(layout: DiskLayout, kind: PartitionKind, capacity: bigint): Placement {
  const dos = layout.label === 'msdos';
  const sector = layout.sectorSize > SECTOR_SIZE ? layout.sectorSize : SECTOR_SIZE;
  const alloc = ((capacity + sector - 1n) / sector) * sector;
  const cyl = cylinderBytes(layout);
  const extra = (cyl - (alloc % cyl)) % cyl;
  let best: { extent: FreeExtent; size: bigint; needed: bigint; start: bigint } | undefined;
  for (const extent of layout.free) {
    if (kind === 'logical' ? !extent.logical : extent.logical) continue;
    const start = kind === 'logical' ? extent.start + SECTOR_SIZE : extent.start;
    if (start >= extent.end) continue;
    const size = extent.end - start;
    let needed = alloc;
    if (dos) {
      needed += extra;
      if (start % cyl > extra) needed += cyl;
      needed -= start % cyl;
    }
    if (size >= needed && (!best || size < best.size)) best = { extent, size, needed, start };
  }
  if (!best) {
    const largest = layout.free
      .filter((e) => (kind === 'logical' ? e.logical : !e.logical))
      .reduce((m, e) => (e.end - e.start > m ? e.end - e.start : m), 0n);
    const where = kind === 'logical' ? 'inside the extended partition' : layout.label === 'msdos' ? 'outside the extended partition' : 'on the disk';
    throw new ResourceExhaustedError(
      `no large enough free extent for a ${kind} partition of ${capacity} bytes: the largest free extent ${where} has ${largest} bytes${dos ? ' (dos partitions end on a cylinder boundary)' : ''}`,
      { requested: String(capacity), largestFreeExtent: String(largest) },
    );
  }
  return { start: best.start, end: best.start + best.needed - 1n, extent: best.extent };
}

/**
 * The mkpart argv exactly as libvirt builds it: `parted DEV mkpart --script PARTFORMAT
 * STARTB ENDB` where PARTFORMAT is one word-split argument: on dos 'extended',
 * 'primary FS' or 'logical FS' (FS from PARTED_FS_TYPE), elsewhere 'primary'.
 */
export function mkpartArgv(parted: string, layout: DiskLayout, kind: PartitionKind, format: DiskVolumeFormat, placement: Placement): string[] {
  let partFormat: string;
  if (layout.label !== 'msdos') partFormat = 'primary';
  else if (kind === 'extended') partFormat = 'extended';
  else partFormat = `${kind} ${PARTED_FS_TYPE[format]}`;
  return [parted, layout.device, 'mkpart', '--script', partFormat, `${placement.start}B`, `${placement.end}B`];
}

/** `parted DEV rm --script N` with N the partition's own number (never parsed out of its name). */
export function rmArgv(parted: string, device: string, partition: DiskPartition): string[] {
  return [parted, device, 'rm', '--script', String(partition.number)];
}
