// Parsers for the LVM reports the logical backend reads, with the command lines that
// produce them (libvirt 9's storage_backend_logical.c: the same programs, options and
// separators), and the LVM naming rules (lvm2 lib/misc/lvm-string.c).
import { InternalError, InvalidArgumentError } from '../errors/errors.js';
import { printable } from '../api/names.js';
import { LVM_NAME_LEN, LVM_NAME_RULE, lvmNameProblem } from '../api/source-names.js';

export { checkVgName, LVM_NAME_LEN, LVM_NAME_RULE } from '../api/source-names.js';

/**
 * lvs fields libvirt reads, in its order, then origin_size: what a snapshot shows (its
 * origin's size; the virtual size of a --virtualsize LV), where its size is only the COW
 * area. libvirt reads that from the device node of an active LV; an inactive one has none.
 */
export const LVS_FIELDS = 'lv_name,origin,uuid,devices,segtype,stripes,seg_size,vg_extent_size,size,lv_attr,origin_size';

/** `lvs` as libvirt 9 runs it (plus origin_size): '#' separator (LV names may hold ':', devices hold ','). */
export function lvsArgv(vg: string, lvs = 'lvs'): string[] {
  return [lvs, '--separator', '#', '--noheadings', '--units', 'b', '--unbuffered', '--nosuffix', '--options', LVS_FIELDS, vg];
}

/** `vgs` exactly as libvirt 9 runs it for the pool sizes. */
export function vgsArgv(vg: string, vgs = 'vgs'): string[] {
  return [vgs, '--separator', ':', '--noheadings', '--units', 'b', '--unbuffered', '--nosuffix', '--options', 'vg_size,vg_free', vg];
}

/** `pvs` exactly as libvirt 9 runs it to find pool sources. */
export function pvsArgv(pvs = 'pvs'): string[] {
  return [pvs, '--noheadings', '-o', 'pv_name,vg_name'];
}

/** The 5th lv_attr character (lvs(8)): what the device-mapper says about the LV. */
export type LvState =
  | 'active'
  | 'inactive'
  | 'suspended'
  | 'invalid-snapshot'
  | 'invalid-suspended-snapshot'
  | 'snapshot-merge-failed'
  | 'suspended-snapshot-merge-failed'
  | 'mapped-without-tables'
  | 'mapped-inactive-table'
  | 'historical'
  | 'check-needed'
  | 'suspended-check-needed'
  | 'unknown';

const STATES: Record<string, LvState> = {
  a: 'active',
  '-': 'inactive',
  s: 'suspended',
  I: 'invalid-snapshot',
  S: 'invalid-suspended-snapshot',
  m: 'snapshot-merge-failed',
  M: 'suspended-snapshot-merge-failed',
  d: 'mapped-without-tables',
  i: 'mapped-inactive-table',
  h: 'historical',
  c: 'check-needed',
  C: 'suspended-check-needed',
  X: 'unknown',
};

export function lvStateOf(attr: string): LvState {
  return STATES[attr.charAt(4)] ?? 'unknown';
}

/** One physical extent range of an LV on one device, in bytes. */
export interface LvExtent {
  device: string;
  start: bigint;
  end: bigint;
}

/** One logical volume, its segments (one lvs line each) merged. */
export interface LvRecord {
  name: string;
  /** Origin LV name of a snapshot; '' when none; '[x_vorigin]' (hidden) for --virtualsize LVs. */
  origin: string;
  uuid: string;
  /** lv_attr, e.g. '-wi-a-----'. */
  attr: string;
  /** lv_size in bytes (the COW size for a snapshot). */
  size: bigint;
  /** origin_size in bytes: an origin's own size, a snapshot's origin's (or virtual) size; absent otherwise. */
  originSize?: bigint;
  /**
   * What the LV's device shows: origin_size for a snapshot (lv_attr 's', merging 'S'; incl.
   * --virtualsize), lv_size for every other LV (a thin volume's lv_size is its virtual size).
   */
  visibleSize: bigint;
  extentSize: bigint;
  segtypes: string[];
  extents: LvExtent[];
  state: LvState;
  active: boolean;
  /** lv_attr[9] 'k' (lvchange -ky; thin snapshots by default): vgchange -ay leaves it inactive. */
  activationSkip: boolean;
  /** attr[0] 's' (snapshot, incl. --virtualsize) or 'V' (thin volume): writes allocate space. */
  sparse: boolean;
  /** attr[0] 't': thin pool; libvirt hides these (no /dev node). */
  thinPool: boolean;
  /** Origin that is a real LV of the VG (not a hidden virtual origin). */
  backingOrigin?: string;
}

function num(value: string, what: string, line: string): bigint {
  if (!/^[0-9]+$/.test(value)) throw new InternalError(`malformed ${what} '${printable(value)}' in lvs output line '${printable(line, 200)}'`);
  return BigInt(value);
}

const DEVICE_UNIT = /^(\S+?)\(([0-9]+)\)$/;

/** Splits the devices field: 'PATH(START)[,PATH(START)...]'. Returns undefined if malformed. */
export function parseLvDevices(field: string): { path: string; startExtent: bigint }[] | undefined {
  const out: { path: string; startExtent: bigint }[] = [];
  // lvm prints /dev/... paths and LV names, neither holding ','
  for (const unit of field.split(',')) {
    const m = DEVICE_UNIT.exec(unit);
    if (!m) return undefined;
    out.push({ path: m[1]!, startExtent: BigInt(m[2]!) });
  }
  return out;
}

