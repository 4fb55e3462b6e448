// Pool text as virsh prints it: state words, pool-list rows, pool-info lines, JSON.
import { PoolState, PoolType, type Pool } from '../../libs/proto/cistern/v1/storage.js';
import { UsageError } from '../errors.js';
import { poolHost, poolShortName } from '../resolve.js';
import { prettySize } from './size.js';
import { infoLine, padBytes, renderTable } from './table.js';

const TYPE_NAMES: Array<[PoolType, string]> = [
  [PoolType.POOL_TYPE_DIR, 'dir'],
  [PoolType.POOL_TYPE_FS, 'fs'],
  [PoolType.POOL_TYPE_NETFS, 'netfs'],
  [PoolType.POOL_TYPE_LOGICAL, 'logical'],
  [PoolType.POOL_TYPE_DISK, 'disk'],
  [PoolType.POOL_TYPE_ISCSI, 'iscsi'],
  [PoolType.POOL_TYPE_ISCSI_DIRECT, 'iscsi-direct'],
  [PoolType.POOL_TYPE_SCSI, 'scsi'],
  [PoolType.POOL_TYPE_MPATH, 'mpath'],
];

export const POOL_TYPE_WORDS = TYPE_NAMES.map(([, n]) => n);

export function poolTypeName(t: PoolType): string {
  return TYPE_NAMES.find(([v]) => v === t)?.[1] ?? 'unknown';
}

/** Pool types libvirt 9.0 knows and Cistern has no backend for: pool-list --type accepts them, and they match nothing. */
export const LIBVIRT_ONLY_TYPE_WORDS = ['rbd', 'sheepdog', 'gluster', 'zfs', 'vstorage'];

/** virsh's pool type word -> enum; unknown words are a usage error listing the allowed ones. */
export function parsePoolType(word: string): PoolType {
  const hit = TYPE_NAMES.find(([, n]) => n === word);
  if (!hit) throw new UsageError(`Invalid pool type '${word}'; allowed: ${POOL_TYPE_WORDS.join(', ')}`);
  return hit[0];
}

/** virshStoragePoolStateToString */
export function poolStateName(s: PoolState): string {
  switch (s) {
    case PoolState.POOL_STATE_INACTIVE: return 'inactive';
    case PoolState.POOL_STATE_BUILDING: return 'building';
    case PoolState.POOL_STATE_RUNNING: return 'running';
    case PoolState.POOL_STATE_DEGRADED: return 'degraded';
    case PoolState.POOL_STATE_INACCESSIBLE: return 'inaccessible';
    default: return 'unknown';
  }
}

export function isActive(p: Pool): boolean {
  return p.state !== PoolState.POOL_STATE_INACTIVE && p.state !== PoolState.POOL_STATE_UNSPECIFIED;
}

/**
 * The state virsh-style text shows. A pool of an offline host (stale: its values are the last
 * known) that was active is shown as libvirt's 'inaccessible' (running, but not accessible),
 * so a script reading `pool-list --details` or `pool-info` does not take last known sizes for
 * current ones: like virsh for an inaccessible pool, no sizes are printed. It still counts as
 * active (plain pool-list, filters), as an inaccessible pool does in libvirt. --json keeps the
 * last known state and sizes with `stale: true`.
 */
export function shownState(p: Pool): PoolState {
  return p.stale && isActive(p) ? PoolState.POOL_STATE_INACCESSIBLE : p.state;
}

/**
 * virsh's plain pool-list says active or inactive; a pool whose state the coordinator does not
 * know (its host has not reported since the coordinator started) is neither: 'unknown', the
 * word virsh has for a state it cannot name.
 */
function plainState(p: Pool): string {
  if (p.state === PoolState.POOL_STATE_UNSPECIFIED) return poolStateName(p.state);
  return isActive(p) ? 'active' : 'inactive';
}

/** Sizes are shown for running and degraded pools only, as in virsh. */
function hasSizes(p: Pool): boolean {
  const state = shownState(p);
  return state === PoolState.POOL_STATE_RUNNING || state === PoolState.POOL_STATE_DEGRADED;
}

const yesNo = (b: boolean): string => (b ? 'yes' : 'no');

export interface PoolListFormat {
  details: boolean;
  quiet: boolean;
  /** name shown in the Name column */
  display: (p: Pool) => string;
}

export function renderPoolList(pools: Pool[], f: PoolListFormat): string {
  if (!f.details) {
    return renderTable(
      ['Name', 'State', 'Autostart'],
      pools.map((p) => [f.display(p), plainState(p), yesNo(p.autostart)]),
      f.quiet,
    );
  }
  return renderTable(
    ['Name', 'State', 'Autostart', 'Persistent', 'Capacity', 'Allocation', 'Available'],
    pools.map((p) => {
      const sized = hasSizes(p);
      return [
        f.display(p),
        poolStateName(shownState(p)),
        yesNo(p.autostart),
        yesNo(p.persistent),
        sized ? prettySize(p.capacity) : '-',
        sized ? prettySize(p.allocation) : '-',
        sized ? prettySize(p.available) : '-',
      ];
    }),
    f.quiet,
  );
}

/** pool-list --uuid / --name: "%-36s" then ' ' or newline, "%-20s\n" (printf pads to bytes). */
export function renderPoolNames(pools: Pool[], uuid: boolean, name: boolean, display: (p: Pool) => string): string {
  let out = '';
  for (const p of pools) {
    if (uuid) out += `${(p.definition?.uuid ?? '').padEnd(36)}${name ? ' ' : '\n'}`;
    if (name) out += `${padBytes(display(p), 20)}\n`;
  }
  return out;
}

export function renderPoolInfo(p: Pool, bytes: boolean): string {
  let out = infoLine('Name:', poolShortName(p));
  if (p.definition?.uuid) out += infoLine('UUID:', p.definition.uuid);
  out += infoLine('State:', poolStateName(shownState(p)));
  out += infoLine('Persistent:', yesNo(p.persistent));
  out += infoLine('Autostart:', yesNo(p.autostart));
  if (hasSizes(p)) {
    const size = (v: bigint): string => (bytes ? v.toString() : prettySize(v));
    out += infoLine('Capacity:', size(p.capacity));
    out += infoLine('Allocation:', size(p.allocation));
    out += infoLine('Available:', size(p.available));
  }
  return out;
}

export function poolJson(p: Pool): Record<string, unknown> {
  return {
    name: poolShortName(p),
    host: poolHost(p),
    resource: p.name,
    uuid: p.definition?.uuid ?? '',
    type: poolTypeName(p.definition?.type ?? PoolType.POOL_TYPE_UNSPECIFIED),
    state: poolStateName(p.state),
    active: isActive(p),
    persistent: p.persistent,
    autostart: p.autostart,
    capacity: p.capacity,
    allocation: p.allocation,
    available: p.available,
    volumes: p.volumeCount,
    target: p.definition?.target?.path ?? '',
    stale: p.stale,
  };
}
