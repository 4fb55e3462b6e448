// The coordinator's view of the fleet, answered from memory:
//  - the catalog (pool definitions, autostart) mirrored from the KV bucket;
//  - every agent's runtime state (active pools, their volumes) from HostSync snapshots
//    and the event stream.
// Sync and events travel different paths, so every Pool/Volume state carries the agent's
// host-wide `revision`; a state older than the one held (or than a deletion) is ignored.
import { EventKind, PoolState, type Event, type Pool, type Volume } from '../../libs/proto/cistern/v1/storage.js';
import type { CatalogPool } from '../../libs/proto/cistern/agent/v1/agent.js';

export interface CatalogRecord {
  value: CatalogPool;
  revision: number;
}

export interface RuntimePool {
  pool: Pool;
  volumes: Map<string, Volume>;
  /** volume names in order, built on demand, dropped on every add/remove */
  sorted?: string[];
}

interface HostState {
  pools: Map<string, RuntimePool>;
  byKey: Map<string, Volume>;
  byPath: Map<string, Volume>;
  /** revision at which a pool ('p', name) or volume ('v', pool, name) was removed */
  tombstones: Map<string, bigint>;
}

export interface SyncSnapshot {
  pools: Pool[];
  volumes: Volume[];
  /** the agent's revision when the snapshot was taken; 0 = replace everything */
  revision: bigint;
}

const MAX_REVISION = (1n << 64n) - 1n;
const poolTomb = (pool: string): string => `p\u0000${pool}`;
const volTomb = (pool: string, volume: string): string => `v\u0000${pool}\u0000${volume}`;

/** Last path segment of a resource name, or the definition's name. */
export function poolShortName(pool: Pool): string {
  return pool.definition?.name || pool.name.slice(pool.name.lastIndexOf('/') + 1);
}
export function volumeShortName(volume: Volume): string {
  return volume.definition?.name || volume.name.slice(volume.name.lastIndexOf('/') + 1);
}

const isActive = (pool: Pool): boolean => pool.state !== PoolState.POOL_STATE_INACTIVE && pool.state !== PoolState.POOL_STATE_UNSPECIFIED;

