// libvirt's "Storage source conflict with pool" (virStoragePoolObjSourceFindDuplicate): two
// pools of one host may not use the same storage. Two dir pools over one directory would each
// lock their volumes on their own, so a delete through one runs during a wipe through the other.
import { normalize } from 'node:path';
import { AdapterType, PoolType, type PoolDefinition } from '../proto/cistern/v1/storage.js';
import { scsiHostNumberOf } from './scsi-host-name.js';
import { wwnKey } from './wwn.js';

/** Pool types whose storage is named by source devices (virStoragePoolObjSourceMatchTypeDEVICE). */
const DEVICE_POOLS: ReadonlySet<PoolType> = new Set([PoolType.POOL_TYPE_ISCSI, PoolType.POOL_TYPE_FS, PoolType.POOL_TYPE_LOGICAL, PoolType.POOL_TYPE_DISK]);

const canonical = (p: string): string => {
  const n = normalize(p);
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
};
const samePath = (a: string | undefined, b: string | undefined): boolean => !!a && !!b && canonical(a) === canonical(b);

function sameSingleHost(a: PoolDefinition, b: PoolDefinition): boolean {
  const ah = a.source?.hosts ?? [];
  const bh = b.source?.hosts ?? [];
  if (ah.length !== 1 && bh.length !== 1) return false;
  if (!ah[0] || !bh[0]) return false;
  if (bh[0].port && ah[0].port !== bh[0].port) return false;
  return ah[0].name === bh[0].name;
}

function sharedDevice(a: PoolDefinition, b: PoolDefinition): string | undefined {
  const mine = new Set((a.source?.devices ?? []).map((d) => d.path).filter(Boolean));
  return (b.source?.devices ?? []).map((d) => d.path).find((p) => mine.has(p));
}

function sameAdapter(a: PoolDefinition, b: PoolDefinition): boolean {
  const x = a.source?.adapter;
  const y = b.source?.adapter;
  if (!x || !y || x.type !== y.type) return false;
  // one vHBA however its WWNs are written (case, 0x): the agent reads them as one port
  if (x.type === AdapterType.ADAPTER_TYPE_FC_HOST) return !!x.wwnn && wwnKey(x.wwnn) === wwnKey(y.wwnn) && wwnKey(x.wwpn) === wwnKey(y.wwpn);
  if (x.hasParentAddress && y.hasParentAddress) {
    const p = x.parentAddress;
    const q = y.parentAddress;
    return !!p && !!q && p.domain === q.domain && p.bus === q.bus && p.slot === q.slot && p.function === q.function && x.uniqueId === y.uniqueId;
  }
  // as host numbers: host5, scsi_host5 and fc_host5 are one adapter (libvirt virSCSIHostGetNumber)
  const n = scsiHostNumberOf(x.name);
  return n !== undefined && n === scsiHostNumberOf(y.name);
}

/**
 * What `candidate` shares with the pool `existing` of the same host (another pool), as words
 * for the error; undefined when they do not conflict.
 */
export function sourceConflict(existing: PoolDefinition, candidate: PoolDefinition): string | undefined {
  if (existing.name === candidate.name) return undefined;
  const t = existing.type;
  if (t === PoolType.POOL_TYPE_DIR && candidate.type === t) {
    return samePath(existing.target?.path, candidate.target?.path) ? `target directory '${candidate.target?.path}'` : undefined;
  }
  if (t === PoolType.POOL_TYPE_NETFS && candidate.type === t) {
    return samePath(existing.source?.dir, candidate.source?.dir) && sameSingleHost(existing, candidate)
      ? `NFS export '${candidate.source?.hosts[0]?.name}:${candidate.source?.dir}'`
      : undefined;
  }
  if (t === PoolType.POOL_TYPE_SCSI && candidate.type === t) return sameAdapter(existing, candidate) ? 'SCSI adapter' : undefined;
  if (t === PoolType.POOL_TYPE_MPATH && candidate.type === t) return 'multipath devices (one mpath pool per host)';
  // one volume group, two pools: deleting either would vgremove the other's storage
  if (t === PoolType.POOL_TYPE_LOGICAL && candidate.type === t) {
    const vg = (d: PoolDefinition): string => d.source?.name || d.name;
    if (vg(existing) === vg(candidate)) return `volume group '${vg(candidate)}'`;
  }
  if (DEVICE_POOLS.has(t) && DEVICE_POOLS.has(candidate.type)) {
    // an iSCSI pool conflicts only with another iSCSI pool, on the same device and initiator
    if ((t === PoolType.POOL_TYPE_ISCSI) !== (candidate.type === PoolType.POOL_TYPE_ISCSI)) return undefined;
    const device = sharedDevice(existing, candidate);
    if (!device) return undefined;
    if (t === PoolType.POOL_TYPE_ISCSI && (existing.source?.initiatorIqn ?? '') !== (candidate.source?.initiatorIqn ?? '')) return undefined;
    return `source device '${device}'`;
  }
  return undefined;
}
