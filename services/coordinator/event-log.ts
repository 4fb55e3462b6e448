// Reading the event stream: one ordered consumer per reader, from a given sequence. The
// ordered consumer recreates itself after gaps; after a disconnect the reader opens another
// from the next sequence it has not yielded (StreamReader). Readers see every stored event
// once, in order.
import type { NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, type Consumer, type ConsumerMessages } from '@nats-io/jetstream';
import { COORDINATOR_ONLY_KINDS, decodeEvent } from '../../libs/bus/events.js';
import { EVENT_STREAM, HOST_EVENTS_TOKEN, nameToken, parseEventSubject, subjects } from '../../libs/bus/subjects.js';
import { EventKind, type Event } from '../../libs/proto/cistern/v1/storage.js';
import type { Logger } from '../../libs/log/logger.js';

export interface StreamBounds {
  /** oldest stored sequence (last + 1 when the stream is empty) */
  first: bigint;
  last: bigint;
}

export async function streamBounds(nc: NatsConnection): Promise<StreamBounds> {
  const info = await (await jetstreamManager(nc)).streams.info(EVENT_STREAM);
  return { first: BigInt(info.state.first_seq), last: BigInt(info.state.last_seq) };
}

export interface EventReader extends AsyncIterable<Event> {
  close(): Promise<void>;
}

/** A stored message of the stream, not decoded: its payload is an Event with sequence 0. */
export interface RawEvent {
  seq: bigint;
  data: Uint8Array;
  /** the subject it was published on: cistern.events.<host>.<pool>.<origin> */
  subject: string;
}

/**
 * Why a stored event is not believed (undefined: it is), said as "an event ...". An agent's NATS
 * user may publish events only on its own host's subjects, and only under the agent origin
 * (cistern.events.H.*.a, scripts/nats-config.mjs); what is inside the message is the agent's
 * word. So an event naming another host than its subject's is another host's agent speaking
 * for this one, one naming another pool than its subject's would be shown to that pool's
 * watchers and not to the others' (or the other way round), and a kind only coordinators make
 * (a host deleted, a pool undefined) under an agent's subject is an agent speaking as a
 * coordinator, under whatever principal it wrote: all are ignored. A four-token subject is an
 * older version's (docs/events.md, "Older streams"): it is taken as before, by its host alone.
 */
export function untrustedEvent(subject: string, event: Pick<Event, 'host' | 'pool' | 'kind'>): string | undefined {
  const at = parseEventSubject(subject);
  if (!at) return 'stored under a subject that is no event subject';
  if (at.host !== event.host) return 'naming another host than its subject';
  // a pool's watchers read its subject, the others every subject: both must see it alike. Not
  // a four-token subject: written with an older encoding (a pool '_host' as itself, '=' for
  // '~'), and a pool's replay reads those on every subject and filters by the event's pool
  // (handlers/events.ts replaySubject), as the unfiltered watchers see them
  if (at.origin !== 'legacy' && at.poolToken !== (event.pool ? nameToken(event.pool) : HOST_EVENTS_TOKEN)) return 'naming another pool than its subject';
  if (at.origin === 'agent' && COORDINATOR_ONLY_KINDS.has(event.kind)) return `of a kind only coordinators publish (${EventKind[event.kind] ?? event.kind}) under an agent's subject`;
  return undefined;
}

/** Whether readers take a stored event (untrustedEvent says why not). */
export const eventTrusted = (subject: string, event: Pick<Event, 'host' | 'pool' | 'kind'>): boolean => untrustedEvent(subject, event) === undefined;

export interface RawEventReader extends AsyncIterable<RawEvent> {
  close(): Promise<void>;
}

export interface ReadOptions {
  /** one stream subject (wildcards allowed) instead of all */
  filterSubject?: string;
  /** where the reader says, once per restart, that it read again and why (silent without) */
  log?: Pick<Logger, 'info' | 'warn'>;
  /** names the reader in those lines */
  reader?: string;
}

/**
 * Disconnects and reconnects of one connection, as its event readers need them: `epoch`
 * moves at each, `up` says whether it is connected. One status listener per connection,
 * however many readers.
 */
class BusLink {
  epoch = 0;
  up = true;
  closed = false;
  readonly listeners = new Set<() => void>();

  constructor(nc: NatsConnection) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') this.up = false;
        else if (s.type === 'reconnect') this.up = true;
        else continue;
        this.epoch++;
        for (const l of [...this.listeners]) l();
      }
      this.closed = true;
      for (const l of [...this.listeners]) l();
    })();
  }
}

const links = new WeakMap<NatsConnection, BusLink>();

