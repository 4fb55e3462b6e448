// Volume text as virsh prints it: vol-list tables, vol-info lines, JSON.
import { VolumeType, type Volume } from '../../libs/proto/cistern/v1/storage.js';
import type { VolumeListing } from '../volume-rows.js';
import { prettySize } from './size.js';
import { infoLine, renderTable, safeCell, spaces, width } from './table.js';

/** virshVolumeTypeToString */
export function volumeTypeName(t: VolumeType | undefined): string {
  switch (t) {
    case VolumeType.VOLUME_TYPE_FILE: return 'file';
    case VolumeType.VOLUME_TYPE_BLOCK: return 'block';
    case VolumeType.VOLUME_TYPE_DIR: return 'dir';
    case VolumeType.VOLUME_TYPE_NETWORK: return 'network';
    case VolumeType.VOLUME_TYPE_NETDIR: return 'netdir';
    case VolumeType.VOLUME_TYPE_PLOOP: return 'ploop';
    default: return 'unknown';
  }
}

export function volumeShortName(v: Volume): string {
  // hosts/H/pools/P/volumes/V: the last of six parts (counted without splitting: listings call this per volume)
  const name = v.name;
  let slashes = 0;
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) slashes++;
  return slashes === 5 ? name.slice(name.lastIndexOf('/') + 1) : (v.definition?.name ?? v.name);
}

export function volumePoolName(v: Volume): string {
  const parts = v.name.split('/');
  return v.pool || (parts.length === 6 ? parts[3]! : '');
}

export function volumeHost(v: Volume): string {
  const parts = v.name.split('/');
  return v.host || (parts.length === 6 ? parts[1]! : '');
}

export const volumePath = (v: Volume): string => v.definition?.target?.path ?? '';
export const volumeKey = (v: Volume): string => v.definition?.key ?? '';
const capacity = (v: Volume): bigint => v.definition?.capacity ?? 0n;
const allocation = (v: Volume): bigint => v.definition?.allocation ?? 0n;
// a volume without a physical size (an iscsi-direct LUN) has 0, as virStorageVolGetInfoFlags
// returns it, so `vol-info --physical` prints `Physical: 0.00 B` as virsh does
const physical = (v: Volume): bigint => v.definition?.physical ?? 0n;

export function renderVolumeList(vols: Volume[], details: boolean, quiet: boolean): string {
  if (!details) {
    return renderTable(['Name', 'Path'], vols.map((v) => [volumeShortName(v), volumePath(v)]), quiet);
  }
  return renderTable(
    ['Name', 'Path', 'Type', 'Capacity', 'Allocation'],
    vols.map((v) => [
      volumeShortName(v),
      volumePath(v),
      volumeTypeName(v.definition?.type),
      prettySize(capacity(v)),
      prettySize(allocation(v)),
    ]),
    quiet,
  );
}

// ---- vol-list from a VolumeListing (cli/volume-rows.ts): the same text as renderVolumeList ----

/** Whether bytes [s, e) are printable ASCII (0x20-0x7e) but a backslash: then the cell is those bytes, its width their count. */
function plainBytes(buf: Buffer, s: number, e: number): boolean {
  for (let k = s; k < e; k++) {
    const b = buf[k]!;
    if (b < 0x20 || b > 0x7e || b === 0x5c) return false; // a backslash may be escaped (safeCell)
  }
  return true;
}

/**
 * The listing's order: virsh's (g_ascii_strcasecmp, as sortByName in ./order.ts), stable (the
 * order the server sent on ties). Names are compared as the UTF-8 bytes of the response with
 * only A-Z folded, for every name: folding other letters too (toLowerCase) or comparing UTF-16
 * units would put 'éa' before 'Éb' and '😀' before 'ａ', where virsh puts them after.
 */
