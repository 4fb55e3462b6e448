// The disk backend against a recording runner: every command line of every operation,
// exactly. A small in-memory gpt "disk" answers parted and partx like the real tools
// (captured on this machine) and creates/removes the partition "nodes" as files.
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PoolType, Tristate, VolumeDefinition, WipeAlgorithm, type PoolDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { DiskBackend } from '../../../libs/backends/disk.js';
import { diskSource } from '../../../libs/backends/disk/paths.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import type { PoolContext } from '../../../libs/backends/backend.js';
import type { CommandRunner } from '../../../libs/backends/runner.js';
import { CancelledError } from '../../../libs/errors/errors.js';
import { DOS_PRINT, DOS_TYPES } from './parted-parse.test.js';
import { rejects } from '../../support/rejects.js';

const MiB = 1024n * 1024n;
const SIZE = 100n * MiB;
const FIRST = 17408n; // gpt: first usable byte
const LAST = SIZE - 16897n; // gpt: last usable byte (inclusive)

interface Part {
  n: number;
  start: bigint;
  end: bigint; // inclusive
}

/** An in-memory gpt disk behind `parted` and `partx`. */
class FakeGpt {
  label = 'gpt';
  parts: Part[] = [];
  constructor(readonly device: string) {}

  print(): string {
    const lines = ['BYT;', `${this.device}:${SIZE}B:loopback:512:512:${this.label}:Loopback device:;`];
    let pos = FIRST;
    for (const p of [...this.parts].sort((a, b) => (a.start < b.start ? -1 : 1))) {
      if (p.start > pos) lines.push(`1:${pos}B:${p.start - 1n}B:${p.start - pos}B:free;`);
      lines.push(`${p.n}:${p.start}B:${p.end}B:${p.end - p.start + 1n}B::primary:;`);
      pos = p.end + 1n;
    }
    if (pos <= LAST) lines.push(`1:${pos}B:${LAST}B:${LAST - pos + 1n}B:free;`);
    lines.push('CHS;', `${this.device}:401,144,1:loopback:512:512:${this.label}:Loopback device:;`, '401:255:2:261kB;');
    return lines.join('\n') + '\n';
  }

  install(runner: RecordingRunner): void {
    runner.on(['parted', '-s', '-m', '--', this.device], () => ({ stdout: this.print() }));
    runner.on(['partx', '-g', '-o', 'NR,TYPE', '--', this.device], () => ({
      stdout: this.parts.map((p) => ` ${p.n} 0fc63daf-8483-4772-8e79-3d69d8477de4\n`).join(''),
    }));
    runner.on(['partx', '-u', '--', this.device], {});
    runner.on(['parted', '-s', this.device, 'mklabel'], (argv) => {
      this.label = argv[4]!;
      this.parts = [];
    });
    runner.on(['parted', this.device, 'mkpart', '--script'], (argv) => {
      const start = BigInt(argv[5]!.slice(0, -1));
      const end = BigInt(argv[6]!.slice(0, -1));
      let n = 1;
      while (this.parts.some((p) => p.n === n)) n++;
      this.parts.push({ n, start, end });
      writeFileSync(`${this.device}p${n}`, '');
    });
    runner.on(['parted', this.device, 'rm', '--script'], (argv) => {
      const n = Number(argv[4]);
      if (!this.parts.some((p) => p.n === n)) return { exitCode: 1, stderr: `Error: Partition doesn't exist.` };
      this.parts = this.parts.filter((p) => p.n !== n);
      unlinkSync(`${this.device}p${n}`);
      return {};
    });
  }
}

