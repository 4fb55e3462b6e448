// Events removed by retention before a coordinator read them (real nats-server, two
// coordinators, agent a). A coordinator paused (SIGSTOP: a long GC pause, a frozen VM) while
// the stream kept taking events finds, once it runs again, that the stream no longer holds the
// events after the last one it read. Its cache must not go on without their changes: it asks
// every agent for a full sync, and its view is the hosts' again.
import { expect } from 'chai';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { connectClient, promiseApi, registerCleanup, startCoordinator, useStack, useTempDir, waitFor } from '../support/index.js';
import { Event, EventKind } from '../../libs/proto/cistern/v1/storage.js';
import { createVolume, startDirPool } from './reliability-helpers.js';

const RETAINED = '25';

/** `count` progress events of host a's pool `pool`, published as an agent would, each stored before the next batch. */
async function publishProgress(natsUrl: string, pool: string, count: number): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  try {
    const js = jetstream(nc);
    const data = Event.encode(
      Event.fromPartial({ kind: EventKind.OPERATION_PROGRESS, host: 'a', pool, volume: 'x', progress: { operation: 'clone', done: 1n, total: 2n } }),
    ).finish();
    for (let i = 0; i < count; i += 200) {
      await Promise.all(Array.from({ length: Math.min(200, count - i) }, () => js.publish(`cistern.events.a.${pool}`, data)));
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
      await publishProgress(ctx.stack.natsUrl, 'gap', 1_000);
      await ctx.stack.api.deleteVolume({ name: `${pool}/volumes/doomed.img`, requestId: '' });
      await publishProgress(ctx.stack.natsUrl, 'gap', 100);
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
});
