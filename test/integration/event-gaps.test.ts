// Events removed by retention before a coordinator read them (real nats-server, two
// coordinators, agent a). A coordinator paused (SIGSTOP: a long GC pause, a frozen VM) while
// the stream kept taking events finds, once it runs again, that the stream no longer holds the
// events after the last one it read. Its cache must not go on without their changes: it asks
// every agent for a full sync, and its view is the hosts' again. A filtered WatchEvents replay
// whose consumer has events removed under it ends at the gap, with nothing after it.
import { expect } from 'chai';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { status, type ServiceError } from '@grpc/grpc-js';
import { EVENT_STREAM } from '../../libs/bus/subjects.js';
import { connectClient, promiseApi, registerCleanup, startCoordinator, useStack, useTempDir, waitFor } from '../support/index.js';
import { Event, EventKind } from '../../libs/proto/cistern/v1/storage.js';
import { createVolume, startDirPool } from './reliability-helpers.js';

const RETAINED = '25';

/**
 * `count` progress events of host a, published as an agent would, on the pools given in turn
 * (`pools[i % pools.length]`), each batch stored before the next.
 */
async function publishProgress(natsUrl: string, pools: string[], count: number): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  try {
    const js = jetstream(nc);
    const data = pools.map((pool) =>
      Event.encode(Event.fromPartial({ kind: EventKind.OPERATION_PROGRESS, host: 'a', pool, volume: 'x', progress: { operation: 'clone', done: 1n, total: 2n } })).finish(),
    );
    for (let i = 0; i < count; i += 200) {
      await Promise.all(
        Array.from({ length: Math.min(200, count - i) }, (_, j) => js.publish(`cistern.events.a.${pools[(i + j) % pools.length]}`, data[(i + j) % pools.length])),
      );
    }
  } finally {
    await nc.close();
  }
}

describe(`events removed before the coordinator read them (--event-max-events ${RETAINED})`, function () {
  this.timeout(120_000);
  // heartbeats far apart: the pause below is no host's silence, and no host's return repairs the view
  const ctx = useStack({ hosts: ['a'], coordinatorArgs: ['--event-max-events', RETAINED], agentArgs: ['--heartbeat-ms', '5000'] });
  const scratch = useTempDir('cistern-event-gaps-it-');

  it('a coordinator paused while retention removed events it had not read asks the fleet for full syncs: its view has their changes', async () => {
    const pool = 'hosts/a/pools/gap';
    await startDirPool(ctx.stack, 'a', 'gap', join(scratch.path, 'gap'));
    await createVolume(ctx.stack, pool, 'keep.img', '4096');
    await createVolume(ctx.stack, pool, 'doomed.img', '4096');

    const paused = await startCoordinator({ natsUrl: ctx.stack.natsUrl, args: ['--event-max-events', RETAINED] });
    const client = connectClient(paused.address);
    const done = registerCleanup('paused coordinator', async () => {
      paused.process.signal('SIGCONT');
      client.close();
      await paused.stop();
    });
    try {
      const api = promiseApi(client);
      const names = async (): Promise<string[]> => (await api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' })).volumes.map((v) => v.definition?.name ?? '');
      expect(await names()).to.deep.equal(['doomed.img', 'keep.img']);

      paused.process.signal('SIGSTOP');
      // more events than its reader had asked for before it stopped, then the change, then
      // enough events for retention to remove that change's event before it can be read
      await publishProgress(ctx.stack.natsUrl, ['gap'], 1_000);
      await ctx.stack.api.deleteVolume({ name: `${pool}/volumes/doomed.img`, requestId: '' });
      await publishProgress(ctx.stack.natsUrl, ['gap'], 100);
      paused.process.signal('SIGCONT');

      await waitFor('the paused coordinator to see doomed.img gone', async () => !(await names()).includes('doomed.img'), {
        timeoutMs: 30_000,
        context: () => paused.process.logTail(),
      });
      expect(await names()).to.deep.equal(['keep.img']);
      expect(paused.process.logs()).to.contain('events were removed from the stream before this coordinator read them');
    } finally {
      await done();
    }
  });

  it('a filtered replay whose events retention removed before its consumer read them ends with OUT_OF_RANGE at the gap, sending nothing after it', async () => {
    const nc = await connect({ servers: ctx.stack.natsUrl });
    const closeNats = registerCleanup('event gaps test NATS connection', () => nc.close());
    const jsm = await jetstreamManager(nc);
    const { config } = await jsm.streams.info(EVENT_STREAM);
    // room for a long replay for a while: events of pools p and q of host a in turn
    await jsm.streams.update(EVENT_STREAM, { ...config, max_msgs: -1 });
    const restore = registerCleanup('event stream limits', () => jsm.streams.update(EVENT_STREAM, config).then(() => undefined));
    const received: bigint[] = [];
    let failure: ServiceError | undefined;
    let ended = false;
    try {
      const start = (await jsm.streams.info(EVENT_STREAM)).state.last_seq;
      const total = 40_000;
      await publishProgress(ctx.stack.natsUrl, ['p', 'q'], total);
      const call = ctx.stack.client.watchEvents({ afterSequence: BigInt(start), hosts: [], pools: ['hosts/a/pools/p'], kinds: [], fromStart: false });
      // once the replay is under way, the client stops reading: HTTP/2 flow control holds the
      // replay back, most of its events not read from the stream yet
      call.on('data', (e: Event) => {
        received.push(e.sequence);
        if (received.length === 1_000) call.pause();
      });
      call.on('error', (e: ServiceError) => (failure = e));
      // (the error is emitted at once; 'end' comes after the events the client still held)
      call.on('end', () => (ended = true));
      await waitFor('the replay to be under way', () => received.length >= 1_000 || failure, { timeoutMs: 60_000 });
      // retention comes back: it removes every event but the newest 25, most of them not read yet
      await restore();
      call.resume();
      await waitFor('the watcher to end or reach the newest event', () => (failure && ended) || received.length >= total / 2, {
        timeoutMs: 60_000,
        context: () => `received ${received.length}: ${String(received[0])}..${String(received.at(-1))}\n${ctx.stack.coordinator.process.logTail(30)}`,
      });
      call.cancel();
    } finally {
      await restore();
      await closeNats();
    }
    const got = `got ${received.length} events, ${String(received[0])}..${String(received.at(-1))}`;
    expect(failure?.code, got).to.equal(status.OUT_OF_RANGE);
    const after = BigInt(String(failure!.metadata.get('x-cistern-aftersequence')[0]));
    // every event of p up to the gap (every other sequence), and none after it
    expect(received.every((seq, i) => i === 0 || seq === received[i - 1]! + 2n), got).to.equal(true);
    expect(received.every((seq) => seq <= after), `${got}: sent past the gap after ${after}`).to.equal(true);
  });
});
