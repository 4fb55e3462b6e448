// A download reads the volume as it is on disk, not as the last refresh saw it: a file that
// grew since (a guest writing into its qcow2, data appended by hand) is downloaded whole, as
// libvirt's virStorageBackendVolDownloadLocal streams the file to its end.
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { download, useStack, useTempDir } from '../support/index.js';
import { createVolume, startDirPool } from './reliability-helpers.js';

const POOL = 'hosts/a/pools/live';
const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('download of a volume that grew since the last refresh (real nats-server, agent a)', function () {
  this.timeout(60_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-live-size-it-');
  let dir = '';

  before(async () => {
    dir = join(scratch.path, 'live');
    await startDirPool(ctx.stack, 'a', 'live', dir);
  });

  it('to the end (length 0): every byte the file holds now, not only what the last refresh saw', async () => {
    await createVolume(ctx.stack, POOL, 'grown', String(MiB));
    appendFileSync(join(dir, 'grown'), randomBytes(MiB));
    const whole = await download(ctx.stack, `${POOL}/volumes/grown`);
    expect(whole.length).to.equal(2 * MiB);
    expect(sha(whole)).to.equal(sha(readFileSync(join(dir, 'grown'))));
  });

  it('with a length that reaches past the size last seen: that many bytes, when the file has them', async () => {
    await createVolume(ctx.stack, POOL, 'longer', String(MiB));
    appendFileSync(join(dir, 'longer'), randomBytes(MiB));
    const part = await download(ctx.stack, `${POOL}/volumes/longer`, 4096n, BigInt(MiB));
    expect(part.length).to.equal(MiB);
    expect(sha(part)).to.equal(sha(readFileSync(join(dir, 'longer')).subarray(4096, 4096 + MiB)));
  });
});
