// The coordinator's view of the fleet, answered from memory:
//  - the catalog (pool definitions, autostart) mirrored from the KV bucket;
//  - every agent's runtime state (active pools, their volumes) from HostSync snapshots
//    and the event stream.
// Sync and events travel different paths, so every Pool/Volume state carries the agent's
// host-wide `revision`; a state older than the one held (or than a deletion) is ignored.
// Volumes are kept in their encoded form (stored-volume.ts) and decoded when read: a fleet
// of a million volumes fits in ~0.5 GB instead of ~1.1 GB.
// A pool that a full sync fills from nothing (every pool after a coordinator restart) keeps
// its volumes' bytes in one buffer, checked but not indexed, until something reads them:
// a restarted coordinator takes in a fleet's million volumes without making ~3 million
// strings and map entries first (PendingVolumes). The sync intake indexes them in the
// background once no sync is waiting (indexPendingFor), so reads and events after a
// restart's first seconds find them indexed.
// A removal leaves a tombstone (its revision) so that an older state of the object arriving
// late does not bring it back. Older states do arrive after the removal, in any order:
//  - events: the agent takes a revision, then awaits (pool sizes, a rescan published in
//    batches) before publishing, so the stream is not in revision order, even for one object;
//    a sync's reconcile events are published by every coordinator, again for up to 100 s;
//  - a full sync built before the removal, still on its way (chunks, the intake's queue);
//  - an operation's reply (forward.ts applyReply), which comes on its own path.
// Nothing says when the last of these has come, so a host keeps its newest
// TOMBSTONES_PER_HOST tombstones and, for the ones it forgot, only the highest revision among
// them (`forgotten`): an object it holds neither a state nor a tombstone of counts as removed
// at that revision. That refuses every state a forgotten tombstone refused (never a
// resurrection); what it refuses beyond them is a state older than the host's last
// TOMBSTONES_PER_HOST removals of an object the cache does not hold, which the host's next
// full sync brings. A full sync holds every object of the host as of its revision, so it
// replaces the tombstones up to that revision with `forgotten` = its revision: a state of an
// object it does not hold, at or below it, is of one removed by then.
import { EventKind, PoolDefinition, PoolState, type Event, type Pool, type Volume } from '../../libs/proto/cistern/v1/storage.js';
import type { CatalogPool } from '../../libs/proto/cistern/agent/v1/agent.js';
import { decodeStored, prepareScanned, prepareVolume, storedFacts, storedRevision, type PreparedVolume, type StoredVolume } from './stored-volume.js';
import { scanVolume, shortNameOf, snapshotPoolOf, type VolumeFacts } from './volume-wire.js';
import { Watermark } from './watermark.js';
import { SlabArena } from './slab-arena.js';

export interface CatalogRecord {
  value: CatalogPool;
  revision: number;
}

/** An active pool as the cache holds it; its volumes through FleetCache's queries. */
export interface RuntimePool {
  readonly pool: Pool;
  readonly volumeCount: number;
}

/**
 * The volumes a full sync brought for a pool the cache held none of, not yet indexed: each
 * one's Volume.encode bytes (checked: canonical, stored-volume.ts) in `arena`, volume i at
 * [starts[i], ends[i]). One buffer outside the JS heap per pool instead of a string and two
 * map entries per volume, so taking in a fleet's sync leaves almost nothing for the garbage
 * collector to copy. When the pool's volumes came back to back in one buffer (a sync chunk
 * as the intake copied it, sync-intake.ts) `arena` is a view of that buffer, with the chunk's
 * own framing between them: nothing is copied. Else they are copied back to back into a view
 * of a slab shared with other pools (slab-arena.ts). Either way a fleet's worth of them, freed
 * once indexed, leaves nothing in the C heap. The first read that needs the pool's volumes (a
 * lookup, a listing, an event or another sync for it) indexes them, ~5 µs per volume, once;
 * the rest are indexed in the background when the coordinator is otherwise idle.
 */
interface PendingVolumes {
  arena: Buffer;
  starts: Uint32Array;
  ends: Uint32Array;
}

class PoolEntry implements RuntimePool {
  /** volume short name -> the volume in its compact form (stored-volume.ts: decodeStored, storedRevision ...); empty while `pending` */
  readonly volumes = new Map<string, StoredVolume>();
  /** volume names in order, built on demand, dropped on every add/remove */
  sorted: string[] | undefined;
  pending: PendingVolumes | undefined;

  constructor(public pool: Pool) {}

