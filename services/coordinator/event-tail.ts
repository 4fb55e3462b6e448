// The shared live tail of the event stream: ONE ordered consumer in the coordinator for every
// WatchEvents call that has caught up with the stream's end. Each event is decoded once (for
// the watchers' filters) and encoded once: the stored payload is an Event with sequence 0, so
// the Event a watcher receives is the payload with field 1 (sequence) appended, bytes that
// every watcher's gRPC stream writes as they are (see serializeEventResponse).
//
// The tail keeps the last `ringSize` events. A subscriber joins at a cursor (it has everything
// up to and including that sequence); the join succeeds only when the ring holds every event
// after the cursor, and those are offered to it at once, so the seam has no gap and no
// duplicate. Sequences decide, never time.
import type { NatsConnection } from '@nats-io/transport-node';
import { Event } from '../../libs/proto/cistern/v1/storage.js';
import { natsEventSource, type EventSource, type RawEvent, type RawEventReader } from './event-log.js';
import type { Logger } from './log.js';

export interface TailEntry {
  seq: bigint;
  /** undefined when the payload is not an Event: no watcher receives it */
  event: Event | undefined;
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
export function encodeWithSequence(data: Uint8Array, seq: bigint): Buffer {
  const out = Buffer.allocUnsafe(data.length + 1 + varintLength(seq));
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

export function tailEntry(raw: RawEvent): TailEntry {
  let event: Event | undefined;
  try {
    event = Event.decode(raw.data);
    event.sequence = raw.seq;
  } catch {
    event = undefined;
  }
  return { seq: raw.seq, event, bytes: encodeWithSequence(raw.data, raw.seq) };
}

/**
 * The WatchEvents response serializer: bytes written by the handler (already an encoded
 * Event) pass through; an Event object is encoded as the generated serializer does.
 */
export function serializeEventResponse(value: Event | Buffer): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(Event.encode(value).finish());
}

export interface TailSubscriber {
  /** Every event after the subscriber's join cursor, in stream order, synchronously. */
  offer(entry: TailEntry): void;
  /** The tail stopped reading (its consumer failed or NATS closed): read on your own. */
  tailEnded(err?: unknown): void;
}

export interface EventTailOptions {
  /** events kept for joining subscribers (default 4096) */
  ringSize?: number;
  /** how long the tail keeps reading with no user before it closes (default 10 s) */
  idleCloseMs?: number;
  log?: Logger;
}

export class EventTail {
  private readonly ringSize: number;
  private readonly idleCloseMs: number;
  private readonly log: Logger | undefined;
  /** events in stream order: ring[head..] are live */
  private ring: TailEntry[] = [];
  private head = 0;
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
    this.ringSize = Math.max(1, options.ringSize ?? 4096);
    this.idleCloseMs = options.idleCloseMs ?? 10_000;
    this.log = options.log;
  }

  /** The newest sequence read (every event up to it has been offered). */
  get last(): bigint {
    return this.lastSeq;
  }

  /** The oldest sequence a subscriber can join after: cursor + 1 >= coveredFrom. */
  get coveredFrom(): bigint {
    return this.covered;
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
        this.end(err);
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
    this.end(undefined);
  }

  /**
   * Joins `sub` after `cursor` (it has every event up to that sequence). The events after the
   * cursor still in the ring are offered before this returns, later ones as they come. False
   * (nothing offered) when the ring no longer holds every event after the cursor, when more
   * than `maxBacklog` of them would be offered at once, or when the tail has stopped.
   */
  attach(sub: TailSubscriber, cursor: bigint, maxBacklog = Infinity): boolean {
    if (this.closed || this.opening === undefined) return false;
    if (cursor + 1n < this.covered) return false;
    // first ring index with seq > cursor (the ring is sorted by sequence)
    let lo = this.head;
    let hi = this.ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ring[mid]!.seq <= cursor) lo = mid + 1;
      else hi = mid;
    }
    if (this.ring.length - lo > maxBacklog) return false;
    this.subscribers.add(sub);
    for (let i = lo; i < this.ring.length && this.subscribers.has(sub); i++) sub.offer(this.ring[i]!);
    return true;
  }

  detach(sub: TailSubscriber): void {
    this.subscribers.delete(sub);
  }

  /** Adds one event (stream order) and offers it to every subscriber. */
  push(entry: TailEntry): void {
    if (entry.seq <= this.lastSeq) return;
    this.eventsRead++;
    this.ring.push(entry);
    this.lastSeq = entry.seq;
    if (this.ring.length - this.head > this.ringSize) {
      const evicted = this.ring[this.head]!;
      this.ring[this.head++] = undefined as unknown as TailEntry;
      this.covered = evicted.seq + 1n;
      if (this.head >= this.ringSize) {
        this.ring = this.ring.slice(this.head);
        this.head = 0;
      }
    }
    for (const sub of this.subscribers) sub.offer(entry);
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
      this.end(failure ?? new Error('the event stream reader ended'));
    }
  }

  private end(err: unknown): void {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    void this.reader?.close().catch(() => undefined);
    this.ring = [];
    this.head = 0;
    const subs = [...this.subscribers];
    this.subscribers.clear();
    for (const sub of subs) sub.tailEnded(err);
    for (const cb of this.endedCallbacks.splice(0)) cb();
  }
}

const shared = new WeakMap<NatsConnection, EventTail>();

/** The coordinator's one tail on this connection (a new one when the last has stopped). */
export function sharedEventTail(nc: NatsConnection, log?: Logger): EventTail {
  let tail = shared.get(nc);
  if (!tail || tail.ended) {
    const created = new EventTail(natsEventSource(nc), { log });
    created.onEnded(() => {
      if (shared.get(nc) === created) shared.delete(nc);
    });
    shared.set(nc, created);
    tail = created;
  }
  return tail;
}
