// Sync intake: full syncs (HostSync chunks on cistern.sync.<host>, docs/bus.md, item 3) into
// the cache. A fleet answering a coordinator's fleet-wide ResyncRequest sends hundreds of
// MB at once, and applying it costs ~11 µs per volume, so:
//  - syncs come on a NATS connection of their own (coordinator.ts): heartbeats never wait
//    behind sync bytes;
//  - a chunk is noted the moment it arrives (HostRegistry.onSyncChunk: a sign of life, and
//    "its sync is on the way, do not ask again") and only queued, as the bytes it came in;
//  - the queue is applied one chunk at a time, yielding to the event loop after each, so
//    heartbeats, RPC replies and events are handled while a large backlog is worked off;
//    while chunks pour in (READ_FIRST_BYTES or more in one turn of the event loop) the
//    socket is read first (no chunk applied for up to READ_FIRST_MAX_MS), so the server
//    does not pile up a backlog large enough to drop the connection as a slow consumer.
//  - a chunk is queued as the intake's own copy, carved out of a slab (slab-arena.ts), not as
//    the NATS client's buffer: a fleet's resync queues hundreds of MB at once (~770 chunks
//    after a 500-host coordinator restart), and in the client's buffers (views of allocations
//    grown by doubling, up to twice a chunk) they went through glibc's brk heap, which kept
//    ~330 MB of them once freed. The client's buffer is garbage at once (freed by the next
//    scavenge, its memory reused by the next read); a slab goes once its chunks are applied.
// Pools a sync fills from nothing are kept as bytes (cache.ts PendingVolumes); once no chunk
// has come for INDEX_AFTER_IDLE_MS, the intake indexes them in slices of INDEX_SLICE_MS,
// yielding in between (during a fleet's resync the CPU goes to the syncs still coming).
// A complete sync of a host that is away (offline, or back and waiting for it) is its
// return: reconciled against what the cache held (reconcile.ts) when the cache holds a full
// sync of it from this coordinator. A fresh coordinator holds none: for a host it knows from
// its catalog record that returns (recorded offline or gone since, or on another boot) the
// baseline is the stream's own view of the host, its retained events folded as the cache
// follows them (stream-baseline.ts). That read is off the intake's path: the host's sync, and
// any chunk of it that follows, waits for it (HOST_ONLINE still after the reconcile events)
// while the other hosts' syncs go on. A host never synced here that stayed online on the same
// boot (a coordinator restart), or that is new, is simply taken as it is, reading nothing.
// A sync that carries events the agent's stream did not store
// (HostSync.events_lost) has the state of those pools and volumes published, whatever the
// host's state (reconcile.ts lostEventsReconcile): the stream describes the host again.
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { HostSync } from '../../libs/proto/cistern/agent/v1/agent.js';
import type { Event, Host, Pool, Volume } from '../../libs/proto/cistern/v1/storage.js';
import { agentInboxPrefix, subjects } from '../../libs/bus/subjects.js';
import { IGNORED_DELIVERY, tokenAfter } from '../../libs/bus/delivered-subject.js';
import type { FleetCache, SyncSnapshot } from './cache.js';
import type { StreamBaseline } from './stream-baseline.js';
import type { HostRegistry } from './hosts.js';
import type { Logger } from '../../libs/log/logger.js';
import { lostEventsReconcile, reconcileEvents } from './reconcile.js';
import { splitHostSync, type HostSyncParts } from './volume-wire.js';
import { SlabArena } from './slab-arena.js';

/** Chunk bytes in one turn of the event loop that mean "the socket is pouring": read on before applying. */
export const READ_FIRST_BYTES = 1024 * 1024;
/** Longest time chunks are only read, not applied, while they pour in. */
export const READ_FIRST_MAX_MS = 250;
/** Time indexing pending pools in one turn of the event loop, when no chunk is waiting. */
export const INDEX_SLICE_MS = 4;
/** Quiet time (no chunk applied) before pending pools are indexed. */
export const INDEX_AFTER_IDLE_MS = 500;

/**
 * Where a sync's confirmation may go: the sending agent's own inbox, nothing else. A reply
 * subject is whatever the publisher wrote, and this coordinator may publish anywhere: an agent
 * naming `$JS.API.STREAM.DELETE.<stream>` or another host's subjects would have it send there.
 */