  /** (a sync lists each volume of a pool once: the agent's state is a map by name) */
  get volumeCount(): number {
    return this.pending ? this.pending.ends.length : this.volumes.size;
  }
}

/** A volume of a sync: checked, canonical bytes (not yet stored), or prepared. */
type IncomingVolume = { bytes: Uint8Array; facts: VolumeFacts } | PreparedVolume;

/**
 * Volumes are kept encoded (stored-volume.ts): ~1.1 KB -> ~0.5 KB per volume for a fleet's
 * million. A file volume's key is its path: it is indexed once, in byPath. The path and key
 * indexes hold only indexed volumes: host-wide lookups index the host's pending pools first.
 */
interface HostState {
  pools: Map<string, PoolEntry>;
  /** pools whose volumes are pending (PendingVolumes) */
  pendingPools: number;
  /**
   * path -> volume, every volume with a path; key lookups look here too (key === path). Every
   * holder of a path two or more volumes hold (a dir and an fs pool over one directory), in an
   * array (holderOf picks one): with only the last indexed kept, stopping its pool took the
   * path from the other pool's volume too
   */
  byPath: Map<string, StoredVolume | StoredVolume[]>;
  /**
   * key -> volume, volumes whose key is not their path; every holder of a key two or more
   * volumes hold (one LUN seen by two pools), in an array (holderOf picks one)
   */
  byKey: Map<string, StoredVolume | StoredVolume[]>;
  /** revision at which a pool ('p', name) or volume ('v', pool, name) was removed; oldest first, at most ~tombstonesPerHost */
  tombstones: Map<string, bigint>;
  /**
   * An object held neither as a state nor as a tombstone counts as removed at this revision:
   * the highest of the tombstones forgotten (over the cap) and the last full sync's revision
   * (that sync held every object of the host as of its revision); -1 when neither. No pool's
   * volumes are pending while it is above the last full sync's revision.
   */
  forgotten: bigint;
  /** the revision of the last full sync taken: no volume it left pending is newer */
  syncRevision: bigint;
  /** the boot id of the agent whose full sync was taken last (0: none, or not said) */
  syncBoot: bigint;
  /**
   * Pools not active that show what they had when they stopped (sizes, free extents, target
   * permissions), as libvirt keeps them after pool-destroy: their last inactive state that
   * carried any, from an event, a reply or the agent's sync (HostSync.stopped_pools).
   */
  stopped: Map<string, Pool>;
}

export interface SyncSnapshot {
  pools: Pool[];
  /** decoded volumes, or each volume's wire bytes (splitHostSync in volume-wire.ts): no need to decode them */
  volumes: ReadonlyArray<Volume | Uint8Array>;
  /** the agent's revision when the snapshot was taken; 0 = replace everything */
  revision: bigint;
  /** the stopped pools' last states (HostSync.stopped_pools); absent: none */
  stoppedPools?: Pool[];
}

const MAX_REVISION = (1n << 64n) - 1n;

/**
 * Tombstones a host keeps (cache.ts header): the newest, each ~150 B, so ~1.7 MB for a host
 * that removes objects without ever syncing again (the oldest go in batches of an eighth:
 * a Map dropped from the front one entry at a time costs a scan of the holes each time).
 * The revision of the last one forgotten stands for all of them: only a state older than
 * this many removals of its host, of an object the cache does not hold, is refused for it.
 */
export const TOMBSTONES_PER_HOST = 10_000;

export interface FleetCacheOptions {
  /** tombstones kept per host (TOMBSTONES_PER_HOST) */
  tombstonesPerHost?: number;
  /** where pending pools keep their bytes (slab-arena.ts); a new one of SLAB_BYTES slabs by default */
  arena?: SlabArena;
}
const poolTomb = (pool: string): string => `p\u0000${pool}`;
const volTomb = (pool: string, volume: string): string => `v\u0000${pool}\u0000${volume}`;

/** Last path segment of a resource name, or the definition's name. */
export function poolShortName(pool: Pool): string {
  return pool.definition?.name || pool.name.slice(pool.name.lastIndexOf('/') + 1);
}
export function volumeShortName(volume: Volume): string {
  return volume.definition?.name || volume.name.slice(volume.name.lastIndexOf('/') + 1);
}

/** The same pool definition, field for field (compared encoded). */
export function sameDefinition(a: PoolDefinition, b: PoolDefinition): boolean {
  const x = PoolDefinition.encode(a).finish();
  const y = PoolDefinition.encode(b).finish();
  return x.length === y.length && Buffer.compare(x, y) === 0;
}

