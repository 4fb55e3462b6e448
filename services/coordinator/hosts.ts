// Host registry: a host is online while its heartbeats (or the chunks of its full sync)
// arrive and offline after three missed intervals. A host that comes back (heartbeats
// again, or a new boot) is asked for a full sync and shows ONLINE only once that sync is
// in: the coordinator reconciles its view first (reconcile.ts), then publishes HOST_ONLINE.
// Hosts are also recorded in the catalog bucket (hosts/records.ts) so a restarted
// coordinator knows the fleet; when to ask a host for its full sync is hosts/sync-asks.ts.
//
// DeleteHost removes a host's record (a deletion marker in the bucket). Every coordinator
// follows the host records and forgets a host whose record is deleted (with its cached
// state, through onForget); a coordinator started later does not load it. A host whose
// agent heartbeats again after that is a new host, registered as any other.
//
// Two agents started with one host id (each refuses to start while another answers for it,
// but two may race past that check, or a hung one may resume) heartbeat with two boot ids in
// turn. A boot id heard again within three intervals after another took its place is such a
// second agent, not a restart: the host is then offline (HOST_OFFLINE, calls UNAVAILABLE naming
// the boot ids, one error logged) and its syncs are not applied, until for three intervals only
// one boot heartbeats; that one is then a returning host (full sync, reconciliation, ONLINE).
//
// Silence counts only while this coordinator can hear: while its own connection to NATS is
// down it hears no host, and that deafness is its own, not the hosts' (a nats-server restart,
// a network split between it and NATS). It then declares no host offline, answers calls at once
// with UNAVAILABLE naming the bus, and serves reads as stale; once reconnected, each host has
// three intervals from that moment to be heard again before it is offline.
import { NotFoundError, UnavailableError } from '../../libs/errors/errors.js';
import type { Heartbeat } from '../../libs/proto/cistern/agent/v1/agent.js';
import { EventKind, Host, type Event } from '../../libs/proto/cistern/v1/storage.js';
import { hostName } from '../../libs/api/resource-names.js';
import type { Logger } from '../../libs/log/logger.js';
import { DEFAULT_INTERVAL_MS, silenceLimitMs, type HostEntry } from './hosts/entry.js';
import { HostRecords, type HostStore } from './hosts/records.js';
import { SyncAsks, clearSyncAsks } from './hosts/sync-asks.js';
import { LossWatchers } from './hosts/loss-watchers.js';
import { DeletedBoots } from './hosts/deleted-boots.js';
import { hostEvent } from './hosts/host-event.js';
import { SyncWaiters } from './hosts/sync-waiters.js';
import { HostEventPublisher } from './hosts/host-event-publisher.js';
import { reportedHost } from './hosts/reported.js';
import { conflictReason, offlineReason } from './hosts/offline-reason.js';

export interface HostRegistryOptions {
  store?: HostStore;
  /** Publishes HOST_ONLINE / HOST_OFFLINE (deduplicated by request id across coordinators). */
  publish?: (event: Event) => Promise<unknown>;
  /** How long, and with which waits, a refused HOST_ONLINE / HOST_OFFLINE is published again (hosts/host-event-publisher.ts). */
  hostEventRetryForMs?: number;
  hostEventRetryDelaysMs?: number[];
  log: Logger;
  now?: () => number;
  /** In [0, 1): the jitter of the sync ask backoff. */
  random?: () => number;
  /** Sends a host-addressed ResyncRequest. */
  askSync?: (host: string) => void;
  /** The sync intake holds chunks of this host that are not applied yet. */
  syncPending?: (host: string) => boolean;
  /** The host was deleted (here or by another coordinator): what else this coordinator holds of it goes too. */
  onForget?: (host: string) => void;
}

/**
 * The timer ran this much later than its period: this coordinator stood still. Above any
 * event-loop delay of a busy coordinator, below the silence limit of the default heartbeat.
 */
export const STALL_MS = 1000;

