// The shared live tail of the event stream: ONE ordered consumer in the coordinator for every
// WatchEvents call that has caught up with the stream's end. Each event is decoded once (for
// the watchers' filters) and encoded once: the stored payload is an Event with sequence 0, so
// the Event a watcher receives is the payload with field 1 (sequence) appended, bytes that
// every watcher's gRPC stream writes as they are (see serializeEventResponse).
//
// The tail keeps the last events (16,384, at most 16 MiB) in one ring that every subscriber
// reads at its own pace: a subscriber is a position in the ring. It joins at a cursor (it has
// everything up to and including that sequence); the join succeeds only when the ring holds
// every event after the cursor, so the seam has no gap and no duplicate. Sequences decide,
// never time.
import type { NatsConnection } from '@nats-io/transport-node';
import { Event } from '../../libs/proto/cistern/v1/storage.js';
import { eventTrusted, natsEventSource, type EventSource, type RawEvent, type RawEventReader } from './event-log.js';
import type { Logger } from '../../libs/log/logger.js';

/** What a watcher's filter looks at (the rest of the Event is only in `bytes`). */
export type EventHeader = Pick<Event, 'host' | 'pool' | 'kind'>;

export interface TailEntry {
  seq: bigint;
  /** undefined when the payload is not an Event: no watcher receives it */
  event: EventHeader | undefined;
  /** the Event with its sequence, as WatchEvents sends it */
  bytes: Buffer;
}

function varintLength(n: bigint): number {
  let len = 1;
  while (n >= 0x80n) {
    n >>= 7n;
    len++;
  }
  return len;
}

/**
 * The stored payload (an Event, sequence 0 and so absent) followed by field 1 = `seq`: what
 * `Event.encode({...event, sequence: seq})` means. Protobuf parsers take fields in any order
 * and, for a scalar given twice, the last one.
 */
export function encodeWithSequence(data: Uint8Array, seq: bigint, alloc: (size: number) => Buffer = Buffer.allocUnsafe): Buffer {
  const out = alloc(data.length + 1 + varintLength(seq));
  out.set(data, 0);
  let pos = data.length;
  out[pos++] = 0x08; // field 1, varint
  let n = seq;
  while (n >= 0x80n) {
    out[pos++] = Number(n & 0x7fn) | 0x80;
    n >>= 7n;
  }
  out[pos] = Number(n);
  return out;
}

/** Decodes the stored Event once and keeps only what filters need beside its bytes. */
export function tailEntry(raw: RawEvent): TailEntry {
  let event: EventHeader | undefined;
  try {
    const e = Event.decode(raw.data);
    // another host's agent speaking for this host, or an agent speaking as a coordinator:
    // matched by no filter, sent to no watcher
    event = eventTrusted(raw.subject, e) ? { host: e.host, pool: e.pool, kind: e.kind } : undefined;
  } catch {
    event = undefined;
  }
  // the ring keeps these for long: each in a buffer of its own, for a slice of Node's shared
  // 8 KiB pool would keep the whole slab alive (the 16 MiB ring held 27-47 MB in review)
  return { seq: raw.seq, event, bytes: encodeWithSequence(raw.data, raw.seq, Buffer.allocUnsafeSlow) };
}

/**
 * The WatchEvents response serializer: bytes written by the handler (already an encoded
 * Event) pass through; an Event object is encoded as the generated serializer does.
 */
export function serializeEventResponse(value: Event | Buffer): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(Event.encode(value).finish());
}

export interface TailSubscriber {
  /** New events are in the ring (called synchronously, in stream order, after each). */
  advance(): void;
  /** The tail stopped reading (its consumer failed or NATS closed): read on your own. */
  tailEnded(err?: unknown): void;
}

export interface EventTailOptions {
  /** events kept (default 16,384) ... */
  ringEvents?: number;
  /** ... and at most this many bytes of them (default 16 MiB) */
  ringBytes?: number;
  /** how long the tail keeps reading with no user before it closes (default 10 s) */
  idleCloseMs?: number;
  log?: Logger;
}

export const DEFAULT_RING_EVENTS = 16_384;
export const DEFAULT_RING_BYTES = 16 * 1024 * 1024;

/**
 * Events are addressed by a position that only grows (0 = the first event the tail read); a
 * subscriber keeps the position of the next event it will look at, so what it has not sent
 * yet costs it nothing: a slow subscriber is a position further back in the one ring. When
 * the ring drops the event at a subscriber's position, that subscriber has fallen behind.
 */
export class EventTail {
  private readonly ringEvents: number;
  private readonly ringBytes: number;
  private readonly idleCloseMs: number;
  private readonly log: Logger | undefined;
  /** ring[head + (p - startPos)] is the event at position p, for startPos <= p < endPos */
  private ring: TailEntry[] = [];
  private head = 0;
  private startPos = 0;
  private bytesKept = 0;
  private lastSeq = 0n;
  /** every stored event with a sequence in [covered, lastSeq] is in the ring */
  private covered = 0n;
  private readonly subscribers = new Set<TailSubscriber>();
  private users = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private opening: Promise<void> | undefined;
  private reader: RawEventReader | undefined;
  private closed = false;
  private readonly endedCallbacks: Array<() => void> = [];
  /** events read; decoded once each */
  eventsRead = 0;

