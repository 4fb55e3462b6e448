// One WatchEvents call: it follows the shared tail (event-tail.ts) when it can, and reads the
// stream with its own consumer when it must: a replay (after_sequence, from_start) until it
// has caught up, or after it fell too far behind the tail. Its cursor is the last sequence it
// has dealt with (every matching event up to it is sent or queued), so each switch, in either
// direction, continues at cursor + 1: no gap, no duplicate.
//
// Catching up with a filtered consumer (one subject): the consumer only sees that subject, so
// its last delivered sequence says nothing about the events in between. Before deciding, the
// session reads the tail's position B, then asks the stream for the newest sequence M on the
// subject: nothing on the subject lies in (M, B]. Once the consumer has delivered M, the
// session has everything up to max(M, B) and joins the tail there.
import type { EventSource, RawEventReader } from './event-log.js';
import { UnavailableError } from '../../libs/errors/errors.js';
import { Event } from '../../libs/proto/cistern/v1/storage.js';
import { encodeWithSequence, type EventTail, type TailEntry, type TailSubscriber } from './event-tail.js';

function decodeOrUndefined(data: Uint8Array): Event | undefined {
  try {
    return Event.decode(data);
  } catch {
    return undefined;
  }
}

export interface EventSink {
  /** Sends one encoded Event; false: it is taken, but wait for onDrain before the next. */
  write(bytes: Buffer): boolean;
  onDrain(cb: () => void): void;
}

export interface WatchLimits {
  /** events queued for a watcher on the tail before it continues on its own consumer */
  queue: number;
  /** on its own consumer: stop reading at this many queued events ... */
  readHigh: number;
  /** ... and read again at this many */
  readLow: number;
  /** join the tail only when at most this many of its kept events are still to be sent */
  joinBacklog: number;
}

export const DEFAULT_WATCH_LIMITS: WatchLimits = { queue: 1024, readHigh: 256, readLow: 64, joinBacklog: 512 };

export interface WatchStats {
  /** events sent from the shared tail */
  fromTail: number;
  /** events sent from the session's own consumers */
  fromOwn: number;
  /** times it joined the tail */
  joins: number;
  /** times it fell behind the tail and continued on its own consumer */
  fellBehind: number;
}

export interface WatchSessionOptions {
  tail: EventTail;
  source: EventSource;
  /** the watcher's filter (hosts, pools, kinds) on the decoded event */
  accept: (event: Event) => boolean;
  /** the one stream subject the filter allows, if any (the own consumers read only that) */
  subject?: string;
  sink: EventSink;
  signal: AbortSignal;
  limits?: Partial<WatchLimits>;
  /** told when the session falls behind (to log it) */
  onFellBehind?: (cursor: bigint, queued: number) => void;
}

export class WatchSession implements TailSubscriber {
  readonly stats: WatchStats = { fromTail: 0, fromOwn: 0, joins: 0, fellBehind: 0 };
  private readonly limits: WatchLimits;
  private cursor = 0n;
  private onTail = false;
  private leftTail: (() => void) | undefined;
  private reader: RawEventReader | undefined;
  // outgoing queue: queue[qHead..] not yet written
  private queue: Buffer[] = [];
  private qHead = 0;
  private blocked = false;
  private drainWaiters: Array<{ below: number; resolve: () => void }> = [];

  constructor(private readonly o: WatchSessionOptions) {
    this.limits = { ...DEFAULT_WATCH_LIMITS, ...o.limits };
  }

  /** The last sequence dealt with. */
  get position(): bigint {
    return this.cursor;
  }

  get queued(): number {
    return this.queue.length - this.qHead;
  }

  /** Sends every matching event from `start` on until the signal aborts. */
  async run(start: bigint): Promise<void> {
    const { signal } = this.o;
    this.cursor = start - 1n;
    const onAbort = (): void => {
      this.o.tail.detach(this);
      this.onTail = false;
      void this.reader?.close().catch(() => undefined);
      this.leftTail?.();
      for (const w of this.drainWaiters.splice(0)) w.resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted) {
        if (!this.join(this.cursor)) {
          await this.readOwn();
          if (!this.onTail) continue;
        }
        await new Promise<void>((resolve) => {
          this.leftTail = resolve;
          if (!this.onTail || signal.aborted) resolve();
        });
        this.leftTail = undefined;
        // fell behind (or the tail stopped): let the queue drain, then read on our own
        await this.queueBelow(this.limits.readLow);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      onAbort();
    }
  }

