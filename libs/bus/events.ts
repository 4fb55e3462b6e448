// The event log: every change is an Event in the JetStream stream CISTERN_EVENTS,
// subject cistern.events.<host>.<pool>.<origin> (libs/bus/subjects.ts). The stream sequence is
// the replay cursor.
import { headers, type Msg, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { Event, EventKind } from '../proto/cistern/v1/storage.js';
import { EVENT_STREAM, eventSubject, subjects, type EventOrigin } from './subjects.js';
import { ReplyInbox } from './reply-inbox.js';

/** How long an event's publish waits for JetStream's ack (nats.js's JetStream default). */
const ACK_TIMEOUT_MS = 5_000;

/**
 * A JetStream publish is a core publish whose reply is the stream's PubAck, JSON
 * `{stream, seq, duplicate?}` or `{error: {code, err_code, description}}`. Published through
 * the connection's ReplyInbox rather than nats.js's JetStreamClient.publish, whose request
 * path costs ~0.1 ms more per event, on the path of every change (an agent answers only after
 * its events are stored).
 */
/** Where JetStream stored an event; `duplicate` when it had it already (the sequence is the first copy's). */
function storedAt(msg: Msg): { seq: bigint; duplicate: boolean } {
  const ack = JSON.parse(new TextDecoder().decode(msg.data)) as {
    stream?: string;
    seq?: number;
    duplicate?: boolean;
    error?: { code?: number; err_code?: number; description?: string };
  };
  if (ack.error) throw new Error(`JetStream did not store the event: ${ack.error.description ?? 'unknown error'} (${ack.error.code ?? '?'}/${ack.error.err_code ?? '?'})`);
  if (!ack.stream || ack.seq === undefined) throw new Error('JetStream answered the event with an invalid ack');
  return { seq: BigInt(ack.seq), duplicate: ack.duplicate === true };
}

/**
 * The kinds only coordinators make (catalog changes, a host's liveness and deletion): no agent
 * publishes them, so one stored under an agent's subject is an agent speaking as a coordinator
 * (or as the admin named in its principal), and readers drop it (eventTrusted,
 * services/coordinator/event-log.ts). Coordinators also publish agent kinds (reconcile events).
 */
export const COORDINATOR_ONLY_KINDS: ReadonlySet<EventKind> = new Set([
  EventKind.POOL_DEFINED,
  EventKind.POOL_UNDEFINED,
  EventKind.HOST_ONLINE,
  EventKind.HOST_OFFLINE,
  EventKind.HOST_DELETED,
]);

export const DEFAULT_EVENT_MAX_AGE_SECONDS = 7 * 24 * 3600;
/** How long JetStream remembers an event's Nats-Msg-Id (docs/events.md, "Duplicates"); the stream's max age may not be shorter. */
export const EVENT_DUPLICATE_WINDOW_SECONDS = 120;
export const DEFAULT_EVENT_MAX_BYTES = 1024 ** 3;

export interface EventStreamOptions {
  /** Oldest event kept, in seconds (default 7 days). */
  maxAgeSeconds?: number;
  /** Bytes kept at most (default 1 GiB). */
  maxBytes?: number;
  /** Events kept at most (default unlimited). */
  maxMessages?: number;
  /** Replicas in a NATS cluster (default 1). */
  replicas?: number;
  storage?: 'file' | 'memory';
}

/**
 * Creates the stream when it is missing; safe to call from every process at start.
 * `retention: 'apply'` (a coordinator) also sets an existing stream's limits to these, the
 * defaults for those not given, so that the last coordinator started decides, as documented;
 * its storage and replicas stay as they are (changing them is an operator's job). An agent
 * leaves an existing stream alone.
 */
export async function ensureEventStream(nc: NatsConnection, options: EventStreamOptions = {}, retention: 'apply' | 'keep' = 'keep'): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const limits = {
    max_age: (options.maxAgeSeconds ?? DEFAULT_EVENT_MAX_AGE_SECONDS) * 1_000_000_000,
    max_bytes: options.maxBytes ?? DEFAULT_EVENT_MAX_BYTES,
    max_msgs: options.maxMessages ?? -1,
  };
  const config = {
    name: EVENT_STREAM,
    subjects: [subjects.eventsAll],
    retention: RetentionPolicy.Limits,
    storage: options.storage === 'memory' ? StorageType.Memory : StorageType.File,
    ...limits,
    num_replicas: options.replicas ?? 1,
    duplicate_window: EVENT_DUPLICATE_WINDOW_SECONDS * 1_000_000_000,
  };
  try {
    const existing = await jsm.streams.info(EVENT_STREAM);
    const current = existing.config;
    const differ = current.max_age !== limits.max_age || current.max_bytes !== limits.max_bytes || current.max_msgs !== limits.max_msgs;
    if (retention === 'apply' && differ) await jsm.streams.update(EVENT_STREAM, { ...current, ...limits });
  } catch (err) {
    if (!/not found/i.test((err as Error).message)) throw err;
    try {
      await jsm.streams.add(config);
    } catch (addErr) {
      // another process created it between our look and our add
      if (!/already in use|exists/i.test((addErr as Error).message)) throw addErr;
    }
  }
}

