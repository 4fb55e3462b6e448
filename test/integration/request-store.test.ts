// The store of responses to calls with a request id is bounded by size: when it is full the
// oldest responses go (a shorter retry window for them), and calls go on succeeding.
import { expect } from 'chai';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { DiscardPolicy, jetstreamManager } from '@nats-io/jetstream';
import { registerCleanup, useStack, useTempDir } from '../support/index.js';
import { createVolume, startDirPool } from './reliability-helpers.js';

describe('request store (coordinator --request-store-max-bytes 16K)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'], coordinatorArgs: ['--request-store-max-bytes', '16K'] });
  const scratch = useTempDir('cistern-request-store-it-');

  it('drops the oldest responses when full, and calls with request ids keep succeeding', async () => {
    const nc = await connect({ servers: ctx.stack.natsUrl });
    const closeNats = registerCleanup('request store test NATS connection', () => nc.close());
    const jsm = await jetstreamManager(nc);
    const { config } = await jsm.streams.info('KV_cistern-requests');
    expect({ maxBytes: config.max_bytes, discard: config.discard }).to.deep.equal({ maxBytes: 16 * 1024, discard: DiscardPolicy.Old });

    await startDirPool(ctx.stack, 'a', 'p', join(scratch.path, 'p'));
    // ~450 bytes a response: 100 of them are well over 16 KiB
    for (let i = 0; i < 100; i++) await createVolume(ctx.stack, 'hosts/a/pools/p', `v${i}`, '1048576', { requestId: `store-${i}` });
    const { state } = await jsm.streams.info('KV_cistern-requests');
    expect(state.bytes).to.be.at.most(16 * 1024);
    // the newest response still answers its retry; the volume is not created twice
    const retried = await createVolume(ctx.stack, 'hosts/a/pools/p', 'v99', '1048576', { requestId: 'store-99' });
    expect(retried.name).to.equal('hosts/a/pools/p/volumes/v99');
    await closeNats();
  });
});
