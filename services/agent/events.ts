// Building the Event messages the agent publishes (docs/bus.md, item 4) and publishing
// them in order with a correct "last sequence" for every reply.
import { Event, EventKind, Pool, Progress, Volume } from '../../libs/proto/cistern/v1/storage.js';
import type { EventPublisher } from '../../libs/bus/events.js';
import type { ProgressFn } from '../../libs/backends/backend.js';

/** Who asked for the change (copied from the AgentRequest). */
export interface Actor {
  principal: string;
  requestId: string;
  /** aborts when the caller cancels the operation (never set for the agent's own work) */
  signal?: AbortSignal;
}

export const systemActor: Actor = { principal: 'agent', requestId: '' };

export function poolEvent(kind: EventKind, host: string, pool: Pool, actor: Actor): Event {
  return Event.create({
    kind,
    host,
    pool: pool.definition?.name ?? '',
    time: new Date(),
    principal: actor.principal,
    requestId: actor.requestId,
    poolState: pool,
  });
}

/** A volume event; it also carries the pool's new state (sizes, volume count) when given. */
export function volumeEvent(kind: EventKind, host: string, volume: Volume, actor: Actor, pool?: Pool): Event {
  return Event.create({
    kind,
    host,
    pool: volume.pool,
    volume: volume.definition?.name ?? '',
    time: new Date(),
    principal: actor.principal,
    requestId: actor.requestId,
    volumeState: volume,
    poolState: pool,
  });
}

export function progressEvent(
  host: string,
  where: { pool: string; volume?: string },
  operation: string,
  done: bigint,
  total: bigint,
  actor: Actor,
): Event {
  return Event.create({
    kind: EventKind.OPERATION_PROGRESS,
    host,
    pool: where.pool,
    volume: where.volume ?? '',
    time: new Date(),
    principal: actor.principal,
    requestId: actor.requestId,
    progress: Progress.create({ operation, done, total }),
  });
}

/** What the handlers need from the event publisher (a fake in unit tests). */
export interface EventSink {
  publish(event: Event): void;
  /** Waits until everything published so far is stored; the highest stream sequence. */
  flush(): Promise<bigint>;
}

/**
 * Serialises flushes of the shared EventPublisher: its flush() hands the pending acks to
 * the first caller, so a concurrent second caller could return before its own events are
 * stored. Chained flushes each wait for every publish made before them.
 */
export class OrderedEvents implements EventSink {
  private chain: Promise<bigint> = Promise.resolve(0n);
  constructor(private readonly publisher: EventPublisher) {}

  publish(event: Event): void {
    this.publisher.publish(event);
  }

  flush(): Promise<bigint> {
    const next = this.chain.catch(() => 0n).then(() => this.publisher.flush());
    this.chain = next;
    return next;
  }
}

/**
 * A ProgressFn that publishes OPERATION_PROGRESS at most every `minIntervalMs`
 * (default 250 ms: ~4/s per operation); the first report and the final one
 * (done === total) always go out. A total of 0 is not known yet: never final. A report
 * the same as the last one published is dropped; one that only learns its total (the
 * last of an upload of unknown length, done as before) is not.
 */
export function throttledProgress(
  emit: (done: bigint, total: bigint) => void,
  minIntervalMs = 250,
  now: () => number = Date.now,
): ProgressFn {
  let last = -Infinity;
  let lastDone = -1n;
  let lastTotal = -1n;
  return (done, total) => {
    const t = now();
    const final = total > 0n && done >= total;
    if (done === lastDone && total === lastTotal) return;
    if (!final && t - last < minIntervalMs) return;
    last = t;
    lastDone = done;
    lastTotal = total;
    emit(done, total);
  };
}

/** The revision of the state an event carries (its volume's for a volume event), 0 when none. */
const revisionOf = (e: Event): bigint => (e.volume ? e.volumeState?.revision : e.poolState?.revision) ?? 0n;

/**
 * Events the stream did not store (their publish failed, or its ack did not come), the last
 * one of each pool and volume, until a full sync carries them to the coordinators: they
 * publish the state of those objects from that sync (HostSync.events_lost, docs/events.md).
 * Progress is not state: not kept.
 */
export class LostEvents {
  private readonly byObject = new Map<string, Event>();

  note(event: Event): void {
    if (event.kind === EventKind.OPERATION_PROGRESS) return;
    const key = `${event.pool}\0${event.volume}`;
    this.byObject.delete(key); // re-inserted: kept in the order they were lost
    this.byObject.set(key, event);
  }

  /** Hands the lost events to a sync; give them back with restore() when it could not be sent. */
  take(): Event[] {
    const events = [...this.byObject.values()];
    this.byObject.clear();
    return events;
  }

  /**
   * A sync that carried `events` was not sent or not confirmed: they wait for the next one. An
   * object lost again since keeps its newer event, by revision: syncs go unconfirmed in the
   * order they were sent, so the newer event (taken by a later sync) may come back after the
   * older one was given back. Carrying the older one again would have its reconcile events
   * named as the older loss's (coordinator reconcile.ts lostEventDedupeId), and JetStream would
   * drop the newer state as a duplicate of what an earlier sync stored.
   */
  restore(events: readonly Event[]): void {
    for (const e of events) {
      const key = `${e.pool}\0${e.volume}`;
      const kept = this.byObject.get(key);
      if (!kept || revisionOf(e) > revisionOf(kept)) this.byObject.set(key, e);
    }
  }
}
