// vol-download into something that is not a regular file: a pipe (`vol-download v /dev/stdout
// | gzip`, a FIFO) or a device. virsh 9.0 writes the stream there in order (safewrite) and
// never truncates it; the bytes must arrive, and the command succeed.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeApi, pool, run, volume } from './fake-api.js';

describe('cisternctl vol-download into a pipe', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cisternctl-pipe-test-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Everything written into the FIFO at `path` until its writer closes it. */
  function drain(path: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      createReadStream(path)
        .on('data', (b) => parts.push(b as Buffer))
        .on('error', reject)
        .on('end', () => resolve(Buffer.concat(parts)));
    });
  }

  it('downloads into /dev/null (a device: nothing to truncate) and succeeds', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1n << 20n, 0n, '/p/v')];
    api.downloadChunks = [{ data: Buffer.alloc(1 << 20, 3), offset: 0n }];
    const down = await run(api, ['vol-download', 'v', '/dev/null', '--pool', 'p']);
    expect([down.code, down.stderr]).to.deep.equal([0, '']);
  });

  for (const sparse of [false, true]) {
    it(`writes the volume's bytes into a FIFO in order and succeeds${sparse ? ' (--sparse: the zeros are written, a pipe has no holes)' : ''}`, async () => {
      const api = new FakeApi(['a']);
      api.pools = [pool('a', 'p')];
      api.volumes = [volume('a', 'p', 'v', 3n << 20n, 0n, '/p/v')];
      const data = Buffer.alloc(3 << 20);
      data.fill(9, 0, 1000);
      data.fill(4, (2 << 20) + 17, (2 << 20) + 5000);
      api.downloadChunks = [0, 1, 2].map((i) => ({ data: data.subarray(i << 20, (i + 1) << 20), offset: BigInt(i << 20) }));
      const fifo = join(dir, sparse ? 'sparse.fifo' : 'plain.fifo');
      execFileSync('mkfifo', [fifo]);
      const received = drain(fifo);
      const down = await run(api, ['vol-download', 'v', fifo, '--pool', 'p', ...(sparse ? ['--sparse'] : [])]);
      expect([down.code, down.stderr]).to.deep.equal([0, '']);
      const got = await received;
      expect(got.length).to.equal(data.length);
      expect(got.equals(data)).to.equal(true);
    });
  }
});
