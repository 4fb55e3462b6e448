// UploadVolume retried with its request id when the coordinator's stored answer is not there:
// the coordinator that ran the first upload died before storing it, or died while the first
// was still sending. The agent, where the data is written, decides: a committed upload is
// answered again without writing the retry's data, and an upload whose sender went away is
// stopped so that the retry writes instead of interleaving with it or waiting on it.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import type { StorageServiceClient, UploadVolumeRequest, UploadVolumeResponse } from '../../libs/proto/cistern/v1/storage.js';
import { EventKind } from '../../libs/proto/cistern/v1/storage.js';
import { REQUESTS_BUCKET } from '../../services/coordinator/request-results.js';
import { connectClient, useStack, useTempDir, waitFor } from '../support/index.js';
import { createVolume, startDirPool, watch } from './reliability-helpers.js';

const POOL = 'hosts/a/pools/upid';

function header(volume: string, requestId: string): UploadVolumeRequest {
  return { part: { $case: 'header', value: { name: `${POOL}/volumes/${volume}`, offset: 0n, length: 0n, sparse: false, requestId } } };
}

/** An upload of `data`, ended. */
function send(client: StorageServiceClient, volume: string, requestId: string, data: Buffer): Promise<UploadVolumeResponse> {
  return new Promise((resolve, reject) => {
    const call = client.uploadVolume((err, res) => (err ? reject(err) : resolve(res!)));
    call.write(header(volume, requestId));
    call.write({ part: { $case: 'data', value: data } });
    call.end();
  });
}

describe('UploadVolume retried with its request id after its coordinator died (real stack)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-upload-ids-');
  let poolPath: string;

  before(async () => {
    poolPath = join(scratch.path, 'upid');
    await startDirPool(ctx.stack, 'a', 'upid', poolPath);
  });

  /** The coordinators' stored answers forgotten: what a coordinator killed before storing leaves. */
  async function forgetStoredAnswers(): Promise<void> {
    const nc = await connect({ servers: ctx.stack.natsUrl });
    try {
      const kv = await new Kvm(nc).open(REQUESTS_BUCKET);
      for await (const key of await kv.keys()) await kv.purge(key);
    } finally {
      await nc.close();
    }
  }

  it('a committed upload whose answer was lost is answered again, the retry writing nothing', async () => {
    await createVolume(ctx.stack, POOL, 'lost.img', '8192');
    const w = watch(ctx.stack.client, { pools: [POOL], kinds: [EventKind.VOLUME_UPLOADED, EventKind.VOLUME_DELETED] });
    await w.ready;
    const first = await send(ctx.stack.client, 'lost.img', 'h107-lost-1', Buffer.alloc(4096, 1));
    await forgetStoredAnswers();
    // the retry's bytes differ: had it been written, the file would show it
    const again = await send(ctx.stack.client, 'lost.img', 'h107-lost-1', Buffer.alloc(4096, 2));
    expect(again.bytesWritten).to.equal(first.bytesWritten);
    expect(again.volume?.definition?.name).to.equal('lost.img');
    expect(readFileSync(join(poolPath, 'lost.img')).subarray(0, 4096).equals(Buffer.alloc(4096, 1))).to.equal(true);
    // the deletion comes after both uploads in the stream: once it is seen, so is any event of the retry
    await ctx.stack.api.deleteVolume({ name: `${POOL}/volumes/lost.img`, requestId: '' });
    await waitFor('the deletion event', () => w.events.some((e) => e.kind === EventKind.VOLUME_DELETED && e.volume === 'lost.img'));
    w.cancel();
    expect(w.events.filter((e) => e.volume === 'lost.img').map((e) => EventKind[e.kind])).to.deep.equal(['VOLUME_UPLOADED', 'VOLUME_DELETED']);
  });

  it('the same request id for another upload header is refused INVALID_ARGUMENT naming request_id, nothing written', async () => {
    await createVolume(ctx.stack, POOL, 'other.img', '8192');
    await send(ctx.stack.client, 'other.img', 'h107-other-1', Buffer.alloc(4096, 1));
    await forgetStoredAnswers();
    const err = await new Promise<Error & { code?: number; details?: string }>((resolve, reject) => {
      const call = ctx.stack.client.uploadVolume((e) => (e ? resolve(e) : reject(new Error('the upload succeeded'))));
      call.write({ part: { $case: 'header', value: { name: `${POOL}/volumes/other.img`, offset: 4096n, length: 0n, sparse: false, requestId: 'h107-other-1' } } });
      call.write({ part: { $case: 'data', value: Buffer.alloc(4096, 2) } });
      call.end();
    });
    expect(err.code).to.equal(3);
    expect(err.details).to.match(/^header\.request_id: /);
    expect(readFileSync(join(poolPath, 'other.img')).subarray(4096, 8192).equals(Buffer.alloc(4096, 0))).to.equal(true);
  });

  it('a retry while the first upload, its coordinator killed, is still open on the agent writes its data, not interleaved', async () => {
    await createVolume(ctx.stack, POOL, 'cut.img', String(256 * 1024));
    const w = watch(ctx.stack.client, { pools: [POOL], kinds: [EventKind.OPERATION_PROGRESS] });
    await w.ready;
    // the first upload sends 64 KiB and never ends: its coordinator is killed under it
    const firstOutcome = new Promise<Error | undefined>((resolve) => {
      const call = ctx.stack.client.uploadVolume((err) => resolve(err ?? undefined));
      call.write(header('cut.img', 'h107-cut-1'));
      call.write({ part: { $case: 'data', value: Buffer.alloc(64 * 1024, 3) } });
    });
    await waitFor('the agent to write the first upload', () => w.events.some((e) => e.requestId === 'h107-cut-1' && e.progress!.done > 0n));
    w.cancel();
    await ctx.stack.restartCoordinator({ kill: true });
    expect(await firstOutcome).to.be.instanceOf(Error);
    const client = connectClient(ctx.stack.address);
    try {
      const again = await send(client, 'cut.img', 'h107-cut-1', Buffer.alloc(128 * 1024, 4));
      expect(again.bytesWritten).to.equal(BigInt(128 * 1024));
      const bytes = readFileSync(join(poolPath, 'cut.img'));
      expect(bytes.subarray(0, 128 * 1024).equals(Buffer.alloc(128 * 1024, 4))).to.equal(true);
    } finally {
      client.close();
    }
  });
});

