// Volume text as virsh prints it: vol-list tables, vol-info lines, JSON.
import { VolumeType, type Volume } from '../../libs/proto/cistern/v1/storage.js';
import { prettySize } from './size.js';
import { infoLine, renderTable } from './table.js';

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
const physical = (v: Volume): bigint => v.definition?.physical ?? allocation(v);

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
    stale: v.stale,
  };
}
