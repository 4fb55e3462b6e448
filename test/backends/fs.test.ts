// The fs backend against the real tools, as root, on loop devices this test attaches:
// ext4 and xfs pools through build (mkfs after a blkid probe), start (mount), volumes,
// refresh, stop (umount), start again, delete; no_overwrite refusing a formatted device
// with its first MiB unchanged; and the mount refusals (another device on the target, the
// device mounted elsewhere, a device that does not exist, a device without a filesystem).
// A pool on an image file: mount attaches a loop device itself, which must count as the
// pool's source (check, start again, stop) and go away with the unmount.
// Mounts are checked with findmnt, independent of the backend's own mountinfo parser.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, existsSync, ftruncateSync, mkdirSync, openSync, readSync, readdirSync, statSync, writeFileSync } from 'node:fs';
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
import { fileVolume as vol } from '../support/volume-definitions.js';

const MiB = 1024 * 1024;

/** What findmnt says is mounted exactly on `target` (top mount), or undefined. */
function findmnt(target: string): { source: string; fstype: string; options: string } | undefined {
  try {
    const out = execFileSync('findmnt', ['-n', '-P', '-o', 'SOURCE,FSTYPE,OPTIONS', '--mountpoint', target], { encoding: 'utf8' });
    const lines = out.trim().split('\n');
    const last = lines[lines.length - 1]!;
    const field = (k: string) => new RegExp(`${k}="([^"]*)"`).exec(last)?.[1] ?? '';
    return { source: field('SOURCE'), fstype: field('FSTYPE'), options: field('OPTIONS') };
  } catch {
    return undefined;
  }
}

