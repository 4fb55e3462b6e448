// An upload its client cancels is not an upload that ended. Over HTTP/2 a cancel is an
// RST_STREAM, which Node's http2 also ends the request's readable side with: the data seen
// so far must not be taken for the whole upload (sent to the agent as its end, committed and
// announced as VOLUME_UPLOADED, and remembered as the answer to its request id, so that the
// client's retry with the same id is told the upload succeeded and writes nothing).
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { openSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { EventKind } from '../../libs/proto/cistern/v1/storage.js';
import { useStack, useTempDir, waitFor } from '../support/index.js';
import { createVolume, startDirPool, watch } from './reliability-helpers.js';

const POOL = 'hosts/a/pools/cut';
const VOLUME = `${POOL}/volumes/v`;
const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('an upload cancelled by its client (real nats-server, agent a)', function () {
  this.timeout(60_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-upload-cancel-it-');
  let file = '';

  before(async () => {
    await startDirPool(ctx.stack, 'a', 'cut', join(scratch.path, 'cut'));
    await createVolume(ctx.stack, POOL, 'v', String(4 * MiB));
    file = join(scratch.path, 'cut', 'v');
  });

  /** The first `n` bytes of the volume's file. */
  function head(n: number): Buffer {
    const buf = Buffer.alloc(n);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buf, 0, n, 0);
    } finally {
      closeSync(fd);
    }
    return buf;
  }

  /** An upload with `requestId` of `parts`, ended (half-closed) or not; resolves with its outcome. */
  function start(requestId: string, parts: Buffer[], end: boolean) {
    let cancel!: () => void;
    const outcome = new Promise<{ code: number; bytesWritten?: bigint }>((resolve) => {
      const call = ctx.stack.client.uploadVolume((err, res) => resolve(err ? { code: err.code } : { code: 0, bytesWritten: res!.bytesWritten }));
      call.write({ part: { $case: 'header', value: { name: VOLUME, offset: 0n, length: 0n, sparse: false, requestId } } });
      for (const p of parts) call.write({ part: { $case: 'data', value: p } });
      if (end) call.end();
      cancel = () => call.cancel();
    });
    return { outcome, cancel: () => cancel() };
  }

  it('is not committed as uploaded, and its retry with the same request id writes the whole upload', async () => {
    const payload = randomBytes(2 * MiB);
    const first = payload.subarray(0, MiB);
    const w = watch(ctx.stack.client, { hosts: ['a'], pools: ['cut'] });
    await w.ready;
    // the client sends the first half and is cancelled (Ctrl-C, a deadline) once it is written:
    // the coordinator then waits on the client's next message, which never comes
    const cut = start('cut-1', [first.subarray(0, MiB / 2), first.subarray(MiB / 2)], false);
    await waitFor('the first half written', () => sha(head(MiB)) === sha(first));
    cut.cancel();
    expect((await cut.outcome).code).to.equal(1); // CANCELLED
    await waitFor('the pool refreshed after the cancelled upload', () => w.events.some((e) => e.kind === EventKind.POOL_REFRESHED) || w.failure());
    expect(w.events.filter((e) => e.kind === EventKind.VOLUME_UPLOADED), 'VOLUME_UPLOADED for a cancelled upload').to.have.length(0);

    // the retry sends everything: it is done, not answered from the cancelled attempt
    const retry = start('cut-1', [payload.subarray(0, MiB), payload.subarray(MiB)], true);
    expect(await retry.outcome).to.deep.equal({ code: 0, bytesWritten: BigInt(2 * MiB) });
    expect(sha(head(2 * MiB))).to.equal(sha(payload));
    w.cancel();
  });

  it('is not committed when the client is busy after it cancels (its reset comes 200 ms after its end)', async () => {
    // grpc-js sends the END_STREAM at once and the RST_STREAM only in a later turn of its event
    // loop: a client busy right after it cancels (other work, a GC pause, a loaded machine)
    // resets the stream as late as its loop turns again, long after any fixed wait
    const first = randomBytes(MiB);
    const w = watch(ctx.stack.client, { hosts: ['a'], pools: ['cut'] });
    await w.ready;
    const cut = start('cut-busy', [first], false);
    await waitFor('the data written', () => sha(head(MiB)) === sha(first));
    cut.cancel();
    const until = Date.now() + 200;
    while (Date.now() < until) {
      // the client's event loop is busy
    }
    expect((await cut.outcome).code).to.equal(1); // CANCELLED
    await waitFor('the pool refreshed after the cancelled upload', () => w.events.some((e) => e.kind === EventKind.POOL_REFRESHED) || w.failure());
    expect(w.events.filter((e) => e.kind === EventKind.VOLUME_UPLOADED), 'VOLUME_UPLOADED for a cancelled upload').to.have.length(0);
    w.cancel();
  });
});
