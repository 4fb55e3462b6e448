// An fs pool's source or target swapped for a link between the agent's checks and the tool
// that acts on it. Whoever can write in the directory that holds an image file source (a dir
// pool's directory, writable by the qemu user) or the target's parent replaces the name, at
// the moment the tool's command line is seen, with a link to a host disk (here another loop
// device) or a host directory: the real tool runs, and the disk or directory must not change.
// The swap is made deterministic by a runner that performs it when it sees the command line
// (test/support/swapping-runner.ts).
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmdirSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FsBackend } from '../../libs/backends/fs.js';
import type { PoolContext } from '../../libs/backends/backend.js';
import { PoolSource, PoolType, type PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { attachLoop, loopDevicesAvailable, type LoopDevice } from '../support/loop.js';
import { makeTempDir, registerCleanup } from '../support/cleanup.js';
import { hasTool } from '../support/index.js';
import { SwappingRunner } from '../support/swapping-runner.js';

const MiB = 1024 * 1024;

function fsPool(device: string, target: string): PoolDefinition {
  return {
    type: PoolType.POOL_TYPE_FS,
    name: 'fs-swap',
    uuid: '',
    source: PoolSource.create({ devices: [{ path: device, partSeparator: 0, freeExtents: [] }], format: 'ext4' }),
    target: { path: target, permissions: undefined },
    features: undefined,
    mountOptions: [],
  };
}

function firstMiB(path: string): Buffer {
  const buf = Buffer.alloc(MiB);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, MiB, 0);
  } finally {
    closeSync(fd);
  }
  return buf;
}

function blkidType(path: string): string {
  try {
    return execFileSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', '--', path], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

/** The loop devices reading `file` (`losetup -j`), by device name. */
function loopsOf(file: string): string[] {
  return execFileSync('losetup', ['-j', file], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(0, l.indexOf(':')));
}

/** The source mounted on `target` (findmnt), '' when nothing is. */
function sourceOn(target: string): string {
  try {
    return execFileSync('findmnt', ['-n', '-o', 'SOURCE', '--mountpoint', target], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

function mountedOn(target: string): boolean {
  try {
    execFileSync('findmnt', ['-n', '--mountpoint', target], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

const skipReason = !loopDevicesAvailable()
  ? 'needs root and loop devices'
  : !hasTool('mkfs.ext4') || !hasTool('findmnt') || !hasTool('blkid')
    ? 'needs e2fsprogs and util-linux (bash scripts/setup.sh installs them)'
    : undefined;

describe('fs pool: the source image swapped for a link to a host disk when the tool runs', function () {
  this.timeout(120_000);
  const backend = new FsBackend();
  let dir: { path: string; remove: () => Promise<void> } | undefined;
  let disk: LoopDevice | undefined;
  let undo: (() => Promise<void>) | undefined;
  let image: string;
  let target: string;
  let ctx: (runner: SwappingRunner) => PoolContext;

  beforeEach(function () {
    if (skipReason) this.skip();
    dir = makeTempDir('cistern-fs-swap-');
    image = join(dir.path, 'pool.img');
    target = join(dir.path, 'pool');
    const fd = openSync(image, 'w');
    ftruncateSync(fd, 64 * MiB);
    closeSync(fd);
    // the host's disk: a pattern no mkfs writes
    disk = attachLoop(64 * MiB, 'fs-swap-disk');
    const dfd = openSync(disk.device, 'r+');
    try {
      writeSync(dfd, Buffer.alloc(MiB, 0x5a), 0, MiB, 0);
    } finally {
      closeSync(dfd);
    }
    undo = registerCleanup(`unmount ${target} and detach the loop devices of ${image}`, () => {
      for (let i = 0; i < 3 && mountedOn(target); i++) execFileSync('umount', ['--', target], { stdio: 'pipe' });
      for (const dev of loopsOf(`${image}.aside`)) execFileSync('losetup', ['--detach', dev], { stdio: 'pipe' });
    });
    ctx = (runner) => ({ runner, pool: fsPool(image, target) });
  });

  afterEach(async () => {
    await undo?.();
    await disk?.detach();
    await dir?.remove();
  });

  /** Moves the image aside and puts a link to the host disk in its place. */
  const swapToDisk = () => {
    renameSync(image, `${image}.aside`);
    symlinkSync(disk!.device, image);
  };

  for (const flags of [
    { overwrite: true, noOverwrite: false },
    { overwrite: false, noOverwrite: true },
  ]) {
    it(`build with ${flags.overwrite ? 'overwrite' : 'no_overwrite'}: mkfs formats the image that was checked, not the disk the name leads to by then`, async () => {
      const before = firstMiB(disk!.device);
      const runner = new SwappingRunner((argv) => argv[0] === 'mkfs', swapToDisk);
      await backend.buildPool(ctx(runner), flags);
      expect(runner.swapped).to.equal(1);
      expect(blkidType(disk!.device)).to.equal('', 'the host disk was formatted');
      expect(firstMiB(disk!.device).equals(before)).to.equal(true, 'the host disk changed');
      expect(blkidType(`${image}.aside`)).to.equal('ext4', 'the checked image is what is formatted');
    });
  }

  it('start: the image swapped for a link to a host disk when mount runs leaves the disk unmounted: FAILED_PRECONDITION, nothing mounted', async () => {
    await backend.buildPool(ctx(new SwappingRunner(() => false, () => undefined)), { overwrite: true, noOverwrite: false });
    execFileSync('mkfs', ['-t', 'ext4', '-F', '-q', '-L', 'hostdisk', '--', disk!.device], { stdio: 'pipe' });
    const runner = new SwappingRunner((argv) => argv[0] === 'mount', swapToDisk);
    const err = await backend.startPool(ctx(runner)).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(runner.swapped).to.equal(1);
    expect(sourceOn(target)).to.not.equal(disk!.device, 'the host disk is mounted as the pool');
    expect(err?.code, err?.message).to.equal('FAILED_PRECONDITION');
    expect(err?.message).to.contain('changed while it was mounted');
    expect(mountedOn(target)).to.equal(false);
  });

  it('start: the target swapped for a link to a host directory when mount runs: FAILED_PRECONDITION, the directory not left covered', async () => {
    await backend.buildPool(ctx(new SwappingRunner(() => false, () => undefined)), { overwrite: true, noOverwrite: false });
    const hostDir = join(dir!.path, 'etc');
    mkdirSync(hostDir);
    writeFileSync(join(hostDir, 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
    const cleanupHostDir = registerCleanup(`unmount ${hostDir}`, () => {
      for (let i = 0; i < 3 && mountedOn(hostDir); i++) execFileSync('umount', ['--', hostDir], { stdio: 'pipe' });
    });
    try {
      const runner = new SwappingRunner(
        (argv) => argv[0] === 'mount',
        () => {
          rmdirSync(target);
          symlinkSync(hostDir, target);
        },
      );
      const err = await backend.startPool(ctx(runner)).then(
        () => undefined,
        (e: Error & { code?: string }) => e,
      );
      expect(runner.swapped).to.equal(1);
      expect(mountedOn(hostDir)).to.equal(false, 'the pool is left mounted over the host directory');
      expect(readdirSync(hostDir)).to.deep.equal(['passwd']);
      expect(err?.code, err?.message).to.equal('FAILED_PRECONDITION');
    } finally {
      await cleanupHostDir();
    }
  });
});