function busLink(nc: NatsConnection): BusLink {
  let link = links.get(nc);
  if (!link) {
    link = new BusLink(nc);
    links.set(nc, link);
  }
  return link;
}

/** Waits between attempts to read again after a reconnect (JetStream may not answer yet). */
const RETRY_MS = [100, 250, 500, 1000];

/**
 * One reader of the stream: an ordered consumer from the next sequence it has not yielded.
 *
 * Why it gives its consumer up when the connection drops and opens another once it is back:
 * the consumer's pull dies with the connection (and an ordered consumer, kept in the server's
 * memory, dies with a restarted server). The client library recreates it after a reconnect,
 * but pulls only what its own count of outstanding messages leaves, a count the lost pull
 * still holds: often a handful of messages or none, and the reader then stalls until two idle
 * heartbeats are missed, 25-45 s. Closed before the reconnect, the old consumer takes no part
 * in it; the new one starts at `next`: no gap, no duplicate.
 */
class StreamReader implements RawEventReader {
  private next: bigint;
  private messages: ConsumerMessages | undefined;
  private consumer: Consumer | undefined;
  /** the link's epoch when `messages` was opened: another epoch means its pull may be lost */
  private epoch = 0;
  private closed = false;
  /** why the current consumer was given up; set until another one reads */
  private dropped: string | undefined;
  private wake: (() => void) | undefined;
  private readonly onLink = (): void => {
    if (this.messages && this.epoch !== this.link.epoch) {
      this.dropped ??= this.link.up ? 'NATS reconnected' : 'the connection to NATS dropped';
      // the loop below reads what it already holds, then opens another consumer
      void this.messages.close().catch(() => undefined);
    }
    this.wake?.();
  };

  private constructor(
    private readonly nc: NatsConnection,
    private readonly link: BusLink,
    start: bigint,
    private readonly options: ReadOptions,
  ) {
    this.next = start < 1n ? 1n : start;
  }

  static async open(nc: NatsConnection, start: bigint, options: ReadOptions): Promise<StreamReader> {
    const reader = new StreamReader(nc, busLink(nc), start, options);
    reader.link.listeners.add(reader.onLink);
    try {
      await reader.consume();
    } catch (err) {
      reader.link.listeners.delete(reader.onLink);
      throw err;
    }
    return reader;
  }

  /** Opens an ordered consumer from `next` (throws what JetStream says). */
  private async consume(): Promise<void> {
    const epoch = this.link.epoch;
    const consumer = await jetstream(this.nc).consumers.get(EVENT_STREAM, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Number(this.next),
      ...(this.options.filterSubject ? { filter_subjects: this.options.filterSubject } : {}),
    });
    this.consumer = consumer;
    const messages = await consumer.consume();
    this.messages = messages;
    this.epoch = epoch;
    this.watchDeletion(messages);
    if (this.closed) {
      void this.messages.close().catch(() => undefined);
      void consumer.delete().catch(() => undefined);
    }
    // the connection dropped while it was being opened: its pull may be lost already
    else this.onLink();
  }

  /**
   * The consumer deleted under the reader (an operator's `nats consumer rm`): the server says so
   * at once, but the library recreates an ordered consumer only after two missed idle heartbeats
   * (~45 s), and the one it makes may pull nothing more. Given up at once, as after a reconnect:
   * the loop below opens another from `next`. (Not a deletion this reader made: it closed those
   * messages first.)
   */
  private watchDeletion(messages: ConsumerMessages): void {
    void (async () => {
      for await (const s of messages.status()) {
        if (s.type !== 'consumer_deleted' || this.messages !== messages || this.closed) continue;
        this.dropped ??= 'its consumer was deleted';
        void messages.close().catch(() => undefined);
        this.wake?.();
      }
    })().catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.link.listeners.delete(this.onLink);
    this.wake?.();
    // close() stops the pull at once but settles only when the loop reading it has seen the
    // end, which may be never for a reader nobody pulls any more: the deletion must not wait.
    // Closing only unsubscribes: the consumer would stay on the server for its inactive
    // threshold (5 minutes, the library's, for an ordered consumer), ~100 KB each, and a
    // client that reconnects its watcher in a loop would pile up thousands of them
    const closed = this.messages?.close();
    if (!this.link.closed) void this.consumer?.delete().catch(() => undefined);
    await closed;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<RawEvent> {
    try {
      for (;;) {
        const messages = this.messages;
        if (!messages) return;
        for await (const m of messages) {
          const seq = BigInt(m.seq);
          // a consumer opened after another starts at `next`; nothing yielded comes again
          if (seq < this.next) continue;
          this.next = seq + 1n;
          yield { seq, data: m.data, subject: m.subject };
        }
        this.messages = undefined;
        // ended by close(), by NATS closing, or by the library: done, as before
        if (this.closed || this.dropped === undefined) return;
        if (!(await this.reopen())) return;
      }
    } finally {
      await this.close();
    }
  }

  /** Resolves at the next change of the link, on close(), or after `ms`. */
  private changed(ms?: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    }).finally(() => (this.wake = undefined));
  }

  /** Opens another consumer from `next` once connected; false when closed meanwhile. */
  private async reopen(): Promise<boolean> {
    const { log, reader = 'event reader' } = this.options;
    const why = this.dropped;
    const old = this.consumer;
    const since = Date.now();
    let attempts = 0;
    while (!this.closed && !this.link.closed) {
      if (!this.link.up) {
        await this.changed();
        continue;
      }
      // after a blip the old consumer is still on the server (for its inactive threshold)
      if (attempts === 0) void old?.delete().catch(() => undefined);
      attempts++;
      try {
        await this.consume();
      } catch (err) {
        if (attempts === RETRY_MS.length + 1) log?.warn('event stream reader cannot read again yet; retrying', { reader, why, from: String(this.next), err });
        await this.changed(RETRY_MS[Math.min(attempts, RETRY_MS.length) - 1]);
        continue;
      }
      if (this.closed) return false;
      // the connection dropped again while it was being opened (consume() closed it): again
      if (this.epoch !== this.link.epoch) continue;
      this.dropped = undefined;
      log?.info('event stream reader restarted', { reader, why, from: String(this.next), attempts, ms: Date.now() - since });
      return true;
    }
    return false;
  }
}