  constructor(
    private readonly source: EventSource,
    options: EventTailOptions = {},
  ) {
    this.ringEvents = Math.max(1, options.ringEvents ?? DEFAULT_RING_EVENTS);
    this.ringBytes = Math.max(1, options.ringBytes ?? DEFAULT_RING_BYTES);
    this.idleCloseMs = options.idleCloseMs ?? 10_000;
    this.log = options.log;
  }

  /** The newest sequence read (every event up to it is in the ring or was dropped from it). */
  get last(): bigint {
    return this.lastSeq;
  }

  /** The oldest sequence a subscriber can join after: cursor + 1 >= coveredFrom. */
  get coveredFrom(): bigint {
    return this.covered;
  }

  /** Position of the oldest event kept. */
  get start(): number {
    return this.startPos;
  }

  /** Position after the newest event. */
  get end(): number {
    return this.startPos + this.ring.length - this.head;
  }

  /** The event at `pos` (start <= pos < end). */
  at(pos: number): TailEntry {
    return this.ring[this.head + pos - this.startPos]!;
  }

  get ended(): boolean {
    return this.closed;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Starts reading at `from` (once: later calls wait for the first). */
  open(from: bigint): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the event tail is closed'));
    this.opening ??= (async () => {
      const start = from < 1n ? 1n : from;
      this.covered = start;
      this.lastSeq = start - 1n;
      try {
        this.reader = await this.source.read(start);
      } catch (err) {
        this.end_(err);
        throw err;
      }
      if (this.closed) {
        void this.reader.close().catch(() => undefined);
        return;
      }
      void this.pump(this.reader);
    })();
    return this.opening;
  }

  /** A WatchEvents call uses the tail (it keeps reading while someone does). */
  acquire(): void {
    this.users++;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  release(): void {
    this.users--;
    if (this.users > 0 || this.closed) return;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.users === 0) this.close();
    }, this.idleCloseMs);
    this.idleTimer.unref();
  }

  /** Called once when the tail stops reading. */
  onEnded(cb: () => void): void {
    if (this.closed) cb();
    else this.endedCallbacks.push(cb);
  }

  close(): void {
    if (this.closed) return;
    this.end_(undefined);
  }

  /**
   * Joins `sub` after `cursor` (it has every event up to that sequence): returns the position
   * of the first event after the cursor (later events are announced with advance()), or
   * undefined when the ring no longer holds every event after the cursor or the tail has
   * stopped.
   */
  attach(sub: TailSubscriber, cursor: bigint): number | undefined {
    if (this.closed || this.opening === undefined) return undefined;
    if (cursor + 1n < this.covered) return undefined;
    // first position with seq > cursor (the ring is sorted by sequence)
    let lo = this.startPos;
    let hi = this.end;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.at(mid).seq <= cursor) lo = mid + 1;
      else hi = mid;
    }
    this.subscribers.add(sub);
    return lo;
  }

  detach(sub: TailSubscriber): void {
    this.subscribers.delete(sub);
  }

  /** Adds one event (stream order) and tells every subscriber. */
  push(entry: TailEntry): void {
    if (entry.seq <= this.lastSeq) return;
    this.eventsRead++;
    this.ring.push(entry);
    this.bytesKept += entry.bytes.length;
    this.lastSeq = entry.seq;
    while (this.ring.length - this.head > 1 && (this.ring.length - this.head > this.ringEvents || this.bytesKept > this.ringBytes)) {
      const evicted = this.ring[this.head]!;
      this.ring[this.head++] = undefined as unknown as TailEntry;
      this.startPos++;
      this.bytesKept -= evicted.bytes.length;
      this.covered = evicted.seq + 1n;
    }
    if (this.head > 1024 && this.head * 2 > this.ring.length) {
      this.ring = this.ring.slice(this.head);
      this.head = 0;
    }
    for (const sub of this.subscribers) sub.advance();
  }

  private async pump(reader: RawEventReader): Promise<void> {
    let failure: unknown;
    try {
      for await (const raw of reader) {
        if (this.closed) break;
        const entry = tailEntry(raw);
        if (!entry.event) this.log?.warn('event stream message is not an Event: no watcher gets it', { seq: String(raw.seq) });
        this.push(entry);
      }
    } catch (err) {
      failure = err;
    }
    if (!this.closed) {
      this.log?.warn('shared event tail stopped; watchers read on their own', { err: failure, last: String(this.lastSeq) });
      this.end_(failure ?? new Error('the event stream reader ended'));
    }
  }

  private end_(err: unknown): void {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    void this.reader?.close().catch(() => undefined);
    const subs = [...this.subscribers];
    this.subscribers.clear();
    for (const sub of subs) sub.tailEnded(err);
    this.ring = [];
    this.head = 0;
    this.bytesKept = 0;
    for (const cb of this.endedCallbacks.splice(0)) cb();
  }
}

const shared = new WeakMap<NatsConnection, EventTail>();

/** The coordinator's one tail on this connection (a new one when the last has stopped). */
export function sharedEventTail(nc: NatsConnection, log?: Logger): EventTail {
  let tail = shared.get(nc);
  if (!tail || tail.ended) {
    const created = new EventTail(natsEventSource(nc, log, 'shared event tail'), { log });
    created.onEnded(() => {
      if (shared.get(nc) === created) shared.delete(nc);
    });
    shared.set(nc, created);
    tail = created;
  }
  return tail;
}
