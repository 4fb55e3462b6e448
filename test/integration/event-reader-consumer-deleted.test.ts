// An event stream reader whose consumer an operator deletes (`nats consumer rm`, or the
// JetStream API as here) under it. The server says so at once (409 Consumer Deleted), but the
// client library recreates an ordered consumer only after two missed idle heartbeats (~45 s),
// and a recreated one may pull nothing more: the coordinator's cache, the shared tail and every
// watcher would stand still. The reader opens another consumer from its next sequence at once,
// as after a reconnect, and says so.
import { expect } from 'chai';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { connectBus } from '../../libs/bus/connect.js';
import { ensureEventStream, EventPublisher } from '../../libs/bus/events.js';
import { EVENT_STREAM } from '../../libs/bus/subjects.js';
import { readRawEvents } from '../../services/coordinator/event-log.js';
import { startNats, waitFor, type NatsServer } from '../support/index.js';
import { Event, EventKind } from '../../libs/proto/cistern/v1/storage.js';

/** Well below the library's own recovery (two missed 15 s heartbeats, then a pull of what is left). */
const BOUND_MS = 15_000;

describe('an event stream reader whose consumer is deleted (real nats-server)', function () {
  this.timeout(60_000);
  let nats: NatsServer;
  let nc: NatsConnection;
  let publisher: EventPublisher;
  let done = 0;

  before(async () => {
    nats = await startNats();
    nc = await connectBus({ servers: nats.url, name: 'event-reader-consumer-deleted-test' });
    await ensureEventStream(nc);
    publisher = new EventPublisher(nc);
  });
  after(async () => {
    await nc?.close();
    await nats?.stop();
  });

  async function publish(n: number): Promise<bigint> {
    for (let i = 0; i < n; i++) {
      publisher.publish(Event.fromPartial({ kind: EventKind.OPERATION_PROGRESS, host: 'r', pool: 'p', volume: 'v', progress: { operation: 'x', done: BigInt(++done), total: 1n << 40n } }));
    }
    return publisher.flush();
  }

  it('reads on from its next sequence on a consumer of its own, with no gap and no duplicate, and says why', async () => {
    const first = (await publish(5)) + 1n;
    const lines: Array<{ msg: string; fields: Record<string, unknown> }> = [];
    const log = {
      info: (msg: string, fields?: Record<string, unknown>) => lines.push({ msg, fields: fields ?? {} }),
      warn: (msg: string, fields?: Record<string, unknown>) => lines.push({ msg, fields: fields ?? {} }),
    };
    const reader = await readRawEvents(nc, first, { log, reader: 'cache' });
    const seen: bigint[] = [];
    const reading = (async () => {
      for await (const raw of reader) seen.push(raw.seq);
    })();
    const before = await publish(10);
    await waitFor('the reader to catch up', () => seen.includes(before));

    const jsm = await jetstreamManager(nc);
    const consumers = await jsm.consumers.list(EVENT_STREAM).next();
    expect(consumers, 'the reader has one consumer').to.have.length(1);
    await jsm.consumers.delete(EVENT_STREAM, consumers[0]!.name);

    // more than one pull's worth (100)
    const last = await publish(250);
    await waitFor('every event after the deletion', () => seen.includes(last), {
      timeoutMs: BOUND_MS,
      context: () => `${seen.length} read, up to ${seen[seen.length - 1]}; waiting for ${last}`,
    });
    await reader.close();
    await reading;

    const expected: bigint[] = [];
    for (let s = first; s <= last; s++) expected.push(s);
    expect(seen).to.deep.equal(expected);
    const restarts = lines.filter((l) => l.msg === 'event stream reader restarted');
    expect(restarts).to.have.length(1);
    expect(restarts[0]!.fields).to.include({ reader: 'cache', why: 'its consumer was deleted' });
  });
});
