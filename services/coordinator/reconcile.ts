// Reconciliation after a host comes back (issue 6): the coordinator compares its cached
// view of the host with the host's full sync and publishes what changed while it was
// away (pools started or stopped, volumes new, changed or gone) before HOST_ONLINE.
// Every coordinator sees the same sync, so the events carry request id
// `reconcile-<syncId>` and JetStream's duplicate window stores each one once.
import { Event, EventKind, PoolState, VolumeDefinition, type Pool, type Volume } from '../../libs/proto/cistern/v1/storage.js';
import { poolShortName, type FleetCache, type SyncSnapshot } from './cache.js';
import { decodeStored, prepareVolume, sameDefinitionBytes, type PreparedVolume, type StoredVolume } from './stored-volume.js';
import { shortNameOf, snapshotPoolOf } from './volume-wire.js';

/** What a user would call a change: everything but the timestamps (the volume's and its backing file's). */
function sameVolume(old: StoredVolume, now: PreparedVolume): boolean {
  // the usual case, a volume that did not change: the same definition bytes
  if (sameDefinitionBytes(old, now.stored)) return true;
  const strip = (v: Volume): Uint8Array => {
    const def = v.definition ?? VolumeDefinition.create();
    return VolumeDefinition.encode({
      ...def,
      target: def.target ? { ...def.target, timestamps: undefined } : undefined,
      backingStore: def.backingStore ? { ...def.backingStore, timestamps: undefined } : undefined,
    }).finish();
  };
  return Buffer.from(strip(decodeStored(old))).equals(Buffer.from(strip(decodedOf(now))));
}

const decodedOf = (v: PreparedVolume): Volume => (v.volume ??= decodeStored(v.stored));

/** Sizes and free extents: what a disk filling up or a partition table edited by hand changes. */
function samePoolRuntime(a: Pool, b: Pool): boolean {
  const extents = (p: Pool): string =>
    p.runtimeDevices.map((d) => `${d.path}:${d.freeExtents.map((e) => `${e.start}-${e.end}`).join(',')}`).join(';');
  return a.capacity === b.capacity && a.allocation === b.allocation && a.available === b.available && extents(a) === extents(b);
}

export function reconcileEvents(
  cache: FleetCache,
  host: string,
  snapshot: SyncSnapshot,
  syncId: string,
  now = new Date(),
): Event[] {
  const events: Event[] = [];
  const base = { host, time: now, principal: 'coordinator', requestId: `reconcile-${syncId}` };
  const incoming = new Map(snapshot.pools.map((p) => [poolShortName(p), p]));
  const volumesOf = new Map<string, Map<string, PreparedVolume>>();
  for (const v of snapshot.volumes.map(prepareVolume)) {
    const pool = snapshotPoolOf(v.facts);
    let m = volumesOf.get(pool);
    if (!m) volumesOf.set(pool, (m = new Map()));
    m.set(shortNameOf(v.facts), v);
  }
  for (const name of cache.poolsOfHost(host)) {
    const rt = cache.runtimePool(host, name)!;
    const held = cache.poolVolumes(host, name);
    const now = incoming.get(name);
    if (!now) {
      const stopped = { ...rt.pool, state: PoolState.POOL_STATE_INACTIVE, volumeCount: 0, revision: snapshot.revision };
      events.push(Event.fromPartial({ ...base, kind: EventKind.POOL_STOPPED, pool: name, poolState: stopped }));
      continue;
    }
    const vols = volumesOf.get(name) ?? new Map<string, PreparedVolume>();
    for (const [vname, old] of held) {
      if (!vols.has(vname)) {
        const volumeState = { ...decodeStored(old), revision: snapshot.revision };
        events.push(Event.fromPartial({ ...base, kind: EventKind.VOLUME_DELETED, pool: name, volume: vname, volumeState }));
      }
    }
    for (const [vname, v] of vols) {
      const old = held.get(vname);
      if (old === undefined || !sameVolume(old, v)) {
        events.push(Event.fromPartial({ ...base, kind: EventKind.VOLUME_CHANGED, pool: name, volume: vname, volumeState: decodedOf(v), poolState: now }));
      }
    }
    if (!samePoolRuntime(rt.pool, now)) {
      events.push(Event.fromPartial({ ...base, kind: EventKind.POOL_REFRESHED, pool: name, poolState: now }));
    }
  }
  for (const [name, p] of incoming) {
    if (cache.runtimePool(host, name)) continue;
    events.push(Event.fromPartial({ ...base, kind: EventKind.POOL_STARTED, pool: name, poolState: p }));
    for (const [vname, v] of volumesOf.get(name) ?? new Map<string, PreparedVolume>()) {
      events.push(Event.fromPartial({ ...base, kind: EventKind.VOLUME_CHANGED, pool: name, volume: vname, volumeState: decodedOf(v), poolState: p }));
    }
  }
  return events;
}
