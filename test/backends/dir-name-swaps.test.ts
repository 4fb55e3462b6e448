// Someone who can write in a dir pool's directory (the qemu user, say) swaps a name the agent
// reserved or checked for a link to a file outside the pool, at the moment between the agent's
// reservation and the tool's write: the real tool runs, and the file outside must not change.
// The swap is made deterministic by a runner that performs it when it sees the tool's command
// line and then runs the real tool (test/support/swapping-runner.ts).
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, openSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirBackend } from '../../libs/backends/dir.js';
import { createDirectoryVolume, createRaw } from '../../libs/backends/dir/create-raw.js';
import type { ResolvedCreate } from '../../libs/backends/dir/volume-plan.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { PoolContext } from '../../libs/backends/backend.js';
import { PoolType, WipeAlgorithm, type PoolDefinition, type VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { hasTool } from '../support/index.js';
import { usePrivateTmpdir } from '../support/private-tmpdir.js';
import { rejects } from '../support/rejects.js';
import { attachLoop, loopDevicesAvailable, type LoopDevice } from '../support/loop.js';
import { makeTempDir, registerCleanup } from '../support/cleanup.js';
import { fileVolume as vol } from '../support/volume-definitions.js';
import { SwappingRunner } from '../support/swapping-runner.js';
import { collect } from '../support/volume-data.js';

const MiB = 1024n * 1024n;

function poolDef(path: string): PoolDefinition {
  return { type: PoolType.POOL_TYPE_DIR, name: 'p', uuid: '', source: undefined, target: { path, permissions: undefined }, features: undefined, mountOptions: [] };
}


const SECRET = 'root:$y$j9T$not-a-real-hash:19000:0:99999:7:::\n';

describe('dir backend: a name swapped for a link out of the pool between reservation and write', function () {
  usePrivateTmpdir();
  this.timeout(60_000);
  let root: string;
  let target: string;
  let outside: string;
  const backend = new DirBackend();

  before(function () {
    if (!hasTool('qemu-img')) this.skip(); // skip reason: qemu-img is not installed (Debian package qemu-utils)
  });
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cistern-name-swap-'));
    target = join(root, 'pool');
    mkdirSync(target);
    outside = join(root, 'shadow');
    writeFileSync(outside, SECRET, { mode: 0o640 });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** A runner that, when qemu-img `verb` runs, moves the volume's file aside and puts a link to `outside` in its place. */
  const swapOnQemuImg = (verb: string, name: string) =>
    new SwappingRunner(
      (argv) => argv[0] === 'qemu-img' && argv[1] === verb,
      () => {
        renameSync(join(target, name), join(target, `${name}.aside`));
        symlinkSync(outside, join(target, name));
      },
    );

  const build = async (ctx: PoolContext, v: VolumeDefinition, options = { preallocMetadata: false }) =>
    backend.buildVol(ctx, await backend.createVol(ctx, v), options);

  const formatOf = (path: string) => (JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '--', path], { encoding: 'utf8' })) as { format: string }).format;

  for (const [format, name] of [
    ['qed', 'v.qed'],
    ['vmdk', 'v.vmdk'],
  ] as const) {
    it(`qemu-img create (${format}) writes the reserved file, not the link's target`, async () => {
      const runner = swapOnQemuImg('create', name);
      await build({ runner, pool: poolDef(target) }, vol(name, format, MiB));
      expect(runner.swapped).to.equal(1);
      expect(readFileSync(outside, 'utf8')).to.equal(SECRET);
      expect(formatOf(join(target, `${name}.aside`))).to.equal(format);
    });
  }

  it('qemu-img create with a relative backing path (-u) writes the reserved file and records the path as given', async () => {
    writeFileSync(join(target, 'base.img'), Buffer.alloc(4096));
    const runner = swapOnQemuImg('create', 'top.qed');
    await build({ runner, pool: poolDef(target) }, vol('top.qed', 'qed', MiB, { backingPath: 'base.img' }));
    expect(runner.swapped).to.equal(1);
    expect(readFileSync(outside, 'utf8')).to.equal(SECRET);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '--', join(target, 'top.qed.aside')], { encoding: 'utf8' })) as { 'backing-filename'?: string };
    expect(info['backing-filename']).to.equal('base.img');
  });

  it('qemu-img convert (a clone into qcow2) writes the reserved file, not the link target', async () => {
    writeFileSync(join(target, 'src.img'), Buffer.alloc(64 * 1024, 7));
    const runner = swapOnQemuImg('convert', 'dst.qcow2');
    const ctx = { runner, pool: poolDef(target) };
    const dst = await backend.createVol(ctx, vol('dst.qcow2', 'qcow2'));
    await backend.buildVolFrom(ctx, dst, { pool: ctx.pool, volume: vol('src.img', '') }, { preallocMetadata: false });
    expect(runner.swapped).to.equal(1);
    expect(readFileSync(outside, 'utf8')).to.equal(SECRET);
    expect(formatOf(join(target, 'dst.qcow2.aside'))).to.equal('qcow2');
  });

  describe('delete, writes and downloads: the pool target swapped for a link to another directory', () => {
    let elsewhere: string;
    beforeEach(() => {
      elsewhere = join(root, 'etc');
      mkdirSync(elsewhere);
      writeFileSync(join(elsewhere, 'shadow'), SECRET);
    });

    const swapTarget = () => {
      renameSync(target, `${target}.moved`);
      symlinkSync(elsewhere, target);
    };

    it('is refused, FAILED_PRECONDITION naming the target; the file in the other directory stays', async () => {
      const ctx = { runner: new ExecRunner(), pool: poolDef(target) };
      await backend.startPool(ctx);
      await build(ctx, vol('shadow', 'raw', MiB));
      swapTarget();
      const err = await rejects(backend.deleteVol(ctx, vol('shadow', '')));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.contain(`pool target '${target}' is not the directory pool 'p' started with`);
      expect(readFileSync(join(elsewhere, 'shadow'), 'utf8')).to.equal(SECRET);
      expect(existsSync(join(`${target}.moved`, 'shadow'))).to.equal(true);
      await backend.stopPool(ctx);
    });

    it('download, upload, wipe and resize through it are refused, FAILED_PRECONDITION; the file there is neither read nor changed', async () => {
      const ctx = { runner: new ExecRunner(), pool: poolDef(target) };
      await backend.startPool(ctx);
      await build(ctx, vol('shadow', 'raw', MiB));
      swapTarget();
      const download = (): Promise<Buffer> => collect(backend.downloadVol(ctx, vol('shadow', ''), 0n, 0n));
      async function* data(): AsyncIterable<Buffer> {
        yield Buffer.from('OVERWRITTEN');
      }
      const refusals = [
        await rejects(download()),
        await rejects(backend.uploadVol(ctx, vol('shadow', ''), 0n, 0n, data())),
        await rejects(backend.wipeVol(ctx, vol('shadow', ''), WipeAlgorithm.WIPE_ALGORITHM_ZERO)),
        await rejects(backend.resizeVol(ctx, vol('shadow', ''), 2n * MiB, { allocate: false, delta: false, shrink: false })),
      ];
      for (const err of refusals) {
        expect(err.code, err.message).to.equal('FAILED_PRECONDITION');
        expect(err.message).to.contain(`pool target '${target}' is not the directory pool 'p' started with`);
      }
      expect(readFileSync(join(elsewhere, 'shadow'), 'utf8')).to.equal(SECRET);
      await backend.stopPool(ctx);
    });

    it('a refresh, of the pool or of one volume, is refused, FAILED_PRECONDITION: the other directory is neither listed nor read', async () => {
      const ctx = { runner: new ExecRunner(), pool: poolDef(target) };
      await backend.startPool(ctx);
      await build(ctx, vol('disk', 'raw', MiB));
      swapTarget();
      for (const err of [await rejects(backend.refreshPool(ctx)), await rejects(backend.refreshVol(ctx, vol('shadow', '')))]) {
        expect(err.code, err.message).to.equal('FAILED_PRECONDITION');
        expect(err.message).to.contain(`pool target '${target}' is not the directory pool 'p' started with`);
        expect(err.message).not.to.contain('shadow');
      }
      await backend.stopPool(ctx);
    });

    it('a resize reads the header of the volume it opened, not of a file where the swapped target leads: FAILED_PRECONDITION, no size of that file shown', async () => {
      const ctx = { runner: new ExecRunner(), pool: poolDef(target) };
      await backend.startPool(ctx);
      await build(ctx, vol('disk', 'raw', MiB));
      // a 1 GiB qcow2 where the link will lead: by name, its header would be what the resize
      // judges (a 2 MiB resize is a shrink of it) and its size would be in the error
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '--', join(elsewhere, 'disk'), '1G']);
      const before = readFileSync(join(elsewhere, 'disk'));
      swapTarget();
      const err = await rejects(backend.resizeVol(ctx, vol('disk', ''), 2n * MiB, { allocate: false, delta: false, shrink: false }));
      expect(err.code, err.message).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.contain(`pool target '${target}' is not the directory pool 'p' started with`);
      expect(err.message).not.to.contain(String(1024n * MiB));
      expect(readFileSync(join(elsewhere, 'disk')).equals(before)).to.equal(true);
      await backend.stopPool(ctx);
    });

    it('creates and clones into it are refused, FAILED_PRECONDITION; nothing is made in the other directory', async () => {
      const ctx = { runner: new ExecRunner(), pool: poolDef(target) };
      await backend.startPool(ctx);
      await build(ctx, vol('src', 'raw', MiB));
      swapTarget();
      const made = [
        ['raw', vol('new.raw', 'raw', MiB)],
        ['raw, allocated', vol('full.raw', 'raw', MiB, { allocation: MiB })],
        ['qcow2 (in-process)', vol('new.qcow2', 'qcow2', MiB)],
        ['qed (qemu-img)', vol('new.qed', 'qed', MiB)],
        ['directory', vol('new.dir', 'dir', 0n)],
      ] as const;
      for (const [what, v] of made) {
        const err = await rejects(build(ctx, v));
        expect(err.code, `${what}: ${err.message}`).to.equal('FAILED_PRECONDITION');
        expect(err.message).to.contain(`pool target '${target}' is not the directory pool 'p' started with`);
      }
      // a source of that name where the link leads: the clone neither reads it nor writes there
      writeFileSync(join(elsewhere, 'src'), SECRET);
      const clone = await rejects(backend.buildVolFrom(ctx, vol('copy', 'raw', MiB), { pool: ctx.pool, volume: vol('src', '') }, { preallocMetadata: false }));
      expect(clone.code, clone.message).to.be.oneOf(['FAILED_PRECONDITION', 'PERMISSION_DENIED']);
      expect(readdirSync(elsewhere).sort()).to.deep.equal(['shadow', 'src']);
      await backend.stopPool(ctx);
    });

    it('a restarted agent (the check of a running pool) remembers the directory it finds, and refuses it swapped later', async () => {
      const ctx = { runner: new ExecRunner(), pool: poolDef(target) };
      expect(await backend.checkPool(ctx)).to.equal(true);
      writeFileSync(join(target, 'shadow'), 'a volume');
      swapTarget();
      expect((await rejects(backend.deleteVol(ctx, vol('shadow', '')))).code).to.equal('FAILED_PRECONDITION');
      expect(readFileSync(join(elsewhere, 'shadow'), 'utf8')).to.equal(SECRET);
      await backend.stopPool(ctx);
    });

    it('a pool directory that is gone: the delete is done, as for a vanished volume (a restarted agent cleaning up)', async () => {
      const ctx = { runner: new ExecRunner(), pool: poolDef(join(root, 'never-made')) };
      await backend.deleteVol(ctx, vol('v', ''));
    });

    it('a target that is a link when the pool starts is followed, as libvirt follows it; a stop and start takes a new directory', async () => {
      const link = join(root, 'images');
      symlinkSync(target, link);
      const ctx = { runner: new ExecRunner(), pool: poolDef(link) };
      await backend.startPool(ctx);
      await build(ctx, vol('a', 'raw', MiB));
      await build(ctx, vol('b', 'raw', MiB));
      await backend.deleteVol(ctx, vol('a', ''));
      expect(existsSync(join(target, 'a'))).to.equal(false);
      rmSync(link);
      symlinkSync(elsewhere, link);
      expect((await rejects(backend.deleteVol(ctx, vol('shadow', '')))).code).to.equal('FAILED_PRECONDITION');
      await backend.stopPool(ctx);
      await backend.startPool(ctx);
      writeFileSync(join(elsewhere, 'c'), 'a volume of the new directory');
      await backend.deleteVol(ctx, vol('c', ''));
      expect(existsSync(join(elsewhere, 'c'))).to.equal(false);
      expect(readFileSync(join(elsewhere, 'shadow'), 'utf8')).to.equal(SECRET);
      await backend.stopPool(ctx);
    });
  });

  it('qemu-img resize of a format it cannot resize (vmdk) opens the checked descriptor, not a link put in place of the name', async () => {
    await build({ runner: new ExecRunner(), pool: poolDef(target) }, vol('d.vmdk', 'vmdk', MiB));
    const runner = swapOnQemuImg('resize', 'd.vmdk');
    const err = await rejects(backend.resizeVol({ runner, pool: poolDef(target) }, vol('d.vmdk', ''), 2n * MiB, { allocate: false, delta: false, shrink: false }));
    expect(runner.swapped).to.equal(1);
    expect(err.message).to.contain('does not support resize');
    expect(readFileSync(outside, 'utf8')).to.equal(SECRET);
  });

  it('fallocate of a large raw allocation allocates the reserved file, not a link put in place of the name', async () => {
    const runner = new SwappingRunner(
      (argv) => argv[0] === 'fallocate',
      () => {
        renameSync(join(target, 'big.raw'), join(target, 'big.raw.aside'));
        symlinkSync(outside, join(target, 'big.raw'));
      },
    );
    await build({ runner, pool: poolDef(target) }, vol('big.raw', 'raw', 65n * MiB));
    expect(runner.swapped).to.equal(1);
    expect(statSync(outside).size).to.equal(SECRET.length); // by name, fallocate extends it to 65 MiB
    expect(readFileSync(outside, 'utf8')).to.equal(SECRET);
    expect(statSync(join(target, 'big.raw.aside')).blocks * 512).to.be.at.least(65 * 1024 * 1024);
  });

  /**
   * A ResolvedCreate whose path, read once the volume's name exists, first swaps it for a link
   * to `outside`: the swap lands right before the next use of the name, wherever that is.
   */
  const swappingPlan = (plan: Omit<ResolvedCreate, 'path'>, path: string, aside: () => void) => {
    let swapped = false;
    return {
      ...plan,
      get path() {
        if (!swapped && existsSync(path)) {
          swapped = true;
          aside();
          symlinkSync(outside, path);
        }
        return path;
      },
    } as ResolvedCreate;
  };

  it("a directory volume's mode and owner are set on the directory made, not on a link put in its place", async () => {
    chmodSync(outside, 0o640);
    const path = join(target, 'dirvol');
    const r = swappingPlan({ name: 'dirvol', format: 'dir', mode: 0o777, uid: -1, gid: -1 }, path, () => renameSync(path, `${path}.aside`));
    // the link is refused where the name is opened (O_NOFOLLOW): ELOOP
    const err = await rejects(createDirectoryVolume(r));
    expect(err.message).to.match(/set permissions of .*dirvol/);
    expect(statSync(outside).mode & 0o777).to.equal(0o640);
    expect(readFileSync(outside, 'utf8')).to.equal(SECRET);
  });

  describe('a reflink clone (xfs on a loop device)', function () {
    let loop: LoopDevice | undefined;
    let mountPoint = '';
    let unmount: (() => Promise<void>) | undefined;

    before(function () {
      if (!loopDevicesAvailable() || !hasTool('mkfs.xfs')) this.skip(); // skip reason: needs root, loop devices and mkfs.xfs (xfsprogs) for a filesystem that shares extents
      loop = attachLoop(320 * 1024 * 1024, 'reflink-swap'); // mkfs.xfs refuses filesystems under 300 MiB
      execFileSync('mkfs.xfs', ['-q', '-m', 'reflink=1', '--', loop.device], { stdio: 'pipe' });
      const dir = makeTempDir('cistern-reflink-swap-');
      mountPoint = join(dir.path, 'mnt');
      mkdirSync(mountPoint);
      execFileSync('mount', ['-t', 'xfs', '--', loop.device, mountPoint], { stdio: 'pipe' });
      unmount = registerCleanup(`unmount ${mountPoint}`, async () => {
        execFileSync('umount', ['--', mountPoint], { stdio: 'pipe' });
        await dir.remove();
      });
    });
    after(async () => {
      await unmount?.();
      await loop?.detach();
    });

    it('shares the extents into the reserved file and sets its size there, not on a link put in place of the name', async () => {
      const pool = join(mountPoint, 'pool');
      mkdirSync(pool);
      writeFileSync(join(pool, 'src.img'), Buffer.alloc(64 * 1024, 9));
      const path = join(pool, 'clone.img');
      const r = swappingPlan({ name: 'clone.img', format: 'raw', capacity: MiB, mode: 0o600, uid: -1, gid: -1 }, path, () => renameSync(path, `${path}.aside`));
      const ctx = { runner: new ExecRunner(), pool: poolDef(pool) };
      const src = openSync(join(pool, 'src.img'), 'r');
      try {
        await createRaw(ctx, r, vol('clone.img', 'raw', MiB), 0n, { fallocate: 'fallocate', chattr: 'chattr' }, { path: join(pool, 'src.img'), fd: src, capacity: 64n * 1024n, reflink: true });
      } finally {
        closeSync(src);
      }
      const clone = readFileSync(existsSync(`${path}.aside`) ? `${path}.aside` : path);
      expect(clone.length).to.equal(Number(MiB));
      expect(clone.subarray(0, 64 * 1024).equals(Buffer.alloc(64 * 1024, 9))).to.equal(true);
      expect(readFileSync(outside, 'utf8')).to.equal(SECRET);
      expect(statSync(outside).mode & 0o777).to.equal(0o640);
      rmSync(pool, { recursive: true, force: true });
    });
  });
});