export function confirmationSubject(host: string, reply: string | undefined, log: Logger): string | undefined {
  if (!reply) return undefined;
  if (reply.startsWith(`${agentInboxPrefix(host)}.`)) return reply;
  log.warn("sync confirmation not sent: its reply subject is not the agent's inbox", { host, reply });
  return undefined;
}

/** The chunks of one host's sync received so far. */
export interface SyncAssembly {
  syncId: string;
  next: number;
  pools: Pool[];
  /** as they came: each volume's wire bytes (the cache keeps them as they are), or decoded */
  volumes: Array<Volume | Uint8Array>;
  host: Host | undefined;
  revision: bigint;
  bootId: bigint;
  eventsLost: Event[];
  reason: string;
  stoppedPools: Pool[];
}

export interface AssembledSync {
  syncId: string;
  /** the boot of the agent that sent it; 0 from agents that do not say */
  bootId: bigint;
  host: Host | undefined;
  snapshot: SyncSnapshot;
  /** events the agent's stream did not store; their changes are in the snapshot */
  eventsLost: Event[];
  /** why the agent sent it (logs); '' from agents that do not say */
  reason: string;
}

/**
 * Adds one chunk to its host's assembly. Returns the whole sync when this was its last
 * chunk, 'dropped' for a chunk that does not continue the sync in progress, else undefined.
 */
export function assembleChunk(assembling: Map<string, SyncAssembly>, host: string, chunk: HostSyncParts | HostSync): AssembledSync | 'dropped' | undefined {
  // a chunk of this host's own sync (the first names the host), or nothing: the bytes on cistern.sync.H can be another
  // message sent there (the JetStream API answers on whatever reply subject it is given), and
  // read as a HostSync they make an empty sync of H, which would wipe H's pools from the view
  if (!chunk.syncId || (chunk.chunk === 0 && chunk.host?.hostId !== host)) return 'dropped';
  let a = assembling.get(host);
  if (chunk.chunk === 0) {
    a = { syncId: chunk.syncId, next: 0, pools: [], volumes: [], host: chunk.host, revision: chunk.revision, bootId: chunk.bootId, eventsLost: [], reason: chunk.reason, stoppedPools: [] };
    assembling.set(host, a);
  }
  if (!a || a.syncId !== chunk.syncId || a.next !== chunk.chunk) return 'dropped';
  a.next++;
  for (const p of chunk.pools) a.pools.push(p);
  for (const v of chunk.volumes) a.volumes.push(v);
  for (const e of chunk.eventsLost) a.eventsLost.push(e);
  for (const p of chunk.stoppedPools) a.stoppedPools.push(p);
  if (chunk.revision > a.revision) a.revision = chunk.revision;
  if (!chunk.last) return undefined;
  assembling.delete(host);
  return {
    syncId: a.syncId,
    bootId: a.bootId,
    host: a.host,
    snapshot: { pools: a.pools, volumes: a.volumes, revision: a.revision, stoppedPools: a.stoppedPools },
    eventsLost: a.eventsLost,
    reason: a.reason,
  };
}

export interface SyncIntakeOptions {
  cache: FleetCache;
  hosts: HostRegistry;
  /** Publishes one sync's reconcile events into the stream, in order. */
  publish: (events: Event[]) => void;
  log: Logger;
  /** Asks the host for another full sync. */
  askSync?: (host: string) => void;
  /**
   * The stream's view of the host: its stored events up to sequence `upTo`, folded
   * (stream-baseline.ts). Without it, the return of a host never synced here is not reconciled.
   */
  streamBaseline?: (host: string, upTo: bigint) => Promise<StreamBaseline>;
  /** where queued chunks are copied (slab-arena.ts); a new one of SLAB_BYTES slabs by default */
  arena?: SlabArena;
}

/** A host whose sync waits for the stream's view of it; its chunks that follow wait too. */
interface Held {
  chunks: QueuedChunk[];
}

/** A chunk as it came: `reply` when its agent asks to hear that the sync arrived whole (it carries events lost). */
interface QueuedChunk {
  host: string;
  data: Uint8Array;
  reply?: string;
}