describe('UploadVolume retried with its request id while the first, on the same coordinator, is cancelled (real stack)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-upload-ids-join-');
  let poolPath: string;

  before(async () => {
    poolPath = join(scratch.path, 'upid');
    await startDirPool(ctx.stack, 'a', 'upid', poolPath);
  });

  it('the retry joined to it does the upload itself, not answered with the first one\'s CANCELLED', async () => {
    await createVolume(ctx.stack, POOL, 'join.img', String(256 * 1024));
    const w = watch(ctx.stack.client, { pools: [POOL], kinds: [EventKind.OPERATION_PROGRESS] });
    await w.ready;
    // the first upload sends 64 KiB and waits
    const first = ctx.stack.client.uploadVolume(() => undefined);
    first.write(header('join.img', 'h107-join-1'));
    first.write({ part: { $case: 'data', value: Buffer.alloc(64 * 1024, 5) } });
    await waitFor('the agent to write the first upload', () => w.events.some((e) => e.requestId === 'h107-join-1' && e.progress!.done > 0n));
    w.cancel();
    // the retry (its client reconnected, say) reaches the coordinator while the first still runs: it joins it
    const retry = send(ctx.stack.client, 'join.img', 'h107-join-1', Buffer.alloc(128 * 1024, 6));
    // it has joined once the coordinator has read its header; it is then waiting, not settled
    await new Promise((r) => setTimeout(r, 500));
    // then the first is cancelled (its client went away)
    first.cancel();
    const again = await retry;
    expect(again.bytesWritten).to.equal(BigInt(128 * 1024));
    expect(readFileSync(join(poolPath, 'join.img')).subarray(0, 128 * 1024).equals(Buffer.alloc(128 * 1024, 6))).to.equal(true);
  });
});