/** An inactive pool's state that shows what its last run had (sizes, free extents, target permissions). */
const showsLastRun = (pool: Pool): boolean =>
  pool.capacity !== 0n || pool.allocation !== 0n || pool.available !== 0n || pool.runtimeDevices.length > 0 || pool.targetPermissions !== undefined;

const isActive = (pool: Pool): boolean => pool.state !== PoolState.POOL_STATE_INACTIVE && pool.state !== PoolState.POOL_STATE_UNSPECIFIED;

export class FleetCache {
  private readonly catalog = new Map<string, Map<string, CatalogRecord>>();
  /** KV revision below which catalog writes for a key are stale (after deletions). */
  private readonly catalogFloor = new Map<string, number>();
  private readonly hosts = new Map<string, HostState>();
  private sortedPoolKeys: Array<[string, string]> | undefined;
  /** (host, pool) of pools left pending, in the order they came: indexPendingFor works through it */
  private pendingQueue: Array<readonly [string, string]> = [];
  private pendingHead = 0;
  private readonly applied = new Watermark<bigint>(0n);
  private readonly tombstonesPerHost: number;
  /** pending pools' bytes: out of slabs, not one malloc() each (slab-arena.ts) */
  private readonly arena: SlabArena;

  constructor(options: FleetCacheOptions = {}) {
    this.tombstonesPerHost = Math.max(1, options.tombstonesPerHost ?? TOMBSTONES_PER_HOST);
    this.arena = options.arena ?? new SlabArena();
  }

  // ------------------------------------------------------------ catalog

  /** Applies a catalog PUT (value) or DEL (undefined) seen at KV `revision`. Returns false when stale. */
  applyCatalog(host: string, pool: string, value: CatalogPool | undefined, revision: number): boolean {
    const key = `${host}\u0000${pool}`;
    const current = this.catalog.get(host)?.get(pool);
    if (current && current.revision > revision) return false;
    if ((this.catalogFloor.get(key) ?? 0) >= revision && value) return false;
    if (value) {
      let m = this.catalog.get(host);
      if (!m) this.catalog.set(host, (m = new Map()));
      if (!m.has(pool)) this.sortedPoolKeys = undefined;
      m.set(pool, { value, revision });
      this.catalogFloor.delete(key);
    } else {
      if (this.catalog.get(host)?.delete(pool)) this.sortedPoolKeys = undefined;
      // an undefined pool is gone, with what its last run showed (libvirt removes the object)
      this.hosts.get(host)?.stopped.delete(pool);
      this.catalogFloor.set(key, Math.max(revision, this.catalogFloor.get(key) ?? 0));
    }
    return true;
  }

  catalogEntry(host: string, pool: string): CatalogRecord | undefined {
    return this.catalog.get(host)?.get(pool);
  }

  catalogOfHost(host: string): Map<string, CatalogRecord> {
    return this.catalog.get(host) ?? new Map();
  }

  // ------------------------------------------------------------ runtime state

  private host(host: string): HostState {
    let h = this.hosts.get(host);
    if (!h) {
      h = { pools: new Map(), pendingPools: 0, byPath: new Map(), byKey: new Map(), tombstones: new Map(), forgotten: -1n, syncRevision: 0n, syncBoot: 0n, stopped: new Map() };
      this.hosts.set(host, h);
    }
    return h;
  }

  runtimePool(host: string, pool: string): RuntimePool | undefined {
    return this.hosts.get(host)?.pools.get(pool);
  }

  /**
   * The last state of a pool that is not active, when it shows what the pool had when it
   * stopped (HostState.stopped); undefined otherwise.
   */
  stoppedPool(host: string, pool: string): Pool | undefined {
    return this.hosts.get(host)?.stopped.get(pool);
  }

  /**
   * Applies a pool state (event, reply or sync). An inactive pool has no runtime state, only
   * what it showed when it stopped, when its state carries that.
   */
  applyPool(host: string, state: Pool): boolean {
    const h = this.host(host);
    const name = poolShortName(state);
    if (!name) return false;
    const current = h.pools.get(name);
    const held = current?.pool.revision ?? h.tombstones.get(poolTomb(name)) ?? h.forgotten;
    if (state.revision < held) return false;
    if (!isActive(state)) {
      if (current) this.dropPool(h, name, current);
      this.bury(h, poolTomb(name), state.revision);
      if (showsLastRun(state)) h.stopped.set(name, state);
      else h.stopped.delete(name);
      return true;
    }
    // a pool started with the definition it stopped with has nothing to keep of that run; one
    // CreatePool started with another definition keeps its stored one's (libvirt's ADD_LIVE newDef)
    const kept = h.stopped.get(name);
    if (kept && (!kept.definition || !state.definition || sameDefinition(kept.definition, state.definition))) h.stopped.delete(name);
    h.tombstones.delete(poolTomb(name));
    if (current) current.pool = state;
    else {
      h.pools.set(name, new PoolEntry(state));
      this.sortedPoolKeys = undefined;
    }
    return true;
  }

