// The coordinator's check that the event stream is still the one it reads (stream-identity.ts).
// A stream that was not deleted must not be taken for a new one: every coordinator would start
// again, end its watchers, and log that the stream was made again when it was not.
import { expect } from 'chai';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { registerCleanup, startNats, waitFor } from '../support/index.js';
import { ensureEventStream } from '../../libs/bus/events.js';
import { EVENT_STREAM, subjects } from '../../libs/bus/subjects.js';
import { silentLogger } from '../../libs/log/logger.js';
import { watchStreamIdentity } from '../../services/coordinator/stream-identity.js';

/** `n` messages into the event stream (their content does not matter to the watch). */
async function publishEvents(nc: NatsConnection, n: number): Promise<void> {
  const js = jetstream(nc);
  for (let i = 0; i < n; i++) await js.publish(subjects.agentEvents('h', 'p'), new Uint8Array([i]));
}

/**
 * `nc`, its requests for a stored message first running `before` once `armed()` says so: what
 * happens in the stream between the watch's look at its state and its look at a message.
 */
function delayingMessageLooks(nc: NatsConnection, armed: () => boolean, before: () => Promise<void>): NatsConnection {
  return new Proxy(nc, {
    get(target, prop) {
      if (prop === 'request') {
        return async (subject: string, ...rest: unknown[]) => {
          if (subject.includes('.STREAM.MSG.GET.') && armed()) await before();
          return (target.request as (...a: unknown[]) => unknown)(subject, ...rest);
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A NATS connection that reconnects at once (across nats-server restarts), closed after the test. */
async function reconnectingClient(url: string): Promise<NatsConnection> {
  const nc = await connect({ servers: url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  registerCleanup('stream identity test NATS connection', () => nc.close());
  return nc;
}

/** The stream deleted, made again, and taking more events (10) than the old one held. */
async function recreatePastOldEnd(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(EVENT_STREAM);
  await ensureEventStream(nc, {}, 'apply');
  await publishEvents(nc, 10);
}

/** The watch tells once that the stream was made again. */
async function expectToldOnce(replaced: string[], watch: { stop(): void }): Promise<void> {
  await waitFor('the watch to tell', async () => replaced.length > 0 || undefined, { timeoutMs: 10_000, intervalMs: 50 });
  watch.stop();
  expect(replaced).to.have.length(1);
  expect(replaced[0]).to.match(/made again/);
}

describe('event stream identity', function () {
  this.timeout(60_000);

  it('a stream made again that took more events between two checks than were read of the old one is told', async () => {
    const nats = await startNats();
    const nc = await connect({ servers: nats.url });
    registerCleanup('stream identity test NATS connection', () => nc.close());
    await ensureEventStream(nc, {}, 'apply');
    await publishEvents(nc, 3);
    const replaced: string[] = [];
    const watch = await watchStreamIdentity(nc, silentLogger, (why) => replaced.push(why), { periodMs: 500, readUpTo: () => 3n });
    registerCleanup('stream identity watch', () => watch.stop());
    // deleted, made again and past the old stream's last sequence, all between two checks
    await recreatePastOldEnd(nc);
    await expectToldOnce(replaced, watch);
    await nc.close();
    await nats.stop();
  });

  it('a nats-server restart after a coordinator changed the retention is not a stream made again', async () => {
    const nats = await startNats();
    const connectTo = () => reconnectingClient(nats.url);
    let nc = await connectTo();
    await ensureEventStream(nc, {}, 'apply');
    // messages in it: the one the watch keeps must be found again after the restart
    await publishEvents(nc, 3);
    const before = await (await jetstreamManager(nc)).streams.info(EVENT_STREAM);
    await nc.close();
    await nats.restart();
    nc = await connectTo();
    // a coordinator started with another retention applies it (coordinator.ts, docs/events.md "Retention")
    await ensureEventStream(nc, { maxAgeSeconds: 3600 }, 'apply');
    const replaced: string[] = [];
    const watch = await watchStreamIdentity(nc, silentLogger, (why) => replaced.push(why), { periodMs: 200 });
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

  it('a kept message its limits drop between the look at the stream and the look at the message is not a stream made again', async () => {
    const nats = await startNats();
    const connectTo = () => reconnectingClient(nats.url);
    let nc = await connectTo();
    await ensureEventStream(nc, { maxMessages: 3 }, 'apply');
    await publishEvents(nc, 3);
    await nc.close();
    // updated after a start: the next restart gives the stream another creation time (nats-server 2.9)
    await nats.restart();
    nc = await connectTo();
    await ensureEventStream(nc, { maxMessages: 4 }, 'apply');
    const before = await (await jetstreamManager(nc)).streams.info(EVENT_STREAM);
    let restarted = false;
    let published = false;
    // between the watch's look at the stream and its look at the kept message (seq 3), events push it out
    const watched = delayingMessageLooks(
      nc,
      () => restarted && !published,
      async () => {
        published = true;
        await publishEvents(nc, 4);
      },
    );
    const replaced: string[] = [];
    const watch = await watchStreamIdentity(watched, silentLogger, (why) => replaced.push(why), { periodMs: 200 });
    registerCleanup('stream identity watch', () => watch.stop());
    await nats.restart();
    restarted = true;
    await waitFor('the kept message looked up after the restart', async () => published || undefined, { timeoutMs: 20_000, intervalMs: 50 });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = await (await jetstreamManager(nc)).streams.info(EVENT_STREAM);
    watch.stop();
    expect(after.created, 'the restart gave the stream another creation time').to.not.equal(before.created);
    expect(after.state.first_seq).to.be.greaterThan(3);
    expect(replaced).to.deep.equal([]);
    await nc.close();
    await nats.stop();
  });

  it('a watch whose first look at a message failed keeps one later, and tells a stream made again that took more events', async () => {
    const nats = await startNats();
    const nc = await connect({ servers: nats.url });
    registerCleanup('stream identity test NATS connection', () => nc.close());
    await ensureEventStream(nc, {}, 'apply');
    await publishEvents(nc, 3);
    // the look at the last message when the watch starts fails (a timeout, JetStream busy); the stream then stays quiet
    let failed = false;
    const watched = delayingMessageLooks(
      nc,
      () => !failed,
      async () => {
        failed = true;
        throw new Error('TIMEOUT');
      },
    );
    const replaced: string[] = [];
    const watch = await watchStreamIdentity(watched, silentLogger, (why) => replaced.push(why), { periodMs: 200, readUpTo: () => 3n });
    registerCleanup('stream identity watch', () => watch.stop());
    expect(failed).to.equal(true);
    await new Promise((resolve) => setTimeout(resolve, 700));
    await recreatePastOldEnd(nc);
    await expectToldOnce(replaced, watch);
    await nc.close();
    await nats.stop();
  });
});