export function listingOrder(l: VolumeListing): Int32Array {
  const n = l.count;
  const buf = l.buf;
  const ns = l.nameStart;
  const ne = l.nameEnd;
  const cmp = (i: number, j: number): number => {
    let a = ns[i]!;
    let b = ns[j]!;
    const ae = ne[i]!;
    const be = ne[j]!;
    for (; a < ae && b < be; a++, b++) {
      let x = buf[a]!;
      let y = buf[b]!;
      if (x !== y) {
        if (x >= 0x41 && x <= 0x5a) x += 32;
        if (y >= 0x41 && y <= 0x5a) y += 32;
        if (x !== y) return x < y ? -1 : 1;
      }
    }
    return ae - a < be - b ? -1 : ae - a > be - b ? 1 : 0;
  };
  const order = new Int32Array(n);
  let sorted = true;
  for (let i = 0; i < n; i++) {
    order[i] = i;
    if (i > 0 && sorted && cmp(i - 1, i) > 0) sorted = false;
  }
  // servers usually send names in order already: one pass, no sort
  if (sorted) return order;
  return Int32Array.from(Array.from(order).sort((a, b) => cmp(a, b) || a - b));
}

const HEADER_DETAILS = ['Name', 'Path', 'Type', 'Capacity', 'Allocation'];

/**
 * renderVolumeList's text for a VolumeListing, written into one buffer: names and paths that are
 * printable ASCII (nearly all) are copied from the response bytes as they are; others go through
 * safeCell/width like any table cell. Sizes and types are formatted once per distinct value.
 */