  private dropPool(h: HostState, name: string, rt: PoolEntry): void {
    if (rt.pending) {
      // nothing of it is indexed yet
      rt.pending = undefined;
      h.pendingPools--;
    }
    for (const v of rt.volumes.values()) this.unindex(h, v);
    h.pools.delete(name);
    this.sortedPoolKeys = undefined;
  }

  /** Applies a volume's new state; ignored for pools that are not active. */
  applyVolume(host: string, pool: string, volume: Volume): boolean {
    const h = this.host(host);
    const rt = h.pools.get(pool);
    if (!rt) return false;
    return this.applyPrepared(h, rt, pool, prepareVolume(volume));
  }

  /**
   * applyVolume for one Volume's wire bytes, without decoding them (volume-wire.ts). Throws,
   * like Volume.decode, on malformed bytes.
   */
  applyVolumeBytes(host: string, pool: string, bytes: Uint8Array): boolean {
    const h = this.host(host);
    const rt = h.pools.get(pool);
    if (!rt) return false;
    return this.applyPrepared(h, rt, pool, prepareVolume(bytes));
  }

  private applyPrepared(h: HostState, rt: PoolEntry, pool: string, v: PreparedVolume, fromPendingSync = false): boolean {
    this.indexPending(h, rt, pool);
    const name = shortNameOf(v.facts);
    const current = rt.volumes.get(name);
    const held = current !== undefined ? storedRevision(current) : (h.tombstones.get(volTomb(pool, name)) ?? (fromPendingSync ? -1n : h.forgotten));
    if (held >= 0n && v.facts.revision < held) return false; // (nothing held: any revision, without reading it)
    h.tombstones.delete(volTomb(pool, name));
    if (current === v.stored) return true; // unchanged (a resync): already indexed
    if (current !== undefined) this.unindex(h, current);
    else rt.sorted = undefined;
    rt.volumes.set(name, v.stored);
    this.index(h, v);
    return true;
  }

  /**
   * The revision of what is held of a pool (`volume` empty) or volume: its state, or its
   * removal (its tombstone, or the host's forgotten ones); -1 when nothing. A state of it at
   * a lower revision is older than what is held.
   */
  heldRevision(host: string, pool: string, volume = ''): bigint {
    const h = this.hosts.get(host);
    if (!h) return -1n;
    if (!volume) return h.pools.get(pool)?.pool.revision ?? h.tombstones.get(poolTomb(pool)) ?? h.forgotten;
    const current = this.indexedPool(host, pool)?.volumes.get(volume);
    return current !== undefined ? storedRevision(current) : (h.tombstones.get(volTomb(pool, volume)) ?? h.forgotten);
  }

  removeVolume(host: string, pool: string, name: string, revision: bigint): boolean {
    const h = this.host(host);
    const rt = h.pools.get(pool);
    if (rt) this.indexPending(h, rt, pool);
    const current = rt?.volumes.get(name);
    const held = current !== undefined ? storedRevision(current) : (h.tombstones.get(volTomb(pool, name)) ?? h.forgotten);
    if (revision < held) return false;
    this.bury(h, volTomb(pool, name), revision);
    if (rt && current !== undefined) {
      this.unindex(h, current);
      rt.volumes.delete(name);
      rt.sorted = undefined;
    }
    return true;
  }

  /**
   * Records a removal at `revision` as the newest tombstone, then forgets the oldest over the
   * cap into `forgotten` (cache.ts header). A removal at or below `forgotten` needs none.
   */
  private bury(h: HostState, key: string, revision: bigint): void {
    h.tombstones.delete(key); // (re-inserted: the newest last)
    if (revision <= h.forgotten) return;
    h.tombstones.set(key, revision);
    const cap = this.tombstonesPerHost;
    if (h.tombstones.size <= cap + (cap >> 3)) return;
    // pending volumes were checked against a host with no removals at all (replaceHost):
    // indexed before `forgotten` would count them among the removed
    this.indexHost(h);
    for (const [k, r] of h.tombstones) {
      if (h.tombstones.size <= cap) break;
      h.tombstones.delete(k);
      if (r > h.forgotten) h.forgotten = r;
    }
  }