describe('disk backend (recording runner)', () => {
  let dir: string;
  let device: string;
  let runner: RecordingRunner;
  let disk: FakeGpt;
  const backend = new DiskBackend({ isBlockDevice: () => true, nodeWaitMs: 50 });

  /** The recording runner as the exec runner treats a cancel: a command under a signal already aborted is refused before it starts (and so is not recorded). */
  const cancellable = (): CommandRunner => ({
    run: (argv, options = {}) =>
      options.signal?.aborted ? Promise.reject(new CancelledError(`cancelled before start: ${argv.join(' ')}`)) : runner.run(argv, options),
  });

  function pool(format = 'gpt', target = '/dev'): PoolDefinition {
    return {
      type: PoolType.POOL_TYPE_DISK,
      name: 'disky',
      uuid: '',
      source: {
        hosts: [],
        devices: [{ path: device, partSeparator: Tristate.TRISTATE_ABSENT, freeExtents: [] }],
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
    };
  }
  const ctx = (format?: string): PoolContext => ({ runner, pool: pool(format) });
  const vol = (name: string, capacity: bigint, format = 'linux') => VolumeDefinition.fromPartial({ name, capacity, target: { format } });
  const print = () => ['parted', '-s', '-m', '--', device, 'unit', 'B', 'print', 'free', 'unit', 'chs', 'print'];
  const types = () => ['partx', '-g', '-o', 'NR,TYPE', '--', device];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cistern-disk-unit-'));
    device = join(dir, 'loop7');
    writeFileSync(device, Buffer.alloc(3 * 1024 * 1024, 0xab));
    runner = new RecordingRunner({ strict: true });
    disk = new FakeGpt(device);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('build', () => {
    it('no_overwrite: probes with blkid, then writes the label; nothing else', async () => {
      runner.on(['blkid'], { exitCode: 2 });
      disk.install(runner);
      await backend.buildPool(ctx('gpt'), { overwrite: false, noOverwrite: true });
      expect(runner.argvs).to.deep.equal([
        ['blkid', '-p', '-o', 'export', '--', device],
        ['parted', '-s', device, 'mklabel', 'gpt'],
        print(),
        types(),
      ]);
    });

    it('no_overwrite on a labelled device: FAILED_PRECONDITION naming what is there, no parted run', async () => {
      runner.on(['blkid'], { stdout: 'DEVNAME=x\nPTTYPE=dos\n' });
      const err = await rejects(backend.buildPool(ctx('gpt'), { overwrite: false, noOverwrite: true }));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.match(/holds a dos partition table/);
      expect(runner.callsOf('parted')).to.deep.equal([]);
    });

    it("overwrite: zeroes the first and last MiB, labels 'dos' as parted's msdos, no probe", async () => {
      disk.install(runner);
      await backend.buildPool(ctx('dos'), { overwrite: true, noOverwrite: false });
      expect(runner.argvs[0]).to.deep.equal(['parted', '-s', device, 'mklabel', 'msdos']);
      expect(runner.callsOf('blkid')).to.deep.equal([]);
      const bytes = readFileSync(device);
      expect(bytes.subarray(0, 1024 * 1024).every((b) => b === 0)).to.equal(true);
      expect(bytes.subarray(1024 * 1024, 2 * 1024 * 1024).every((b) => b === 0xab)).to.equal(true);
      expect(bytes.subarray(2 * 1024 * 1024).every((b) => b === 0)).to.equal(true);
    });

    it('refuses overwrite together with no_overwrite, and a format parted has no label for', async () => {
      expect((await rejects(backend.buildPool(ctx('gpt'), { overwrite: true, noOverwrite: true }))).code).to.equal('INVALID_ARGUMENT');
      expect((await rejects(backend.buildPool(ctx('lvm2'), { overwrite: true, noOverwrite: false }))).code).to.equal('INVALID_ARGUMENT');
      expect(runner.argvs).to.deep.equal([]);
    });
  });

  describe('start', () => {
    it('accepts a table of the pool format', async () => {
      disk.install(runner);
      await backend.startPool(ctx('gpt'));
      expect(runner.argvs).to.deep.equal([print(), types()]);
    });

    it('refuses a table of another format, naming both', async () => {
      disk.install(runner);
      const err = await rejects(backend.startPool(ctx('dos')));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.match(/has a 'gpt' partition table but the pool's format is 'dos'/);
    });

    it('refuses a table of a label no disk pool takes (amiga, atari ...) without proposing that label as the pool format', async () => {
      disk.label = 'amiga';
      disk.install(runner);
      const err = await rejects(backend.startPool(ctx('dos')));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.match(/has a 'amiga' partition table but the pool's format is 'dos'/);
      // 'amiga' is refused as a pool format (INVALID_ARGUMENT): the error must not send the user there
      expect(err.message).not.to.match(/define the pool with format 'amiga'/);
      expect(err.message).to.match(/no disk pool format takes it; allowed: dos, dvh, gpt, mac, bsd, pc98, sun/);
    });

    it('refuses a device without a table', async () => {
      runner.on(['parted'], { exitCode: 1, stdout: `BYT;\n${device}:${SIZE}B:file:512:512:unknown::;\n`, stderr: `Error: ${device}: unrecognised disk label\n` });
      runner.on(['partx'], { exitCode: 1 });
      const err = await rejects(backend.startPool(ctx('gpt')));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.match(/no partition table .* build the pool/);
    });

    it('refuses a device that does not exist', async () => {
      device = join(dir, 'missing0');
      const err = await rejects(backend.startPool(ctx('gpt')));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.match(/doesn't exist/);
    });
  });

  describe('refresh', () => {
    it('lists partitions as block volumes with key, path, sizes, type and extent; free extents per device', async () => {
      disk.parts = [
        { n: 1, start: FIRST, end: FIRST + 10n * MiB - 1n },
        { n: 3, start: 30n * MiB, end: 40n * MiB - 1n },
      ];
      disk.install(runner);
      const r = await backend.refreshPool(ctx());
      expect(runner.argvs).to.deep.equal([print(), types()]);
      expect(r.volumes.map((v) => [v.name, v.key, v.target?.path, v.capacity, v.allocation, v.target?.format])).to.deep.equal([
        ['loop7p1', `${device}p1`, `${device}p1`, 10n * MiB, 10n * MiB, 'linux'],
        ['loop7p3', `${device}p3`, `${device}p3`, 10n * MiB, 10n * MiB, 'linux'],
      ]);
      expect(r.volumes[1]!.sourceDevices).to.deep.equal([{ path: device, extents: [{ start: 30n * MiB, end: 40n * MiB }] }]);
      expect(r.runtime.devices![0]!.freeExtents).to.deep.equal([
        { start: FIRST + 10n * MiB, end: 30n * MiB },
        { start: 40n * MiB, end: LAST + 1n },
      ]);
      // libvirt's capacity: the furthest end of a partition or free extent (the backup gpt header is not in it)
      expect(r.runtime.capacity).to.equal(LAST + 1n);
      expect(r.runtime.allocation).to.equal(20n * MiB);
      expect(r.runtime.available).to.equal(30n * MiB - FIRST - 10n * MiB + (LAST + 1n - 40n * MiB));
    });

    it('reads dos extended/logical partitions: the extended volume is allocated by its logical ones', async () => {
      runner.on(['parted'], { stdout: DOS_PRINT.replaceAll('/dev/loop2', device) });
      runner.on(['partx'], { stdout: DOS_TYPES });
      const r = await backend.refreshPool(ctx('dos'));
      const ext = r.volumes.find((v) => v.name === 'loop7p4')!;
      expect(ext.target?.format).to.equal('extended');
      expect(ext.capacity).to.equal(52485120n);
      expect(ext.allocation).to.equal(5481984n + 5483008n);
    });
  });

  describe('a device named through a link (/dev/disk/by-id/...)', () => {
    it('names and finds the partitions after the node the link leads to, as libvirt_parthelper does', async () => {
      mkdirSync(join(dir, 'by-id'));
      const link = join(dir, 'by-id', 'ata-DISK_1');
      symlinkSync(device, link);
      disk = new FakeGpt(link); // parted and partx are given the pool's own path
      disk.parts = [{ n: 1, start: FIRST, end: FIRST + MiB - 1n }];
      disk.install(runner);
      const linked = { ...ctx(), pool: { ...pool(), source: { ...pool().source!, devices: [{ path: link, partSeparator: Tristate.TRISTATE_ABSENT, freeExtents: [] }] } } };
      const r = await backend.refreshPool(linked);
      expect(r.volumes.map((v) => [v.name, v.target?.path])).to.deep.equal([['loop7p1', `${device}p1`]]);
    });
  });

  describe('create', () => {
    it('checks, then runs exactly: print, mkpart in bytes, print, partx -u; the node exists afterwards', async () => {
      disk.install(runner);
      const planned = await backend.createVol(ctx(), vol('loop7p1', 10n * MiB));
      expect(planned.key).to.equal(`${device}p1`);
      expect(runner.argvs).to.deep.equal([print(), types()]);
      runner.reset();
      await backend.buildVol(ctx(), planned, { preallocMetadata: false });
      expect(runner.argvs).to.deep.equal([
        print(),
        types(),
        ['parted', device, 'mkpart', '--script', 'primary', `${FIRST}B`, `${FIRST + 10n * MiB - 1n}B`],
        print(),
        types(),
        ['partx', '-u', '--', device],
      ]);
      expect(existsSync(`${device}p1`)).to.equal(true);
    });

    it('a name that is not the next partition name: INVALID_ARGUMENT saying which is expected; nothing runs but the read', async () => {
      disk.parts = [{ n: 1, start: FIRST, end: FIRST + MiB - 1n }];
      disk.install(runner);
      const err = await rejects(backend.createVol(ctx(), vol('loop7p5', MiB)));
      expect(err.code).to.equal('INVALID_ARGUMENT');
      expect(err.message).to.match(/invalid partition name 'loop7p5', expected 'loop7p2'/);
      expect(runner.argvs).to.deep.equal([print(), types()]);
    });

    it('larger than every free extent: RESOURCE_EXHAUSTED, no mkpart', async () => {
      disk.install(runner);
      const err = await rejects(backend.createVol(ctx(), vol('loop7p1', 200n * MiB)));
      expect(err.code).to.equal('RESOURCE_EXHAUSTED');
      expect(runner.argvs).to.deep.equal([print(), types()]);
    });

    it('an unknown partition type or no capacity: INVALID_ARGUMENT before any command', async () => {
      disk.install(runner);
      expect((await rejects(backend.createVol(ctx(), vol('loop7p1', MiB, 'ntfs')))).code).to.equal('INVALID_ARGUMENT');
      expect((await rejects(backend.createVol(ctx(), vol('loop7p1', 0n)))).code).to.equal('INVALID_ARGUMENT');
      expect(runner.argvs).to.deep.equal([]);
    });

    it('removes the partition again when parted gave it another number than planned (a failed create leaves nothing)', async () => {
      // a parted that numbers the new partition 5 instead of 1
      runner.on(['parted', device, 'mkpart', '--script'], (argv) => {
        disk.parts.push({ n: 5, start: BigInt(argv[5]!.slice(0, -1)), end: BigInt(argv[6]!.slice(0, -1)) });
        writeFileSync(`${device}p5`, '');
      });
      disk.install(runner);
      const planned = await backend.createVol(ctx(), vol('loop7p1', MiB));
      runner.reset();
      const err = await rejects(backend.buildVol(ctx(), planned, { preallocMetadata: false }));
      expect(err.code).to.equal('INTERNAL');
      expect(err.message).to.match(/created partition 5 \('loop7p5'\), not the expected 'loop7p1'/);
      expect(runner.argvs).to.deep.include(['parted', device, 'rm', '--script', '5']);
      expect(disk.parts).to.deep.equal([]);
    });

    it('a mkpart that fails after writing the table (killed, cancelled) leaves no partition behind', async () => {
      runner.on(['parted', device, 'mkpart', '--script'], (argv) => {
        disk.parts.push({ n: 1, start: BigInt(argv[5]!.slice(0, -1)), end: BigInt(argv[6]!.slice(0, -1)) });
        writeFileSync(`${device}p1`, '');
        return { exitCode: 137, stderr: 'killed' };
      });
      disk.install(runner);
      const planned = await backend.createVol(ctx(), vol('loop7p1', MiB));
      const err = await rejects(backend.buildVol(ctx(), planned, { preallocMetadata: false }));
      expect(err.message).to.match(/killed|137/);
      expect(runner.argvs).to.deep.include(['parted', device, 'rm', '--script', '1']);
      expect(disk.parts).to.deep.equal([]);
    });
    describe('cancelled after mkpart has written the table', () => {
      const rm1 = () => ['parted', device, 'rm', '--script', '1'];

      it('a cancel as mkpart finishes still finds the new partition and removes it (a failed create leaves nothing)', async () => {
        const controller = new AbortController();
        runner.on(['parted', device, 'mkpart', '--script'], (argv) => {
          disk.parts.push({ n: 1, start: BigInt(argv[5]!.slice(0, -1)), end: BigInt(argv[6]!.slice(0, -1)) });
          writeFileSync(`${device}p1`, '');
          controller.abort(); // the client gives up just as parted is done
        });
        disk.install(runner);
        const planned = await backend.createVol(ctx(), vol('loop7p1', MiB));
        const err = await rejects(backend.buildVol({ runner: cancellable(), pool: pool(), signal: controller.signal }, planned, { preallocMetadata: false }));
        expect(err.code).to.equal('CANCELLED');
        expect(runner.argvs).to.deep.include(rm1());
        expect(disk.parts).to.deep.equal([]);
      });

      it('a cancel while the kernel is told: the partition is removed and the kernel told again, not under the spent signal', async () => {
        const controller = new AbortController();
        let syncs = 0;
        runner.on(['partx', '-u', '--', device], () => {
          if (++syncs > 1) return {};
          controller.abort(); // partx is killed by the cancel
          throw new CancelledError(`command cancelled: partx -u -- ${device}`);
        });
        // a partition already there: the table is not empty after the removal, so the kernel is told
        disk.parts = [{ n: 1, start: FIRST, end: FIRST + MiB - 1n }];
        writeFileSync(`${device}p1`, '');
        disk.install(runner);
        const planned = await backend.createVol(ctx(), vol('loop7p2', MiB));
        runner.reset();
        const err = await rejects(backend.buildVol({ runner: cancellable(), pool: pool(), signal: controller.signal }, planned, { preallocMetadata: false }));
        expect(err.code).to.equal('CANCELLED');
        expect(disk.parts.map((p) => p.n)).to.deep.equal([1]);
        const rm2 = ['parted', device, 'rm', '--script', '2'].join(' ');
        const argvs = runner.argvs.map((a) => a.join(' '));
        expect(argvs.slice(argvs.indexOf(rm2))).to.deep.equal([rm2, ...[print(), types(), ['partx', '-u', '--', device]].map((a) => a.join(' '))]);
      });
    });
  });

  describe('delete', () => {
    it("removes the named partition by its own number: 'parted DEV rm --script 3' for loop7p3, never 'p3'", async () => {
      disk.parts = [
        { n: 1, start: FIRST, end: FIRST + MiB - 1n },
        { n: 3, start: 30n * MiB, end: 40n * MiB - 1n },
      ];
      writeFileSync(`${device}p1`, '');
      writeFileSync(`${device}p3`, '');
      disk.install(runner);
      await backend.deleteVol(ctx(), vol('loop7p3', 0n));
      expect(runner.argvs).to.deep.equal([print(), types(), ['parted', device, 'rm', '--script', '3'], print(), types(), ['partx', '-u', '--', device]]);
      expect(disk.parts.map((p) => p.n)).to.deep.equal([1]);
      expect(existsSync(`${device}p3`)).to.equal(false);
    });

    it('a cancel as parted rm finishes: the delete happened, so it succeeds, and the kernel is told', async () => {
      disk.parts = [
        { n: 1, start: FIRST, end: FIRST + MiB - 1n },
        { n: 3, start: 30n * MiB, end: 40n * MiB - 1n },
      ];
      writeFileSync(`${device}p1`, '');
      writeFileSync(`${device}p3`, '');
      const controller = new AbortController();
      runner.on(['parted', device, 'rm', '--script'], (argv) => {
        disk.parts = disk.parts.filter((p) => p.n !== Number(argv[4]));
        unlinkSync(`${device}p${argv[4]}`);
        controller.abort(); // the client gives up just as parted is done
      });
      disk.install(runner);
      await backend.deleteVol({ runner: cancellable(), pool: pool(), signal: controller.signal }, vol('loop7p3', 0n));
      expect(disk.parts.map((p) => p.n)).to.deep.equal([1]);
      expect(runner.argvs.at(-1)).to.deep.equal(['partx', '-u', '--', device]);
    });

    it('a device without a p separator: sdb2 is number 2', async () => {
      device = join(dir, 'sdb');
      writeFileSync(device, '');
      disk = new FakeGpt(device);
      disk.parts = [{ n: 2, start: 30n * MiB, end: 40n * MiB - 1n }];
      writeFileSync(`${device}p2`, ''); // the fake's node naming; the backend looks for sdb2
      disk.install(runner);
      await backend.deleteVol(ctx(), vol('sdb2', 0n)).catch(() => undefined);
      expect(runner.argvs[2]).to.deep.equal(['parted', device, 'rm', '--script', '2']);
    });

    it('a partition in use, or a later logical one the delete would renumber: FAILED_PRECONDITION, no parted rm', async () => {
      const busyAt = (suffix: string) => new DiskBackend({ isBlockDevice: () => true, nodeWaitMs: 50, isBusy: (path) => path.endsWith(suffix) });
      runner.on(['parted'], { stdout: DOS_PRINT.replaceAll('/dev/loop2', device) });
      runner.on(['partx'], { stdout: DOS_TYPES });
      const renumbered = await rejects(busyAt('p6').deleteVol(ctx('dos'), vol('loop7p5', 0n)));
      expect(renumbered.code).to.equal('FAILED_PRECONDITION');
      expect(renumbered.message).to.match(/renumbers the logical partitions after it, and loop7p6 is in use/);
      const itself = await rejects(busyAt('p3').deleteVol(ctx('dos'), vol('loop7p3', 0n)));
      expect(itself.message).to.match(/partition 'loop7p3' is in use/);
      expect(runner.callsOf('parted').some((a) => a.includes('rm'))).to.equal(false);
    });

    it('an unknown volume: NOT_FOUND, nothing removed', async () => {
      disk.install(runner);
      const err = await rejects(backend.deleteVol(ctx(), vol('loop7p9', 0n)));
      expect(err.code).to.equal('NOT_FOUND');
      expect(runner.callsOf('parted').some((a) => a[2] === 'rm')).to.equal(false);
    });
  });

  describe('data path', () => {
    it('wipe with scrub algorithms runs scrub -f -p ALG -- (the node, opened); trim is unsupported', async () => {
      disk.parts = [{ n: 1, start: FIRST, end: FIRST + MiB - 1n }];
      disk.install(runner);
      runner.on(['scrub'], {});
      // the node, as a file: the wipe opens it first (refused while it is mounted or held)
      writeFileSync(`${device}p1`, Buffer.alloc(4096));
      await backend.wipeVol(ctx(), vol('loop7p1', 0n), WipeAlgorithm.WIPE_ALGORITHM_NNSA);
      expect(runner.callsOf('scrub').map((argv) => argv.slice(0, -1))).to.deep.equal([['scrub', '-f', '-p', 'nnsa', '--']]);
      expect((await rejects(backend.wipeVol(ctx(), vol('loop7p1', 0n), WipeAlgorithm.WIPE_ALGORITHM_TRIM))).code).to.equal('UNIMPLEMENTED');
    });

    it('a scrub wipe runs on the descriptor the wipe opened and checked (held exclusively while scrub runs), not on the node\'s name', async () => {
      disk.parts = [{ n: 1, start: FIRST, end: FIRST + MiB - 1n }];
      disk.install(runner);
      writeFileSync(`${device}p1`, Buffer.alloc(4096));
      // a mount between a check and a scrub by name would have scrub write under it; a
      // descriptor still open while scrub runs keeps the device held (O_EXCL) and is the device checked
      const seen: string[] = [];
      runner.on(['scrub'], (argv) => void seen.push(readlinkSync(argv[argv.length - 1]!)));
      await backend.wipeVol(ctx(), vol('loop7p1', 0n), WipeAlgorithm.WIPE_ALGORITHM_DOD);
      const argv = runner.callsOf('scrub')[0]!;
      expect(argv.slice(0, -1)).to.deep.equal(['scrub', '-f', '-p', 'dod', '--']);
      expect(argv[argv.length - 1]).to.match(new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
      expect(seen).to.deep.equal([`${device}p1`]);
    });

    it('wiping an extended partition is not supported (libvirt)', async () => {
      runner.on(['parted'], { stdout: DOS_PRINT.replaceAll('/dev/loop2', device) });
      runner.on(['partx'], { stdout: DOS_TYPES });
      const err = await rejects(backend.wipeVol(ctx('dos'), vol('loop7p4', 0n), WipeAlgorithm.WIPE_ALGORITHM_ZERO));
      expect(err.code).to.equal('UNIMPLEMENTED');
      expect(err.message).to.match(/cannot wipe extended partition/);
    });

    it('declares what libvirt 9.0 implements for disk pools: no resize; pool delete and check', () => {
      expect(backend.operations.has('resizeVol')).to.equal(false);
      expect(backend.operations.has('deletePool')).to.equal(true);
      expect(backend.operations.has('checkPool')).to.equal(true);
      expect(backend.operations.has('uploadVol')).to.equal(true);
      expect(backend.poolFormats).to.include.members(['dos', 'dvh', 'gpt', 'mac', 'bsd', 'pc98', 'sun']);
    });
  });
});

describe('disk pool source device refusals name the definition field', () => {
  const pool = (paths: string[]): PoolDefinition =>
    ({ type: PoolType.POOL_TYPE_DISK, name: 'd', uuid: '', source: { devices: paths.map((path) => ({ path, partSeparator: 0, freeExtents: [] })) }, target: { path: '/dev' } }) as unknown as PoolDefinition;

  it('a count other than one is source.devices; a relative path source.devices[0].path, as the XML layer names them', () => {
    for (const paths of [[], ['/dev/loop1', '/dev/loop2']]) {
      let err: (Error & { field?: string }) | undefined;
      try {
        diskSource(pool(paths));
      } catch (e) {
        err = e as Error & { field?: string };
      }
      expect(err?.field, err?.message).to.equal('source.devices');
    }
    let rel: (Error & { field?: string }) | undefined;
    try {
      diskSource(pool(['dev/loop1']));
    } catch (e) {
      rel = e as Error & { field?: string };
    }
    expect(rel?.field, rel?.message).to.equal('source.devices[0].path');
  });
});
