// Host registry: a host is online while its heartbeats arrive and offline after three
// missed intervals. A host that comes back (heartbeats again, or a new boot) is asked for
// a full sync and shows ONLINE only once that sync is in: the coordinator reconciles its
// view first (reconcile.ts), then publishes HOST_ONLINE. Hosts are also recorded in the catalog bucket (key hosts.<id>, value
// Heartbeat = last known Host, boot id, interval) so a restarted coordinator knows the fleet.
import { NotFoundError, UnavailableError } from '../../libs/errors/errors.js';
import { Heartbeat } from '../../libs/proto/cistern/agent/v1/agent.js';
import { EventKind, Host, type Event } from '../../libs/proto/cistern/v1/storage.js';
import { hostName } from '../../libs/api/resource-names.js';
import type { Logger } from './log.js';

export const MISSED_HEARTBEATS = 3;
export const DEFAULT_INTERVAL_MS = 2000;

export interface HostEntry {
  host: Host;
  bootId: bigint;
  intervalMs: number;
  /** local clock of the last heartbeat (or of the start, for hosts loaded from the store) */
  lastHeartbeatAt: number;
  online: boolean;
  /** a full sync arrived since this coordinator started */
  synced: boolean;
  /** heartbeats are back, the full sync that makes it online is awaited (local clock of the ask) */
  returningSince?: number;
}

export interface HostStore {
  load(): Promise<Heartbeat[]>;
  save(record: Heartbeat): Promise<void>;
}

export interface HostRegistryOptions {
  store?: HostStore;
  /** Publishes HOST_ONLINE / HOST_OFFLINE (deduplicated by request id across coordinators). */
  publish?: (event: Event) => Promise<unknown>;
  log: Logger;
  now?: () => number;
  onOnline?: (host: string) => void;
}

export class HostRegistry {
  private readonly entries = new Map<string, HostEntry>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private syncWaiters: Array<{ hosts: Set<string>; resolve: () => void }> = [];
  private lossWatchers = new Map<string, Set<(why: string) => void>>();

