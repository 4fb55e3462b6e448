// The event stream's retention limits against a real nats-server: a coordinator applies its
// own (the defaults for those not given), so the last coordinator started decides, as
// docs/events.md says; an agent leaves them alone; an operator's storage choice is kept.
import { expect } from 'chai';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { DEFAULT_EVENT_MAX_AGE_SECONDS, DEFAULT_EVENT_MAX_BYTES, ensureEventStream } from '../../libs/bus/events.js';
import { EVENT_STREAM } from '../../libs/bus/subjects.js';
import { startNats, type NatsServer } from '../support/nats.js';

describe('event stream retention (real nats-server)', function () {
  this.timeout(30_000);
  let nats: NatsServer;
  let nc: NatsConnection;

  before(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
  });
  after(async () => {
    await nc?.close();
    await nats?.stop();
  });

  const limits = async () => {
    const { config } = await (await jetstreamManager(nc)).streams.info(EVENT_STREAM);
    return { maxAgeSeconds: config.max_age / 1e9, maxBytes: config.max_bytes, maxMessages: config.max_msgs, storage: config.storage };
  };

  it('a coordinator started without retention settings puts back the defaults an earlier one changed; an agent changes nothing', async () => {
    await ensureEventStream(nc, { storage: 'memory' });
    await ensureEventStream(nc, { maxMessages: 300, maxBytes: 1 << 20 }, 'apply');
    expect(await limits()).to.deep.equal({ maxAgeSeconds: DEFAULT_EVENT_MAX_AGE_SECONDS, maxBytes: 1 << 20, maxMessages: 300, storage: StorageType.Memory });
    // an agent's call at its start
    await ensureEventStream(nc);
    expect((await limits()).maxMessages).to.equal(300);
    // a coordinator without --event-max-* flags
    await ensureEventStream(nc, {}, 'apply');
    expect(await limits()).to.deep.equal({ maxAgeSeconds: DEFAULT_EVENT_MAX_AGE_SECONDS, maxBytes: DEFAULT_EVENT_MAX_BYTES, maxMessages: -1, storage: StorageType.Memory });
  });
});