export class HostRegistry {
  private readonly entries = new Map<string, HostEntry>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private readonly syncWaiters = new SyncWaiters();
  private readonly records: HostRecords;
  private readonly syncAsks: SyncAsks;
  private readonly lossWatchers = new LossWatchers();
  private readonly deletedBoots = new DeletedBoots();
  /** this coordinator's connection to NATS is down: it hears no host */
  private deaf = false;
  /** local clock of its last reconnect to NATS: silence before it is not the hosts' */
  private hearingSince = -Infinity;
  /** local clock of the disconnect from NATS, while it lasts */
  private deafSince: number | undefined;
  /** local clock of the timer's last turn (startTimer): a turn much later than its period means this process stood still */
  private lastTimerAt: number | undefined;
  private readonly hostEvents: HostEventPublisher | undefined;

  constructor(private readonly options: HostRegistryOptions) {
    this.now = options.now ?? Date.now;
    this.hostEvents = options.publish
      ? new HostEventPublisher({ publish: options.publish, log: options.log, retryForMs: options.hostEventRetryForMs, delaysMs: options.hostEventRetryDelaysMs })
      : undefined;
    this.records = new HostRecords(options.store, {
      log: options.log,
      entryOf: (id) => this.entries.get(id),
      deleted: (id) => this.forget(id, 'it was deleted (DeleteHost)'),
    });
    this.syncAsks = new SyncAsks({
      log: options.log,
      now: this.now,
      random: options.random ?? Math.random,
      askSync: options.askSync,
      syncPending: options.syncPending,
    });
  }

  /**
   * Loads the fleet from the store (deleted hosts stay unknown), then follows the records:
   * hosts recorded online get one grace period to heartbeat.
   */
  async load(): Promise<void> {
    await this.records.load((id, record) => {
      if (this.entries.has(id)) return;
      this.entries.set(id, {
        host: Host.fromPartial({ ...reportedHost(record.host ?? {}), name: hostName(id) }),
        bootId: record.bootId,
        intervalMs: record.intervalMs || DEFAULT_INTERVAL_MS,
        lastHeartbeatAt: this.now(),
        online: record.host?.online ?? false,
        synced: false,
        fromRecord: true,
        syncAsks: 0,
        offlineSince: record.host?.online ? undefined : this.now(),
      });
    });
  }

