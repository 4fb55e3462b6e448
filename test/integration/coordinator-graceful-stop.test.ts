// A coordinator stopped gracefully (SIGTERM) while a client's upload has not finished sending:
// past the shutdown's grace the call is answered UNAVAILABLE, the code gRPC retry policies and
// docs/upgrades.md ("clients retry on UNAVAILABLE") go by, not the CANCELLED a forced shutdown
// leaves a client with, which by gRPC convention means the client cancelled and is not retried.
import { expect } from 'chai';
import { status, type ServiceError } from '@grpc/grpc-js';
import { join } from 'node:path';
import { connectClient, promiseApi, startCoordinator, useStack, useTempDir, waitFor } from '../support/index.js';
import { EventKind, type CloneVolumeRequest, type UploadVolumeRequest } from '../../libs/proto/cistern/v1/storage.js';
import { createVolume, fillWithData, grpcCode, startDirPool, watch } from './reliability-helpers.js';

describe('a coordinator stopped gracefully under a call still running', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-graceful-stop-it-');

  it('an upload whose client is still sending is answered UNAVAILABLE saying the coordinator shut down, not CANCELLED', async () => {
    const pool = 'hosts/a/pools/up';
    await startDirPool(ctx.stack, 'a', 'up', join(scratch.path, 'up'));
    await createVolume(ctx.stack, pool, 'u.img', String(64 * 1024 ** 2));
    const other = await startCoordinator({ natsUrl: ctx.stack.natsUrl });
    const client = connectClient(other.address);
    try {
      let sent!: () => void;
      const written = new Promise<void>((resolve) => (sent = resolve));
      const answer = new Promise<ServiceError | undefined>((resolve) => {
        const call = client.uploadVolume((err) => resolve(err ?? undefined));
        call.write({ part: { $case: 'header', value: { name: `${pool}/volumes/u.img`, offset: 0n, length: 0n, sparse: false, requestId: '' } } } satisfies UploadVolumeRequest);
        // the client goes on sending later: its stream stays open through the stop
        call.write({ part: { $case: 'data', value: Buffer.alloc(1024 * 1024, 7) } } satisfies UploadVolumeRequest, () => sent());
      });
      await written;
      await other.stop();
      const err = await answer;
      expect(err, 'the upload cannot have succeeded: its client never ended it').to.not.equal(undefined);
      expect(`${status[err!.code]}: ${err!.details}`).to.match(/^UNAVAILABLE: .*shutting down/);
      expect(other.process.exitStatus).to.deep.equal({ code: 0, signal: null });
    } finally {
      client.close();
      await other.stop();
    }
  });

  it('a clone still running past the grace is answered UNAVAILABLE; the agent finishes it and its retry through the other coordinator returns it', async () => {
    const pool = 'hosts/a/pools/cl';
    const path = join(scratch.path, 'cl');
    await startDirPool(ctx.stack, 'a', 'cl', path);
    await createVolume(ctx.stack, pool, 'src.img', String(1024 ** 3), { allocation: '0' });
    fillWithData(join(path, 'src.img'), 256);
    const request: CloneVolumeRequest = {
      parent: pool,
      source: `${pool}/volumes/src.img`,
      definition: undefined,
      xml: '<volume><name>c.img</name><capacity>0</capacity></volume>',
      preallocMetadata: false,
      reflink: false,
      requestId: 'graceful-stop-clone',
      validate: false,
    };
    const other = await startCoordinator({ natsUrl: ctx.stack.natsUrl });
    const client = connectClient(other.address);
    const agent = ctx.stack.agents.get('a')!.process.pid;
    const w = watch(ctx.stack.client, { pools: [pool], kinds: [EventKind.OPERATION_PROGRESS] });
    try {
      await w.ready;
      const first = grpcCode(promiseApi(client).cloneVolume(request, { deadlineMs: 120_000 }));
      await waitFor('the clone to run', () => w.events.some((e) => e.requestId === request.requestId));
      // the agent is held mid-clone (its heartbeats too: its host stays online well past the
      // coordinator's grace), so the call is still running when the grace is over
      process.kill(agent, 'SIGSTOP');
      try {
        await other.stop();
      } finally {
        process.kill(agent, 'SIGCONT');
      }
      const outcome = await first;
      expect(`${status[outcome.code]}: ${outcome.message}`).to.match(/^UNAVAILABLE: .*shutting down.*same request_id/);
      const retried = await ctx.stack.api.cloneVolume(request, { deadlineMs: 120_000 });
      expect(retried.definition?.name).to.equal('c.img');
      const names = (await ctx.stack.api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' })).volumes.map((v) => v.definition?.name);
      expect(names.sort()).to.deep.equal(['c.img', 'src.img']);
    } finally {
      w.cancel();
      client.close();
      await other.stop();
    }
  });
});