  private index(h: HostState, v: PreparedVolume): void {
    const { key, path } = v.facts;
    if (path) addHolder(h.byPath, path, v.stored);
    if (key && key !== path) addHolder(h.byKey, key, v.stored);
  }

  private unindex(h: HostState, stored: StoredVolume): void {
    const { key, path } = storedFacts(stored);
    if (path) dropHolder(h.byPath, path, stored);
    if (key && key !== path) dropHolder(h.byKey, key, stored);
  }

  /** Indexes a pool's pending volumes (PendingVolumes), if it has any. */
  private indexPending(h: HostState, rt: PoolEntry, pool: string): void {
    const pending = rt.pending;
    if (!pending) return;
    rt.pending = undefined;
    h.pendingPools--;
    const { arena, starts, ends } = pending;
    for (let i = 0; i < ends.length; i++) {
      const bytes = arena.subarray(starts[i], ends[i]);
      // the sync's own states: `forgotten` (at most the sync's revision here) does not refuse them
      this.applyPrepared(h, rt, pool, prepareScanned(bytes, scanVolume(bytes)), true);
    }
  }

  /**
   * Indexes pools left pending, oldest first, for about `budgetMs`: how many it indexed, and
   * whether some may be left (call again after yielding to the event loop).
   */
  indexPendingFor(budgetMs: number): { indexed: number; more: boolean } {
    const until = performance.now() + budgetMs;
    let indexed = 0;
    while (this.pendingHead < this.pendingQueue.length) {
      const [host, pool] = this.pendingQueue[this.pendingHead++]!;
      // (indexed on demand since, stopped, or synced again: then nothing to do)
      const h = this.hosts.get(host);
      const rt = h?.pools.get(pool);
      if (h && rt?.pending) {
        this.indexPending(h, rt, pool);
        indexed++;
      }
      if (performance.now() >= until) break;
    }
    if (this.pendingHead < this.pendingQueue.length) return { indexed, more: true };
    this.pendingQueue = [];
    this.pendingHead = 0;
    // nothing pending: the slab being filled goes once its pools' views are collected
    this.arena.release();
    return { indexed, more: false };
  }

  /** Indexes every pending pool of the host: before a lookup by key or path. */
  private indexHost(h: HostState): void {
    if (h.pendingPools === 0) return;
    for (const [name, rt] of h.pools) this.indexPending(h, rt, name);
  }

  /** The pool with its volumes indexed. */
  private indexedPool(host: string, pool: string): PoolEntry | undefined {
    const h = this.hosts.get(host);
    const rt = h?.pools.get(pool);
    if (h && rt) this.indexPending(h, rt, pool);
    return rt;
  }

