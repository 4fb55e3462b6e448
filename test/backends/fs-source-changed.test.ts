// An fs pool whose source name stops naming what the pool mounted while the pool runs: the
// image file moved aside (or replaced by a new file), a /dev/disk/by-* name udev repoints at
// another disk. The stop must unmount the filesystem the pool's start mounted (judged by the
// mount itself, not by what the name leads to now): left mounted, the pool shows stopped and
// its next start is refused over its own filesystem. And it must unmount nothing that is not
// that mount: a filesystem an operator mounted on the target since stays.
// Mounts are checked with findmnt, independent of the backend's own mountinfo parser.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, openSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FsBackend } from '../../libs/backends/fs.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { PoolContext } from '../../libs/backends/backend.js';
import { FailedPreconditionError } from '../../libs/errors/errors.js';
import { PoolSource, PoolType, type PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { attachLoop, loopDevicesAvailable, type LoopDevice } from '../support/loop.js';
import { makeTempDir, registerCleanup } from '../support/cleanup.js';
import { hasTool } from '../support/index.js';
import { rejects } from '../support/rejects.js';

const MiB = 1024 * 1024;

function fsPool(device: string, target: string): PoolDefinition {
  return {
    type: PoolType.POOL_TYPE_FS,
    name: 'fs-changed',
    uuid: '',
    source: PoolSource.create({ devices: [{ path: device, partSeparator: 0, freeExtents: [] }], format: 'ext4' }),
    target: { path: target, permissions: undefined },
    features: undefined,
    mountOptions: [],
  };
}

/** The sources mounted exactly on `target` (findmnt), bottom first. */
function sourcesOn(target: string): string[] {
  try {
    return execFileSync('findmnt', ['-n', '-o', 'SOURCE', '--mountpoint', target], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** The loop devices reading `file` (`losetup -j`), by device name. */
function loopsOf(file: string): string[] {
  return execFileSync('losetup', ['-j', file], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(0, l.indexOf(':')));
}

const skipReason = !loopDevicesAvailable()
  ? 'needs root and loop devices'
  : !hasTool('mkfs.ext4') || !hasTool('findmnt')
    ? 'needs e2fsprogs and util-linux (bash scripts/setup.sh installs them)'
    : undefined;

describe('fs pool whose source name changes while it runs', function () {
  this.timeout(120_000);
  const runner = new ExecRunner();
  let dir: { path: string; remove: () => Promise<void> } | undefined;
  let undo: (() => Promise<void>) | undefined;
  let target: string;
  let image: string;

  beforeEach(function () {
    if (skipReason) this.skip();
    dir = makeTempDir('cistern-fs-changed-');
    target = join(dir.path, 'pool');
    image = join(dir.path, 'pool.img');
    // what a failed test leaves: the mounts on this exact target, then the loop devices of these exact files
    undo = registerCleanup(`unmount ${target} and detach the loop devices of ${image}`, () => {
      for (let i = 0; i < 5 && sourcesOn(target).length > 0; i++) execFileSync('umount', ['--', target], { stdio: 'pipe' });
      for (const file of [image, `${image}.old`]) for (const dev of loopsOf(file)) execFileSync('losetup', ['--detach', dev], { stdio: 'pipe' });
    });
  });

  afterEach(async () => {
    await undo?.();
    await dir?.remove();
  });

  /** An ext4 image file pool, built and started: returns its context and the loop device mount attached. */
  async function startedImagePool(backend: FsBackend): Promise<{ ctx: PoolContext; loop: string }> {
    const fd = openSync(image, 'w');
    ftruncateSync(fd, 64 * MiB);
    closeSync(fd);
    const ctx: PoolContext = { runner, pool: fsPool(image, target) };
    await backend.buildPool(ctx, { overwrite: true, noOverwrite: false });
    await backend.startPool(ctx);
    const loops = loopsOf(image);
    expect(loops).to.have.length(1);
    expect(sourcesOn(target)).to.deep.equal(loops);
    return { ctx, loop: loops[0]! };
  }

  it('the image file moved aside: stop unmounts the pool\'s filesystem, its loop device goes, and the next start works', async () => {
    const backend = new FsBackend();
    const { ctx } = await startedImagePool(backend);
    renameSync(image, `${image}.old`);
    await backend.stopPool(ctx);
    expect(sourcesOn(target)).to.deep.equal([], 'the pool shows stopped with its filesystem still mounted');
    expect(loopsOf(`${image}.old`)).to.deep.equal([], 'mount attached the loop device with autoclear: umount detached it');
    renameSync(`${image}.old`, image);
    await backend.startPool(ctx);
    expect(await backend.checkPool(ctx)).to.equal(true);
    await backend.stopPool(ctx);
    expect(sourcesOn(target)).to.deep.equal([]);
  });

  it('the image file replaced by a new one: stop unmounts the filesystem the pool mounted (the old file\'s)', async () => {
    const backend = new FsBackend();
    const { ctx } = await startedImagePool(backend);
    renameSync(image, `${image}.old`);
    const fd = openSync(image, 'w');
    ftruncateSync(fd, 64 * MiB);
    closeSync(fd);
    await backend.stopPool(ctx);
    expect(sourcesOn(target)).to.deep.equal([]);
    expect(loopsOf(`${image}.old`)).to.deep.equal([]);
  });

  it('the image file replaced by a directory: stop still unmounts the pool\'s filesystem (the name is not what it stops)', async () => {
    const backend = new FsBackend();
    const { ctx } = await startedImagePool(backend);
    renameSync(image, `${image}.old`);
    mkdirSync(image);
    await backend.stopPool(ctx);
    expect(sourcesOn(target)).to.deep.equal([]);
    expect(loopsOf(`${image}.old`)).to.deep.equal([]);
  });

  it('the pool\'s filesystem unmounted by hand and a tmpfs mounted there since: stop unmounts nothing that is not the pool\'s', async () => {
    const backend = new FsBackend();
    const { ctx } = await startedImagePool(backend);
    renameSync(image, `${image}.old`);
    execFileSync('umount', ['--', target], { stdio: 'pipe' });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', '--', 'cistern-operator', target], { stdio: 'pipe' });
    await backend.stopPool(ctx);
    expect(sourcesOn(target)).to.deep.equal(['cistern-operator']);
  });

  it('the image moved aside and a tmpfs mounted over the pool: stop is FAILED_PRECONDITION naming it, and unmounts nothing', async () => {
    const backend = new FsBackend();
    const { ctx, loop } = await startedImagePool(backend);
    renameSync(image, `${image}.old`);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', '--', 'cistern-cover', target], { stdio: 'pipe' });
    const err = await rejects(backend.stopPool(ctx));
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect(err.message).to.contain(`'cistern-cover' (tmpfs) mounted over`);
    expect(sourcesOn(target)).to.deep.equal([loop, 'cistern-cover']);
  });

  describe('a device name repointed at another disk', function () {
    let disk: LoopDevice | undefined;
    let other: LoopDevice | undefined;

    afterEach(async () => {
      // the mounts on the target go first (the outer afterEach runs after this one)
      await undo?.();
      await other?.detach();
      await disk?.detach();
    });

    it('stop unmounts the disk the pool mounted, and leaves the disk the name leads to now alone', async () => {
      disk = attachLoop(64 * MiB, 'fs-changed-disk');
      other = attachLoop(64 * MiB, 'fs-changed-other');
      execFileSync('mkfs', ['-t', 'ext4', '-F', '-q', '--', other.device], { stdio: 'pipe' });
      const link = join(dir!.path, 'by-id-disk');
      symlinkSync(disk.device, link);
      const backend = new FsBackend();
      const ctx: PoolContext = { runner, pool: fsPool(link, target) };
      await backend.buildPool(ctx, { overwrite: true, noOverwrite: false });
      await backend.startPool(ctx);
      expect(sourcesOn(target)).to.deep.equal([disk.device]);
      // udev points the name at another disk
      unlinkSync(link);
      symlinkSync(other.device, link);
      await backend.stopPool(ctx);
      expect(sourcesOn(target)).to.deep.equal([], 'the pool shows stopped with its filesystem still mounted');
      const err = await backend.startPool(ctx).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err, 'the next start mounts what the name leads to now').to.equal(undefined);
      expect(sourcesOn(target)).to.deep.equal([other.device]);
      await backend.stopPool(ctx);
      expect(sourcesOn(target)).to.deep.equal([]);
    });
  });
});
