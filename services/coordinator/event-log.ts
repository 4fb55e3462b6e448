// Reading the event stream: one ordered consumer per reader, from a given sequence.
// The ordered consumer recreates itself after reconnects and gaps, so readers see every
// stored event once, in order.
import type { NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { decodeEvent } from '../../libs/bus/events.js';
import { EVENT_STREAM } from '../../libs/bus/subjects.js';
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

/** Events from `startSequence` on (live after the stored ones), optionally one subject filter. */
export async function readEvents(nc: NatsConnection, startSequence: bigint, filterSubject?: string): Promise<EventReader> {
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
      for await (const m of messages) yield decodeEvent(m.data, m.seq);
    },
  };
}
