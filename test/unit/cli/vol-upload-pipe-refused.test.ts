// vol-upload from a pipe whose producer is slow (`slow-producer | cisternctl vol-upload V
// /dev/stdin`, a FIFO another program writes later) when the server refuses the upload at once
// (a bad header, the volume busy, the host offline). virsh asks for the upload before it reads
// the file and fails at once; cisternctl had a read of the pipe pending by then, and its
// command waited for that read before it printed the error: until the producer wrote again
// or closed the pipe, however long that took.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UploadVolumeRequest } from '../../../libs/proto/cistern/v1/storage.js';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';
import { FakeApi, pool, run, volume } from './fake-api.js';

/** An upload the server refuses once it has the header, while the client goes on reading its data (as grpc-js's writer does). */
class RefusingApi extends FakeApi {
  override async uploadVolume(messages: AsyncIterable<UploadVolumeRequest>): Promise<never> {
    const it = messages[Symbol.asyncIterator]();
    await it.next(); // the header
    // the writer asks for the next message and waits on the pipe for it; the refusal comes now
    it.next().catch(() => undefined);
    throw new InvalidArgumentError('header.offset', 'refused by the server');
  }
}

describe('cisternctl vol-upload from a pipe the server refuses', () => {
  let dir: string;
  let producer: FileHandle | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cisternctl-upload-refused-'));
  });
  // also after a failure (mocha's timeout): a read left pending on the pipe would keep this
  // process from exiting (libuv waits for its thread) until the pipe has a writer no more
  afterEach(async () => {
    await producer?.close();
    producer = undefined;
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("prints the server's error and ends while the producer holds the pipe open and writes nothing", async () => {
    const api = new RefusingApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1n << 20n, 0n, '/p/v')];
    const fifo = join(dir, 'producer.fifo');
    execFileSync('mkfifo', [fifo]);
    // the producer opens the pipe and then writes nothing (a slow program, a terminal)
    const opened = open(fifo, 'w').then((fh) => (producer = fh));
    const up = run(api, ['vol-upload', 'v', fifo, '--pool', 'p']);
    await opened;
    // before the fix this never settled while the producer held the pipe (mocha's timeout)
    const result = await up;
    expect(result.code).to.equal(1);
    expect(result.stderr).to.contain('cannot upload to volume v').and.to.contain('refused by the server');
  });
});
