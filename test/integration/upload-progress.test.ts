// OPERATION_PROGRESS of an upload sent "to the end of the stream" (header length 0), the
// way API clients send a stream of unknown size: at most ~4 per second, and one last event
// with done == total, the bytes written, once the stream has ended (docs/events.md). Its
// total is not known until then: the rest of the volume is only an estimate, which the
// stream may pass (a file volume grows) or not reach.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { EventKind, type Event } from '../../libs/proto/cistern/v1/storage.js';
import { upload, useStack, useTempDir, waitFor } from '../support/index.js';
import { createVolume, startDirPool, watch } from './reliability-helpers.js';

const POOL = 'hosts/a/pools/progress';
const MiB = 1024 * 1024;

describe('progress of an upload to the end of its stream (real nats-server, agent a)', function () {
  this.timeout(60_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-upload-progress-it-');

  before(async () => {
    await startDirPool(ctx.stack, 'a', 'progress', join(scratch.path, 'progress'));
  });

  /** The upload's progress events, in order, once its VOLUME_UPLOADED has arrived; and how long it took. */
  async function progressOf(volume: string, payload: Buffer, length = 0n): Promise<{ progress: Event[]; elapsedMs: number }> {
    const w = watch(ctx.stack.client, { hosts: ['a'], pools: ['progress'] });
    await w.ready;
    const started = Date.now();
    expect(await upload(ctx.stack, `${POOL}/volumes/${volume}`, payload, 0n, length)).to.equal(BigInt(payload.length));
    const elapsedMs = Date.now() - started;
    await waitFor('VOLUME_UPLOADED', () => w.events.some((e) => e.kind === EventKind.VOLUME_UPLOADED && e.volume === volume) || w.failure());
    w.cancel();
    return { progress: w.events.filter((e) => e.kind === EventKind.OPERATION_PROGRESS && e.volume === volume), elapsedMs };
  }
  const finished = (e: Event): boolean => e.progress!.total > 0n && e.progress!.done === e.progress!.total;

  it('past the end of the volume: throttled, and only the last event says done == total', async () => {
    await createVolume(ctx.stack, POOL, 'big', String(MiB));
    const { progress, elapsedMs } = await progressOf('big', randomBytes(16 * MiB));
    expect(progress.length, 'progress events').to.be.at.most(2 + Math.ceil(elapsedMs / 250));
    expect(progress.filter(finished), 'events saying the upload is done').to.have.length(1);
    expect(progress.at(-1)!.progress).to.deep.include({ operation: 'upload', done: BigInt(16 * MiB), total: BigInt(16 * MiB) });
  });

  it('shorter than the rest of the volume: the last event says done == total, the bytes written', async () => {
    await createVolume(ctx.stack, POOL, 'small', String(MiB));
    const { progress } = await progressOf('small', randomBytes(4096));
    expect(progress.at(-1)?.progress).to.deep.include({ operation: 'upload', done: 4096n, total: 4096n });
  });

  it('shorter than its declared length (a pipe that gave less than --length): the last event says done == total', async () => {
    // libvirt takes a stream that ends before its length (virsh vol-upload --length from a
    // shorter pipe succeeds), and so does Cistern: the upload is done, and its last progress
    // event says so, as every operation's last one does (docs/events.md)
    await createVolume(ctx.stack, POOL, 'short', String(4 * MiB));
    const { progress } = await progressOf('short', randomBytes(MiB), BigInt(2 * MiB));
    expect(progress.at(-1)?.progress).to.deep.include({ operation: 'upload', done: BigInt(MiB), total: BigInt(MiB) });
  });
});