  // TailSubscriber
  offer(entry: TailEntry): void {
    if (!this.onTail || entry.seq <= this.cursor) return;
    this.cursor = entry.seq;
    if (!entry.event || !this.o.accept(entry.event)) return;
    this.stats.fromTail++;
    this.send(entry.bytes);
    if (this.queued > this.limits.queue) {
      this.o.tail.detach(this);
      this.onTail = false;
      this.stats.fellBehind++;
      this.o.onFellBehind?.(this.cursor, this.queued);
      this.leftTail?.();
    }
  }

  tailEnded(): void {
    if (!this.onTail) return;
    this.onTail = false;
    this.leftTail?.();
  }

  /** Joins the tail after `cursor` if it holds every event after it. */
  private join(cursor: bigint): boolean {
    if (this.o.signal.aborted || this.o.tail.ended) return false;
    if (cursor > this.cursor) this.cursor = cursor;
    this.onTail = true;
    if (this.o.tail.attach(this, this.cursor, this.limits.joinBacklog)) {
      this.stats.joins++;
      return true;
    }
    this.onTail = false;
    return false;
  }

  /**
   * Reads with its own consumer from cursor + 1 until it joins the tail (returns with
   * onTail set) or the call ends. Throws what the consumer throws.
   */
  private async readOwn(): Promise<void> {
    const { source, subject, accept, signal, tail } = this.o;
    // where the tail is, then the newest event on our subject: nothing on it lies in (M, B]
    const target = async (): Promise<{ b: bigint; m: bigint }> => {
      const b = tail.ended ? 0n : tail.last;
      const m = await source.lastSequence(subject);
      return { b, m };
    };
    let t = await target();
    if (signal.aborted) return;
    if (t.m <= this.cursor && this.join(t.b)) return;
    const reader = await source.read(this.cursor + 1n, subject);
    this.reader = reader;
    try {
      if (signal.aborted) return;
      for await (const raw of reader) {
        if (signal.aborted) return;
        if (raw.seq > this.cursor) {
          this.cursor = raw.seq;
          const event = decodeOrUndefined(raw.data);
          if (event && accept(event)) {
            this.stats.fromOwn++;
            this.send(encodeWithSequence(raw.data, raw.seq));
            if (this.queued >= this.limits.readHigh) await this.queueBelow(this.limits.readLow);
            if (signal.aborted) return;
          }
        }
        if (this.cursor >= t.m && !tail.ended) {
          if (this.join(t.b)) return;
          // the tail moved on meanwhile (or too much is to be sent at once): look again
          t = await target();
          if (signal.aborted) return;
          if (t.m <= this.cursor && this.join(t.b)) return;
        }
      }
    } finally {
      this.reader = undefined;
      await reader.close().catch(() => undefined);
    }
    if (!signal.aborted) throw new UnavailableError('the event stream reader ended (NATS connection closed?); watch again after the last sequence you received');
  }

  private send(bytes: Buffer): void {
    if (!this.blocked && this.queued === 0) {
      if (!this.o.sink.write(bytes)) this.block();
      return;
    }
    this.queue.push(bytes);
  }

  private block(): void {
    this.blocked = true;
    this.o.sink.onDrain(() => {
      this.blocked = false;
      this.flush();
    });
  }

  private flush(): void {
    while (!this.blocked && this.qHead < this.queue.length) {
      const bytes = this.queue[this.qHead]!;
      this.queue[this.qHead++] = undefined as unknown as Buffer;
      if (!this.o.sink.write(bytes)) this.block();
    }
    if (this.qHead === this.queue.length) {
      this.queue = [];
      this.qHead = 0;
    } else if (this.qHead > 1024 && this.qHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.qHead);
      this.qHead = 0;
    }
    if (this.drainWaiters.length) {
      const queued = this.queued;
      this.drainWaiters = this.drainWaiters.filter((w) => {
        if (queued > w.below) return true;
        w.resolve();
        return false;
      });
    }
  }

  private queueBelow(below: number): Promise<void> {
    if (this.queued <= below || this.o.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push({ below, resolve }));
  }
}