/** Stored messages from `startSequence` on (live after the stored ones), optionally one subject filter. */
export function readRawEvents(nc: NatsConnection, startSequence: bigint, options: ReadOptions = {}): Promise<RawEventReader> {
  return StreamReader.open(nc, startSequence, options);
}

/** A stored message the reader does not yield, and why. */
export interface SkippedEvent {
  sequence: bigint;
  subject: string;
  /** the decoded event when its subject does not vouch for it (untrustedEvent); undefined when it is no Event at all */
  event?: Event;
  /** "not an Event: ...", or untrustedEvent's reason */
  why: string;
}

/**
 * Events from `startSequence` on (live after the stored ones), optionally one subject filter.
 * Not yielded, and told to `onSkipped`: an event its subject does not vouch for (another host's,
 * or a coordinator's kind under an agent's subject: untrustedEvent), and a message that is no
 * Event at all. Any agent may store bytes on its own event subjects (and a server reply can be
 * sent there), so one such message must not stop the reader.
 */
export async function readEvents(
  nc: NatsConnection,
  startSequence: bigint,
  options: ReadOptions = {},
  onSkipped?: (skipped: SkippedEvent) => void,
): Promise<EventReader> {
  const raw = await readRawEvents(nc, startSequence, options);
  return {
    close: () => raw.close(),
    async *[Symbol.asyncIterator]() {
      for await (const m of raw) {
        let event: Event;
        try {
          event = decodeEvent(m.data, m.seq);
        } catch (err) {
          onSkipped?.({ sequence: BigInt(m.seq), subject: m.subject, why: `not an Event: ${(err as Error).message}` });
          continue;
        }
        const why = untrustedEvent(m.subject, event);
        if (why === undefined) yield event;
        else onSkipped?.({ sequence: event.sequence, subject: m.subject, event, why });
      }
    },
  };
}

/**
 * The sequence of the newest stored message on `subject` (wildcards allowed), 0 when there
 * is none. Everything on that subject up to the stream's end at the moment of the answer is
 * at or below it.
 */
export async function lastEventSequence(nc: NatsConnection, subject: string = subjects.eventsAll): Promise<bigint> {
  const msg = await (await jetstreamManager(nc)).streams.getMessage(EVENT_STREAM, { last_by_subj: subject });
  return msg ? BigInt(msg.seq) : 0n;
}

/** What the shared tail and the WatchEvents sessions read the stream through (a fake in unit tests). */
export interface EventSource {
  bounds(): Promise<StreamBounds>;
  read(startSequence: bigint, filterSubject?: string): Promise<RawEventReader>;
  /** newest stored sequence on `subject` (all events when absent), 0 when none */
  lastSequence(subject?: string): Promise<bigint>;
}

/** `log` and `reader` say when a reader restarts after a reconnect (see ReadOptions). */
export function natsEventSource(nc: NatsConnection, log?: ReadOptions['log'], reader?: string): EventSource {
  return {
    bounds: () => streamBounds(nc),
    read: (start, subject) => readRawEvents(nc, start, { filterSubject: subject, log, reader }),
    lastSequence: (subject) => lastEventSequence(nc, subject),
  };
}
