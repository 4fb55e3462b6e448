// The block-device data path of the logical and disk backends (libs/backends/block-data.ts)
// on a real loop device (root): a clone's copy into the device, and what it refuses. The
// logical and disk backends reach copyIntoBlock only through device nodes this kernel cannot
// make (no device-mapper, no partition scanner), so the copy is pinned here on the loop
// device itself. Every loop device is detached by its exact name.
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendContext } from '../../libs/backends/backend.js';
import { copyIntoBlock } from '../../libs/backends/block-data.js';
import { attachLoop, loopDevicesAvailable, makeTempDir, type LoopDevice } from '../support/index.js';

const MiB = 1024 * 1024;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function readDevice(path: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  const fd = openSync(path, 'r');
  try {
    let got = 0;
    while (got < length) {
      const n = readSync(fd, out, got, length - got, got);
      if (n === 0) break;
      got += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

describe('block data: copyIntoBlock on a loop device', function () {
  this.timeout(60_000);
  let loop: LoopDevice | undefined;
  let dir: { path: string; remove: () => Promise<void> } | undefined;
  let source = '';
  let sourceFd = -1;
  let data: Buffer;

  before(function () {
    if (!loopDevicesAvailable()) this.skip();
    loop = attachLoop(8 * MiB, 'blockdata');
    dir = makeTempDir('cistern-blockdata-src-');
    source = join(dir.path, 'source.img');
    // data that is neither zero nor repeating, across several 1 MiB chunks and a short tail
    data = randomBytes(3 * MiB + 12_345);
    const fd = openSync(source, 'w');
    writeSync(fd, data);
    closeSync(fd);
    // the copy reads a descriptor the caller opened (a clone's checked source), not a name
    sourceFd = openSync(source, 'r');
  });

  after(async () => {
    if (sourceFd >= 0) closeSync(sourceFd);
    await loop?.detach();
    await dir?.remove();
  });

  it('copies the source to the start of the device, byte for byte, and reports progress up to the length', async () => {
    const seen: bigint[] = [];
    const ctx: BackendContext = { runner: undefined as never, progress: (done: bigint) => void seen.push(done) } as unknown as BackendContext;
    await copyIntoBlock(ctx, { fd: sourceFd, name: source }, loop!.device, BigInt(data.length));
    expect(sha(readDevice(loop!.device, data.length))).to.equal(sha(data));
    // what lies past the copied length is left as it was (zeros of the new loop file)
    expect(readDevice(loop!.device, data.length + 4096).subarray(data.length).equals(Buffer.alloc(4096))).to.equal(true);
    expect(seen.at(-1)).to.equal(BigInt(data.length));
    expect(seen.every((v, i) => i === 0 || v > seen[i - 1]!)).to.equal(true);
  });

  it('refuses a source longer than the device, naming the sizes', async () => {
    const ctx = { runner: undefined as never } as unknown as BackendContext;
    let err: unknown;
    try {
      await copyIntoBlock(ctx, { fd: sourceFd, name: source }, loop!.device, BigInt(9 * MiB));
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string })?.code).to.equal('INVALID_ARGUMENT');
    expect(String((err as Error).message)).to.match(/9437184 bytes.*8388608/);
  });
});
