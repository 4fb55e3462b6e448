// The event stream deleted and made again under a running stack. Its sequences start again
// at 1: a coordinator that kept reading would wait at a sequence the new stream reaches much
// later, and an agent that kept reporting its highest sequence ever would make every call wait
// for it. The coordinator notices (stream-identity.ts) and starts again on the new stream; the
// agent reports the sequence of its last event as stored.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type StreamConfig } from '@nats-io/jetstream';
import { registerCleanup, startNats, useStack, useTempDir, waitFor, type NatsServer } from '../support/index.js';
import { EventKind, Event } from '../../libs/proto/cistern/v1/storage.js';
import { EVENT_STREAM } from '../../libs/bus/subjects.js';
import { ensureEventStream, EventPublisher } from '../../libs/bus/events.js';
import { createVolume, grpcCode, startDirPool, watch } from './reliability-helpers.js';
import { join } from 'node:path';

/** Deletes the stream and adds it again with the same configuration, as an operator would. */
async function recreateStream(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const { config } = await jsm.streams.info(EVENT_STREAM);
  await jsm.streams.delete(EVENT_STREAM);
  await jsm.streams.add(config as StreamConfig).catch((err: Error) => {
    // a coordinator that saw it gone may have made it again first
    if (!/already in use|exists/i.test(err.message)) throw err;
  });
}

describe('event stream deleted and made again', function () {
  this.timeout(120_000);

  describe('an event publisher', () => {
    let nats: NatsServer;
    let nc: NatsConnection;
    before(async () => {
      nats = await startNats();
      nc = await connect({ servers: nats.url });
      registerCleanup('recreated-stream test NATS connection', () => nc.close());
      await ensureEventStream(nc, {}, 'apply');
    });
    after(async () => {
      await nc.close();
      await nats.stop();
    });

    it('reports the sequence of its last event stored, lower on the new stream, and a duplicate\'s first copy never lowers it', async () => {
      const publisher = new EventPublisher(nc);
      const event = (volume: string, revision: bigint) =>
        Event.fromPartial({ kind: EventKind.VOLUME_CREATED, host: 'h', pool: 'p', volume, requestId: `r-${volume}`, principal: 'test', volumeState: { revision } });
      for (let i = 1; i <= 5; i++) publisher.publish(event(`v${i}`, BigInt(i)));
      expect(await publisher.flush()).to.equal(5n);
      // the same change again: JetStream answers with the first copy's sequence (1)
      expect(await publisher.publishNow(event('v1', 1n))).to.equal(5n);
      await recreateStream(nc);
      expect(await publisher.publishNow(event('v6', 6n))).to.equal(1n);
    });
  });

  describe('under a running coordinator', () => {
    const ctx = useStack({ hosts: ['a'], agentArgs: ['--heartbeat-ms', '300'] });
    const scratch = useTempDir('cistern-recreated-');

    it('the coordinator starts again on the new stream: calls, reads and watchers follow it', async () => {
      const { api, client } = ctx.stack;
      const pool = 'hosts/a/pools/again';
      await startDirPool(ctx.stack, 'a', 'again', join(scratch.path, 'again'));
      for (let i = 0; i < 20; i++) await createVolume(ctx.stack, pool, `before-${i}.img`, '4096');
      const nc = await connect({ servers: ctx.stack.natsUrl });
      const closeNats = registerCleanup('recreated-stream test NATS connection', () => nc.close());
      const coordinatorLog = ctx.stack.coordinator.process;
      const watcher = watch(client, { pools: [pool] });
      await watcher.ready;

      await recreateStream(nc);
      await waitFor('the coordinator to start again', () => coordinatorLog.logs().includes('coordinator starting again'), { timeoutMs: 30_000 });
      await waitFor('the watcher of the old stream to end', () => watcher.ended(), { timeoutMs: 30_000 });
      expect(watcher.failure()?.code, watcher.failure()?.message).to.equal(status.UNAVAILABLE);

      // calls go on (a client retries through the restart)
      await waitFor('a create on the new stream', async () => (await grpcCode(createVolume(ctx.stack, pool, 'after.img', '4096'))).code === status.OK, {
        timeoutMs: 30_000,
        intervalMs: 200,
      });
      // a watcher from the start of the new stream sees it, with a sequence of the new stream
      const fresh = watch(client, { pools: [pool], fromStart: true });
      await waitFor('the create on the new stream', () => fresh.events.some((e) => e.volume === 'after.img') || !!fresh.failure(), { timeoutMs: 20_000 });
      fresh.cancel();
      expect(fresh.failure()).to.equal(undefined);
      const created = fresh.events.find((e) => e.volume === 'after.img')!;
      expect(created.sequence <= 5n, `sequence ${created.sequence}`).to.equal(true);
      // the cache follows the new stream: the next change is read from it
      await api.deleteVolume({ name: `${pool}/volumes/before-0.img`, requestId: '' });
      const names = (await api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' })).volumes.map((v) => v.definition?.name);
      expect(names).to.include('after.img');
      expect(names).to.not.include('before-0.img');
      expect(names).to.have.length(20);
      await closeNats();
    });
  });
});
