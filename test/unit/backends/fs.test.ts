// The fs backend with the recording runner and a scripted mount table: the exact mkfs,
// blkid, mount and umount command lines of build / start / stop, recognising a pool that
// is already mounted, and every refusal (no_overwrite on a device holding data, a missing
// device, a device mounted elsewhere, something else on the target) running nothing.
// The "device" is a regular file in a temp directory (it exists; matched by path, or
// through the backing file of the loop device mount attaches for it, in a sysfs fixture).
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBackend, mkfsArgv } from '../../../libs/backends/fs.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { findBackend } from '../../../libs/backends/registry.js';
import '../../../libs/backends/index.js';
import type { PoolContext } from '../../../libs/backends/backend.js';
import { FailedPreconditionError, InvalidArgumentError } from '../../../libs/errors/errors.js';
import { PoolType, type PoolDefinition, type VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { rejects } from '../../support/rejects.js';
import { fileVolume } from '../../support/volume-definitions.js';
import { adoptPoolMount } from '../../../libs/backends/pool-mounts.js';

const BASE_MOUNTINFO = `27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
22 27 0:21 / /proc rw,relatime - proc proc rw
`;

function mountLine(id: number, source: string, target: string, fsType = 'ext4'): string {
  const esc = (s: string) => s.replace(/ /g, '\\040');
  return `${id} 27 7:9 / ${esc(target)} rw,nosuid,nodev,noexec,relatime - ${fsType} ${esc(source)} rw\n`;
}

function fsPool(device: string | string[], target: string, format = 'ext4', extra: Partial<PoolDefinition> = {}): PoolDefinition {
  const devices = (Array.isArray(device) ? device : [device]).map((path) => ({ path, partSeparator: 0, freeExtents: [] }));
  return {
    type: PoolType.POOL_TYPE_FS,
    name: 'fsp',
    uuid: '',
    source: {
      hosts: [],
      devices,
      dir: '',
      adapter: undefined,
      name: '',
      format,
      protocolVersion: '',
      initiatorIqn: '',
      auth: undefined,
      vendor: '',
      product: '',
    },
    target: { path: target, permissions: undefined },
    features: undefined,
    mountOptions: [],
    ...extra,
  };
}

function rawVol(name: string, capacity: bigint): VolumeDefinition {
  return fileVolume(name, 'raw', capacity);
}

describe('fs backend (recording runner)', () => {
  let root: string;
  let device: string;
  let target: string;
  let runner: RecordingRunner;
  let mountinfo: string;
  let backend: FsBackend;
  let ctx: PoolContext;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cistern-fs-unit-'));
    device = join(root, 'dev0');
    writeFileSync(device, Buffer.alloc(4096));
    target = join(root, 'pool');
    runner = new RecordingRunner({ strict: true });
    mountinfo = BASE_MOUNTINFO;
    // loop devices' backing files come from this sysfs (empty unless a test adds one); mkfs has
    // a helper for every format here, as the commands are recorded, not run
    const helpers = join(root, 'all-helpers');
    mkdirSync(helpers);
    for (const type of ['ext2', 'ext3', 'ext4', 'ufs', 'iso9660', 'udf', 'gfs', 'gfs2', 'vfat', 'hfsplus', 'xfs', 'ocfs2', 'vmfs']) {
      writeFileSync(join(helpers, `mkfs.${type}`), '#!/bin/sh\n', { mode: 0o755 });
    }
    backend = new FsBackend({ mountTable: async () => mountinfo, sysfsRoot: join(root, 'sys'), mkfsSearchPath: [helpers] });
    ctx = { runner, pool: fsPool(device, target) };
  });

  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('is registered for type fs with libvirt\'s formats, default auto, and the dir pool\'s operations', () => {
    const b = findBackend(PoolType.POOL_TYPE_FS);
    expect(b).to.be.instanceOf(FsBackend);
    expect(b!.poolFormats).to.deep.equal(['auto', 'ext2', 'ext3', 'ext4', 'ufs', 'iso9660', 'udf', 'gfs', 'gfs2', 'vfat', 'hfs+', 'xfs', 'ocfs2', 'vmfs']);
    expect(b!.defaultPoolFormat).to.equal('auto');
    expect(b!.defaultVolumeFormat).to.equal('raw');
    expect([...b!.operations].sort()).to.deep.equal(
      ['buildPool', 'buildVol', 'buildVolFrom', 'checkPool', 'createVol', 'deletePool', 'deleteVol', 'downloadVol', 'refreshPool', 'resizeVol', 'startPool', 'stopPool', 'uploadVol', 'wipeVol'].sort(),
    );
  });

  describe('build', () => {
    it('without flags only makes the target directory (0711), as libvirt: no mkfs', async () => {
      await backend.buildPool!(ctx, { overwrite: false, noOverwrite: false });
      expect(statSync(target).isDirectory()).to.equal(true);
      expect(statSync(target).mode & 0o777).to.equal(0o711);
      expect(runner.argvs).to.deep.equal([]);
    });

    const cases: Array<[string, string[]]> = [
      ['ext2', ['-t', 'ext2', '-F']],
      ['ext3', ['-t', 'ext3', '-F']],
      ['ext4', ['-t', 'ext4', '-F']],
      ['xfs', ['-t', 'xfs', '-f']],
      ['vfat', ['-t', 'vfat', '-I']],
      ['hfs+', ['-t', 'hfsplus']],
      ['ufs', ['-t', 'ufs']],
      ['iso9660', ['-t', 'iso9660']],
      ['udf', ['-t', 'udf']],
      ['gfs', ['-t', 'gfs']],
      ['gfs2', ['-t', 'gfs2']],
      ['ocfs2', ['-t', 'ocfs2']],
      ['vmfs', ['-t', 'vmfs']],
    ];
    for (const [format, args] of cases) {
      it(`with overwrite runs mkfs ${args.join(' ')} -- /dev/fd/3 (the device opened and checked) for ${format}, without probing`, async () => {
        runner.on(['mkfs'], {});
        ctx.pool = fsPool(device, target, format);
        await backend.buildPool!(ctx, { overwrite: true, noOverwrite: false });
        expect(runner.argvs).to.deep.equal([['mkfs', ...args, '--', '/dev/fd/3']]);
        expect(runner.calls[0]!.options?.fds).to.have.length(1);
        expect(existsSync(target)).to.equal(true);
      });
    }

    it('with no_overwrite probes the device with blkid first, then runs mkfs, both on the one descriptor opened', async () => {
      runner.on(['blkid'], { exitCode: 2 }).on(['mkfs'], {});
      ctx.pool = fsPool(device, target, 'xfs');
      await backend.buildPool!(ctx, { overwrite: false, noOverwrite: true });
      expect(runner.argvs).to.deep.equal([
        ['blkid', '-p', '-o', 'export', '--', '/dev/fd/3'],
        ['mkfs', '-t', 'xfs', '-f', '--', '/dev/fd/3'],
      ]);
      const [probe, mkfs] = runner.calls.map((c) => c.options?.fds);
      expect(probe).to.have.length(1);
      expect(mkfs).to.deep.equal(probe);
    });

    it('refuses to format an image file that backs a loop device (swap or a mount through it): FAILED_PRECONDITION naming it, no mkfs', async () => {
      // sysfs as the kernel shows an attached loop device: /sys/block/loop5/loop/backing_file
      mkdirSync(join(root, 'sys', 'block', 'loop5', 'loop'), { recursive: true });
      writeFileSync(join(root, 'sys', 'block', 'loop5', 'loop', 'backing_file'), `${device}\n`);
      mkdirSync(join(root, 'sys', 'block', 'loop6'), { recursive: true }); // detached: no loop/ directory
      ctx.pool = fsPool(device, target, 'ext4');
      const err = await rejects(backend.buildPool!(ctx, { overwrite: true, noOverwrite: false }));
      expect(err.code, err.message).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.contain(`source image '${device}' backs /dev/loop5`).and.contain('losetup -d /dev/loop5');
      expect(runner.callsOf('mkfs')).to.deep.equal([]);
      // detached, it is formatted
      rmSync(join(root, 'sys', 'block', 'loop5'), { recursive: true });
      runner.on(['mkfs'], {});
      await backend.buildPool!(ctx, { overwrite: true, noOverwrite: false });
      expect(runner.callsOf('mkfs')).to.deep.equal([['mkfs', '-t', 'ext4', '-F', '--', '/dev/fd/3']]);
    });

    it('refuses a source that is a directory, a FIFO or a character device: FAILED_PRECONDITION, no blkid, no mkfs, no mount', async () => {
      const dir = join(root, 'a-directory');
      mkdirSync(dir);
      const fifo = join(root, 'a-fifo');
      execFileSync('mkfifo', [fifo]);
      for (const [source, what] of [[dir, 'a directory'], [fifo, 'a FIFO'], ['/dev/null', 'a character device']] as const) {
        ctx.pool = fsPool(source, target, 'ext4');
        const build = await rejects(backend.buildPool!(ctx, { overwrite: true, noOverwrite: false }));
        expect(build.code, build.message).to.equal('FAILED_PRECONDITION');
        expect(build.message).to.contain(`source device '${source}' of pool`).and.contain(`is ${what}; an fs pool's source is a block device or a filesystem image file`);
        const start = await rejects(backend.startPool(ctx));
        expect(start.code, start.message).to.equal('FAILED_PRECONDITION');
        expect(start.message).to.contain(`is ${what}`);
      }
      expect(runner.argvs).to.deep.equal([]);
    });

    it('with no_overwrite refuses a device holding a filesystem: FAILED_PRECONDITION, no mkfs, no directory', async () => {
      runner.on(['blkid'], { stdout: `DEVNAME=${device}\nUUID=1234\nBLOCK_SIZE=1024\nTYPE=ext4\nUSAGE=filesystem\n` });
      const err = await rejects(backend.buildPool!(ctx, { overwrite: false, noOverwrite: true }));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain(device).and.to.contain('ext4');
      expect(runner.callsOf('mkfs')).to.deep.equal([]);
      expect(existsSync(target)).to.equal(false);
    });

    it('with no_overwrite on a device already holding the pool\'s own format: says the pool is built (start it), not only to overwrite it', async () => {
      // libvirt 9.0: "Storage pool already built: Device '...' already formatted using 'ext4'"
      runner.on(['blkid'], { stdout: `DEVNAME=${device}\nUUID=1234\nBLOCK_SIZE=1024\nTYPE=ext4\nUSAGE=filesystem\n` });
      const err = await rejects(backend.buildPool!(ctx, { overwrite: false, noOverwrite: true }));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain(`'${device}' already holds a filesystem of the pool's format 'ext4'`);
      expect(err.message).to.contain('start the pool');
      expect(runner.callsOf('mkfs')).to.deep.equal([]);
    });

    it('with no_overwrite on a device holding another filesystem: says it does not match the pool\'s format', async () => {
      // libvirt 9.0: "Format of device '...' does not match the expected format 'xfs', forced overwrite is necessary"
      ctx.pool = fsPool(device, target, 'xfs');
      runner.on(['blkid'], { stdout: `DEVNAME=${device}\nUUID=1234\nBLOCK_SIZE=1024\nTYPE=ext4\nUSAGE=filesystem\n` });
      const err = await rejects(backend.buildPool!(ctx, { overwrite: false, noOverwrite: true }));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain(`'${device}' holds ext4 data, not the pool's format 'xfs'`);
      expect(runner.callsOf('mkfs')).to.deep.equal([]);
    });

    it('with no_overwrite refuses a device holding a partition table', async () => {
      runner.on(['blkid'], { stdout: `DEVNAME=${device}\nPTUUID=abcd\nPTTYPE=gpt\n` });
      const err = await rejects(backend.buildPool!(ctx, { overwrite: false, noOverwrite: true }));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain('gpt partition table');
      expect(runner.callsOf('mkfs')).to.deep.equal([]);
    });

    it('refuses overwrite together with no_overwrite', async () => {
      const err = await rejects(backend.buildPool!(ctx, { overwrite: true, noOverwrite: true }));
      expect(err).to.be.instanceOf(InvalidArgumentError);
      expect(runner.argvs).to.deep.equal([]);
      expect(existsSync(target)).to.equal(false);
    });

    it('refuses to format a pool whose format is auto', async () => {
      ctx.pool = fsPool(device, target, 'auto');
      const err = await rejects(backend.buildPool!(ctx, { overwrite: true, noOverwrite: false }));
      expect(err).to.be.instanceOf(InvalidArgumentError);
      expect(err.message).to.match(/format 'auto'/);
      expect(runner.argvs).to.deep.equal([]);
    });

    it('a device that does not exist: FAILED_PRECONDITION naming it', async () => {
      const missing = join(root, 'no-such-device');
      ctx.pool = fsPool(missing, target);
      const err = await rejects(backend.buildPool!(ctx, { overwrite: true, noOverwrite: false }));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain(`source device '${missing}' does not exist`);
      expect(runner.argvs).to.deep.equal([]);
      expect(existsSync(target)).to.equal(false);
    });

    it('a format this host has no mkfs helper for (iso9660, vmfs): FAILED_PRECONDITION on source.format naming the helper and the formats it can make, before anything is made', async () => {
      // mkfs runs mkfs.TYPE found in /sbin/fs.d, /sbin/fs, /sbin, then PATH; this host has two
      const sbin = join(root, 'sbin');
      mkdirSync(sbin);
      for (const helper of ['mkfs.ext4', 'mkfs.xfs']) writeFileSync(join(sbin, helper), '#!/bin/sh\n', { mode: 0o755 });
      writeFileSync(join(sbin, 'mkfs.vfat'), 'not executable\n', { mode: 0o644 });
      const options = { mountTable: async () => mountinfo, sysfsRoot: join(root, 'sys'), mkfsSearchPath: [join(root, 'no-such-dir'), sbin] };
      const here = new FsBackend(options);
      for (const format of ['iso9660', 'vmfs', 'vfat']) {
        ctx.pool = fsPool(device, target, format);
        for (const flags of [{ overwrite: true, noOverwrite: false }, { overwrite: false, noOverwrite: true }]) {
          const err = await rejects(here.buildPool!(ctx, flags));
          expect(err.code, err.message).to.equal('FAILED_PRECONDITION');
          expect(err.message).to.contain(`mkfs.${format}`).and.contain(`'${format}'`).and.contain('formats mkfs can make on this host: ext4, xfs');
          expect(err.details).to.include({ field: 'source.format', format, helper: `mkfs.${format}` });
        }
      }
      // the refusal of format auto lists what this host can make too
      ctx.pool = fsPool(device, target, 'auto');
      const auto = await rejects(here.buildPool!(ctx, { overwrite: true, noOverwrite: false }));
      expect(auto).to.be.instanceOf(InvalidArgumentError);
      expect(auto.message).to.contain('set one of ext4, xfs');
      expect(runner.argvs).to.deep.equal([]);
      expect(existsSync(target)).to.equal(false);
    });

    it('a device mounted somewhere: FAILED_PRECONDITION, never formatted', async () => {
      mountinfo = BASE_MOUNTINFO + mountLine(50, device, '/srv/elsewhere');
      const err = await rejects(backend.buildPool!(ctx, { overwrite: true, noOverwrite: false }));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain("is mounted on '/srv/elsewhere'");
      expect(runner.argvs).to.deep.equal([]);
    });

    it('needs exactly one source device and a known format', async () => {
      ctx.pool = fsPool([], target);
      expect(await rejects(backend.buildPool!(ctx, { overwrite: true, noOverwrite: false }))).to.be.instanceOf(InvalidArgumentError);
      ctx.pool = fsPool([device, device], target);
      const two = await rejects(backend.startPool!(ctx));
      expect(two).to.be.instanceOf(InvalidArgumentError);
      expect(two.message).to.contain('exactly one source device');
      // the definition's own field names, as the XML layer and the other refusals name them
      expect((two as InvalidArgumentError).field).to.equal('source.devices');
      ctx.pool = fsPool(device, target, 'ntfs');
      const bad = await rejects(backend.buildPool!(ctx, { overwrite: true, noOverwrite: false }));
      expect(bad).to.be.instanceOf(InvalidArgumentError);
      expect(bad.message).to.contain("unknown pool format 'ntfs'");
      ctx.pool = fsPool('relative/dev', target);
      const relative = await rejects(backend.startPool!(ctx));
      expect(relative).to.be.instanceOf(InvalidArgumentError);
      expect((relative as InvalidArgumentError).field).to.equal('source.devices[0].path');
      expect(runner.argvs).to.deep.equal([]);
    });

    it('mkfsArgv names the tool and puts -- before the device', () => {
      expect(mkfsArgv('ext4', '/dev/loop3', '/sbin/mkfs')).to.deep.equal(['/sbin/mkfs', '-t', 'ext4', '-F', '--', '/dev/loop3']);
    });
  });

  describe('delete', () => {
    beforeEach(() => mkdirSync(target));

    it('of a pool whose target still has a filesystem mounted (its own, or another): FAILED_PRECONDITION naming the mount, the directory stays', async () => {
      mountinfo += mountLine(40, device, target);
      let err = await rejects(backend.deletePool!(ctx));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.equal(`cannot delete pool 'fsp': its target '${target}' still has '${device}' (ext4) mounted on it; unmount it first (umount '${target}'), then delete the pool`);
      expect(statSync(target).isDirectory()).to.equal(true);
      mountinfo = BASE_MOUNTINFO + mountLine(41, '/dev/sdz1', target);
      err = await rejects(backend.deletePool!(ctx));
      expect(err.message).to.contain(`still has '/dev/sdz1' (ext4) mounted on it`);
      expect(runner.argvs).to.deep.equal([]);
    });
  });

  describe('start, check, stop', () => {
    beforeEach(() => mkdirSync(target));

    /** What mount(8) does to the table: the device on the target. */
    const mountsDevice = () => {
      mountinfo += mountLine(40, device, target);
    };

    it('start mounts with nodev,nosuid,noexec and -t FORMAT', async () => {
      runner.on(['mount'], mountsDevice);
      expect(await backend.checkPool!(ctx)).to.equal(false);
      await backend.startPool!(ctx);
      expect(runner.argvs).to.deep.equal([['mount', '-o', 'nodev,nosuid,noexec', '-t', 'ext4', '--', device, target]]);
    });

    it('start appends the pool\'s fs:mount_opts; format auto gives no -t', async () => {
      runner.on(['mount'], mountsDevice);
      ctx.pool = fsPool(device, target, 'auto', { mountOptions: ['sync', 'lazytime'] });
      await backend.startPool!(ctx);
      expect(runner.argvs).to.deep.equal([['mount', '-o', 'nodev,nosuid,noexec,sync,lazytime', '--', device, target]]);
    });

    it('a mount that put something else on the target (the source name swapped meanwhile) is undone: FAILED_PRECONDITION', async () => {
      runner.on(['mount'], () => {
        mountinfo += mountLine(40, '/dev/sdz1', target);
      });
      runner.on(['umount'], () => {
        mountinfo = BASE_MOUNTINFO;
      });
      const err = await rejects(backend.startPool!(ctx));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain(`mount put '/dev/sdz1' on '${target}', not the device or file checked before`);
      expect(runner.argvs).to.deep.equal([
        ['mount', '-o', 'nodev,nosuid,noexec', '-t', 'ext4', '--', device, target],
        ['umount', '--', target],
      ]);
    });

    it('a mount that landed elsewhere (the target swapped for a link meanwhile) is undone there: FAILED_PRECONDITION', async () => {
      runner.on(['mount'], () => {
        mountinfo += mountLine(40, device, '/etc');
      });
      runner.on(['umount'], () => {
        mountinfo = BASE_MOUNTINFO;
      });
      const err = await rejects(backend.startPool!(ctx));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain(`pool target '${target}' changed`).and.contain(`on '/etc' (unmounted again)`);
      expect(runner.callsOf('umount')).to.deep.equal([['umount', '--', '/etc']]);
    });

    it('a pool already mounted on its target is active: start mounts nothing', async () => {
      mountinfo = BASE_MOUNTINFO + mountLine(50, device, target);
      expect(await backend.checkPool!(ctx)).to.equal(true);
      await backend.startPool!(ctx);
      expect(runner.argvs).to.deep.equal([]);
    });

    it('a different device mounted on the target: FAILED_PRECONDITION, nothing mounted', async () => {
      mountinfo = BASE_MOUNTINFO + mountLine(50, '/dev/loop7', target, 'xfs');
      expect(await backend.checkPool!(ctx)).to.equal(false);
      const err = await rejects(backend.startPool!(ctx));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain("already has '/dev/loop7' (xfs) mounted on it");
      expect(runner.argvs).to.deep.equal([]);
    });

    it('the device mounted elsewhere: FAILED_PRECONDITION, nothing mounted', async () => {
      mountinfo = BASE_MOUNTINFO + mountLine(50, device, '/srv/other pool');
      const err = await rejects(backend.startPool!(ctx));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain("is already mounted on '/srv/other pool'");
      expect(runner.argvs).to.deep.equal([]);
    });

    it('a device that does not exist: FAILED_PRECONDITION naming it', async () => {
      const missing = join(root, 'gone');
      ctx.pool = fsPool(missing, target);
      const err = await rejects(backend.startPool!(ctx));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.equal(`source device '${missing}' of pool 'fsp' does not exist`);
      expect(runner.argvs).to.deep.equal([]);
    });

    it('a missing target directory: FAILED_PRECONDITION asking for a build', async () => {
      rmSync(target, { recursive: true });
      const err = await rejects(backend.startPool!(ctx));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain('build the pool first');
      expect(runner.argvs).to.deep.equal([]);
    });

    it('a failing mount (no filesystem) is FAILED_PRECONDITION with mount\'s message', async () => {
      runner.on(['mount'], { exitCode: 32, stderr: `mount: ${target}: wrong fs type, bad option, bad superblock on ${device}, missing codepage or helper program, or other error.\n` });
      const err = await rejects(backend.startPool!(ctx));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain('wrong fs type');
    });

    it('stop unmounts the target when the pool is mounted there, and nothing otherwise', async () => {
      runner.on(['umount'], {});
      mountinfo = BASE_MOUNTINFO + mountLine(50, device, target);
      await backend.stopPool!(ctx);
      expect(runner.argvs).to.deep.equal([['umount', '--', target]]);
      runner.reset();
      mountinfo = BASE_MOUNTINFO;
      await backend.stopPool!(ctx);
      mountinfo = BASE_MOUNTINFO + mountLine(50, '/dev/loop7', target);
      await backend.stopPool!(ctx);
      expect(runner.argvs).to.deep.equal([]);
    });

    it("a restarted agent's recorded mount covered by the pool's source mounted again: the check takes the top one, and the stop unmounts it", async () => {
      // the record names mount 50 (the image's loop device, its name moved since); the source was mounted over it again
      adoptPoolMount(ctx.pool, { mountId: 50, major: 7, minor: 9 });
      mountinfo = BASE_MOUNTINFO + mountLine(50, '/dev/loop3', target) + mountLine(51, device, target);
      expect(await backend.checkPool!(ctx)).to.equal(true);
      runner.on(['umount'], {});
      await backend.stopPool!(ctx);
      expect(runner.argvs).to.deep.equal([['umount', '--', target]]);
    });

    describe('an image file, mounted through the loop device mount(8) attached for it', () => {
      /** sysfs as the kernel shows loop device `n` reading `file`: by number and by name. */
      function loopSysfs(n: number, file: string): void {
        for (const dir of [join(root, 'sys', 'dev', 'block', `7:${n}`, 'loop'), join(root, 'sys', 'block', `loop${n}`, 'loop')]) {
          mkdirSync(dir, { recursive: true });
          writeFileSync(join(dir, 'backing_file'), `${file}\n`);
        }
      }

      it('is the pool\'s mount: check is true, start mounts nothing, stop unmounts', async () => {
        loopSysfs(9, device);
        mountinfo = BASE_MOUNTINFO + mountLine(50, '/dev/loop9', target);
        expect(await backend.checkPool!(ctx)).to.equal(true);
        await backend.startPool!(ctx);
        expect(runner.argvs).to.deep.equal([]);
        runner.on(['umount'], {});
        await backend.stopPool!(ctx);
        expect(runner.argvs).to.deep.equal([['umount', '--', target]]);
      });

      it('is matched by the loop device\'s name when the mount shows another device number (btrfs)', async () => {
        loopSysfs(3, device);
        mountinfo = BASE_MOUNTINFO + `50 27 0:48 / ${target} rw,nosuid,nodev,noexec,relatime - btrfs /dev/loop3 rw\n`;
        expect(await backend.checkPool!(ctx)).to.equal(true);
      });

      it('mounted elsewhere: start refused, nothing mounted; formatting refused', async () => {
        loopSysfs(9, device);
        mountinfo = BASE_MOUNTINFO + mountLine(50, '/dev/loop9', '/srv/elsewhere');
        const err = await rejects(backend.startPool!(ctx));
        expect(err).to.be.instanceOf(FailedPreconditionError);
        expect(err.message).to.contain("is already mounted on '/srv/elsewhere'");
        const fmt = await rejects(backend.buildPool!(ctx, { overwrite: true, noOverwrite: false }));
        expect(fmt.message).to.contain("is mounted on '/srv/elsewhere'");
        expect(runner.argvs).to.deep.equal([]);
      });

      it('a loop device reading another file, or a deleted one, is something else on the target', async () => {
        const other = join(root, 'other.img');
        writeFileSync(other, Buffer.alloc(4096));
        for (const backing of [other, `${device} (deleted)`]) {
          rmSync(join(root, 'sys'), { recursive: true, force: true });
          loopSysfs(9, backing);
          mountinfo = BASE_MOUNTINFO + mountLine(50, '/dev/loop9', target);
          expect(await backend.checkPool!(ctx), backing).to.equal(false);
          const err = await rejects(backend.startPool!(ctx));
          expect(err.message).to.contain("already has '/dev/loop9' (ext4) mounted on it");
          await backend.stopPool!(ctx);
        }
        expect(runner.argvs).to.deep.equal([]);
      });
    });

    it('stop on a busy target: FAILED_PRECONDITION', async () => {
      runner.on(['umount'], { exitCode: 32, stderr: `umount: ${target}: target is busy.` });
      mountinfo = BASE_MOUNTINFO + mountLine(50, device, target);
      const err = await rejects(backend.stopPool!(ctx));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain('busy');
    });
  });

  describe('volumes and delete (the dir pool on the mount point)', () => {
    beforeEach(() => mkdirSync(target));

    it('creates, lists and deletes volumes in the target as a dir pool does', async () => {
      const v = await backend.createVol!(ctx, rawVol('disk1.img', 1024n * 1024n));
      expect(v.key).to.equal(join(target, 'disk1.img'));
      await backend.buildVol!(ctx, v, { preallocMetadata: false });
      const scan = await backend.refreshPool(ctx);
      expect(scan.volumes.map((x) => [x.name, x.capacity, x.target?.format])).to.deep.equal([['disk1.img', 1024n * 1024n, 'raw']]);
      expect(scan.runtime.capacity > 0n).to.equal(true);
      await backend.deleteVol!(ctx, v);
      expect((await backend.refreshPool(ctx)).volumes).to.deep.equal([]);
      expect(runner.argvs).to.deep.equal([]);
    });

    it('an upload with --sparse stays sparse: the flag reaches the dir pool\'s upload', async () => {
      const v = await backend.createVol!(ctx, rawVol('thin.img', 0n));
      await backend.buildVol!(ctx, v, { preallocMetadata: false });
      const data = Buffer.alloc(1 << 20);
      data.fill(7, 0, 4096);
      await backend.uploadVol!(ctx, v, 0n, 0n, (async function* () { yield data; })(), { sparse: true });
      const path = join(target, 'thin.img');
      expect(readFileSync(path).equals(data)).to.equal(true);
      expect(statSync(path).blocks * 512).to.be.at.most(2 * 4096);
    });

    it('delete removes the target directory', async () => {
      await backend.deletePool!(ctx);
      expect(existsSync(target)).to.equal(false);
    });
  });
});
