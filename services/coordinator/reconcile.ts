// Reconciliation after a host comes back (docs/events.md, "Host liveness and reconciliation"): the coordinator compares its cached
// view of the host with the host's full sync and publishes what changed while it was
// away (pools started or stopped, volumes new, changed or gone) before HOST_ONLINE.
// A sync that carries events the agent's stream did not store has the state of those
// pools and volumes published from it too (lostEventsReconcile).
// Every coordinator sees the same sync, so the events carry request id
// `reconcile-<syncId>` and JetStream's duplicate window stores each one once.
import { Event, EventKind, Pool, PoolState, VolumeDefinition, type Volume } from '../../libs/proto/cistern/v1/storage.js';
import { poolShortName, type FleetCache, type SyncSnapshot } from './cache.js';
import { decodeStored, prepareVolume, sameDefinitionBytes, type PreparedVolume, type StoredVolume } from './stored-volume.js';
import { shortNameOf, snapshotPoolOf } from './volume-wire.js';
import type { Logger } from '../../libs/log/logger.js';

/** How long reconcile events are published again while the stream refuses them (within JetStream's 2 minute duplicate window). */
export const RECONCILE_RETRY_FOR_MS = 100_000;
export const RECONCILE_RETRY_EVERY_MS = 2_000;

/**
 * Publishes one sync's reconcile events until the stream has stored them all (`attempt`
 * publishes and waits for the acks). Nothing else would publish them: once the sync is
 * applied, the next one shows no difference. A repeat of one stored already is dropped by
 * its duplicate id. False when it gave up (logged).
 */
export async function publishUntilStored(
  attempt: (events: Event[]) => Promise<unknown>,
  events: Event[],
  log: Logger,
  opts: { everyMs?: number; forMs?: number; stopped?: () => boolean; what?: string } = {},
): Promise<boolean> {
  const what = opts.what ?? 'reconcile events';
  const everyMs = opts.everyMs ?? RECONCILE_RETRY_EVERY_MS;
  const until = Date.now() + (opts.forMs ?? RECONCILE_RETRY_FOR_MS);
  const host = events[0]?.host;
  for (;;) {
    try {
      await attempt(events);
      return true;
    } catch (err) {
      if (opts.stopped?.() || Date.now() + everyMs > until) {
        log.error(`${what} not stored: readers of the event stream miss these changes`, { host, events: events.length, err });
        return false;
      }
      log.warn(`${what} not stored; publishing them again`, { host, events: events.length, inMs: everyMs, err });
      await new Promise((resolve) => setTimeout(resolve, everyMs).unref());
    }
  }
}

/**
 * What a user would call a change: everything but the timestamps (the volume's and its backing
 * file's), and a qcow2 cluster size the held state did not know. A create's, clone's or
 * resize's commit leaves the cluster size unread, as libvirt 9.0's refreshVol does
 * (services/agent/probed-fields.ts); an agent that restarted reads it with its full probe, as
 * a restarted libvirtd's pool refresh does. The image did not change: the cache takes the
 * probed value from the sync (replaceHost), without an event nobody caused.
 */
function sameVolume(old: StoredVolume, now: PreparedVolume): boolean {
  // the usual case, a volume that did not change: the same definition bytes
  if (sameDefinitionBytes(old, now.stored)) return true;
  const held = decodeStored(old);
  const heldClusterSize = held.definition?.target?.clusterSize ?? 0n;
  const strip = (v: Volume): Uint8Array => {
    const def = v.definition ?? VolumeDefinition.create();
    return VolumeDefinition.encode({
      ...def,
      target: def.target ? { ...def.target, timestamps: undefined, ...(heldClusterSize === 0n ? { clusterSize: 0n } : {}) } : undefined,
      backingStore: def.backingStore ? { ...def.backingStore, timestamps: undefined } : undefined,
    }).finish();
  };
  return Buffer.from(strip(held)).equals(Buffer.from(strip(decodedOf(now))));
}

const decodedOf = (v: PreparedVolume): Volume => (v.volume ??= decodeStored(v.stored));

/** Sizes and free extents: what a disk filling up or a partition table edited by hand changes. */
function samePoolRuntime(a: Pool, b: Pool): boolean {
  const extents = (p: Pool): string =>
    p.runtimeDevices.map((d) => `${d.path}:${d.freeExtents.map((e) => `${e.start}-${e.end}`).join(',')}`).join(';');
  return a.capacity === b.capacity && a.allocation === b.allocation && a.available === b.available && extents(a) === extents(b);
}

/**
 * The state a reconcile POOL_STOPPED carries for a pool the sync does not show active: what the
 * agent kept of its last run (HostSync.stopped_pools), or nothing of it (a transient pool, or
 * an agent that restarted since: it forgot them, as a restarted libvirtd does).
 */
function stoppedState(last: Pool, name: string, snapshot: SyncSnapshot): Pool {
  const kept = snapshot.stoppedPools?.find((p) => poolShortName(p) === name);
  return {
    ...last,
    state: PoolState.POOL_STATE_INACTIVE,
    volumeCount: 0,
    revision: snapshot.revision,
    capacity: kept?.capacity ?? 0n,
    allocation: kept?.allocation ?? 0n,
    available: kept?.available ?? 0n,
    runtimeDevices: kept?.runtimeDevices ?? [],
    targetPermissions: kept?.targetPermissions,
  };
}