  /**
   * A full snapshot of a host's runtime state. What changed after the snapshot (revision
   * above it) is kept; what the snapshot does not hold and is not newer is dropped.
   */
  replaceHost(host: string, snapshot: SyncSnapshot, bootId = 0n): void {
    // every volume read (bytes that fail to decode throw) before anything changes
    const byPool = new Map<string, IncomingVolume[]>();
    for (const input of snapshot.volumes) {
      let v: IncomingVolume;
      if (input instanceof Uint8Array) {
        const facts = scanVolume(input);
        v = facts.canonical ? { bytes: input, facts } : prepareScanned(input, facts);
      } else {
        v = prepareVolume(input);
      }
      const pool = snapshotPoolOf(v.facts);
      let list = byPool.get(pool);
      if (!list) byPool.set(pool, (list = []));
      list.push(v);
    }
    const h = this.host(host);
    if (snapshot.revision > h.syncRevision) h.syncRevision = snapshot.revision;
    if (bootId !== 0n) h.syncBoot = bootId;
    const cut = snapshot.revision === 0n ? MAX_REVISION : snapshot.revision;
    const pools = new Map(snapshot.pools.map((p) => [poolShortName(p), p]));
    for (const [name, rt] of [...h.pools]) {
      if (!pools.has(name) && rt.pool.revision <= cut) this.dropPool(h, name, rt);
    }
    for (const [key, rev] of [...h.tombstones]) if (rev <= cut && snapshot.revision !== 0n) h.tombstones.delete(key);
    if (snapshot.revision === 0n) h.tombstones.clear();
    // the removals forgotten are older than the snapshot: it holds whatever is left
    if (h.forgotten <= cut) h.forgotten = -1n;
    for (const p of pools.values()) this.applyPool(host, p);
    this.replaceStopped(h, snapshot, cut);
    for (const [name, rt] of h.pools) {
      const incoming = byPool.get(name) ?? [];
      // a pool filled from nothing, with nothing removed to compare against: kept as bytes
      if (rt.volumes.size === 0 && !rt.pending && h.tombstones.size === 0 && h.forgotten < 0n && incoming.length > 0 && incoming.every((v) => 'bytes' in v)) {
        rt.pending = pendingOf(this.arena, incoming as Array<{ bytes: Uint8Array }>);
        h.pendingPools++;
        this.pendingQueue.push([host, name]);
        rt.sorted = undefined;
        continue;
      }
      this.indexPending(h, rt, name);
      if (rt.volumes.size > 0) {
        // (a first sync, e.g. after a restart, has nothing to drop)
        const keep = new Set(incoming.map((v) => shortNameOf(v.facts)));
        for (const [vname, stored] of [...rt.volumes]) {
          if (!keep.has(vname) && storedRevision(stored) <= cut) {
            this.unindex(h, stored);
            rt.volumes.delete(vname);
            rt.sorted = undefined;
          }
        }
      }
      for (const v of incoming) this.applyPrepared(h, rt, name, 'bytes' in v ? prepareScanned(v.bytes, v.facts) : v);
    }
    // What the snapshot does not hold was removed by its revision: a state of it at or below
    // that revision arriving late (an event published after awaits, a reconcile event, a reply)
    // is older than the removal, as the tombstones cleared above would have said. (Its pending
    // volumes are the newest states up to it: nothing at or below it is newer.) A snapshot
    // without a revision orders nothing and refuses nothing after it.
    if (snapshot.revision !== 0n && h.forgotten < cut) h.forgotten = cut;
  }

  /**
   * The stopped pools' last states from a full sync: what the sync does not hold and is not
   * newer is dropped (an agent that restarted forgot them, as libvirtd does); what it holds is
   * taken unless the pool changed after the snapshot (a tombstone above it, or active now).
   */
  private replaceStopped(h: HostState, snapshot: SyncSnapshot, cut: bigint): void {
    const incoming = new Map((snapshot.stoppedPools ?? []).map((p) => [poolShortName(p), p]));
    for (const [name, held] of [...h.stopped]) {
      if (!incoming.has(name) && held.revision <= cut) h.stopped.delete(name);
    }
    for (const [name, p] of incoming) {
      // (an active pool's too: one CreatePool started over its stored definition, whose last run it keeps)
      if (!name || isActive(p) || !showsLastRun(p)) continue;
      const held = h.stopped.get(name);
      if (held && held.revision > p.revision) continue;
      const buried = h.tombstones.get(poolTomb(name));
      if (buried !== undefined && buried > p.revision) continue;
      h.stopped.set(name, p);
    }
  }

  /**
   * The highest revision held of the host: of a pool, a volume, a removal (forgotten ones
   * included) or the last full sync.
   * A new boot of its agent that syncs below it has lost its revision floor (a new or wiped
   * --root): sync-intake.ts takes that sync whole.
   */
  highestRevision(host: string): bigint {
    const h = this.hosts.get(host);
    if (!h) return -1n;
    let highest = h.syncRevision > h.forgotten ? h.syncRevision : h.forgotten;
    const consider = (r: bigint): void => {
      if (r > highest) highest = r;
    };
    for (const r of h.tombstones.values()) consider(r);
    for (const rt of h.pools.values()) {
      consider(rt.pool.revision);
      for (const v of rt.volumes.values()) consider(storedRevision(v));
    }
    return highest;
  }

  /** The boot id of the agent whose full sync of the host was taken last; 0 when none. */
  syncBoot(host: string): bigint {
    return this.hosts.get(host)?.syncBoot ?? 0n;
  }

  /** Forgets a host's runtime state (not its catalog). */
  clearHost(host: string): void {
    if (this.hosts.delete(host)) this.sortedPoolKeys = undefined;
  }

  // ------------------------------------------------------------ events