  constructor(private readonly options: HostRegistryOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Loads the fleet from the store; hosts recorded online get one grace period to heartbeat. */
  async load(): Promise<void> {
    if (!this.options.store) return;
    for (const record of await this.options.store.load()) {
      const id = record.host?.hostId;
      if (!id || this.entries.has(id)) continue;
      this.entries.set(id, {
        host: Host.fromPartial({ ...record.host, name: hostName(id) }),
        bootId: record.bootId,
        intervalMs: record.intervalMs || DEFAULT_INTERVAL_MS,
        lastHeartbeatAt: this.now(),
        online: record.host?.online ?? false,
        synced: false,
      });
    }
  }

  startTimer(periodMs = 250): void {
    this.timer ??= setInterval(() => this.tick(), periodMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const w of this.syncWaiters) w.resolve();
    this.syncWaiters = [];
  }

  onHeartbeat(hb: Heartbeat): void {
    const info = hb.host;
    const id = info?.hostId;
    if (!info || !id) return;
    const now = this.now();
    const entry = this.entries.get(id);
    const cameBack = !entry || !entry.online || entry.bootId !== hb.bootId;
    const intervalMs = hb.intervalMs || DEFAULT_INTERVAL_MS;
    const host = Host.fromPartial({
      ...info,
      name: hostName(id),
      online: true,
      // when this coordinator saw it, by its own clock: an agent's clock may be skewed
      lastSeen: new Date(now),
    });
    if (entry?.returningSince !== undefined && entry.bootId === hb.bootId) {
      // still waiting for the sync that brings it online
      entry.lastHeartbeatAt = now;
      entry.intervalMs = intervalMs;
      entry.host = Host.fromPartial({ ...host, online: false });
      return;
    }
    if (!cameBack) {
      this.entries.set(id, { host, bootId: hb.bootId, intervalMs, lastHeartbeatAt: now, online: true, synced: entry?.synced ?? false });
      return;
    }
    if (entry && entry.bootId !== hb.bootId && entry.bootId !== 0n) this.lost(id, 'its agent restarted');
    const next: HostEntry = {
      host: Host.fromPartial({ ...host, online: false }),
      bootId: hb.bootId,
      intervalMs,
      lastHeartbeatAt: now,
      online: false,
      synced: entry?.synced ?? false,
      returningSince: now,
    };
    this.entries.set(id, next);
    this.options.log.info('host heartbeats again; waiting for its full sync', { host: id, bootId: hb.bootId });
    this.options.onOnline?.(id);
  }

  /** Heartbeats are back and the sync that brings the host online is awaited. */
  isReturning(id: string): boolean {
    return this.entries.get(id)?.returningSince !== undefined;
  }

  private comeOnline(id: string, entry: HostEntry, syncId: string): void {
    entry.returningSince = undefined;
    entry.online = true;
    entry.host = Host.fromPartial({ ...entry.host, online: true });
    this.options.log.info('host online', { host: id, bootId: entry.bootId });
    this.persist(entry);
    this.emit(EventKind.HOST_ONLINE, entry, `host-online:${id}:${entry.bootId}:${syncId}`);
  }

  /** A full sync arrived: the host is alive and its runtime state is known. */
  onSync(id: string, info: Host | undefined, syncId = ''): void {
    const entry = this.entries.get(id);
    if (entry && info) {
      entry.host = Host.fromPartial({ ...entry.host, ...info, name: hostName(id), online: entry.online, lastSeen: entry.host.lastSeen ?? new Date(this.now()) });
    }
    if (entry) {
      entry.synced = true;
      if (entry.returningSince !== undefined) this.comeOnline(id, entry, syncId);
    } else if (info) {
      this.entries.set(id, {
        host: Host.fromPartial({ ...info, name: hostName(id), online: true }),
        bootId: 0n,
        intervalMs: DEFAULT_INTERVAL_MS,
        lastHeartbeatAt: this.now(),
        online: true,
        synced: true,
      });
    }
    this.checkSyncWaiters();
  }

  /** Marks hosts offline whose heartbeats stopped. */
  tick(): void {
    const now = this.now();
    for (const [id, entry] of this.entries) {
      if (entry.returningSince !== undefined) {
        if (now - entry.lastHeartbeatAt > MISSED_HEARTBEATS * entry.intervalMs) {
          entry.returningSince = undefined; // gone again before its sync came
        } else if (now - entry.returningSince > MISSED_HEARTBEATS * entry.intervalMs) {
          entry.returningSince = now;
          this.options.log.warn('no full sync from a host that heartbeats; asking again', { host: id });
          this.options.onOnline?.(id);
        }
        continue;
      }
      if (!entry.online) continue;
      if (now - entry.lastHeartbeatAt <= MISSED_HEARTBEATS * entry.intervalMs) continue;
      entry.online = false;
      entry.host = Host.fromPartial({ ...entry.host, online: false });
      this.options.log.warn('host offline: heartbeats stopped', { host: id, lastSeen: entry.host.lastSeen?.toISOString() });
      this.persist(entry);
      const seen = entry.host.lastSeen?.getTime() ?? 0;
      this.emit(EventKind.HOST_OFFLINE, entry, `host-offline:${id}:${entry.bootId}:${seen}`);
      this.lost(id, `it went offline (last seen ${entry.host.lastSeen?.toISOString() ?? 'never'})`);
    }
    this.checkSyncWaiters();
  }

  get(id: string): HostEntry | undefined {
    return this.entries.get(id);
  }

  list(): HostEntry[] {
    return [...this.entries.values()].sort((a, b) => (a.host.hostId < b.host.hostId ? -1 : a.host.hostId > b.host.hostId ? 1 : 0));
  }

  isOnline(id: string): boolean {
    return this.entries.get(id)?.online ?? false;
  }

  requireKnown(id: string): HostEntry {
    const entry = this.entries.get(id);
    if (!entry) throw new NotFoundError(`host '${id}' is not known: no agent with this host id has ever reported`, { host: id });
    return entry;
  }

  /** The host for an operation that goes to its agent: NOT_FOUND or UNAVAILABLE at once. */
  requireOnline(id: string): HostEntry {
    const entry = this.requireKnown(id);
    if (!entry.online) {
      const seen = entry.host.lastSeen ? entry.host.lastSeen.toISOString() : 'never';
      throw new UnavailableError(`host '${id}' is offline (last seen ${seen}); try again when its agent is back`, {
        host: id,
        lastSeen: seen,
      });
    }
    return entry;
  }

  /**
   * Calls `onLost` when the host goes offline or its agent restarts: operations waiting
   * for that agent's answer fail then instead of waiting out their timeout. Returns the
   * function that stops watching.
   */
  watchLoss(id: string, onLost: (why: string) => void): () => void {
    let set = this.lossWatchers.get(id);
    if (!set) this.lossWatchers.set(id, (set = new Set()));
    set.add(onLost);
    return () => {
      set!.delete(onLost);
      if (set!.size === 0 && this.lossWatchers.get(id) === set) this.lossWatchers.delete(id);
    };
  }

  /** The NATS connection dropped: answers in flight may be lost, so calls waiting for one fail. */
  busLost(): void {
    for (const id of [...this.lossWatchers.keys()]) this.lost(id, 'the connection to the message bus dropped during the call; its outcome is unknown (retry with the same request id)');
  }

  private lost(id: string, why: string): void {
    const set = this.lossWatchers.get(id);
    if (!set) return;
    this.lossWatchers.delete(id);
    for (const f of set) f(why);
  }

  /** Resolves when every host that is online now has sent a full sync, or after `timeoutMs`. */
  waitForSyncs(timeoutMs: number): Promise<void> {
    const pending = new Set([...this.entries.values()].filter((e) => e.online && !e.synced).map((e) => e.host.hostId));
    if (pending.size === 0 || timeoutMs <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(), timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.syncWaiters = this.syncWaiters.filter((w) => w !== waiter);
        resolve();
      };
      const waiter = { hosts: pending, resolve: done };
      this.syncWaiters.push(waiter);
    });
  }

  private checkSyncWaiters(): void {
    for (const w of [...this.syncWaiters]) {
      for (const id of [...w.hosts]) {
        const e = this.entries.get(id);
        if (!e || e.synced || !e.online) w.hosts.delete(id);
      }
      if (w.hosts.size === 0) w.resolve();
    }
  }

  private persist(entry: HostEntry): void {
    const store = this.options.store;
    if (!store) return;
    store
      .save(Heartbeat.create({ host: entry.host, bootId: entry.bootId, intervalMs: entry.intervalMs }))
      .catch((err) => this.options.log.warn('could not record host in the catalog', { host: entry.host.hostId, err }));
  }

  private emit(kind: EventKind, entry: HostEntry, requestId: string): void {
    const publish = this.options.publish;
    if (!publish) return;
    const event: Event = {
      sequence: 0n,
      kind,
      host: entry.host.hostId,
      pool: '',
      volume: '',
      time: new Date(this.now()),
      principal: 'coordinator',
      poolState: undefined,
      volumeState: undefined,
      hostState: entry.host,
      progress: undefined,
      requestId,
    };
    publish(event).catch((err) => this.options.log.warn('could not publish host event', { host: entry.host.hostId, err }));
  }
}
