// Reconciliation after a host comes back (issue 6): the coordinator compares its cached
// view of the host with the host's full sync and publishes what changed while it was
// away (pools started or stopped, volumes new, changed or gone) before HOST_ONLINE.
// Every coordinator sees the same sync, so the events carry request id
// `reconcile-<syncId>` and JetStream's duplicate window stores each one once.
import { Event, EventKind, PoolState, VolumeDefinition, type Pool, type Volume } from '../../libs/proto/cistern/v1/storage.js';
import { poolShortName, volumeShortName, type FleetCache } from './cache.js';

/** What a user would call a change: everything but the timestamps. */
function sameVolume(a: Volume, b: Volume): boolean {
  const strip = (v: Volume): Uint8Array => {
    const def = v.definition ?? VolumeDefinition.create();
    return VolumeDefinition.encode({ ...def, target: def.target ? { ...def.target, timestamps: undefined } : undefined }).finish();
  };
  return Buffer.from(strip(a)).equals(Buffer.from(strip(b)));
}

/** Sizes and free extents: what a disk filling up or a partition table edited by hand changes. */
function samePoolRuntime(a: Pool, b: Pool): boolean {
  const extents = (p: Pool): string =>
    p.runtimeDevices.map((d) => `${d.path}:${d.freeExtents.map((e) => `${e.start}-${e.end}`).join(',')}`).join(';');
  return a.capacity === b.capacity && a.allocation === b.allocation && a.available === b.available && extents(a) === extents(b);
}

export function reconcileEvents(
  cache: FleetCache,
  host: string,
  snapshot: { pools: Pool[]; volumes: Volume[]; revision: bigint },
  syncId: string,
  now = new Date(),
): Event[] {
  const events: Event[] = [];
  const base = { host, time: now, principal: 'coordinator', requestId: `reconcile-${syncId}` };
  const incoming = new Map(snapshot.pools.map((p) => [poolShortName(p), p]));
  const volumesOf = new Map<string, Map<string, Volume>>();
  for (const v of snapshot.volumes) {
    const pool = v.pool || v.name.split('/')[3] || '';
    let m = volumesOf.get(pool);
    if (!m) volumesOf.set(pool, (m = new Map()));
    m.set(volumeShortName(v), v);
  }
  for (const name of cache.poolsOfHost(host)) {
    const rt = cache.runtimePool(host, name)!;
    const now = incoming.get(name);
    if (!now) {
      const stopped = { ...rt.pool, state: PoolState.POOL_STATE_INACTIVE, volumeCount: 0, revision: snapshot.revision };
      events.push(Event.fromPartial({ ...base, kind: EventKind.POOL_STOPPED, pool: name, poolState: stopped }));
      continue;
    }
    const vols = volumesOf.get(name) ?? new Map<string, Volume>();
    for (const [vname, old] of rt.volumes) {
      if (!vols.has(vname)) {
        events.push(
          Event.fromPartial({ ...base, kind: EventKind.VOLUME_DELETED, pool: name, volume: vname, volumeState: { ...old, revision: snapshot.revision } }),
        );
      }
    }
    for (const [vname, v] of vols) {
      const old = rt.volumes.get(vname);
      if (!old || !sameVolume(old, v)) {
        events.push(Event.fromPartial({ ...base, kind: EventKind.VOLUME_CHANGED, pool: name, volume: vname, volumeState: v, poolState: now }));
      }
    }
    if (!samePoolRuntime(rt.pool, now)) {
      events.push(Event.fromPartial({ ...base, kind: EventKind.POOL_REFRESHED, pool: name, poolState: now }));
    }
  }
  for (const [name, p] of incoming) {
    if (cache.runtimePool(host, name)) continue;
    events.push(Event.fromPartial({ ...base, kind: EventKind.POOL_STARTED, pool: name, poolState: p }));
    for (const v of (volumesOf.get(name) ?? new Map<string, Volume>()).values()) {
      events.push(Event.fromPartial({ ...base, kind: EventKind.VOLUME_CHANGED, pool: name, volume: volumeShortName(v), volumeState: v, poolState: p }));
    }
  }
  return events;
}