/** A sync's pools by short name, and its volumes by pool and short name. */
function indexSnapshot(snapshot: SyncSnapshot): { incoming: Map<string, Pool>; volumesOf: Map<string, Map<string, PreparedVolume>> } {
  const incoming = new Map(snapshot.pools.map((p) => [poolShortName(p), p]));
  const volumesOf = new Map<string, Map<string, PreparedVolume>>();
  for (const v of snapshot.volumes.map(prepareVolume)) {
    const pool = snapshotPoolOf(v.facts);
    let m = volumesOf.get(pool);
    if (!m) volumesOf.set(pool, (m = new Map()));
    m.set(shortNameOf(v.facts), v);
  }
  return { incoming, volumesOf };
}

/**
 * The duplicate id of each event lostEventsReconcile makes: the lost event it stands for, and
 * what is published for it. An agent sends its events lost again, in a new sync, until a
 * coordinator confirms one (services/agent/sync.ts): a confirmation that came late, or was
 * lost, must not store the same reconcile events once per sync (their request ids, which name
 * the sync, differ). Every coordinator makes the same ids for the same lost event.
 */
const lostDedupeIds = new WeakMap<Event, string>();

/** The duplicate id of a reconcile event made for an event lost, undefined for any other. */
export function lostEventDedupeId(event: Event): string | undefined {
  return lostDedupeIds.get(event);
}

const reconcileBase = (host: string, syncId: string, now: Date) => ({ host, time: now, principal: 'coordinator', requestId: `reconcile-${syncId}` });

export function reconcileEvents(
  cache: FleetCache,
  host: string,
  snapshot: SyncSnapshot,
  syncId: string,
  now = new Date(),
): Event[] {
  const events: Event[] = [];
  const base = reconcileBase(host, syncId, now);
  const { incoming, volumesOf } = indexSnapshot(snapshot);
  for (const name of cache.poolsOfHost(host)) {
    const rt = cache.runtimePool(host, name)!;
    const held = cache.poolVolumes(host, name);
    const now = incoming.get(name);
    if (!now) {
      const stopped = stoppedState(rt.pool, name, snapshot);
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

/**
 * The pools and volumes whose events the agent's stream did not store (HostSync.events_lost),
 * as the sync shows them: a volume VOLUME_CHANGED (there) or VOLUME_DELETED (gone from its
 * pool); a pool POOL_STARTED (its lost event was a start) or POOL_REFRESHED (there), or
 * POOL_STOPPED (gone); a lost POOL_CREATED / POOL_DELETED of a pool that is not active again
 * as it was. The cache is no baseline here, unlike reconcileEvents: the operation's reply (or
 * an earlier sync) may have brought it the change the stream lacks. What the cache holds a
 * newer state of is left out: it changed after the snapshot, and that change has an event of
 * its own (stored, or lost and in a later sync).
 */
export function lostEventsReconcile(
  cache: FleetCache,
  host: string,
  snapshot: SyncSnapshot,
  lost: readonly Event[],
  syncId: string,
  now = new Date(),
): Event[] {
  if (lost.length === 0) return [];
  const events: Event[] = [];
  const base = reconcileBase(host, syncId, now);
  const { incoming, volumesOf } = indexSnapshot(snapshot);
  const newer = (revision: bigint, pool: string, volume = ''): boolean => cache.heldRevision(host, pool, volume) > revision;
  for (const e of lost) {
    const made = events.length;
    const pool = incoming.get(e.pool);
    if (e.volume) {
      // in a pool that is not active any more: its POOL_STOPPED (stored, or lost and here) says the volumes went
      if (!pool) continue;
      const v = volumesOf.get(e.pool)?.get(e.volume);
      if (v) {
        if (!newer(v.facts.revision, e.pool, e.volume)) {
          events.push(Event.fromPartial({ ...base, kind: EventKind.VOLUME_CHANGED, pool: e.pool, volume: e.volume, volumeState: decodedOf(v), poolState: pool }));
        }
      } else if (!newer(snapshot.revision, e.pool, e.volume)) {
        const volumeState = { ...e.volumeState, revision: snapshot.revision };
        events.push(Event.fromPartial({ ...base, kind: EventKind.VOLUME_DELETED, pool: e.pool, volume: e.volume, volumeState, poolState: pool }));
      }
      tagLost(e, events, made);
      continue;
    }
    if (pool) {
      if (newer(pool.revision, e.pool)) continue;
      const kind = e.kind === EventKind.POOL_STARTED ? EventKind.POOL_STARTED : EventKind.POOL_REFRESHED;
      events.push(Event.fromPartial({ ...base, kind, pool: e.pool, poolState: pool }));
    } else if (e.kind === EventKind.POOL_CREATED || e.kind === EventKind.POOL_DELETED) {
      // built or deleted while not active: a sync holds active pools only, so nothing newer to tell
      events.push(Event.fromPartial({ ...base, kind: e.kind, pool: e.pool, poolState: e.poolState }));
    } else if (!newer(snapshot.revision, e.pool)) {
      const stopped = stoppedState(Pool.fromPartial(e.poolState ?? {}), e.pool, snapshot);
      events.push(Event.fromPartial({ ...base, kind: EventKind.POOL_STOPPED, pool: e.pool, poolState: stopped }));
    }
    tagLost(e, events, made);
  }
  return events;
}

/** Names the events made for `lost` (from `from` on) by it (lostDedupeIds). */
function tagLost(lost: Event, events: Event[], from: number): void {
  const revision = lost.volume ? lost.volumeState?.revision : lost.poolState?.revision;
  // without a revision two losses of one object cannot be told apart: the sync's ids stand
  if (!revision) return;
  for (let i = from; i < events.length; i++) {
    const e = events[i]!;
    lostDedupeIds.set(e, `lost:${lost.host}:${lost.pool}:${lost.volume}:${lost.kind}:${revision}:${e.kind}`);
  }
}
