// Full sync (docs/bus.md, item 3): the whole runtime state of this host as HostSync chunks
// on cistern.sync.<host>, one sync id, chunk 0..n, last=true on the final one, each
// under ~512 KiB encoded. Sent at start, after every reconnect, after events the stream
// did not store (the sync carries them, HostSync.events_lost, until a coordinator confirms
// it took them: LOST_SYNC_CONFIRM_MS), and on ResyncRequest:
// at once when the request names this host, after a random delay of up to the resync
// spread when it is fleet-wide (host ''), so a fleet does not answer a new coordinator
// in the same instant.
import { randomUUID } from 'node:crypto';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { HostSync, ResyncRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import { Event, Host, Pool, Volume } from '../../libs/proto/cistern/v1/storage.js';
import { subjects } from '../../libs/bus/subjects.js';
import { IGNORED_DELIVERY } from '../../libs/bus/delivered-subject.js';
import type { LostEvents } from './events.js';
import type { Logger } from '../../libs/log/logger.js';

export const MAX_CHUNK_BYTES = 512 * 1024;
/**
 * A sync that carries events lost ends with a request: a coordinator that took the whole sync
 * answers (coordinator sync-intake.ts), and until one does the events stay the agent's. A sync
 * is a core NATS publish, gone when no coordinator listens at that moment (one restarting, its
 * sync connection reconnecting): without the answer those events were lost twice. A
 * coordinator answers once it has taken the sync, in turn behind a fleet's syncs or the read
 * of the host's events from the stream: seconds. "No responders" comes at once.
 */
export const LOST_SYNC_CONFIRM_MS = 30_000;
/** Waits before a sync whose events lost no coordinator confirmed is sent again: each in turn, then the last. */
export const LOST_SYNC_RETRY_MS = [1_000, 2_000, 5_000, 10_000, 30_000];
/** Longest default delay before answering a fleet-wide ResyncRequest. */
export const MAX_RESYNC_SPREAD_MS = 1500;

/**
 * The default spread of answers to a fleet-wide ResyncRequest for an agent that heartbeats
 * every `heartbeatMs`: 0.75 of an interval, at most 1.5 s (a test stack with fast
 * heartbeats gets a short spread, a fleet with the default 2 s gets 1.5 s).
 */
export function defaultResyncSpreadMs(heartbeatMs: number): number {
  return Math.max(0, Math.min(MAX_RESYNC_SPREAD_MS, Math.floor(heartbeatMs * 0.75)));
}

/**
 * When to answer `req` on host `host`: 0 (at once) when it names this host, a random delay
 * below `spreadMs` when it is fleet-wide, undefined when it is for another host.
 */
export function resyncDelayMs(req: ResyncRequest, host: string, spreadMs: number, random: () => number = Math.random): number | undefined {
  if (req.host) return req.host === host || req.host === `hosts/${host}` ? 0 : undefined;
  return spreadMs > 0 ? Math.floor(random() * spreadMs) : 0;
}
/** Room for sync_id, chunk, last, revision and per-item tags. */
const HEADER_ALLOWANCE = 256;

export interface Snapshot {
  host: Host;
  /** the agent's boot (its heartbeats carry the same); 0 when not known */
  bootId?: bigint;
  pools: Pool[];
  volumes: Volume[];
  /** persistent pools stopped since the agent started, with what they showed (HostSync.stopped_pools) */
  stoppedPools?: Pool[];
  revision: bigint;
  /** events the stream did not store since the last sync (LostEvents) */
  eventsLost?: Event[];
  /** why the sync is sent (logs) */
  reason?: string;
}

/**
 * Splits a snapshot into HostSync chunks no larger than `maxBytes` encoded (a single
 * item bigger than that travels alone). Pools come first, then volumes, in order.
 */
export function buildSyncChunks(
  syncId: string,
  snap: Snapshot,
  maxBytes = MAX_CHUNK_BYTES,
  onUnencodable?: (what: string, err: unknown) => void,
): HostSync[] {
  const chunks: HostSync[] = [];
  const hostBytes = Host.encode(snap.host).finish().length + 8;
  const reason = snap.reason ?? '';
  let current = HostSync.create({ syncId, chunk: 0, host: snap.host, revision: snap.revision, bootId: snap.bootId ?? 0n, reason });
  let size = HEADER_ALLOWANCE + syncId.length + hostBytes + reason.length;
  const startNew = () => {
    chunks.push(current);
    current = HostSync.create({ syncId, chunk: chunks.length, revision: snap.revision });
    size = HEADER_ALLOWANCE + syncId.length;
  };
  // an item that does not encode (a backend's size past 2^64) is left out, not the whole sync
  const add = (what: string, encode: () => Uint8Array, put: () => void) => {
    let bytes: number;
    try {
      bytes = encode().length;
    } catch (err) {
      onUnencodable?.(what, err);
      return;
    }
    const itemSize = bytes + 6; // tag + length prefix
    const empty = current.pools.length === 0 && current.volumes.length === 0 && current.eventsLost.length === 0 && current.stoppedPools.length === 0;
    if (!empty && size + itemSize > maxBytes) startNew();
    put();
    size += itemSize;
  };
  for (const pool of snap.pools) add(pool.name, () => Pool.encode(pool).finish(), () => current.pools.push(pool));
  for (const pool of snap.stoppedPools ?? []) add(pool.name, () => Pool.encode(pool).finish(), () => current.stoppedPools.push(pool));
  for (const vol of snap.volumes) add(vol.name, () => Volume.encode(vol).finish(), () => current.volumes.push(vol));
  for (const e of snap.eventsLost ?? []) add(`a lost event of ${e.pool || e.host}`, () => Event.encode(e).finish(), () => current.eventsLost.push(e));
  chunks.push(current);
  chunks[chunks.length - 1]!.last = true;
  return chunks;
}

/**
 * Publishes full syncs. Requests that arrive while one is being sent coalesce into
 * one more sync after it, so the last one always reflects the newest state.
 */
export class HostSyncer {
  private running: Promise<void> | undefined;
  private again = false;
  private sub: Subscription | undefined;
  /** a fleet-wide request waiting for its random delay */
  private delayed: NodeJS.Timeout | undefined;
  /** a sync again because no coordinator confirmed the last one's events lost */
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private unconfirmed = 0;
  /** Called for every ResyncRequest this host answers: a coordinator is up. */
  onCoordinatorSeen: (() => void) | undefined;

  /**
   * `resyncSpreadMs`: answers to a fleet-wide ResyncRequest wait a random delay below it (0 = at once).
   * `lost`: events the stream did not store; each sync carries them, one that is not sent or
   * not confirmed gives them back, and an unconfirmed one is sent again after `lostSyncRetryMs`.
   */
  constructor(
    private readonly nc: NatsConnection,
    private readonly host: string,
    private readonly snapshot: () => Snapshot,
    private readonly log: Logger,
    private readonly resyncSpreadMs = MAX_RESYNC_SPREAD_MS,
    private readonly lost?: LostEvents,
    private readonly lostSyncRetryMs: readonly number[] = LOST_SYNC_RETRY_MS,
  ) {}

  /** Answers ResyncRequest messages for this host (or for every host). */
  listen(): void {
    this.sub = this.nc.subscribe(subjects.resync);
    void (async () => {
      for await (const msg of this.sub!) {
        // a stored message a push consumer delivered here keeps its own subject (delivered-subject.ts)
        if (msg.subject !== subjects.resync) {
          this.log.warn(IGNORED_DELIVERY, { subject: msg.subject });
          continue;
        }
        let req: ResyncRequest;
        try {
          req = ResyncRequest.decode(msg.data);
        } catch {
          continue;
        }
        const delay = resyncDelayMs(req, this.host, this.resyncSpreadMs);
        if (delay === undefined) continue;
        this.log.info('resync requested', { coordinator: req.coordinatorId, fleetWide: !req.host, delayMs: delay });
        this.requestAfter(delay);
        this.onCoordinatorSeen?.();
      }
    })();
  }

  /** A sync after `delayMs`; requests while one is waiting join it, one for now replaces it. */
  private requestAfter(delayMs: number): void {
    if (delayMs <= 0) {
      if (this.delayed) clearTimeout(this.delayed);
      this.delayed = undefined;
      void this.request('requested');
      return;
    }
    if (this.delayed) return;
    this.delayed = setTimeout(() => {
      this.delayed = undefined;
      void this.request('requested');
    }, delayMs);
    this.delayed.unref();
  }

  /** Sends a full sync soon; resolves when a sync that started after this call is sent. */
  request(reason: string): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.sendOnce(reason);
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async sendOnce(reason: string): Promise<void> {
    const syncId = randomUUID();
    // taken with the snapshot, in the same turn: the changes of these events are in it
    const eventsLost = this.lost?.take() ?? [];
    try {
      // (inside the try: a sync that cannot be built is logged, never an unhandled rejection
      // from the timer that asked for it, which would end the agent and every pool it runs)
      const chunks = buildSyncChunks(syncId, { ...this.snapshot(), eventsLost, reason }, MAX_CHUNK_BYTES, (what, err) =>
        this.log.error('left out of the full sync: it does not encode', { what, error: err }),
      );
      const subject = subjects.sync(this.host);
      let confirmation: Promise<unknown> | undefined;
      chunks.forEach((chunk, i) => {
        const bytes = HostSync.encode(chunk).finish();
        if (eventsLost.length > 0 && i === chunks.length - 1) confirmation = this.nc.request(subject, bytes, { timeout: LOST_SYNC_CONFIRM_MS });
        else this.nc.publish(subject, bytes);
      });
      if (confirmation) void this.awaitConfirmation(confirmation, eventsLost, syncId);
      await this.nc.flush();
      const last = chunks[chunks.length - 1]!;
      this.log.info('full sync sent', {
        reason,
        syncId,
        chunks: chunks.length,
        pools: chunks.reduce((n, c) => n + c.pools.length, 0),
        volumes: chunks.reduce((n, c) => n + c.volumes.length, 0),
        eventsLost: eventsLost.length,
        revision: last.revision,
      });
    } catch (err) {
      this.lost?.restore(eventsLost);
      this.log.warn('full sync failed; it is sent again after the next reconnect', { reason, error: err });
    }
  }

  /** The events lost a sync carried are the coordinators' once one confirms it; else they go in a sync again. */
  private async awaitConfirmation(confirmation: Promise<unknown>, eventsLost: Event[], syncId: string): Promise<void> {
    try {
      await confirmation;
      this.unconfirmed = 0;
    } catch (err) {
      this.lost?.restore(eventsLost);
      if (this.stopped) return;
      const delayMs = this.lostSyncRetryMs[Math.min(this.unconfirmed++, this.lostSyncRetryMs.length - 1)]!;
      this.log.warn('no coordinator confirmed the full sync carrying events the stream did not store; they go in the next one', {
        syncId,
        eventsLost: eventsLost.length,
        retryInMs: delayMs,
        error: err,
      });
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        void this.request('events lost not confirmed');
      }, delayMs);
      this.retryTimer.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.delayed) clearTimeout(this.delayed);
    this.delayed = undefined;
    this.sub?.unsubscribe();
  }
}