/**
 * Publishes events in order. Publishes are pipelined (no wait for each ack), yet
 * JetStream stores them in the order they were sent on this connection, so per
 * pool order holds. `flush()` resolves with the last stored sequence.
 */
export class EventPublisher {
  private readonly inbox: ReplyInbox;
  /** Settles when every publish so far is stored: concurrent flushes all wait for it. */
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown;
  private lastSequence = 0n;

  /**
   * `onNotStored`: told of each event whose publish failed or whose ack did not come (it may be
   * stored all the same). `dedupe`: how JetStream tells a repeat of an event from a new one
   * (changeDedupeId, the default, or namedChangeDedupeId). `origin`: who publishes, the last
   * token of the subjects (an agent's user may publish only its own: scripts/nats-config.mjs).
   */
  constructor(
    nc: NatsConnection,
    private readonly onNotStored?: (event: Event, err: unknown) => void,
    private readonly dedupe: (event: Event) => string | undefined = changeDedupeId,
    private readonly origin: EventOrigin = 'agent',
  ) {
    this.inbox = ReplyInbox.of(nc);
  }

  /** `msgID`: the event's duplicate id, when the caller names the change itself (else `dedupe`'s). */
  publish(event: Event, msgID: string | undefined = this.dedupe(event)): void {
    const subject = eventSubject(this.origin, event.host, event.pool || undefined);
    const data = Event.encode({ ...event, sequence: 0n }).finish();
    const ack = this.inbox.request(subject, data, { timeoutMs: ACK_TIMEOUT_MS, headers: msgID ? dedupeHeader(msgID) : undefined });
    // handled below once the acks before it are in: not an unhandled rejection meanwhile
    ack.catch(() => undefined);
    const previous = this.tail;
    this.tail = (async () => {
      await previous;
      try {
        const { seq, duplicate } = storedAt(await ack);
        // Acks come in publish order, so a new event's sequence only grows, unless the stream
        // was deleted and made again (sequences from 1): then the last one is the one that
        // counts, or every call would report a sequence the new stream reaches much later.
        // A duplicate names its first copy's sequence, which may be older.
        if (!duplicate || seq > this.lastSequence) this.lastSequence = seq;
      } catch (err) {
        this.failure ??= err;
        this.onNotStored?.(event, err);
      }
    })();
  }

  /** Waits for every publish so far; returns the stream sequence of the last event stored (0 if none). */
  async flush(): Promise<bigint> {
    await this.tail;
    if (this.failure !== undefined) {
      const failure = this.failure;
      this.failure = undefined;
      throw failure;
    }
    return this.lastSequence;
  }

  /** Publishes one event and waits for it to be stored. */
  async publishNow(event: Event, msgID?: string): Promise<bigint> {
    this.publish(event, msgID ?? this.dedupe(event));
    return this.flush();
  }
}

/**
 * The duplicate id of an event made by one run of a call (an agent's, or the coordinator's
 * catalog events): it names the change, not the request. A request id alone would drop real
 * changes: another principal's request with the same id, or a retry that does the work again
 * after an agent restart undid the first attempt, both within JetStream's duplicate window.
 * The state's revision is the agent's counter for that one change, so the same event sent
 * again (the same change, every coordinator's reconcile of it) keeps its id. An event without
 * a revision gets none: a duplicate of it is harmless, a lost change is not. Progress events
 * repeat by nature.
 */
export function changeDedupeId(event: Event): string | undefined {
  if (!event.requestId || event.kind === EventKind.OPERATION_PROGRESS) return undefined;
  const revision = event.volume ? event.volumeState?.revision : event.poolState?.revision;
  if (!revision) return undefined;
  return `${event.requestId}:${event.principal}:${event.kind}:${event.host}:${event.pool}:${event.volume}:${revision}`;
}

/**
 * The duplicate id of an event whose request id names the change itself, which every
 * coordinator publishes for it: a host going on- or offline (`host-online:HOST:BOOT:SYNC`)
 * and a sync's reconcile events (`reconcile-SYNC`). The stream keeps one copy. The host is
 * part of it: one request id on two hosts' events is two events.
 */
export function namedChangeDedupeId(event: Event): string | undefined {
  if (!event.requestId || event.kind === EventKind.OPERATION_PROGRESS) return undefined;
  return `${event.requestId}:${event.kind}:${event.host}:${event.pool}:${event.volume}`;
}

/** JetStream drops a message whose Nats-Msg-Id it stored within the stream's duplicate window. */
function dedupeHeader(msgID: string): MsgHdrs {
  const h = headers();
  h.set('Nats-Msg-Id', msgID);
  return h;
}

export function decodeEvent(data: Uint8Array, sequence: number | bigint): Event {
  const event = Event.decode(data);
  event.sequence = BigInt(sequence);
  return event;
}
