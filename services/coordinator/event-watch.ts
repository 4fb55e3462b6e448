// One WatchEvents call: it follows the shared tail (event-tail.ts) when it can, and reads the
// stream with its own consumer when it must: a replay (after_sequence, from_start) until it
// has caught up, or after it fell so far behind that the tail no longer holds the next event
// it has to look at. Its cursor is the last sequence it has dealt with (every matching event
// up to it is sent), so each switch, in either direction, continues at cursor + 1: no gap,
// no duplicate.
//
// Catching up with a filtered consumer (one subject): the consumer only sees that subject, so
// its last delivered sequence says nothing about the events in between. Before deciding, the
// session reads the tail's position B, then asks the stream for the newest sequence M on the
// subject: nothing on the subject lies in (M, B]. Once the consumer has delivered M, the
// session has everything up to max(M, B) and joins the tail there.
//
// Retention: a consumer asked to start at a sequence the stream no longer holds starts at its
// oldest event, and one that falls behind the stream's limits skips what they removed, both
// without a word; the shared tail's reader too, and its ring then has a hole. So before the
// session sends an event that does not follow its cursor, it makes sure nothing was removed in
// between: on its own consumer, that the stream still held the sequence after the cursor once
// the event had arrived (then the consumer passed every event in between while it was stored;
// retained-batches.ts checks a batch of them at a time, before any is sent); on the tail, which holds
// every sequence it read, that the next entry is the next sequence. If not, the call ends with
// OUT_OF_RANGE after the last event sent, as a call started with that cursor would, instead of
// a silent gap.
import { UnavailableError } from '../../libs/errors/errors.js';
import { Event } from '../../libs/proto/cistern/v1/storage.js';
import { eventTrusted, type EventSource, type RawEventReader } from './event-log.js';
import { encodeWithSequence, type EventHeader, type EventTail, type TailSubscriber } from './event-tail.js';
import { retainedBatches, retentionGap } from './retained-batches.js';

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
  accept: (event: EventHeader) => boolean;
  /** the one stream subject the filter allows, if any (the own consumers read only that) */
  subject?: string;
  sink: EventSink;
  signal: AbortSignal;
  /** told when the session falls behind the tail (to log it) */
  onFellBehind?: (cursor: bigint, tailLast: bigint) => void;
}

export class WatchSession implements TailSubscriber {
  readonly stats: WatchStats = { fromTail: 0, fromOwn: 0, joins: 0, fellBehind: 0 };
  private cursor = 0n;
  private onTail = false;
  /** on the tail: position of the next event to look at */
  private next = 0;
  private leftTail: (() => void) | undefined;
  private reader: RawEventReader | undefined;
  /** why the call ends (events after the cursor were removed before they were sent) */
  private failure: Error | undefined;
  /** a write returned false: nothing more until the sink drains */
  private blocked = false;
  private drained: (() => void) | undefined;

  constructor(private readonly o: WatchSessionOptions) {}

  /** The last sequence dealt with. */
  get position(): bigint {
    return this.cursor;
  }

  /** The sequence after the cursor: the first a stream has is 1 (a cursor of 0 or less is its start). */
  private get nextSequence(): bigint {
    return this.cursor < 1n ? 1n : this.cursor + 1n;
  }

  /** Sends every matching event from `start` on until the signal aborts. */
  async run(start: bigint): Promise<void> {
    const { signal } = this.o;
    this.cursor = start - 1n;
    const onAbort = (): void => {
      this.leave();
      void this.reader?.close().catch(() => undefined);
      this.drained?.();
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
        if (this.failure) throw this.failure;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      onAbort();
    }
  }

  // TailSubscriber: send what the ring holds from our position on, until the sink pushes back
  advance(): void {
    const { tail, accept, sink } = this.o;
    while (this.onTail && !this.blocked && this.next < tail.end) {
      if (this.next < tail.start) {
        // the ring dropped events we have not looked at: read them on our own
        this.stats.fellBehind++;
        this.o.onFellBehind?.(this.cursor, tail.last);
        this.leave();
        return;
      }
      const entry = tail.at(this.next);
      if (entry.seq > this.nextSequence) {
        // the tail holds every sequence it read: retention removed these before it could
        this.failure = retentionGap(this.nextSequence - 1n, entry.seq);
        this.leave();
        return;
      }
      this.next++;
      if (entry.seq <= this.cursor) continue;
      this.cursor = entry.seq;
      if (!entry.event || !accept(entry.event)) continue;
      this.stats.fromTail++;
      if (!sink.write(entry.bytes)) this.block();
    }
  }

  tailEnded(): void {
    this.leave();
  }

  private leave(): void {
    this.o.tail.detach(this);
    if (!this.onTail) return;
    this.onTail = false;
    this.leftTail?.();
  }

  private block(): void {
    this.blocked = true;
    this.o.sink.onDrain(() => {
      this.blocked = false;
      const resolve = this.drained;
      this.drained = undefined;
      resolve?.();
      this.advance();
    });
  }

  /** Joins the tail after `cursor` if it holds every event after it. */
  private join(cursor: bigint): boolean {
    if (this.o.signal.aborted || this.o.tail.ended) return false;
    if (cursor > this.cursor) this.cursor = cursor;
    const pos = this.o.tail.attach(this, this.cursor);
    if (pos === undefined) return false;
    this.stats.joins++;
    this.onTail = true;
    this.next = pos;
    this.advance();
    return true;
  }

  private untilDrained(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.drained = resolve;
      if (!this.blocked || this.o.signal.aborted) resolve();
    });
  }

  private async write(bytes: Buffer): Promise<void> {
    if (this.blocked) await this.untilDrained();
    if (this.o.signal.aborted) return;
    if (!this.o.sink.write(bytes)) {
      this.block();
      await this.untilDrained();
    }
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
      // every event comes checked: none past events retention removed before the consumer got there
      for await (const batch of retainedBatches(reader, { after: this.cursor, bounds: () => source.bounds(), signal })) {
        for (const raw of batch) {
          if (signal.aborted) return;
          if (raw.seq <= this.cursor) continue;
          this.cursor = raw.seq;
          const event = decodeOrUndefined(raw.data);
          if (event && eventTrusted(raw.subject, event) && accept(event)) {
            this.stats.fromOwn++;
            await this.write(encodeWithSequence(raw.data, raw.seq));
            if (signal.aborted) return;
          }
          if (this.cursor >= t.m && !tail.ended) {
            if (this.join(t.b)) return;
            // the tail moved on meanwhile: look again
            t = await target();
            if (signal.aborted) return;
            if (t.m <= this.cursor && this.join(t.b)) return;
          }
        }
      }
    } finally {
      this.reader = undefined;
      await reader.close().catch(() => undefined);
    }
    if (!signal.aborted) throw new UnavailableError('the event stream reader ended (NATS connection closed?); watch again after the last sequence you received');
  }
}