/**
 * Parses `lvs` output (lvsArgv). One line per segment; lines that are not eleven '#'
 * fields (one more: a trailing separator, as some lvm builds print) are skipped as
 * libvirt's regex skips them. origin_size is empty for an LV that is neither origin nor
 * snapshot, so a line may end in '#'. Extents: start = first extent x
 * extent size; a striped segment puts seg_size/stripes on each device, every other
 * segment type (linear, mirror, raid) the whole seg_size. Devices that are not paths
 * (sub-LVs of raid, the pool of a thin volume) give no extent.
 */
export function parseLvs(stdout: string): LvRecord[] {
  const byName = new Map<string, LvRecord>();
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const fields = line.split('#');
    if (fields.length === 12 && fields[11] === '') fields.pop();
    if (fields.length !== 11) continue;
    const [name, origin, uuid, devices, segtype, stripesText, segSizeText, extentSizeText, sizeText, attr, originSizeText] = fields as [
      string, string, string, string, string, string, string, string, string, string, string,
    ];
    if (!name || !uuid || !devices || !segtype || !attr) continue;
    const stripes = num(stripesText, 'stripes', line);
    const segSize = num(segSizeText, 'segment size', line);
    const extentSize = num(extentSizeText, 'extent size', line);
    const size = num(sizeText, 'size', line);
    const originSize = originSizeText === '' ? undefined : num(originSizeText, 'origin size', line);
    const units = parseLvDevices(devices);
    if (!units) throw new InternalError(`malformed devices value '${printable(devices)}' in lvs output line '${printable(line, 200)}'`);
    let rec = byName.get(name);
    if (!rec) {
      const type = attr.charAt(0);
      const state = lvStateOf(attr);
      const cow = type === 's' || type === 'S';
      rec = {
        name,
        origin,
        uuid,
        attr,
        size,
        ...(originSize !== undefined ? { originSize } : {}),
        visibleSize: cow && originSize ? originSize : size,
        extentSize,
        segtypes: [],
        extents: [],
        state,
        active: state === 'active',
        activationSkip: attr.charAt(9) === 'k',
        sparse: type === 's',
        thinPool: type === 't',
        backingOrigin: origin && !origin.startsWith('[') ? origin : undefined,
      };
      byName.set(name, rec);
    }
    if (!rec.segtypes.includes(segtype)) rec.segtypes.push(segtype);
    const perDevice = segtype === 'striped' && stripes > 1n ? segSize / stripes : segSize;
    for (const u of units) {
      if (!u.path.startsWith('/')) continue;
      const start = u.startExtent * extentSize;
      rec.extents.push({ device: u.path, start, end: start + perDevice });
    }
  }
  return [...byName.values()];
}

/** Parses `vgs` output (vgsArgv): 'SIZE:FREE'. */
export function parseVgs(stdout: string): { size: bigint; free: bigint } {
  for (const raw of stdout.split('\n')) {
    const m = /^\s*([0-9]+):([0-9]+):?\s*$/.exec(raw);
    if (m) return { size: BigInt(m[1]!), free: BigInt(m[2]!) };
  }
  throw new InternalError(`vgs printed no volume group size: '${printable(stdout.trim(), 200)}'`);
}

/** Parses `pvs` output (pvsArgv) into VG name -> PV paths, in output order; PVs in no VG are skipped. */
export function parsePvs(stdout: string): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const raw of stdout.split('\n')) {
    const m = /^\s*(\S+)\s+(\S+)\s*$/.exec(raw);
    if (!m) continue;
    const [, pv, vg] = m as unknown as [string, string, string];
    const list = groups.get(vg) ?? [];
    list.push(pv);
    groups.set(vg, list);
  }
  return groups;
}

// ---------------------------------------------------------------- names

const RESERVED_PREFIXES = ['snapshot', 'pvmove'];
const RESERVED_PARTS = [
  '_cdata', '_cmeta', '_corig', '_cpool', '_cvol', '_wcorig', '_mimage', '_mlog', '_rimage', '_rmeta',
  '_tdata', '_tmeta', '_vdata', '_imeta', '_iorig', '_pmspare', '_vorigin',
];


/** A logical volume name as lvcreate accepts it in volume group `vg`. */
export function checkLvName(name: string, vg: string, field = 'volume.name'): string {
  const problem = lvmNameProblem(name);
  const rule = `${LVM_NAME_RULE}; not starting with ${RESERVED_PREFIXES.map((p) => `'${p}'`).join(' or ')}; not containing ${RESERVED_PARTS.join(' ')}`;
  if (problem) throw new InvalidArgumentError(field, `logical volume name '${printable(String(name ?? ''))}' ${problem}; allowed: ${rule}`);
  const prefix = RESERVED_PREFIXES.find((p) => name.startsWith(p));
  if (prefix) throw new InvalidArgumentError(field, `logical volume names starting '${prefix}' are reserved by LVM; allowed: ${rule}`);
  const part = RESERVED_PARTS.find((p) => name.includes(p));
  if (part) throw new InvalidArgumentError(field, `logical volume names containing '${part}' are reserved by LVM; allowed: ${rule}`);
  // lvm refuses 'VG/LV' names whose length + 3 reaches NAME_LEN (the device-mapper name)
  if (vg.length + name.length + 3 > LVM_NAME_LEN - 1) {
    throw new InvalidArgumentError(
      field,
      `logical volume name '${printable(name)}' is too long for volume group '${printable(vg)}': LVM allows at most ${LVM_NAME_LEN - 4 - vg.length} characters here (volume group name + volume name <= ${LVM_NAME_LEN - 4})`,
    );
  }
  return name;
}
