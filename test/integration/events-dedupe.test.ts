// JetStream stores an event sent again once (docs/events.md): EventPublisher sends each
// event's dedupe id as Nats-Msg-Id, and the stream's duplicate window drops the repeat. An
// agent's retry, and every coordinator's HOST_ONLINE and reconcile events, rely on it.
import { expect } from 'chai';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { connectBus } from '../../libs/bus/connect.js';
import { ensureEventStream, EventPublisher, namedChangeDedupeId } from '../../libs/bus/events.js';
import { EVENT_STREAM } from '../../libs/bus/subjects.js';
import { Event, EventKind } from '../../libs/proto/cistern/v1/storage.js';
import { startNats, type NatsServer } from '../support/nats.js';

describe('event dedupe in the stream (real nats-server)', function () {
  this.timeout(30_000);
  let nats: NatsServer;
  let nc: NatsConnection;
  const stored = async (): Promise<number> => (await (await jetstreamManager(nc)).streams.info(EVENT_STREAM)).state.messages;

  before(async () => {
    nats = await startNats();
    nc = await connectBus({ servers: nats.url, name: 'test-events-dedupe' });
    await ensureEventStream(nc, { storage: 'memory' });
  });
  after(async () => {
    await nc?.close();
    await nats?.stop();
  });

  const created = (revision: bigint) =>
    Event.fromPartial({ requestId: 'req-1', principal: 'alice', kind: EventKind.VOLUME_CREATED, host: 'h1', pool: 'p', volume: 'v', volumeState: { revision } });

  it('the same change published twice is stored once, at the sequence of the first', async () => {
    const publisher = new EventPublisher(nc);
    const before = await stored();
    const first = await publisher.publishNow(created(9n));
    const again = await publisher.publishNow(created(9n));
    expect(again).to.equal(first);
    expect(await stored()).to.equal(before + 1);
    // another change under the same request id (a new revision) is a new event
    const next = await publisher.publishNow(created(10n));
    expect(next).to.equal(first + 1n);
    expect(await stored()).to.equal(before + 2);
  });

  it("a host coming online, published by two coordinators' publishers, is stored once", async () => {
    const online = Event.fromPartial({ requestId: 'host-online:h1:42:7', kind: EventKind.HOST_ONLINE, host: 'h1' });
    const [one, two] = [new EventPublisher(nc, undefined, namedChangeDedupeId), new EventPublisher(nc, undefined, namedChangeDedupeId)];
    const before = await stored();
    const seq = await one.publishNow(online);
    expect(await two.publishNow(online)).to.equal(seq);
    expect(await stored()).to.equal(before + 1);
  });
});