function mountCountAt(target: string): number {
  try {
    return execFileSync('findmnt', ['-n', '-o', 'SOURCE', '--mountpoint', target], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

/** Unmounts `target` by its exact path, as often as something is mounted there. */
function unmountAll(target: string): void {
  for (let i = 0; i < 5 && mountCountAt(target) > 0; i++) execFileSync('umount', ['--', target], { stdio: 'pipe' });
}

function firstMiB(device: string): Buffer {
  const buf = Buffer.alloc(MiB);
  const fd = openSync(device, 'r');
  try {
    readSync(fd, buf, 0, MiB, 0);
  } finally {
    closeSync(fd);
  }
  return buf;
}

function blkidType(device: string): string {
  try {
    return execFileSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', '--', device], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

function fsPool(device: string, target: string, format: string): PoolDefinition {
  return {
    type: PoolType.POOL_TYPE_FS,
    name: `fs-${format}`,
    uuid: '',
    source: PoolSource.create({ devices: [{ path: device, partSeparator: 0, freeExtents: [] }], format }),
    target: { path: target, permissions: undefined },
    features: undefined,
    mountOptions: [],
  };
}


/** A temp directory for pool targets, whose mounts are undone (exact paths) before the loop devices go. */
function targetsDir(label: string): { root: string; track(target: string): string; teardown(): Promise<void> } {
  const dir = makeTempDir(`cistern-fs-${label}-`);
  const tracked: string[] = [];
  const unmount = registerCleanup(`unmount fs test targets in ${dir.path}`, () => {
    for (const t of tracked) unmountAll(t);
  });
  return {
    root: dir.path,
    async teardown() {
      await unmount();
      await dir.remove();
    },
    track(target: string) {
      tracked.push(target);
      return target;
    },
  };
}

const skipReason = !loopDevicesAvailable()
  ? 'needs root and loop devices'
  : !hasTool('mkfs.ext4') || !hasTool('mkfs.xfs') || !hasTool('findmnt')
    ? 'needs e2fsprogs, xfsprogs and util-linux (bash scripts/setup.sh installs them)'
    : undefined;

const FORMATS: Array<[string, number]> = [
  ['ext4', 64 * MiB],
  ['xfs', 320 * MiB], // mkfs.xfs refuses filesystems under 300 MiB
];

for (const [format, size] of FORMATS) {
  describe(`fs pool on ${format} (real mkfs and mount on a loop device)`, function () {
    this.timeout(120_000);
    const runner = new ExecRunner();
    const backend = new FsBackend();
    let loop: LoopDevice | undefined;
    let dirs: ReturnType<typeof targetsDir> | undefined;
    let target: string;
    let ctx: PoolContext;

    before(function () {
      if (skipReason) this.skip();
      loop = attachLoop(size, `fs-${format}`);
      dirs = targetsDir(format);
      target = dirs.track(join(dirs.root, 'pool'));
      ctx = { runner, pool: fsPool(loop!.device, target, format) };
    });

    after(async () => {
      await dirs?.teardown();
      await loop?.detach();
    });

    it('build with no_overwrite probes the empty device and makes the filesystem and the target', async () => {
      expect(blkidType(loop!.device)).to.equal('');
      await backend.buildPool(ctx, { overwrite: false, noOverwrite: true });
      expect(blkidType(loop!.device)).to.equal(format);
      expect(statSync(target).isDirectory()).to.equal(true);
      expect(await backend.checkPool(ctx)).to.equal(false);
    });

    it('start mounts the device on the target with nodev,nosuid,noexec', async () => {
      await backend.startPool(ctx);
      const m = findmnt(target);
      expect(m?.source).to.equal(loop!.device);
      expect(m?.fstype).to.equal(format);
      expect(m?.options.split(',')).to.include.members(['nodev', 'nosuid', 'noexec']);
      expect(await backend.checkPool(ctx)).to.equal(true);
    });

    it('start on a pool already mounted there succeeds without mounting twice', async () => {
      await backend.startPool(ctx);
      expect(mountCountAt(target)).to.equal(1);
    });

    it('formatting the mounted device is refused, even with overwrite', async () => {
      const before = firstMiB(loop!.device);
      const err = await rejects(backend.buildPool(ctx, { overwrite: true, noOverwrite: false }));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain(`is mounted on '${target}'`);
      expect(firstMiB(loop!.device).equals(before)).to.equal(true);
    });

    it('volumes are created in the mounted filesystem and refresh lists them with the filesystem sizes', async () => {
      const raw = await backend.createVol(ctx, vol('disk.raw', 'raw', 8n * BigInt(MiB)));
      await backend.buildVol(ctx, raw, { preallocMetadata: false });
      const names = ['disk.raw'];
      if (hasTool('qemu-img')) {
        const q = await backend.createVol(ctx, vol('disk.qcow2', 'qcow2', 32n * BigInt(MiB)));
        await backend.buildVol(ctx, q, { preallocMetadata: false });
        names.push('disk.qcow2');
      }
      writeFileSync(join(target, 'dropped.img'), Buffer.alloc(4096, 1));
      names.push('dropped.img');
      const scan = await backend.refreshPool(ctx);
      const byName = new Map(scan.volumes.map((v) => [v.name, v]));
      for (const n of names) expect(byName.has(n), n).to.equal(true);
      expect(byName.get('disk.raw')!.capacity).to.equal(8n * BigInt(MiB));
      expect(byName.get('disk.raw')!.key).to.equal(join(target, 'disk.raw'));
      if (byName.has('disk.qcow2')) {
        expect(byName.get('disk.qcow2')!.target!.format).to.equal('qcow2');
        expect(byName.get('disk.qcow2')!.capacity).to.equal(32n * BigInt(MiB));
      }
      expect(byName.get('dropped.img')!.capacity).to.equal(4096n);
      // the sizes are the mounted filesystem's, not the root filesystem's
      expect(scan.runtime.capacity > 0n && scan.runtime.capacity <= BigInt(size)).to.equal(true);
      expect(scan.runtime.allocation + scan.runtime.available).to.equal(scan.runtime.capacity);
      await backend.deleteVol(ctx, byName.get('dropped.img')!);
      expect(existsSync(join(target, 'dropped.img'))).to.equal(false);
    });

    it('stop unmounts; the volumes stay on the device and come back on the next start', async () => {
      await backend.stopPool(ctx);
      expect(findmnt(target)).to.equal(undefined);
      expect(await backend.checkPool(ctx)).to.equal(false);
      expect(readdirSync(target)).to.deep.equal([]);
      await backend.stopPool(ctx); // stopping a stopped pool does nothing
      await backend.startPool(ctx);
      expect((await backend.refreshPool(ctx)).volumes.map((v) => v.name)).to.include('disk.raw');
      await backend.stopPool(ctx);
      expect(findmnt(target)).to.equal(undefined);
    });

    it('build with no_overwrite refuses the formatted device: FAILED_PRECONDITION, first MiB unchanged', async () => {
      const before = firstMiB(loop!.device);
      const err = await rejects(backend.buildPool(ctx, { overwrite: false, noOverwrite: true }));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain(loop!.device).and.to.contain(format);
      expect(firstMiB(loop!.device).equals(before)).to.equal(true);
      // also when the pool asks for a different filesystem than the one there
      const other = { runner, pool: fsPool(loop!.device, target, format === 'xfs' ? 'ext4' : 'xfs') };
      expect(await rejects(backend.buildPool(other, { overwrite: false, noOverwrite: true }))).to.be.instanceOf(FailedPreconditionError);
      expect(firstMiB(loop!.device).equals(before)).to.equal(true);
      expect(blkidType(loop!.device)).to.equal(format);
    });

    it('delete removes the target directory and leaves the device alone', async () => {
      await backend.deletePool(ctx);
      expect(existsSync(target)).to.equal(false);
      expect(blkidType(loop!.device)).to.equal(format);
    });
  });
}

describe('fs pool refusals and auto format (real mount on loop devices)', function () {
  this.timeout(120_000);
  const runner = new ExecRunner();
  const backend = new FsBackend();
  let a: LoopDevice;
  let b: LoopDevice;
  let dirs: ReturnType<typeof targetsDir> | undefined;
  let root: string;
  let track: (t: string) => string;

  before(function () {
    if (skipReason) this.skip();
    a = attachLoop(32 * MiB, 'fs-a');
    b = attachLoop(32 * MiB, 'fs-b');
    dirs = targetsDir('refusals');
    root = dirs.root;
    track = dirs.track;
    execFileSync('mkfs', ['-t', 'ext4', '-F', '-q', '--', a.device], { stdio: 'pipe' });
  });

  after(async () => {
    await dirs?.teardown();
    await b?.detach();
    await a?.detach();
  });

  it('format auto: build without flags only makes the directory; start lets mount find ext4', async () => {
    const target = track(join(root, 'auto'));
    const ctx = { runner, pool: fsPool(a.device, target, 'auto') };
    const before = firstMiB(a.device);
    await backend.buildPool(ctx, { overwrite: false, noOverwrite: false });
    expect(firstMiB(a.device).equals(before)).to.equal(true);
    await backend.startPool(ctx);
    expect(findmnt(target)?.fstype).to.equal('ext4');
    expect(await backend.checkPool(ctx)).to.equal(true);

    // the same device for another pool: mounted elsewhere
    const target2 = track(join(root, 'second'));
    mkdirSync(target2);
    const err = await rejects(backend.startPool({ runner, pool: fsPool(a.device, target2, 'ext4') }));
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect(err.message).to.contain(`is already mounted on '${target}'`);
    expect(findmnt(target2)).to.equal(undefined);

    // another device for this target: something else is mounted there
    execFileSync('mkfs', ['-t', 'ext4', '-F', '-q', '--', b.device], { stdio: 'pipe' });
    const err2 = await rejects(backend.startPool({ runner, pool: fsPool(b.device, target, 'ext4') }));
    expect(err2).to.be.instanceOf(FailedPreconditionError);
    expect(err2.message).to.contain(`already has '${a.device}' (ext4) mounted on it`);
    expect(mountCountAt(target)).to.equal(1);
    // and stopping that pool leaves the other device mounted
    await backend.stopPool({ runner, pool: fsPool(b.device, target, 'ext4') });
    expect(findmnt(target)?.source).to.equal(a.device);

    await backend.stopPool(ctx);
    expect(findmnt(target)).to.equal(undefined);
  });

  it('a device held by something else (not mounted): formatting is refused with FAILED_PRECONDITION, nothing written', async () => {
    const target = track(join(root, 'held'));
    const ctx = { runner, pool: fsPool(b.device, target, 'ext4') };
    execFileSync('wipefs', ['-a', '-q', '--', b.device], { stdio: 'pipe' });
    const before = firstMiB(b.device);
    // an exclusive open holds the device as an active LVM PV, swap or md member would
    const held = openSync(b.device, fsConstants.O_RDONLY | fsConstants.O_EXCL);
    try {
      const err = await rejects(backend.buildPool(ctx, { overwrite: true, noOverwrite: false }));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain(`'${b.device}' is in use`);
      expect(firstMiB(b.device).equals(before)).to.equal(true);
    } finally {
      closeSync(held);
    }
  });

  it('a source mkfs refuses (too small for xfs): FAILED_PRECONDITION on source.format naming the device and mkfs\'s reason, and the build leaves no directory it made', async () => {
    const target = track(join(root, 'too-small'));
    const ctx = { runner, pool: fsPool(b.device, target, 'xfs') };
    execFileSync('wipefs', ['-a', '-q', '--', b.device], { stdio: 'pipe' });
    const before = firstMiB(b.device);
    const err = await rejects(backend.buildPool(ctx, { overwrite: true, noOverwrite: false }));
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect(err.details.field).to.equal('source.format');
    expect(err.message).to.contain(`'${b.device}'`).and.to.contain('xfs').and.to.contain('must be larger than 300MB');
    // mkfs.xfs's 30-line usage text and the agent's descriptor path tell the user nothing
    expect(err.message).not.to.contain('Usage:');
    expect(err.message).not.to.contain('/dev/fd/3');
    expect(existsSync(target)).to.equal(false, 'the target directory this failed build made is removed again');
    expect(firstMiB(b.device).equals(before)).to.equal(true);

    // a target directory that was there before the build stays
    mkdirSync(target);
    const again = await rejects(backend.buildPool(ctx, { overwrite: true, noOverwrite: false }));
    expect(again).to.be.instanceOf(FailedPreconditionError);
    expect(existsSync(target)).to.equal(true);
  });

  it('a device that does not exist: FAILED_PRECONDITION naming it, for build and start', async () => {
    const target = track(join(root, 'missing'));
    mkdirSync(target);
    const missing = '/dev/cistern-no-such-device';
    const ctx = { runner, pool: fsPool(missing, target, 'ext4') };
    const e1 = await rejects(backend.buildPool(ctx, { overwrite: true, noOverwrite: false }));
    expect(e1).to.be.instanceOf(FailedPreconditionError);
    expect(e1.message).to.contain(`'${missing}' does not exist`);
    const e2 = await rejects(backend.startPool(ctx));
    expect(e2).to.be.instanceOf(FailedPreconditionError);
    expect(e2.message).to.contain(`'${missing}' of pool 'fs-ext4' does not exist`);
  });

  it('a device without a filesystem does not mount: FAILED_PRECONDITION with mount\'s message', async () => {
    const blank = attachLoop(16 * MiB, 'fs-blank');
    const target = track(join(root, 'blank'));
    mkdirSync(target);
    try {
      const err = await rejects(backend.startPool({ runner, pool: fsPool(blank.device, target, 'ext4') }));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.match(/cannot mount .*(wrong fs type|bad superblock)/);
      expect(findmnt(target)).to.equal(undefined);
    } finally {
      await blank.detach();
    }
  });
});

/** The loop devices reading `file` (`losetup -j`), by device name. */
function loopsOf(file: string): string[] {
  const out = execFileSync('losetup', ['-j', file], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(0, l.indexOf(':')));
}

describe('fs pool on an image file (mount attaches the loop device itself)', function () {
  this.timeout(120_000);
  const runner = new ExecRunner();
  const backend = new FsBackend();
  let dir: { path: string; remove: () => Promise<void> } | undefined;
  let undo: (() => Promise<void>) | undefined;
  let image: string;
  let target: string;
  let ctx: PoolContext;

  before(function () {
    if (skipReason) this.skip();
    dir = makeTempDir('cistern-fs-image-');
    image = join(dir.path, 'pool.img');
    target = join(dir.path, 'pool');
    const fd = openSync(image, 'w');
    ftruncateSync(fd, 64 * MiB);
    closeSync(fd);
    // what a failed test leaves: the mount on this exact target, then the loop devices of this exact file
    undo = registerCleanup(`unmount ${target} and detach the loop devices of ${image}`, () => {
      unmountAll(target);
      for (const dev of loopsOf(image)) execFileSync('losetup', ['--detach', dev], { stdio: 'pipe' });
    });
    ctx = { runner, pool: fsPool(image, target, 'ext4') };
  });

  after(async () => {
    await undo?.();
    await dir?.remove();
  });

  it('builds ext4 in the image, and start mounts it through a loop device: check says active', async () => {
    await backend.buildPool(ctx, { overwrite: false, noOverwrite: true });
    expect(blkidType(image)).to.equal('ext4');
    expect(await backend.checkPool(ctx)).to.equal(false);
    await backend.startPool(ctx);
    const loops = loopsOf(image);
    expect(loops).to.have.length(1);
    expect(findmnt(target)?.source).to.equal(loops[0]);
    expect(await backend.checkPool(ctx)).to.equal(true, 'the mount of /dev/loopN reading the image is the pool\'s');
  });

  it('start again mounts nothing more; formatting the mounted image is refused', async () => {
    await backend.startPool(ctx);
    expect(mountCountAt(target)).to.equal(1);
    expect(loopsOf(image)).to.have.length(1);
    const err = await rejects(backend.buildPool(ctx, { overwrite: true, noOverwrite: false }));
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect(err.message).to.contain(`is mounted on '${target}'`);
  });

  it('stop unmounts and the loop device goes with it; start again works', async () => {
    const raw = await backend.createVol(ctx, vol('kept.raw', 'raw', BigInt(MiB)));
    await backend.buildVol(ctx, raw, { preallocMetadata: false });
    await backend.stopPool(ctx);
    expect(findmnt(target)).to.equal(undefined);
    expect(loopsOf(image)).to.deep.equal([], 'mount attached the loop device with autoclear: umount detached it');
    expect(await backend.checkPool(ctx)).to.equal(false);
    await backend.startPool(ctx);
    expect(await backend.checkPool(ctx)).to.equal(true);
    expect((await backend.refreshPool(ctx)).volumes.map((v) => v.name)).to.include('kept.raw');
    await backend.stopPool(ctx);
    expect(findmnt(target)).to.equal(undefined);
    expect(loopsOf(image)).to.deep.equal([]);
  });
});

/**
 * For one describe block: an ext4 fs pool named `fs-<label>` built on a loop device of its
 * own (`extra` goes into its definition), started too with `start`; torn down after the block.
 * The fields are set once its before hook has run.
 */
function useBuiltFsPool(label: string, opts: { extra?: Partial<PoolDefinition>; start?: boolean } = {}) {
  const f = { backend: new FsBackend(), target: '', ctx: undefined as unknown as PoolContext, loop: undefined as LoopDevice | undefined };
  let dirs: ReturnType<typeof targetsDir> | undefined;
  before(async function () {
    if (skipReason) this.skip();
    f.loop = attachLoop(32 * MiB, `fs-${label}`);
    dirs = targetsDir(label);
    f.target = dirs.track(join(dirs.root, 'pool'));
    f.ctx = { runner: new ExecRunner(), pool: { ...fsPool(f.loop.device, f.target, 'ext4'), name: `fs-${label}`, ...opts.extra } };
    await f.backend.buildPool(f.ctx, { overwrite: true, noOverwrite: false });
    if (opts.start) await f.backend.startPool(f.ctx);
  });
  after(async () => {
    await dirs?.teardown();
    await f.loop?.detach();
  });
  return f;
}

describe('fs pool stop with something mounted over the pool, or still in use', function () {
  this.timeout(120_000);
  const f = useBuiltFsPool('covered');

  afterEach(() => {
    // whatever a test left: the tmpfs on top first, then the pool's own mount
    unmountAll(f.target);
  });

  it('a tmpfs mounted over the started pool: stop is FAILED_PRECONDITION naming it, and unmounts nothing', async () => {
    await f.backend.startPool(f.ctx);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', '--', 'cistern-cover', f.target], { stdio: 'pipe' });
    const err = await rejects(f.backend.stopPool(f.ctx));
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect(err.message).to.contain(`'cistern-cover' (tmpfs) mounted over`).and.to.contain(f.loop!.device);
    expect(mountCountAt(f.target)).to.equal(2, 'both the pool and the tmpfs stay mounted');
    // once the tmpfs is gone the pool stops as usual
    execFileSync('umount', ['--', f.target], { stdio: 'pipe' });
    await f.backend.stopPool(f.ctx);
    expect(mountCountAt(f.target)).to.equal(0);
  });

  it('a stop that fails (target busy) keeps the directory the pool started with: a tmpfs mounted over it later is not the pool', async () => {
    await f.backend.startPool(f.ctx);
    const busy = openSync(join(f.target, 'held'), 'w');
    try {
      const err = await rejects(f.backend.stopPool(f.ctx));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain('busy');
    } finally {
      closeSync(busy);
    }
    // the pool is still active; what is mounted over its target now is not its filesystem
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', '--', 'cistern-cover', f.target], { stdio: 'pipe' });
    const err = await rejects(f.backend.refreshPool(f.ctx));
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect(err.message).to.contain(`is not the directory pool 'fs-covered' started with`);
    const err2 = await rejects(f.backend.createVol(f.ctx, vol('stray.raw', 'raw', BigInt(MiB))).then((v) => f.backend.buildVol(f.ctx, v, { preallocMetadata: false })));
    expect(err2).to.be.instanceOf(FailedPreconditionError);
    expect(readdirSync(f.target)).to.deep.equal([]);
  });
});

describe('fs pool mounted read-only (fs:mount_opts ro)', function () {
  this.timeout(120_000);
  const f = useBuiltFsPool('ro', { extra: { mountOptions: ['ro'] }, start: true });

  it('a volume create is FAILED_PRECONDITION naming the volume and the read-only filesystem once, not the agent\'s descriptor path', async () => {
    expect(findmnt(f.target)?.options.split(',')).to.include('ro');
    const err = await rejects(f.backend.createVol(f.ctx, vol('disk.raw', 'raw', BigInt(MiB))).then((v) => f.backend.buildVol(f.ctx, v, { preallocMetadata: false })));
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect(err.message).to.contain(`'${join(f.target, 'disk.raw')}'`).and.to.contain('read-only file system');
    expect(err.message).to.not.contain('/proc/self/fd');
    expect(err.message.match(/EROFS/g) ?? []).to.have.length(1);
  });
});
