// A refresh that fails while an upload streams into its pool (real nats-server, agent a). The
// refresh of a pool whose directory cannot be read stops the pool, as libvirt's; under an
// upload that stop left the upload to finish in a pool the agent no longer ran: its
// VOLUME_UPLOADED (pool RUNNING) came after the POOL_STOPPED, the coordinator showed the
// transient pool running again while the agent had forgotten it, and a StartPool was refused as
// 'already active'. The stop is refused as a StopPool is, and the refresh says so.
import { expect } from 'chai';
import { status, type ServiceError } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { useStack, useTempDir, waitFor } from '../support/index.js';
import { EventKind, PoolState, type UploadVolumeResponse } from '../../libs/proto/cistern/v1/storage.js';
import { createVolume, expectCode, startDirPool, watch, kindName } from './reliability-helpers.js';

const POOL = 'hosts/a/pools/moved';
const VOLUME = `${POOL}/volumes/v`;
const MiB = 1024 * 1024;

describe('a pool refresh that fails while an upload runs (real processes)', function () {
  this.timeout(60_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-refresh-busy-it-');

  it('fails naming the upload, and the pool runs on: the upload ends in it, no POOL_STOPPED', async () => {
    const path = join(scratch.path, 'moved');
    await startDirPool(ctx.stack, 'a', 'moved', path);
    await createVolume(ctx.stack, POOL, 'v', String(4 * MiB));
    const w = watch(ctx.stack.client, { pools: ['moved'] });
    await w.ready;
    const payload = randomBytes(2 * MiB);
    let outcome: { err: ServiceError | null; res?: UploadVolumeResponse } | undefined;
    const call = ctx.stack.client.uploadVolume((err, res) => (outcome = { err, res }));
    call.write({ part: { $case: 'header', value: { name: VOLUME, offset: 0n, length: 0n, sparse: false, requestId: 'busy-up' } } });
    call.write({ part: { $case: 'data', value: payload.subarray(0, MiB) } });
    await waitFor('the upload to write', () => w.events.some((e) => e.requestId === 'busy-up' && e.kind === EventKind.OPERATION_PROGRESS));

    // the pool's directory cannot be read for a moment (moved away by hand, then back)
    renameSync(path, `${path}.away`);
    await expectCode(
      ctx.stack.api.refreshPool({ name: POOL, requestId: '' }),
      status.NOT_FOUND,
      /cannot read pool directory .*moved.*; storage pool 'moved' was not stopped: it has operations in progress: upload of volume 'v'/,
    );
    renameSync(`${path}.away`, path);
    expect(PoolState[(await ctx.stack.api.getPool({ name: POOL })).state]).to.equal('POOL_STATE_RUNNING');

    call.write({ part: { $case: 'data', value: payload.subarray(MiB) } });
    call.end();
    await waitFor('the upload to end', () => outcome !== undefined);
    expect(outcome!.err).to.equal(null);
    expect(outcome!.res!.bytesWritten).to.equal(BigInt(2 * MiB));
    expect(readFileSync(join(path, 'v')).subarray(0, 2 * MiB).equals(payload)).to.equal(true);
    // the pool still takes work (the agent runs it, not only the coordinator's view)
    await ctx.stack.api.refreshPool({ name: POOL, requestId: '' });
    await waitFor('the refresh after it', () => w.events.filter((e) => e.kind === EventKind.POOL_REFRESHED).length >= 2);
    w.cancel();
    const kinds = w.events.filter((e) => e.kind !== EventKind.OPERATION_PROGRESS).map(kindName);
    expect(kinds).to.not.include('POOL_STOPPED');
    expect(kinds).to.include('VOLUME_UPLOADED');
    await ctx.stack.api.stopPool({ name: POOL, requestId: '' });
  });
});