export class SyncIntake {
  private readonly assembling = new Map<string, SyncAssembly>();
  private queue: QueuedChunk[] = [];
  /** where confirmations go: the connection the chunks came on */
  private nc: NatsConnection | undefined;
  private head = 0;
  /** chunks queued and not applied yet, per host */
  private readonly queued = new Map<string, number>();
  private working = false;
  private stopped = false;
  /** chunk bytes received so far, and when the worker last yielded (how fast is the socket delivering?) */
  private arrived = 0;
  private yielded = 0;
  private idle: Array<() => void> = [];
  private indexing = false;
  private indexTimer: NodeJS.Timeout | undefined;
  /** hosts whose sync waits for the stream's view of them (streamBaseline) */
  private readonly held = new Map<string, Held>();
  /** queued chunks' bytes */
  private readonly arena: SlabArena;

  constructor(private readonly options: SyncIntakeOptions) {
    this.arena = options.arena ?? new SlabArena();
  }

  /** Takes every host's sync chunks from `nc`. */
  subscribe(nc: NatsConnection): Subscription {
    this.nc = nc;
    return nc.subscribe(subjects.syncAll, {
      callback: (err, msg) => {
        if (err) {
          this.options.log.warn('sync subscription failed', { err });
          return;
        }
        // cistern.sync.<host> only: a stored event a push consumer delivered here keeps its own
        // subject, whose last token (its origin, 'a') could name a host (delivered-subject.ts)
        const host = tokenAfter(subjects.syncPrefix, msg.subject);
        if (host === undefined) {
          this.options.log.warn(IGNORED_DELIVERY, { subject: msg.subject });
          return;
        }
        this.receive(host, msg.data, confirmationSubject(host, msg.reply, this.options.log));
      },
    });
  }

  /** One chunk as it came off the bus: noted at once, applied in turn. */
  receive(host: string, data: Uint8Array, reply?: string): void {
    if (this.stopped || !host) return;
    this.options.hosts.onSyncChunk(host);
    // the intake's own copy: the bus's buffer goes at once (see the top of this file)
    const own = this.arena.alloc(data.length);
    own.set(data);
    data = own;
    this.queue.push(reply ? { host, data, reply } : { host, data });
    this.arrived += data.length;
    this.queued.set(host, (this.queued.get(host) ?? 0) + 1);
    if (!this.working) {
      // applied after this read is parsed to the end
      this.working = true;
      setImmediate(() => void this.work());
    }
  }

  /** Chunks of this host are waiting to be applied (or its sync waits for the stream's view of it). */
  pending(host: string): boolean {
    return this.queued.has(host) || this.held.has(host);
  }

  /** Chunks waiting, over all hosts. */
  get backlog(): number {
    return this.queue.length - this.head;
  }