export function renderVolumeListing(l: VolumeListing, details: boolean, quiet: boolean): string {
  const n = l.count;
  const buf = l.buf;
  const order = listingOrder(l);
  const columns = details ? 5 : 2;
  // per row: name and path widths, and for the rare cell that is not plain ASCII, its text
  const nameW = new Int32Array(n);
  const pathW = new Int32Array(n);
  const special = new Map<number, string>(); // row * 2 (+1 for the path) -> escaped text
  const widths = HEADER_DETAILS.slice(0, columns).map((h) => (quiet ? 0 : h.length));
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    let s = l.nameStart[i]!;
    let e = l.nameEnd[i]!;
    let w: number;
    if (plainBytes(buf, s, e)) {
      w = e - s;
      bytes += w;
    } else {
      const t = safeCell(l.name(i));
      special.set(i * 2, t);
      w = width(t);
      bytes += Buffer.byteLength(t);
    }
    nameW[i] = w;
    if (w > widths[0]!) widths[0] = w;
    s = l.pathStart[i]!;
    e = l.pathEnd[i]!;
    if (plainBytes(buf, s, e)) {
      w = e - s;
      bytes += w;
    } else {
      const t = safeCell(l.path(i));
      special.set(i * 2 + 1, t);
      w = width(t);
      bytes += Buffer.byteLength(t);
    }
    pathW[i] = w;
    if (w > widths[1]!) widths[1] = w;
  }
  // type and sizes: ASCII, width = length; a pool's volumes share few sizes
  const texts = new Map<number | bigint, Buffer>();
  const typeTexts = new Map<number, Buffer>();
  const typeOf = new Array<Buffer>(details ? n : 0);
  const capOf = new Array<Buffer>(details ? n : 0);
  const allocOf = new Array<Buffer>(details ? n : 0);
  if (details) {
    const sizeText = (v: number | bigint): Buffer => {
      let t = texts.get(v);
      if (t === undefined) texts.set(v, (t = Buffer.from(prettySize(v), 'latin1')));
      return t;
    };
    for (let i = 0; i < n; i++) {
      const ty = l.type[i]!;
      let t = typeTexts.get(ty);
      if (t === undefined) typeTexts.set(ty, (t = Buffer.from(volumeTypeName(ty), 'latin1')));
      const c = sizeText(l.capacityOf(i));
      const a = sizeText(l.allocationOf(i));
      typeOf[i] = t;
      capOf[i] = c;
      allocOf[i] = a;
      if (t.length > widths[2]!) widths[2] = t.length;
      if (c.length > widths[3]!) widths[3] = c.length;
      if (a.length > widths[4]!) widths[4] = a.length;
      bytes += t.length + c.length + a.length;
    }
  }
  let head = '';
  if (!quiet) {
    for (let c = 0; c < columns; c++) head += ` ${HEADER_DETAILS[c]}${c < columns - 1 ? spaces(widths[c]! - HEADER_DETAILS[c]!.length + 2) : ''}`;
    head += `\n${'-'.repeat(widths.reduce((sum, w) => sum + w + 3, 0))}\n`;
  }
  // a line is " cell" per column, padded to the column's width + 2 but the last, and "\n": at
  // most 1 + bytes + width + 2 per padded column (the exact size is cut at the end)
  let padded = 0;
  for (let c = 0; c < columns - 1; c++) padded += widths[c]! + 2;
  const out = Buffer.allocUnsafe(head.length + n * (columns + 1 + padded) + bytes);
  let pos = out.write(head, 0, 'latin1');
  const put = (src: Buffer, s: number, e: number): void => {
    for (let k = s; k < e; k++) out[pos++] = src[k]!;
  };
  const pad = (count: number): void => {
    for (let k = 0; k < count; k++) out[pos++] = 0x20;
  };
  for (let r = 0; r < n; r++) {
    const i = order[r]!;
    out[pos++] = 0x20;
    const sn = special.get(i * 2);
    if (sn === undefined) put(buf, l.nameStart[i]!, l.nameEnd[i]!);
    else pos += out.write(sn, pos, 'utf8');
    pad(widths[0]! - nameW[i]! + 2);
    out[pos++] = 0x20;
    const sp = special.get(i * 2 + 1);
    if (sp === undefined) put(buf, l.pathStart[i]!, l.pathEnd[i]!);
    else pos += out.write(sp, pos, 'utf8');
    if (details) {
      pad(widths[1]! - pathW[i]! + 2);
      const t = typeOf[i]!;
      const c = capOf[i]!;
      const a = allocOf[i]!;
      out[pos++] = 0x20;
      put(t, 0, t.length);
      pad(widths[2]! - t.length + 2);
      out[pos++] = 0x20;
      put(c, 0, c.length);
      pad(widths[3]! - c.length + 2);
      out[pos++] = 0x20;
      put(a, 0, a.length);
    }
    out[pos++] = 0x0a;
  }
  return out.toString('utf8', 0, pos);
}

/** vol-info: "%-15s %2.2lf %s" or, with --bytes, "%-15s %llu bytes". */
export function renderVolumeInfo(v: Volume, bytes: boolean, showPhysical: boolean): string {
  const size = (n: bigint): string => (bytes ? `${n} bytes` : prettySize(n));
  let out = infoLine('Name:', volumeShortName(v));
  out += infoLine('Type:', volumeTypeName(v.definition?.type));
  out += infoLine('Capacity:', size(capacity(v)));
  out += showPhysical ? infoLine('Physical:', size(physical(v))) : infoLine('Allocation:', size(allocation(v)));
  return out;
}

export function volumeJson(v: Volume): Record<string, unknown> {
  return {
    name: volumeShortName(v),
    pool: volumePoolName(v),
    host: volumeHost(v),
    resource: v.name,
    key: volumeKey(v),
    path: volumePath(v),
    type: volumeTypeName(v.definition?.type),
    format: v.definition?.target?.format ?? '',
    capacity: capacity(v),
    allocation: allocation(v),
    physical: physical(v),
    backingStore: v.definition?.backingStore?.path ?? '',
    // what the backend saw (a logical volume: active, inactive, unknown); null where it
    // reports none, as a dir pool's files: an inactive LV has no device to read or write
    state: v.definition?.state ?? null,
    stale: v.stale,
  };
}
