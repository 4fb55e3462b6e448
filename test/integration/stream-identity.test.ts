// The coordinator's check that the event stream is still the one it reads (stream-identity.ts).
// A stream that was not deleted must not be taken for a new one: every coordinator would start
// again, end its watchers, and log that the stream was made again when it was not.
import { expect } from 'chai';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { registerCleanup, startNats, waitFor } from '../support/index.js';
import { ensureEventStream } from '../../libs/bus/events.js';
import { EVENT_STREAM } from '../../libs/bus/subjects.js';
import { silentLogger } from '../../libs/log/logger.js';
import { watchStreamIdentity } from '../../services/coordinator/stream-identity.js';

describe('event stream identity', function () {
  this.timeout(60_000);

  it('a nats-server restart after a coordinator changed the retention is not a stream made again', async () => {
    const nats = await startNats();
    const connectTo = async (): Promise<NatsConnection> => {
      const nc = await connect({ servers: nats.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
      registerCleanup('stream identity test NATS connection', () => nc.close());
      return nc;
    };
    let nc = await connectTo();
    await ensureEventStream(nc, {}, 'apply');
    const before = await (await jetstreamManager(nc)).streams.info(EVENT_STREAM);
    await nc.close();
    await nats.restart();
    nc = await connectTo();
    // a coordinator started with another retention applies it (coordinator.ts, docs/events.md "Retention")
    await ensureEventStream(nc, { maxAgeSeconds: 3600 }, 'apply');
    const replaced: string[] = [];
    const watch = await watchStreamIdentity(nc, silentLogger, (why) => replaced.push(why), 200);
    registerCleanup('stream identity watch', () => watch.stop());
    await nats.restart();
    const after = await waitFor(
      'the stream after the restart',
      async () => {
        try {
          return await (await jetstreamManager(nc, { timeout: 1000 })).streams.info(EVENT_STREAM);
        } catch {
          return undefined;
        }
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    // the same stream: its messages and sequences are where they were
    expect(after.state.last_seq).to.equal(before.state.last_seq);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    watch.stop();
    expect(replaced, `created was ${before.created}, now ${after.created}`).to.deep.equal([]);
    await nc.close();
    await nats.stop();
  });
});