  /** Resolves once every chunk received so far is applied (a held sync's too). */
  settled(): Promise<void> {
    if (!this.working && this.held.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private settle(): void {
    if (this.working || this.held.size > 0) return;
    const idle = this.idle;
    this.idle = [];
    for (const f of idle) f();
  }

  /**
   * The sync connection dropped: chunks may be lost, so the syncs being assembled are
   * dropped. Returns the hosts whose sync was cut.
   */
  connectionLost(): string[] {
    const cut = [...this.assembling.keys()];
    this.assembling.clear();
    return cut;
  }

  /**
   * The host was deleted: its chunks not applied yet and its sync being assembled are
   * dropped, so that a sync that arrived before the deletion does not bring it back.
   */
  dropHost(host: string): void {
    this.assembling.delete(host);
    if (this.held.delete(host)) this.settle();
    if (!this.queued.delete(host)) return;
    this.queue = this.queue.slice(this.head).filter((item) => item.host !== host);
    this.head = 0;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.indexTimer);
    this.queue = [];
    this.head = 0;
    this.queued.clear();
    this.assembling.clear();
    this.held.clear();
    this.arena.release();
    this.settle();
  }

  private async work(): Promise<void> {
    this.working = true;
    let appliedAt = performance.now();
    try {
      while (!this.stopped && this.head < this.queue.length) {
        if (this.arrived - this.yielded >= READ_FIRST_BYTES && performance.now() - appliedAt < READ_FIRST_MAX_MS) {
          // the last turn of the event loop brought a lot: read on before applying
          this.yielded = this.arrived;
          await new Promise<void>((resolve) => setImmediate(resolve));
          continue;
        }
        appliedAt = performance.now();
        const item = this.queue[this.head]!;
        this.queue[this.head++] = undefined as unknown as QueuedChunk;
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        const held = this.held.get(item.host);
        if (held) {
          // after its sync that waits for the stream's view (still counted as queued)
          held.chunks.push(item);
          continue;
        }
        try {
          this.apply(item);
        } catch (err) {
          this.options.log.warn('bad sync message', { host: item.host, err });
        } finally {
          const n = (this.queued.get(item.host) ?? 1) - 1;
          if (n > 0) this.queued.set(item.host, n);
          else this.queued.delete(item.host);
        }
        // let heartbeats, replies, events and more chunks in before the next chunk
        this.yielded = this.arrived;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.working = false;
      if (this.head >= this.queue.length) {
        this.queue = [];
        this.head = 0;
        // nothing queued: the slab being filled goes once the chunks carved from it do (a
        // sync being assembled, or held for the stream's view of its host, keeps its own)
        this.arena.release();
      }
      this.settle();
      if (!this.stopped) {
        clearTimeout(this.indexTimer);
        this.indexTimer = setTimeout(() => void this.indexInBackground(), INDEX_AFTER_IDLE_MS);
        this.indexTimer.unref();
      }
    }
  }

  /** Indexes pending pools a slice at a time until a chunk comes (chunks go first). */
  private async indexInBackground(): Promise<void> {
    if (this.indexing) return;
    this.indexing = true;
    const started = performance.now();
    let slices = 0;
    let pools = 0;
    try {
      while (!this.stopped && !this.working) {
        slices++;
        const { indexed, more } = this.options.cache.indexPendingFor(INDEX_SLICE_MS);
        pools += indexed;
        if (!more) {
          if (pools > 0) this.options.log.info('synced pools indexed', { pools, ms: Math.round(performance.now() - started), slices });
          return;
        }
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.indexing = false;
    }
  }

  private apply({ host, data, reply }: QueuedChunk): void {
    const { log } = this.options;
    // volumes stay bytes: decoding a fleet's million volumes only to encode them again for
    // the cache would be most of a resync's CPU (volume-wire.ts)
    const chunk = splitHostSync(data);
    const done = assembleChunk(this.assembling, host, chunk);
    if (done === 'dropped') {
      log.warn('sync chunk out of order: dropped', { host, syncId: chunk.syncId, chunk: chunk.chunk });
      return;
    }
    if (!done) return;
    this.take(host, done, undefined, reply);
  }

  /**
   * A complete sync of the host. `baseline`: the stream's view of the host, read for this sync
   * (null: the read failed); undefined the first time, when it is decided whether one is needed.
   */
  private take(host: string, done: AssembledSync, baseline?: StreamBaseline | null, reply?: string): void {
    const { cache, hosts, log } = this.options;
    const { snapshot, syncId, bootId, eventsLost } = done;
    // (a sync dropped below, or held for the stream's view, is not confirmed: the agent keeps
    // its events lost and sends them again; only a sync taken here has them published)
    if (hosts.isDeletedSync(host, bootId)) {
      // the deleted host's dead agent's last sync, late: it does not bring the host back
      log.info('full sync of a deleted host dropped', { host, syncId, bootId });
      return;
    }
    if (hosts.inConflict(host)) {
      // two agents heartbeat with this host id: neither one's state is the host's; the one left is asked again
      log.info('full sync dropped: two agents heartbeat with this host id', { host, syncId, bootId });
      return;
    }
    // what changed while the host was away (its sync may be applied before the heartbeat
    // that shows it back: another connection), published before HOST_ONLINE; only against
    // a full sync this coordinator applied (else every pool and volume would be "new")
    // (a restarted agent's sync may come before the heartbeat that would show it away)
    const newBoot = hosts.isNewBoot(host, bootId);
    const returning = (hosts.isAway(host) || newBoot) && hosts.hasSynced(host);
    // the return of a host this coordinator never synced, known from its record: against the
    // stream's view of it, read first (the host's chunks wait, the other hosts' do not)
    if (baseline === undefined && !returning && this.options.streamBaseline && hosts.returnsUnsynced(host, bootId)) {
      this.holdForBaseline(host, done, this.options.streamBaseline, reply);
      return;
    }
    // an agent that lost its revision floor (a new or wiped --root, a reinstalled machine
    // keeping its host id) counts again from below what this coordinator holds of the host,
    // and every state it sends would be taken for an older one and dropped, for as long as
    // the clock takes to catch up. Its new boot's sync is then the host's state, whole, and
    // one more sync brings what changed while this one was on its way
    // (another boot than the last sync taken: the heartbeat that shows a new boot may come first)
    const syncedBoot = cache.syncBoot(host);
    const anotherBoot = bootId !== 0n && syncedBoot !== 0n && syncedBoot !== bootId;
    const held = anotherBoot && snapshot.revision !== 0n ? cache.highestRevision(host) : -1n;
    const revisionsWentBack = snapshot.revision < held;
    const changes = returning ? reconcileEvents(cache, host, snapshot, syncId) : baseline ? reconcileEvents(baseline.cache, host, snapshot, syncId) : [];
    // the agent's own account of what the stream lacks: needs no baseline, so a coordinator
    // that never synced this host publishes it too (the same events: one stored)
    const said = new Set(changes.map(eventKey));
    for (const e of lostEventsReconcile(cache, host, snapshot, eventsLost, syncId)) if (!said.has(eventKey(e))) changes.push(e);
    if (changes.length > 0) {
      this.options.publish(changes);
      log.info('host reconciled', { host, changes: changes.length, eventsLost: eventsLost.length, against: returning ? 'cache' : baseline ? 'stream' : 'none' });
    }
    if (revisionsWentBack) {
      log.warn("host's revisions went back (its agent lost its revision floor): its state is taken whole from this sync", { host, syncRevision: snapshot.revision, held });
      cache.clearHost(host);
    }
    cache.replaceHost(host, snapshot, bootId);
    hosts.onSync(host, done.host, syncId, bootId);
    if (revisionsWentBack) this.options.askSync?.(host);
    // the sync is taken and this coordinator answers for its events lost from here on (their
    // reconcile events are published, retried): the agent may forget them
    if (reply) this.nc?.publish(reply);
    log.info('host synced', { host, pools: snapshot.pools.length, volumes: snapshot.volumes.length, reason: done.reason, backlog: this.backlog });
  }

  /**
   * Reads the stream's view of the host (its events this coordinator had read when the sync was
   * taken: what its own view would have been, had it followed the host all along), then takes
   * the sync against it. Meanwhile the host's further chunks wait behind this sync; a failed
   * read takes the sync as it is (logged).
   */
  private holdForBaseline(host: string, done: AssembledSync, read: (host: string, upTo: bigint) => Promise<StreamBaseline>, reply?: string): void {
    const { cache, log } = this.options;
    const upTo = cache.appliedSequence;
    const held: Held = { chunks: [] };
    this.held.set(host, held);
    const started = performance.now();
    log.info("a host this coordinator never synced returns: reading its events from the stream to reconcile its sync", { host, syncId: done.syncId, upTo: String(upTo) });
    const release = (baseline: StreamBaseline | null): void => {
      // dropped meanwhile (the host deleted, the intake stopped): nothing to take
      if (this.stopped || this.held.get(host) !== held) return;
      this.held.delete(host);
      if (baseline) log.info("host's events read from the stream", { host, events: baseline.events, through: String(baseline.through), ms: Math.round(performance.now() - started) });
      try {
        this.take(host, done, baseline, reply);
      } catch (err) {
        log.warn('bad sync message', { host, err });
      }
      // its chunks that came meanwhile go first, in order, before any that came after them
      if (held.chunks.length > 0) {
        this.queue.splice(this.head, 0, ...held.chunks);
        if (!this.working) {
          this.working = true;
          setImmediate(() => void this.work());
        }
      }
      this.settle();
    };
    read(host, upTo).then(release, (err: unknown) => {
      log.warn("could not read the host's events from the stream: its sync is taken as it is, and readers of the stream may miss what changed while it was away", { host, err });
      release(null);
    });
  }
}

/** What a reconcile event says, as JetStream's duplicate ids see it (libs/bus/events.ts namedChangeDedupeId). */
const eventKey = (e: Event): string => `${e.kind}:${e.pool}:${e.volume}`;
