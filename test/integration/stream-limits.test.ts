// Upload and download streams against a client that misbehaves: an upload refused at its
// first data message or for an offset past what is written exactly changes nothing (no
// event, no lock left behind); a client idle for the coordinator's --stream-idle-ms ends its
// call with DEADLINE_EXCEEDED naming the client's side, and the agent lets go of the volume.
import { expect } from 'chai';
import { status, type ServiceError } from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventKind, type DownloadVolumeResponse, type UploadVolumeRequest } from '../../libs/proto/cistern/v1/storage.js';
import { useStack, useTempDir, waitFor } from '../support/index.js';
import { createVolume, startDirPool, watch } from './reliability-helpers.js';

const POOL = 'hosts/a/pools/streams';
const VOLUME = `${POOL}/volumes/v`;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('upload and download limits (real nats-server, coordinator with --stream-idle-ms 1000, agent a)', function () {
  this.timeout(60_000);
  const ctx = useStack({ hosts: ['a'], coordinatorArgs: ['--stream-idle-ms', '1000'] });
  const scratch = useTempDir('cistern-streams-it-');

  before(async () => {
    await startDirPool(ctx.stack, 'a', 'streams', join(scratch.path, 'streams'));
    await createVolume(ctx.stack, POOL, 'v', String(64 * 1024 * 1024), { allocation: String(64 * 1024 * 1024) });
  });

  /** An upload of `messages` after the header; resolves with the call's code and message. */
  function uploadOf(header: { offset?: bigint; length?: bigint }, messages: UploadVolumeRequest[], opts: { end?: boolean } = {}) {
    return new Promise<{ code: number; message: string }>((resolve) => {
      const call = ctx.stack.client.uploadVolume((err) => resolve(err ? { code: err.code, message: err.details } : { code: status.OK, message: '' }));
      call.write({ part: { $case: 'header', value: { name: VOLUME, offset: header.offset ?? 0n, length: header.length ?? 0n, sparse: false, requestId: '' } } });
      for (const m of messages) call.write(m);
      if (opts.end !== false) call.end();
    });
  }
  const data = (bytes: number): UploadVolumeRequest => ({ part: { $case: 'data', value: Buffer.alloc(bytes, 1) } });
  const resize = () => ctx.stack.api.resizeVolume({ name: VOLUME, capacity: 64n * 1024n * 1024n, allocate: false, delta: false, shrink: false, requestId: '' });

  it('refuses an upload whose first data message is malformed before the host opens it: no refresh event, the volume free at once', async () => {
    const w = watch(ctx.stack.client, { hosts: ['a'], pools: ['streams'] });
    await w.ready;
    const refused = await uploadOf({}, [{ part: undefined }]);
    expect(refused.code).to.equal(status.INVALID_ARGUMENT);
    expect(refused.message).to.match(/^data: is required in every message after the header/);
    // the retry a client makes at once is not told the volume is busy with the refused upload
    expect(await uploadOf({}, [data(4096)])).to.deep.equal({ code: status.OK, message: '' });
    // the good upload's VOLUME_UPLOADED, then the refresh that follows it (as libvirt refreshes
    // the pool after an upload): a refresh of the refused one would have come before both
    const uploaded = (): number => w.events.findIndex((e) => e.kind === EventKind.VOLUME_UPLOADED);
    await waitFor("the good upload's VOLUME_UPLOADED and its POOL_REFRESHED", () =>
      (uploaded() >= 0 && w.events.slice(uploaded()).some((e) => e.kind === EventKind.POOL_REFRESHED)) || w.failure(),
    );
    w.cancel();
    // one refresh, the good upload's: none for the refused one
    expect(w.events.filter((e) => e.kind === EventKind.POOL_REFRESHED)).to.have.length(1);
  });

  it('refuses an upload data message of 4 MiB + 1 bytes: RESOURCE_EXHAUSTED naming the limit, the volume unchanged and free at once', async () => {
    const file = join(scratch.path, 'streams', 'v');
    const before = sha(readFileSync(file));
    const refused = await uploadOf({}, [{ part: { $case: 'data', value: Buffer.alloc(4 * 1024 * 1024 + 1, 0x5a) } }]);
    expect(refused.code).to.equal(status.RESOURCE_EXHAUSTED);
    expect(refused.message).to.equal('data: an upload data message is 4194305 bytes; at most 4194304 (4 MiB) allowed: send the data in messages of at most 4 MiB');
    await resize();
    expect(sha(readFileSync(file))).to.equal(before);
  });

  it("names the field and the limit of an upload's RESOURCE_EXHAUSTED refusals in their details, as every other limit's", async () => {
    // a client reads a refusal's details (ErrorInfo.metadata, x-cistern-*) the same way for
    // every method: WatchEvents' filter limit and the per-client call limit send `limit`, a
    // field's refusal `field`; the upload's two limits sent neither (or a `length` of their own)
    const details = (header: { length?: bigint }, messages: UploadVolumeRequest[]) =>
      new Promise<ServiceError>((resolve, reject) => {
        const call = ctx.stack.client.uploadVolume((err) => (err ? resolve(err) : reject(new Error('the upload was taken'))));
        call.write({ part: { $case: 'header', value: { name: VOLUME, offset: 0n, length: header.length ?? 0n, sparse: false, requestId: '' } } });
        for (const m of messages) call.write(m);
        call.end();
      });
    const detail = (e: ServiceError, key: string): unknown[] => e.metadata.get(`x-cistern-${key}`);
    const chunk = await details({}, [{ part: { $case: 'data', value: Buffer.alloc(4 * 1024 * 1024 + 1, 0x5a) } }]);
    expect(status[chunk.code]).to.equal('RESOURCE_EXHAUSTED');
    expect(chunk.details).to.match(/^data: an upload data message is 4194305 bytes; at most 4194304 \(4 MiB\) allowed/);
    expect([detail(chunk, 'field'), detail(chunk, 'limit')]).to.deep.equal([['data'], ['4194304']]);
    const longer = await details({ length: 1000n }, [data(800), data(800)]);
    expect(status[longer.code]).to.equal('RESOURCE_EXHAUSTED');
    expect(longer.details).to.match(/^data: the upload sent more than its declared length of 1000 bytes \(header\.length\)/);
    expect([detail(longer, 'field'), detail(longer, 'limit')]).to.deep.equal([['data'], ['1000']]);
    // the first 800 bytes reached the agent: its upload winds down (re-read, refresh) before it
    // lets go of the volume, as after the stalled upload below; not at once, as for a refusal
    // before the host opened the upload
    await waitFor('the volume free after the refused upload', () => resize().then(() => true, () => false));
  });

  it('refuses an upload past 2^53 - 1 bytes, naming header.offset, before the host opens it', async () => {
    const refused = await uploadOf({ offset: 1n << 53n, length: 10n }, [data(10)]);
    expect(refused.code).to.equal(status.INVALID_ARGUMENT);
    expect(refused.message).to.match(/^header\.offset: with the length, the upload would pass 9007199254740991 bytes/);
    await resize();
  });

  it('ends an upload whose client sends no data for the idle time, blaming the client, and the volume is free again', async () => {
    const started = Date.now();
    const stalled = await uploadOf({}, [data(1024)], { end: false });
    expect(stalled.code).to.equal(status.DEADLINE_EXCEEDED);
    expect(stalled.message).to.match(/^the upload sent no data for 1 s; the stream is ended/);
    expect(Date.now() - started).to.be.below(20_000);
    await waitFor('the volume free after the stalled upload', () => resize().then(() => true, () => false));
  });

  it('ends a download whose client takes nothing for the idle time: the agent lets go of the volume', async () => {
    const call = ctx.stack.client.downloadVolume({ name: VOLUME, offset: 0n, length: 0n });
    let failure: ServiceError | undefined;
    let received = 0;
    call.on('error', (e: ServiceError) => (failure = e));
    call.once('data', (m: DownloadVolumeResponse) => {
      received += m.data.length;
      call.pause();
    });
    // while the download runs the volume is busy (a resize is refused); once the coordinator
    // gives up on the idle client it tells the agent to stop, and the volume is free
    await waitFor('the first data of the download', () => received > 0);
    await waitFor('the volume free while the client still does not read', () => resize().then(() => true, () => false), { timeoutMs: 20_000 });
    call.resume();
    call.on('data', (m: DownloadVolumeResponse) => (received += m.data.length));
    await waitFor('the download ended', () => failure !== undefined);
    expect(failure!.code).to.equal(status.DEADLINE_EXCEEDED);
    expect(failure!.details).to.match(/^the client took no data of the download for 1 s; the stream is ended/);
    expect(received).to.be.below(64 * 1024 * 1024);
  });
  it('an upload the client cancels as it opens leaves the volume free: the opened upload is closed, not left to the agent\'s 60 s limit', async () => {
    // the agent answers the opening at once, so the cancel of that call found nothing running
    // there, and the upload it had opened held the volume ("busy: upload in progress")
    for (let round = 0; round < 5; round++) {
      const call = ctx.stack.client.uploadVolume(() => undefined);
      call.on('error', () => undefined);
      call.write({ part: { $case: 'header', value: { name: VOLUME, offset: 0n, length: 0n, sparse: false, requestId: '' } } });
      call.write(data(4096));
      await new Promise((resolve) => setTimeout(resolve, 5 * round));
      call.cancel();
      await waitFor(`the volume free after cancelled upload ${round}`, () => resize().then(() => true, () => false), { timeoutMs: 10_000 });
    }
  });
});