  /** Applies one event from the stream, in sequence order. */
  applyEvent(event: Event): void {
    if (event.sequence !== 0n && event.sequence <= this.applied.value) return;
    switch (event.kind) {
      case EventKind.POOL_STARTED:
      case EventKind.POOL_STOPPED:
      case EventKind.POOL_CREATED:
      case EventKind.POOL_DELETED:
      case EventKind.POOL_REFRESHED:
        if (event.poolState) this.applyPool(event.host, { ...event.poolState, definition: event.poolState.definition ?? undefined });
        break;
      case EventKind.VOLUME_CREATED:
      case EventKind.VOLUME_RESIZED:
      case EventKind.VOLUME_WIPED:
      case EventKind.VOLUME_UPLOADED:
      case EventKind.VOLUME_CHANGED:
        if (event.volumeState) this.applyVolume(event.host, event.pool, event.volumeState);
        this.applyPoolSizes(event);
        break;
      case EventKind.VOLUME_DELETED:
        this.removeVolume(event.host, event.pool, event.volume || (event.volumeState ? volumeShortName(event.volumeState) : ''), event.volumeState?.revision ?? 0n);
        this.applyPoolSizes(event);
        break;
      default:
        break; // catalog and host events are followed through KV and heartbeats
    }
    if (event.sequence > this.applied.value) this.advance(event.sequence);
  }

  /** A volume event carries its pool's new sizes and volume count: take them when newer. */
  private applyPoolSizes(event: Event): void {
    if (event.poolState && isActive(event.poolState)) {
      this.applyPool(event.host, { ...event.poolState, definition: event.poolState.definition ?? undefined });
    }
  }

  get appliedSequence(): bigint {
    return this.applied.value;
  }

  /** Marks every sequence up to `seq` applied (start position, or events this process skips). */
  advance(seq: bigint): void {
    this.applied.advance(seq);
  }

  /** Resolves true once `seq` is applied, false after `timeoutMs`. */
  waitForSequence(seq: bigint, timeoutMs = 10_000): Promise<boolean> {
    return this.applied.waitFor(seq, timeoutMs);
  }

  // ------------------------------------------------------------ queries

  /** Every (host, pool) with a catalog entry or runtime state, ordered by host then name. */
  poolKeys(): ReadonlyArray<readonly [string, string]> {
    if (!this.sortedPoolKeys) {
      const seen = new Set<string>();
      const keys: Array<[string, string]> = [];
      const add = (host: string, pool: string): void => {
        const k = `${host}\u0000${pool}`;
        if (seen.has(k)) return;
        seen.add(k);
        keys.push([host, pool]);
      };
      for (const [host, m] of this.catalog) for (const pool of m.keys()) add(host, pool);
      for (const [host, h] of this.hosts) for (const pool of h.pools.keys()) add(host, pool);
      keys.sort((a, b) => compare(a[0], b[0]) || compare(a[1], b[1]));
      this.sortedPoolKeys = keys;
    }
    return this.sortedPoolKeys;
  }

  poolCount(host: string): number {
    let n = this.catalog.get(host)?.size ?? 0;
    for (const pool of this.hosts.get(host)?.pools.keys() ?? []) if (!this.catalog.get(host)?.has(pool)) n++;
    return n;
  }

  /** The volume, decoded (a new object on every call: ~10 µs). */
  volume(host: string, pool: string, name: string): Volume | undefined {
    const stored = this.storedVolume(host, pool, name);
    return stored === undefined ? undefined : decodeStored(stored);
  }

  hasVolume(host: string, pool: string, name: string): boolean {
    return this.indexedPool(host, pool)?.volumes.has(name) ?? false;
  }

  /** The volume in its compact form (stored-volume.ts), e.g. for a listing that copies its bytes. */
  storedVolume(host: string, pool: string, name: string): StoredVolume | undefined {
    return this.indexedPool(host, pool)?.volumes.get(name);
  }

  /** An active pool's volumes by short name (empty for a pool that is not active). */
  poolVolumes(host: string, pool: string): ReadonlyMap<string, StoredVolume> {
    return this.indexedPool(host, pool)?.volumes ?? new Map();
  }

  /** Volume names of an active pool in order (cached until the next add/remove). */
  volumeNames(host: string, pool: string): readonly string[] {
    const rt = this.indexedPool(host, pool);
    if (!rt) return [];
    if (!rt.sorted) rt.sorted = [...rt.volumes.keys()].sort(compare);
    return rt.sorted;
  }

