// A coordinator stopped gracefully (SIGTERM) while a client's upload has not finished sending:
// past the shutdown's grace the call is answered UNAVAILABLE, the code gRPC retry policies and
// docs/upgrades.md ("clients retry on UNAVAILABLE") go by, not the CANCELLED a forced shutdown
// leaves a client with, which by gRPC convention means the client cancelled and is not retried.
import { expect } from 'chai';
import { status, type ServiceError } from '@grpc/grpc-js';
import { join } from 'node:path';
import { connectClient, startCoordinator, useStack, useTempDir } from '../support/index.js';
import type { UploadVolumeRequest } from '../../libs/proto/cistern/v1/storage.js';
import { createVolume, startDirPool } from './reliability-helpers.js';

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
});