  /**
   * How long this coordinator has itself seen the host gone: since it marked it offline (or
   * loaded it offline), or since its last full sync or sync chunk when one came after that (a
   * sign of life: its agent runs). 0 while it is alive; undefined for a host it does not know.
   * A coordinator that just started has seen nothing yet: a host whose record says offline may
   * have an agent running that has not heartbeated to it yet.
   */
  goneFor(id: string): { goneMs: number; neededMs: number; syncedSinceOffline: boolean } | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    const neededMs = silenceLimitMs(entry);
    if (this.isAlive(id)) return { goneMs: 0, neededMs, syncedSinceOffline: false };
    const offlineSince = entry.offlineSince ?? entry.lastHeartbeatAt;
    const syncedSinceOffline = entry.syncedAt !== undefined && entry.syncedAt >= offlineSince;
    const since = Math.max(offlineSince, entry.lastHeartbeatAt, syncedSinceOffline ? entry.syncedAt! : -Infinity, this.syncAsks.lastChunk(id) ?? -Infinity, this.hearingSince);
    return { goneMs: this.deaf ? 0 : Math.max(0, this.now() - since), neededMs, syncedSinceOffline };
  }

  /**
   * DeleteHost: deletes the host's record from the store, so that every coordinator forgets the
   * host (each as it sees the deletion; one started later never loads it), and forgets it here.
   * The deletion goes over the revision of the record this coordinator has seen: when the record
   * moved (another coordinator recorded the host meanwhile), it is read again, and a host it
   * says online is not deleted (FAILED_PRECONDITION, nothing changed).
   */
  async delete(id: string): Promise<void> {
    await this.records.remove(id);
    this.forget(id, 'it was deleted (DeleteHost)');
  }

  /** Drops everything this coordinator holds of the host; its agent, if it ever heartbeats again, is a new host. */
  private forget(id: string, why: string): void {
    this.syncAsks.forgetHost(id);
    const entry = this.entries.get(id);
    this.deletedBoots.remember(id, entry?.bootId ?? this.deletedBoots.bootOf(id) ?? 0n);
    if (!entry) return;
    this.entries.delete(id);
    this.options.log.info('host forgotten', { host: id, why });
    this.lost(id, why);
    this.options.onForget?.(id);
    this.checkSyncWaiters();
  }

  startTimer(periodMs = 250): void {
    this.lastTimerAt = this.now();
    this.timer ??= setInterval(() => this.timerTurn(periodMs), periodMs);
    this.timer.unref();
  }

  /**
   * One turn of the timer: tick(), after a look at whether this coordinator itself stood still
   * since the last turn (SIGSTOP, a paused VM, swapped out, its event loop blocked). The
   * heartbeats sent meanwhile wait unread in its socket, and this turn runs before they are
   * read: without the look, a stalled coordinator would blame every agent for its own silence
   * (HOST_OFFLINE for each, calls in flight failed), then take them back a moment later.
   */
  timerTurn(periodMs: number): void {
    const now = this.now();
    const lateMs = this.lastTimerAt === undefined ? 0 : now - this.lastTimerAt - periodMs;
    this.lastTimerAt = now;
    if (lateMs > STALL_MS) this.resumedAfterStall(now, lateMs);
    this.tick();
  }

  /** As after a reconnect to the bus: every host has its silence limit from now to be heard. */
  private resumedAfterStall(now: number, lateMs: number): void {
    this.hearingSince = Math.max(this.hearingSince, now);
    this.options.log.warn('this coordinator stood still (stopped, paused or blocked): no host is taken offline for the silence meanwhile; each has three heartbeat intervals from now', {
      stalledMs: lateMs,
    });
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.records.stop();
    this.syncWaiters.releaseAll();
    this.hostEvents?.stop();
  }

  /** Resolves when every host event so far is stored or given up. */
  hostEventsSettled(): Promise<void> {
    return this.hostEvents?.settled() ?? Promise.resolve();
  }

  onHeartbeat(hb: Heartbeat): void {
    const info = hb.host;
    const id = info?.hostId;
    if (!info || !id) return;
    const now = this.now();
    const intervalMs = hb.intervalMs || DEFAULT_INTERVAL_MS;
    const host = Host.fromPartial({
      ...reportedHost(info),
      name: hostName(id),
      online: true,
      // when this coordinator saw it, by its own clock: an agent's clock may be skewed
      lastSeen: new Date(now),
    });
    const entry = this.entries.get(id);
    if (!entry) {
      this.deletedBoots.registeredAgain(id);
      // never seen: an agent sends a full sync when it starts, and a fleet-wide ask may be
      // answered already; ask only when nothing comes
      const next: HostEntry = {
        host: Host.fromPartial({ ...host, online: false }),
        bootId: hb.bootId,
        intervalMs,
        lastHeartbeatAt: now,
        online: false,
        synced: false,
        returningSince: now,
        syncAsks: 0,
      };
      this.entries.set(id, next);
      this.syncAsks.defer(next, now);
      this.options.log.info('host heartbeats; waiting for its full sync', { host: id, bootId: hb.bootId });
      return;
    }
    const heardBefore = entry.lastHeartbeatAt;
    const intervalBefore = entry.intervalMs;
    entry.lastHeartbeatAt = now;
    entry.intervalMs = intervalMs;
    if (entry.conflict) {
      entry.conflict.set(hb.bootId, { at: now, intervalMs });
      entry.host = Host.fromPartial({ ...host, online: false });
      return;
    }
    if (entry.bootId === 0n && entry.online) {
      // known through its full sync only: this is the boot id of the agent that sent it
      entry.bootId = hb.bootId;
      entry.host = host;
      this.persist(entry);
      return;
    }
    const newBoot = entry.bootId !== hb.bootId;
    if (newBoot && entry.previousBoot?.id === hb.bootId && now - entry.previousBoot.at <= silenceLimitMs({ intervalMs })) {
      this.startConflict(id, entry, host, { at: heardBefore, intervalMs: intervalBefore }, hb.bootId, { at: now, intervalMs });
      return;
    }
    if (!newBoot && entry.returningSince !== undefined) {
      // still waiting for the sync that brings it online
      entry.host = Host.fromPartial({ ...host, online: false });
      return;
    }
    if (!newBoot && entry.online) {
      entry.host = host;
      return;
    }
    // came back: offline before, or its agent restarted
    if (newBoot && entry.bootId !== 0n) {
      this.lost(id, 'its agent restarted');
      entry.previousBoot = { id: entry.bootId, at: heardBefore };
    }
    entry.host = Host.fromPartial({ ...host, online: false });
    entry.bootId = hb.bootId;
    entry.online = false;
    entry.returningSince = now;
    if (entry.offlineSince !== undefined && entry.syncedAt !== undefined && entry.syncedAt >= entry.offlineSince) {
      // its full sync came (and was reconciled) while it was away, before this heartbeat:
      // syncs and heartbeats travel on different connections
      this.comeOnline(id, entry, entry.syncId ?? '');
      return;
    }
    // a restarted agent sends its full sync by itself, and a recent fleet-wide ask is being
    // answered; the same agent back from a pause may send nothing
    if (newBoot) this.syncAsks.defer(entry, now);
    this.syncAsks.deferForFleetAsk(entry);
    this.options.log.info('host heartbeats again; waiting for its full sync', { host: id, bootId: hb.bootId });
    this.syncAsks.maybeAsk(id, entry, now);
  }

  /**
   * Boot `returned`, replaced by the current one moments ago, heartbeats again: two agents
   * run with this host id. Whichever answers a call, the other's state differs; the host is
   * offline until one is left (tick()).
   */
  private startConflict(
    id: string,
    entry: HostEntry,
    host: Host,
    current: { at: number; intervalMs: number },
    returned: bigint,
    heard: { at: number; intervalMs: number },
  ): void {
    const now = heard.at;
    const boots = [entry.bootId, returned];
    entry.conflict = new Map([
      [entry.bootId, current],
      [returned, heard],
    ]);
    entry.previousBoot = undefined;
    entry.online = false;
    entry.returningSince = undefined;
    entry.offlineSince = now;
    clearSyncAsks(entry);
    entry.host = Host.fromPartial({ ...host, online: false });
    this.options.log.error('two agents heartbeat with this host id: the host is offline until one of them stops', { host: id, bootIds: boots });
    this.persist(entry);
    // the same id from every coordinator that sees this pair of agents after the same sync
    // (a later conflict of the same pair comes after another sync: not dropped as a duplicate)
    const pair = [...boots].sort((a, b) => (a < b ? -1 : 1)).join(':');
    this.emit(EventKind.HOST_OFFLINE, entry, `host-offline:${id}:two-agents:${pair}:${entry.syncId ?? ''}`);
    this.lost(id, `two agents heartbeat with its host id (boot ids ${boots.join(' and ')})`);
  }

  /** One agent or none heartbeats with the host id any more: the conflict is over. */
  private endConflict(id: string, entry: HostEntry, now: number): void {
    const [[left, last] = []] = entry.conflict!;
    entry.conflict = undefined;
    if (left === undefined || last === undefined) {
      this.options.log.warn('the agents that shared this host id stopped heartbeating', { host: id });
      return; // offline, as it was
    }
    // a returning host: what the cache holds may be the other agent's, so its sync is reconciled
    this.options.log.warn('one agent heartbeats with this host id again; waiting for its full sync', { host: id, bootId: left });
    entry.bootId = left;
    // the other agent's heartbeat may have been the last heard: its interval is not this one's
    entry.intervalMs = last.intervalMs;
    entry.returningSince = now;
    this.syncAsks.maybeAsk(id, entry, now);
  }

  /** Why the host is not online ('' while it is; offline-reason.ts); '' for a host not known. */
  offlineReason(id: string): string {
    const entry = this.entries.get(id);
    return entry ? offlineReason(entry) : '';
  }

  /** More than one agent heartbeats with this host id: its calls fail and its syncs are not applied. */
  inConflict(id: string): boolean {
    return this.entries.get(id)?.conflict !== undefined;
  }

  /**
   * A chunk of a full sync arrived (before it is decoded or applied): the host is alive,
   * and its sync is on the way, so it is not asked for another one.
   */
  onSyncChunk(id: string): void {
    const now = this.now();
    this.syncAsks.chunkArrived(id, now);
    const entry = this.entries.get(id);
    if (!entry || (!entry.online && entry.returningSince === undefined)) return;
    if (now > entry.lastHeartbeatAt) {
      entry.lastHeartbeatAt = now;
      entry.host = Host.fromPartial({ ...entry.host, lastSeen: new Date(now) });
    }
  }

  /** A fleet-wide ResyncRequest went out: every host is asked for its full sync. */
  askedFleet(): void {
    this.syncAsks.fleetAsked(this.entries.values());
  }

  /** Heartbeats are back and the sync that brings the host online is awaited. */
  isReturning(id: string): boolean {
    return this.entries.get(id)?.returningSince !== undefined;
  }

  /** Known and not online: offline, or back and waiting for its full sync. A full sync now is its return. */
  isAway(id: string): boolean {
    const entry = this.entries.get(id);
    return entry !== undefined && !entry.online;
  }

  /** A full sync of the host was applied since this coordinator started: its cached state is a baseline to reconcile against. */
  hasSynced(id: string): boolean {
    return this.entries.get(id)?.synced ?? false;
  }

  /**
   * A full sync of boot `bootId` is the host's return to a coordinator that holds no view of it
   * to reconcile against: no full sync of it applied here, yet known from its catalog record
   * (the stream may hold its events from before this coordinator started), and away (recorded
   * offline, or gone since) or on another boot than the one known. Its return is reconciled
   * against the host's events in the stream (sync-intake.ts). Not a host that stayed online on
   * the same boot across this coordinator's start: the common case reads no history.
   */
  returnsUnsynced(id: string, bootId: bigint): boolean {
    const entry = this.entries.get(id);
    return entry !== undefined && entry.fromRecord === true && !entry.synced && (!entry.online || this.isNewBoot(id, bootId));
  }

  /**
   * A full sync (of boot `bootId`, 0: not said) of a host this coordinator forgot as deleted,
   * from the boot it last knew (or of an unknown boot), and no heartbeat since: a late sync of
   * the dead agent, which neither the cache nor the registry takes.
   */
  isDeletedSync(id: string, bootId: bigint): boolean {
    return !this.entries.has(id) && this.deletedBoots.isLateSync(id, bootId);
  }

  /** Whether `bootId` (a sync's) is another boot of the host's agent than the one known. */
  isNewBoot(id: string, bootId: bigint): boolean {
    const known = this.entries.get(id)?.bootId ?? 0n;
    return bootId !== 0n && known !== 0n && known !== bootId;
  }

  /** The host's full sync is on the way: chunks queued for the intake, or arriving recently. */
  syncInFlight(id: string): boolean {
    const entry = this.entries.get(id);
    return this.syncAsks.inFlight(id, entry?.intervalMs ?? DEFAULT_INTERVAL_MS, this.now());
  }

  private comeOnline(id: string, entry: HostEntry, syncId: string): void {
    entry.returningSince = undefined;
    entry.offlineSince = undefined;
    clearSyncAsks(entry);
    entry.online = true;
    entry.host = Host.fromPartial({ ...entry.host, online: true });
    this.options.log.info('host online', { host: id, bootId: entry.bootId });
    this.persist(entry);
    this.emit(EventKind.HOST_ONLINE, entry, `host-online:${id}:${entry.bootId}:${syncId}`);
  }

  /** A full sync arrived: the host is alive and its runtime state is known. */
  onSync(id: string, info: Host | undefined, syncId = '', bootId = 0n): void {
    const now = this.now();
    this.syncAsks.syncApplied(id);
    let entry = this.entries.get(id);
    if (this.isDeletedSync(id, bootId)) {
      // a late sync of the deleted host's last boot (queued on the sync connection): not a sign
      // that it runs; only a heartbeat (or a sync of another boot) registers the host again
      this.options.log.info('full sync of a deleted host ignored', { host: id, bootId });
      this.checkSyncWaiters();
      return;
    }
    // the sync of a restarted agent can come before its first heartbeat (another connection):
    // its boot is known from here on, so that heartbeat is not taken for one more restart
    if (entry && bootId !== 0n && entry.bootId !== bootId) {
      if (entry.bootId !== 0n) {
        this.lost(id, 'its agent restarted');
        entry.previousBoot = { id: entry.bootId, at: entry.lastHeartbeatAt };
        // held online, it restarted unseen: a return, as when its heartbeat shows the new boot
        // first, announced (HOST_ONLINE after the reconcile events) and recorded below. Else the
        // record keeps the old boot, and every later coordinator start takes this same agent for
        // restarted again. (One held offline comes online with its next heartbeat, as before.)
        if (entry.online && !entry.conflict) entry.returningSince ??= now;
      }
      entry.bootId = bootId;
    }
    if (entry && info) {
      entry.host = Host.fromPartial({ ...entry.host, ...reportedHost(info), hostId: id, name: hostName(id), online: entry.online, lastSeen: entry.host.lastSeen ?? new Date(now) });
    }
    if (!entry && info) {
      // first heard of through its full sync: online now, its boot id comes with its first heartbeat
      entry = {
        host: Host.fromPartial({ ...reportedHost(info), hostId: id, name: hostName(id), online: false, lastSeen: new Date(now) }),
        bootId,
        intervalMs: DEFAULT_INTERVAL_MS,
        lastHeartbeatAt: now,
        online: false,
        synced: false,
        returningSince: now,
        syncAsks: 0,
      };
      this.entries.set(id, entry);
    }
    if (entry) {
      entry.synced = true;
      entry.syncedAt = now;
      entry.syncId = syncId;
      clearSyncAsks(entry);
      if (entry.returningSince !== undefined) this.comeOnline(id, entry, syncId);
    }
    this.checkSyncWaiters();
  }

  /** Marks hosts offline whose heartbeats stopped; asks again (backing off) for syncs that did not come. */
  tick(): void {
    // deaf (disconnected from NATS): no silence means anything, and no ask could be sent
    if (this.deaf) return;
    const now = this.now();
    for (const [id, entry] of this.entries) {
      const missed = this.silentFor(entry, entry.lastHeartbeatAt, now);
      if (entry.conflict) {
        // each agent by its own interval: a slower one is not gone between its heartbeats
        for (const [boot, heard] of entry.conflict) if (this.silentFor(heard, heard.at, now)) entry.conflict.delete(boot);
        if (entry.conflict.size <= 1) this.endConflict(id, entry, now);
        continue;
      }
      if (entry.returningSince !== undefined) {
        if (missed) {
          entry.returningSince = undefined; // gone again before its sync came
          entry.offlineSince = now;
          clearSyncAsks(entry);
        } else if (entry.nextSyncAskAt === undefined || now >= entry.nextSyncAskAt) {
          this.syncAsks.maybeAsk(id, entry, now, true);
        }
        continue;
      }
      if (!entry.online) continue;
      if (!missed) {
        // online since before this coordinator started, but its answer to the fleet-wide ask is missing
        if (!entry.synced && entry.nextSyncAskAt !== undefined && now >= entry.nextSyncAskAt) this.syncAsks.maybeAsk(id, entry, now, true);
        continue;
      }
      entry.online = false;
      entry.offlineSince = now;
      clearSyncAsks(entry);
      entry.host = Host.fromPartial({ ...entry.host, online: false });
      this.options.log.warn('host offline: heartbeats stopped', { host: id, lastSeen: entry.host.lastSeen?.toISOString() });
      this.persist(entry);
      // the same id from every coordinator (the stream keeps one): the boot and the last sync
      // they all applied name this outage; their own clocks (last seen) differ
      this.emit(EventKind.HOST_OFFLINE, entry, `host-offline:${id}:${entry.bootId}:${entry.syncId ?? ''}`);
      this.lost(id, `it went offline (last seen ${entry.host.lastSeen?.toISOString() ?? 'never'})`);
    }
    this.checkSyncWaiters();
  }

  /** This coordinator's connection to NATS is down: it hears no host and can ask the bus nothing. */
  get busDown(): boolean {
    return this.deaf;
  }

  /**
   * While this coordinator's connection to NATS is down, since when (its own clock): what it
   * says of every host (online, last seen) is as it last knew it. Undefined while connected.
   */
  get staleSince(): Date | undefined {
    return this.deaf && this.deafSince !== undefined ? new Date(this.deafSince) : undefined;
  }

  /** Nothing heard since `at` for longer than the host's silence limit, counted only while this coordinator could hear. */
  private silentFor(entry: Pick<HostEntry, 'intervalMs'>, at: number, now: number): boolean {
    return now - Math.max(at, this.hearingSince) > silenceLimitMs(entry);
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

  /**
   * What the cache holds of the host is current: it is online and its full sync was applied
   * since this coordinator started. A host recorded online by an earlier coordinator is online
   * here at once (one grace period to heartbeat), but until its sync arrives the cache knows
   * none of its running pools: their views are stale, not inactive.
   */
  isCurrent(id: string): boolean {
    return this.freshness(id) === 'current';
  }

  /** isCurrent, and when not: whether anything of the host is known since this coordinator started. */
  freshness(id: string): 'current' | 'stale' | 'unknown' {
    const entry = this.entries.get(id);
    if (!entry?.synced) return 'unknown';
    // deaf, the cache follows no event: what it holds may have changed meanwhile
    return entry.online && !this.deaf ? 'current' : 'stale';
  }

  /** Its agent is alive: online, or heartbeating again and waiting for its full sync to be online. */
  isAlive(id: string): boolean {
    const entry = this.entries.get(id);
    return entry !== undefined && (entry.online || entry.returningSince !== undefined);
  }

  requireKnown(id: string): HostEntry {
    const entry = this.entries.get(id);
    if (!entry) throw new NotFoundError(`host '${id}' is not known: no agent with this host id has ever reported`, { host: id });
    return entry;
  }

  /**
   * UNAVAILABLE at once while this coordinator is cut off from NATS: what `what` needs would
   * wait in the client's buffer for the reconnect, or for the deadline.
   */
  requireBus(what: string, details: Record<string, string> = {}): void {
    if (this.deaf) throw new UnavailableError(`${what}: this coordinator is not connected to the message bus (NATS); retry once it is back, or call another coordinator`, details);
  }

  /** The host for an operation that goes to its agent: NOT_FOUND or UNAVAILABLE at once. */
  requireOnline(id: string): HostEntry {
    const entry = this.requireKnown(id);
    this.requireBus(`host '${id}' cannot be reached`, { host: id });
    if (entry.conflict) {
      const boots = [...entry.conflict.keys()].join(' and ');
      throw new UnavailableError(`host '${id}' is offline: ${conflictReason(entry.conflict.keys())}`, { host: id, bootIds: boots });
    }
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
    return this.lossWatchers.watch(id, onLost);
  }

  /**
   * The NATS connection dropped: answers in flight may be lost, so calls waiting for one fail;
   * until it is back this coordinator hears no host, and takes no host's silence for its absence.
   */
  busDisconnected(): void {
    if (!this.deaf) this.deafSince = this.now();
    this.deaf = true;
    this.busLost();
  }

  /**
   * The NATS connection is back: a request sent while it was down may never have reached its
   * agent, so calls waiting for one fail; every host has three intervals from now to be heard.
   */
  busReconnected(): void {
    this.deaf = false;
    this.deafSince = undefined;
    this.hearingSince = this.now();
    this.busLost();
  }

  private busLost(): void {
    this.lossWatchers.lostAll('the connection to the message bus dropped during the call; its outcome is unknown (retry with the same request id)');
  }

  private lost(id: string, why: string): void {
    this.lossWatchers.lost(id, why);
  }

  /** Resolves when every host that is online now has sent a full sync, or after `timeoutMs`. */
  waitForSyncs(timeoutMs: number): Promise<void> {
    const pending = new Set([...this.entries.values()].filter((e) => e.online && !e.synced).map((e) => e.host.hostId));
    return this.syncWaiters.wait(pending, timeoutMs);
  }

  /** A host forgotten, synced or gone offline no longer holds up waitForSyncs. */
  private checkSyncWaiters(): void {
    this.syncWaiters.check((id) => {
      const e = this.entries.get(id);
      return !e || e.synced || !e.online;
    });
  }

  private persist(entry: HostEntry): void {
    this.records.persist(entry);
  }

  private emit(kind: EventKind, entry: HostEntry, requestId: string): void {
    // published again while the stream refuses it (hosts/host-event-publisher.ts)
    this.hostEvents?.emit(hostEvent(kind, entry, requestId, new Date(this.now())));
  }
}