  volumeByKey(host: string, key: string): Volume | undefined {
    const h = this.hosts.get(host);
    if (!h) return undefined;
    this.indexHost(h);
    const other = h.byKey.get(key);
    if (other !== undefined) return holderOf(other);
    // a volume whose key is its path is indexed by path only
    const same = h.byPath.get(key);
    if (same === undefined) return undefined;
    return holderOf(same, (v) => v.definition?.key === key);
  }

  volumeByPath(host: string, path: string): Volume | undefined {
    const h = this.hosts.get(host);
    if (!h) return undefined;
    this.indexHost(h);
    const held = h.byPath.get(path);
    return held === undefined ? undefined : holderOf(held);
  }

  /** Active pools of the host whose volumes came in a sync and are not indexed yet (PendingVolumes). */
  pendingPools(host: string): number {
    return this.hosts.get(host)?.pendingPools ?? 0;
  }

  /** Names of the host's active pools. */
  poolsOfHost(host: string): string[] {
    return [...(this.hosts.get(host)?.pools.keys() ?? [])];
  }
}

/**
 * The volume a key or path lookup answers with: the only one, or, of volumes in several pools
 * (or one pool) holding the key or path, the one of the pool first by name, then first by name
 * in it; of those `accept` takes (undefined: none). libvirt answers with the first active pool
 * it finds holding it; by name, every coordinator answers alike, whatever order the volumes
 * came in.
 */
function holderOf(held: StoredVolume | StoredVolume[], accept: (v: Volume) => boolean = () => true): Volume | undefined {
  const order = (v: Volume): [string, string] => [v.pool, v.definition?.name ?? ''];
  let best: Volume | undefined;
  for (const v of (Array.isArray(held) ? held : [held]).map(decodeStored)) {
    if (!accept(v)) continue;
    if (best === undefined) {
      best = v;
      continue;
    }
    const [bp, bn] = order(best);
    const [vp, vn] = order(v);
    if (compare(vp, bp) < 0 || (vp === bp && compare(vn, bn) < 0)) best = v;
  }
  return best;
}

/** Adds `stored` to the holders of `k` (one volume alone, two or more in an array). */
function addHolder(index: Map<string, StoredVolume | StoredVolume[]>, k: string, stored: StoredVolume): void {
  const held = index.get(k);
  if (held === undefined || held === stored) index.set(k, stored);
  else if (Array.isArray(held)) {
    if (!held.includes(stored)) held.push(stored);
  } else index.set(k, [held, stored]);
}

/** Takes `stored` from the holders of `k`, the others staying. */
function dropHolder(index: Map<string, StoredVolume | StoredVolume[]>, k: string, stored: StoredVolume): void {
  const held = index.get(k);
  if (held === stored) index.delete(k);
  else if (Array.isArray(held)) {
    const i = held.indexOf(stored);
    if (i >= 0) held.splice(i, 1);
    if (held.length === 1) index.set(k, held[0]!);
  }
}

/**
 * A pool's volumes as PendingVolumes: a view of the one buffer they came in, in order, when
 * they did (nothing copied); else copied back to back into a view of a slab.
 */
function pendingOf(slabs: SlabArena, volumes: ReadonlyArray<{ bytes: Uint8Array }>): PendingVolumes {
  const starts = new Uint32Array(volumes.length);
  const ends = new Uint32Array(volumes.length);
  const first = volumes[0]!.bytes;
  const last = volumes[volumes.length - 1]!.bytes;
  let inOne = true;
  for (let i = 0, pos = first.byteOffset; i < volumes.length && inOne; i++) {
    const bytes = volumes[i]!.bytes;
    inOne = bytes.buffer === first.buffer && bytes.byteOffset >= pos;
    starts[i] = bytes.byteOffset - first.byteOffset;
    ends[i] = starts[i]! + bytes.length;
    pos = bytes.byteOffset + bytes.length;
  }
  let total = 0;
  for (const v of volumes) total += v.bytes.length;
  const span = last.byteOffset + last.length - first.byteOffset;
  // (volumes with much else between them, another pool's, are copied: the view would keep
  // bytes nobody reads for as long as this pool is pending)
  if (inOne && span <= 2 * total) return { arena: Buffer.from(first.buffer, first.byteOffset, span), starts, ends };
  const arena = slabs.alloc(total);
  let pos = 0;
  for (let i = 0; i < volumes.length; i++) {
    const bytes = volumes[i]!.bytes;
    arena.set(bytes, pos);
    starts[i] = pos;
    pos += bytes.length;
    ends[i] = pos;
  }
  return { arena, starts, ends };
}

/** Code-unit order: the same in every process and every language's byte-wise compare of ASCII. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