export class FleetCache {
  private readonly catalog = new Map<string, Map<string, CatalogRecord>>();
  /** KV revision below which catalog writes for a key are stale (after deletions). */
  private readonly catalogFloor = new Map<string, number>();
  private readonly hosts = new Map<string, HostState>();
  private sortedPoolKeys: Array<[string, string]> | undefined;
  private applied = 0n;
  private waiters: Array<{ seq: bigint; resolve: () => void }> = [];

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
      h = { pools: new Map(), byKey: new Map(), byPath: new Map(), tombstones: new Map() };
      this.hosts.set(host, h);
    }
    return h;
  }

  runtimePool(host: string, pool: string): RuntimePool | undefined {
    return this.hosts.get(host)?.pools.get(pool);
  }

  /** Applies a pool state (event, reply or sync). An inactive pool has no runtime state. */
  applyPool(host: string, state: Pool): boolean {
    const h = this.host(host);
    const name = poolShortName(state);
    if (!name) return false;
    const current = h.pools.get(name);
    const held = current?.pool.revision ?? h.tombstones.get(poolTomb(name)) ?? -1n;
    if (state.revision < held) return false;
    if (!isActive(state)) {
      if (current) this.dropPool(h, name, current);
      h.tombstones.set(poolTomb(name), state.revision);
      return true;
    }
    h.tombstones.delete(poolTomb(name));
    if (current) current.pool = state;
    else {
      h.pools.set(name, { pool: state, volumes: new Map() });
      this.sortedPoolKeys = undefined;
    }
    return true;
  }

  private dropPool(h: HostState, name: string, rt: RuntimePool): void {
    for (const v of rt.volumes.values()) this.unindex(h, v);
    h.pools.delete(name);
    this.sortedPoolKeys = undefined;
  }

  /** Applies a volume's new state; ignored for pools that are not active. */
  applyVolume(host: string, pool: string, volume: Volume): boolean {
    const h = this.host(host);
    const rt = h.pools.get(pool);
    if (!rt) return false;
    const name = volumeShortName(volume);
    const current = rt.volumes.get(name);
    const held = current?.revision ?? h.tombstones.get(volTomb(pool, name)) ?? -1n;
    if (volume.revision < held) return false;
    h.tombstones.delete(volTomb(pool, name));
    if (current) this.unindex(h, current);
    else rt.sorted = undefined;
    this.compact(volume);
    rt.volumes.set(name, volume);
    this.index(h, volume);
    return true;
  }

  /** One copy of the strings every volume repeats (host, pool, format ...), shared by all. */
  private readonly strings = new Map<string, string>();

  private intern(s: string): string {
    if (s.length === 0 || s.length > 64) return s;
    const held = this.strings.get(s);
    if (held !== undefined) return held;
    this.strings.set(s, s);
    return s;
  }

  /**
   * A decoded volume holds its own copy of every string. A fleet's cache holds a million of
   * them: sharing the repeated ones (host, pool, format, compat; key = path for files; ctime =
   * mtime) saves ~190 of ~1,100 heap bytes per volume (bench/fleet). Values are unchanged.
   */
  private compact(volume: Volume): void {
    volume.host = this.intern(volume.host);
    volume.pool = this.intern(volume.pool);
    const def = volume.definition;
    const t = def?.target;
    if (!def || !t) return;
    if (def.key === t.path) def.key = t.path;
    t.format = this.intern(t.format);
    t.compat = this.intern(t.compat);
    const ts = t.timestamps;
    if (ts && ts.ctime === ts.mtime) ts.ctime = ts.mtime;
  }

  removeVolume(host: string, pool: string, name: string, revision: bigint): boolean {
    const h = this.host(host);
    const rt = h.pools.get(pool);
    const current = rt?.volumes.get(name);
    const held = current?.revision ?? h.tombstones.get(volTomb(pool, name)) ?? -1n;
    if (revision < held) return false;
    h.tombstones.set(volTomb(pool, name), revision);
    if (rt && current) {
      this.unindex(h, current);
      rt.volumes.delete(name);
      rt.sorted = undefined;
    }
    return true;
  }

  private index(h: HostState, v: Volume): void {
    const key = v.definition?.key;
    const path = v.definition?.target?.path;
    if (key) h.byKey.set(key, v);
    if (path) h.byPath.set(path, v);
  }

  private unindex(h: HostState, v: Volume): void {
    const key = v.definition?.key;
    const path = v.definition?.target?.path;
    if (key && h.byKey.get(key)?.name === v.name) h.byKey.delete(key);
    if (path && h.byPath.get(path)?.name === v.name) h.byPath.delete(path);
  }

  /**
   * A full snapshot of a host's runtime state. What changed after the snapshot (revision
   * above it) is kept; what the snapshot does not hold and is not newer is dropped.
   */
  replaceHost(host: string, snapshot: SyncSnapshot): void {
    const h = this.host(host);
    const cut = snapshot.revision === 0n ? MAX_REVISION : snapshot.revision;
    const pools = new Map(snapshot.pools.map((p) => [poolShortName(p), p]));
    for (const [name, rt] of [...h.pools]) {
      if (!pools.has(name) && rt.pool.revision <= cut) this.dropPool(h, name, rt);
    }
    for (const [key, rev] of [...h.tombstones]) if (rev <= cut && snapshot.revision !== 0n) h.tombstones.delete(key);
    if (snapshot.revision === 0n) h.tombstones.clear();
    for (const p of pools.values()) this.applyPool(host, p);
    const byPool = new Map<string, Volume[]>();
    for (const v of snapshot.volumes) {
      const pool = v.pool || v.name.split('/')[3] || '';
      let list = byPool.get(pool);
      if (!list) byPool.set(pool, (list = []));
      list.push(v);
    }
    for (const [name, rt] of h.pools) {
      const incoming = byPool.get(name) ?? [];
      const keep = new Set(incoming.map(volumeShortName));
      for (const [vname, v] of [...rt.volumes]) {
        if (!keep.has(vname) && v.revision <= cut) {
          this.unindex(h, v);
          rt.volumes.delete(vname);
          rt.sorted = undefined;
        }
      }
      for (const v of incoming) this.applyVolume(host, name, v);
    }
  }

  /** Forgets a host's runtime state (not its catalog). */
  clearHost(host: string): void {
    if (this.hosts.delete(host)) this.sortedPoolKeys = undefined;
  }

  // ------------------------------------------------------------ events

  /** Applies one event from the stream, in sequence order. */
  applyEvent(event: Event): void {
    if (event.sequence !== 0n && event.sequence <= this.applied) return;
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
    if (event.sequence > this.applied) this.advance(event.sequence);
  }

  /** A volume event carries its pool's new sizes and volume count: take them when newer. */
  private applyPoolSizes(event: Event): void {
    if (event.poolState && isActive(event.poolState)) {
      this.applyPool(event.host, { ...event.poolState, definition: event.poolState.definition ?? undefined });
    }
  }

  get appliedSequence(): bigint {
    return this.applied;
  }

  /** Marks every sequence up to `seq` applied (start position, or events this process skips). */
  advance(seq: bigint): void {
    if (seq <= this.applied) return;
    this.applied = seq;
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) (w.seq <= seq ? w.resolve() : still.push(w));
    this.waiters = still;
  }

  /** Resolves true once `seq` is applied, false after `timeoutMs`. */
  waitForSequence(seq: bigint, timeoutMs = 10_000): Promise<boolean> {
    if (seq <= this.applied) return Promise.resolve(true);
    return new Promise((resolve) => {
      const entry = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== entry);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(entry);
    });
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

  volume(host: string, pool: string, name: string): Volume | undefined {
    return this.hosts.get(host)?.pools.get(pool)?.volumes.get(name);
  }

  /** Volume names of an active pool in order (cached until the next add/remove). */
  volumeNames(host: string, pool: string): readonly string[] {
    const rt = this.hosts.get(host)?.pools.get(pool);
    if (!rt) return [];
    if (!rt.sorted) rt.sorted = [...rt.volumes.keys()].sort(compare);
    return rt.sorted;
  }

  volumeByKey(host: string, key: string): Volume | undefined {
    return this.hosts.get(host)?.byKey.get(key);
  }

  volumeByPath(host: string, path: string): Volume | undefined {
    return this.hosts.get(host)?.byPath.get(path);
  }

  /** Every active pool of a host whose definition carries this uuid. */
  poolsOfHost(host: string): string[] {
    return [...(this.hosts.get(host)?.pools.keys() ?? [])];
  }
}

/** Code-unit order: the same in every process and every language's byte-wise compare of ASCII. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
