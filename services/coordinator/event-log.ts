// Reading the event stream: one ordered consumer per reader, from a given sequence.
// The ordered consumer recreates itself after reconnects and gaps, so readers see every
// stored event once, in order.
import type { NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { decodeEvent } from '../../libs/bus/events.js';
import { EVENT_STREAM, subjects } from '../../libs/bus/subjects.js';
import type { Event } from '../../libs/proto/cistern/v1/storage.js';

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
  /** the subject it was published on: cistern.events.<host>.<pool> */
  subject: string;
}

/**
 * Whether an event names the host whose subject it was published on. An agent's NATS user may
 * publish events only on its own host's subjects; the host inside the message is the agent's
 * word. A mismatch is another host's agent speaking for this one: such events are ignored.
 */
export function eventFromItsHost(subject: string, host: string): boolean {
  const prefix = 'cistern.events.';
  if (!subject.startsWith(prefix)) return false;
  const end = subject.indexOf('.', prefix.length);
  return end > prefix.length && subject.slice(prefix.length, end) === host;
}

export interface RawEventReader extends AsyncIterable<RawEvent> {
  close(): Promise<void>;
}

/** Stored messages from `startSequence` on (live after the stored ones), optionally one subject filter. */
export async function readRawEvents(nc: NatsConnection, startSequence: bigint, filterSubject?: string): Promise<RawEventReader> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(EVENT_STREAM, {
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Number(startSequence < 1n ? 1n : startSequence),
    ...(filterSubject ? { filter_subjects: filterSubject } : {}),
  });
  const messages = await consumer.consume();
  return {
    async close() {
      await messages.close();
    },
    async *[Symbol.asyncIterator]() {
      for await (const m of messages) yield { seq: BigInt(m.seq), data: m.data, subject: m.subject };
    },
  };
}

/**
 * Events from `startSequence` on (live after the stored ones), optionally one subject filter.
 * An event naming another host than its subject's is not yielded: `onForeign` hears of it.
 */
export async function readEvents(
  nc: NatsConnection,
  startSequence: bigint,
  filterSubject?: string,
  onForeign?: (event: Event, subject: string) => void,
): Promise<EventReader> {
  const raw = await readRawEvents(nc, startSequence, filterSubject);
  return {
    close: () => raw.close(),
    async *[Symbol.asyncIterator]() {
      for await (const m of raw) {
        const event = decodeEvent(m.data, m.seq);
        if (eventFromItsHost(m.subject, event.host)) yield event;
        else onForeign?.(event, m.subject);
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

export function natsEventSource(nc: NatsConnection): EventSource {
  return {
    bounds: () => streamBounds(nc),
    read: (start, subject) => readRawEvents(nc, start, subject),
    lastSequence: (subject) => lastEventSequence(nc, subject),
  };
}
