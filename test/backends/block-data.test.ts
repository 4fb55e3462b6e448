// The block-device data path of the logical and disk backends (libs/backends/block-data.ts)
// on a real loop device (root): a clone's copy into the device, and what it refuses. The
// logical and disk backends reach copyIntoBlock only through device nodes this kernel cannot
// make (no device-mapper, no partition scanner), so the copy is pinned here on the loop
// device itself. Every loop device is detached by its exact name.
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendContext } from '../../libs/backends/backend.js';
import { copyIntoBlock, downloadBlock, uploadBlock, wipeBlock } from '../../libs/backends/block-data.js';
import { WipeAlgorithm } from '../../libs/proto/cistern/v1/storage.js';
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

  it('download from an offset past the end of the device is INVALID_ARGUMENT naming the offset and the size, as an upload there is (libvirt: "Unable to seek")', async () => {
    const ctx = { runner: undefined as never } as unknown as BackendContext;
    const size = BigInt(8 * MiB);
    const read = async (offset: bigint): Promise<Buffer | { code?: string; message: string }> => {
      const chunks: Buffer[] = [];
      try {
        for await (const c of downloadBlock(ctx, loop!.device, offset, 100n)) chunks.push(c);
      } catch (e) {
        return e as { code?: string; message: string };
      }
      return Buffer.concat(chunks);
    };
    // the last bytes, and nothing from the very end: both fine
    expect((await read(size - 10n)) as Buffer).to.have.length(10);
    expect((await read(size)) as Buffer).to.have.length(0);
    const err = (await read(size + 10n)) as { code?: string; message: string };
    expect(err.code, String(err.message)).to.equal('INVALID_ARGUMENT');
    expect(err.message).to.contain('offset').and.contain(String(size + 10n)).and.contain(String(size));
  });
});

describe('block data: a device that is mounted is neither wiped nor written', function () {
  this.timeout(60_000);
  let loop: LoopDevice | undefined;
  let dir: { path: string; remove: () => Promise<void> } | undefined;
  let mountPoint = '';
  let mounted = false;

  before(function () {
    if (!loopDevicesAvailable()) this.skip();
    loop = attachLoop(32 * MiB, 'blockbusy');
    dir = makeTempDir('cistern-blockbusy-');
    mountPoint = join(dir.path, 'mnt');
    mkdirSync(mountPoint);
    execFileSync('mkfs.ext4', ['-q', '-F', '--', loop.device], { stdio: 'pipe' });
    execFileSync('mount', ['--', loop.device, mountPoint], { stdio: 'pipe' });
    mounted = true;
  });

  after(async () => {
    if (mounted) execFileSync('umount', ['--', mountPoint], { stdio: 'pipe' });
    await loop?.detach();
    await dir?.remove();
  });

  it('wipe (zero and scrub) and upload are FAILED_PRECONDITION "in use"; the filesystem is untouched', async () => {
    const before = sha(readDevice(loop!.device, 4 * MiB));
    const ctx = { runner: undefined as never } as unknown as BackendContext;
    async function* data(): AsyncIterable<Buffer> {
      yield Buffer.alloc(4096, 0xaa);
    }
    for (const attempt of [
      () => wipeBlock(ctx, loop!.device, WipeAlgorithm.WIPE_ALGORITHM_ZERO),
      () => wipeBlock(ctx, loop!.device, WipeAlgorithm.WIPE_ALGORITHM_NNSA),
      () => uploadBlock(ctx, loop!.device, 0n, 4096n, data()),
    ]) {
      let err: unknown;
      try {
        await attempt();
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string })?.code, String(err)).to.equal('FAILED_PRECONDITION');
      expect(String((err as Error).message)).to.contain('it is in use (mounted, or held by LVM, RAID or swap)');
    }
    expect(sha(readDevice(loop!.device, 4 * MiB))).to.equal(before);
  });
});
