// The disk backend against the real parted and partx on loop devices (root): gpt and dos
// tables, partitions created and deleted, free extents checked against parted's own
// `print free`, a dos disk with an extended partition and logical ones, data in and out
// of a partition, and bad input refused with the table (or the device bytes) unchanged.
// Every loop device is detached by its exact name after its partitions are dropped
// (`partx -d`); this kernel has no partition scanner, the nodes come from parted/partx.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, existsSync, openSync, readFileSync, renameSync, statSync, symlinkSync } from 'node:fs';
import { DiskBackend } from '../../libs/backends/disk.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { PoolContext } from '../../libs/backends/backend.js';
import { PoolType, Tristate, VolumeDefinition, WipeAlgorithm, type PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { attachLoop, loopDevicesAvailable, makeTempDir, registerCleanup, type LoopDevice, hasTool } from '../support/index.js';
import { join } from 'node:path';
import { rejects } from '../support/rejects.js';
import { SwappingRunner } from '../support/swapping-runner.js';

const MiB = 1024n * 1024n;

/** parted's own view, read by the test independently of the backend. */
function partedPrint(device: string): string {
  return execFileSync('parted', ['-m', '-s', device, 'unit', 'B', 'print', 'free'], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
}

function partedPartitions(device: string): Array<{ n: number; start: bigint; end: bigint }> {
  return partedPrint(device)
    .split('\n')
    .map((l) => /^(\d+):(\d+)B:(\d+)B:\d+B:(?!free;)/.exec(l))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => ({ n: Number(m[1]), start: BigInt(m[2]!), end: BigInt(m[3]!) + 1n }));
}

/** libvirt 9.0's own reader of a partition table (libparted), when libvirt-daemon is installed. */
const PARTHELPER = '/usr/lib/libvirt/libvirt_parthelper';

/**
 * Free extents as libvirt sees them: libvirt_parthelper's "free" records (NUL-separated
 * path, type, content, start, end, size), with libvirt's rule that the first sector is never
 * free. Without the helper, parted's `print free` (which also shows a dos disk's incomplete
 * last cylinder as free, where libparted's msdos label keeps it as metadata).
 */
function partedFree(device: string): Array<{ start: bigint; end: bigint }> {
  if (existsSync(PARTHELPER)) {
    const f = execFileSync(PARTHELPER, [device], { encoding: 'utf8' }).split('\0');
    const out: Array<{ start: bigint; end: bigint }> = [];
    for (let i = 0; i + 5 < f.length; i += 6) {
      if (f[i + 2] !== 'free') continue;
      const start = BigInt(f[i + 3]!);
      out.push({ start: start === 0n ? 512n : start, end: BigInt(f[i + 4]!) });
    }
    return out.filter((e) => e.start < e.end);
  }
  return partedPrint(device)
    .split('\n')
    .map((l) => /^\d+:(\d+)B:(\d+)B:\d+B:free;/.exec(l))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => ({ start: BigInt(m[1]!) === 0n ? 512n : BigInt(m[1]!), end: BigInt(m[2]!) + 1n }))
    .filter((e) => e.start < e.end);
}

function sha(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** A loop device whose partitions are dropped (partx -d, exact name) before it is detached. */
function attachDisk(size: number, label: string): LoopDevice {
  const loop = attachLoop(size, label);
  const drop = registerCleanup(`partitions of ${loop.device}`, () => {
    try {
      execFileSync('partx', ['-d', '--', loop.device], { stdio: 'pipe' });
    } catch {
      // no partitions left
    }
  });
  return {
    ...loop,
    detach: async () => {
      await drop();
      await loop.detach();
    },
  };
}

function diskPool(device: string, format: string, partSeparator = Tristate.TRISTATE_ABSENT): PoolDefinition {
  return {
    type: PoolType.POOL_TYPE_DISK,
    name: `disk-${format}`,
    uuid: '',
    source: {
      hosts: [],
      devices: [{ path: device, partSeparator, freeExtents: [] }],
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
    target: { path: '/dev', permissions: undefined },
    features: undefined,
    mountOptions: [],
  };
}

const vol = (name: string, capacity: bigint, format = 'linux') => VolumeDefinition.fromPartial({ name, capacity, target: { format } });

const usable = loopDevicesAvailable() && hasTool('parted') && hasTool('partx');

describe('disk pool backend (real parted on loop devices)', function () {
  this.timeout(60_000);
  const backend = new DiskBackend();
  const runner = new ExecRunner();

  before(function () {
    if (!usable) this.skip(); // needs root, losetup, parted and partx (scripts/setup.sh installs parted)
  });

  async function create(ctx: PoolContext, name: string, capacity: bigint, format = 'linux'): Promise<void> {
    const planned = await backend.createVol(ctx, vol(name, capacity, format));
    await backend.buildVol(ctx, planned, { preallocMetadata: false });
  }

  describe('gpt', () => {
    let loop: LoopDevice;
    let ctx: PoolContext;
    let base: string;

    before(() => {
      if (!usable) return;
      loop = attachDisk(64 * 1024 * 1024, 'gpt');
      ctx = { runner, pool: diskPool(loop.device, 'gpt') };
      base = loop.device.slice('/dev/'.length);
    });
    after(async () => loop && (await loop.detach()));

    it('builds a gpt label on an empty device and starts', async () => {
      await backend.buildPool(ctx, { overwrite: false, noOverwrite: true });
      expect(partedPrint(loop.device)).to.match(/:gpt:/);
      await backend.startPool(ctx);
      const r = await backend.refreshPool(ctx);
      expect(r.volumes).to.deep.equal([]);
      // as libvirt: up to the end of the last free extent, not the backup gpt header after it
      expect(r.runtime.capacity).to.equal(64n * MiB - 33n * 512n);
      expect(r.runtime.devices![0]!.freeExtents).to.deep.equal(partedFree(loop.device));
    });

    it('creates several partitions with their /dev nodes, names p1..p3, sizes as asked', async () => {
      await create(ctx, `${base}p1`, 8n * MiB);
      await create(ctx, `${base}p2`, 8n * MiB, 'linux-swap');
      await create(ctx, `${base}p3`, 8n * MiB);
      const r = await backend.refreshPool(ctx);
      expect(r.volumes.map((v) => [v.name, v.key, v.capacity])).to.deep.equal([
        [`${base}p1`, `${loop.device}p1`, 8n * MiB],
        [`${base}p2`, `${loop.device}p2`, 8n * MiB],
        [`${base}p3`, `${loop.device}p3`, 8n * MiB],
      ]);
      for (const v of r.volumes) expect(statSync(v.key).isBlockDevice(), v.key).to.equal(true);
      expect(partedPartitions(loop.device).map((p) => p.n)).to.deep.equal([1, 2, 3]);
      expect(r.runtime.allocation).to.equal(24n * MiB);
      expect(r.runtime.devices![0]!.freeExtents).to.deep.equal(partedFree(loop.device));
    });

    it('deletes the middle partition only; free extents agree with parted print free', async () => {
      await backend.deleteVol(ctx, vol(`${base}p2`, 0n));
      expect(partedPartitions(loop.device).map((p) => p.n)).to.deep.equal([1, 3]);
      expect(existsSync(`${loop.device}p2`)).to.equal(false);
      expect(existsSync(`${loop.device}p1`) && existsSync(`${loop.device}p3`)).to.equal(true);
      const r = await backend.refreshPool(ctx);
      const free = r.runtime.devices![0]!.freeExtents;
      expect(free).to.deep.equal(partedFree(loop.device));
      expect(r.runtime.available).to.equal(free.reduce((s, e) => s + (e.end - e.start), 0n));
    });

    it('refuses a partition larger than any free extent (RESOURCE_EXHAUSTED), table unchanged', async () => {
      const before = partedPrint(loop.device);
      const err = await rejects(create(ctx, `${base}p2`, 60n * MiB));
      expect(err.code).to.equal('RESOURCE_EXHAUSTED');
      expect(partedPrint(loop.device)).to.equal(before);
    });

    it('refuses a name that is not the next partition name (INVALID_ARGUMENT names the expected one), table unchanged', async () => {
      const before = partedPrint(loop.device);
      const err = await rejects(create(ctx, `${base}p7`, MiB));
      expect(err.code).to.equal('INVALID_ARGUMENT');
      expect(err.message).to.contain(`expected '${base}p2'`);
      expect(partedPrint(loop.device)).to.equal(before);
    });

    it('fills the hole left by the deletion with the next name (smallest fitting extent)', async () => {
      await create(ctx, `${base}p2`, 4n * MiB);
      const p2 = partedPartitions(loop.device).find((p) => p.n === 2)!;
      const p1 = partedPartitions(loop.device).find((p) => p.n === 1)!;
      expect(p2.start).to.equal(p1.end);
    });

    it('uploads into, downloads from and wipes a partition', async () => {
      const data = randomBytes(256 * 1024);
      async function* one() {
        yield data;
      }
      const v = vol(`${base}p3`, 0n);
      expect(await backend.uploadVol(ctx, v, 4096n, 0n, one())).to.equal(BigInt(data.length));
      const chunks: Buffer[] = [];
      for await (const c of backend.downloadVol(ctx, v, 4096n, BigInt(data.length))) chunks.push(c);
      expect(Buffer.concat(chunks).equals(data)).to.equal(true);
      await backend.wipeVol(ctx, v, WipeAlgorithm.WIPE_ALGORITHM_ZERO);
      const after: Buffer[] = [];
      for await (const c of backend.downloadVol(ctx, v, 0n, 0n)) after.push(c);
      const all = Buffer.concat(after);
      expect(all.length).to.equal(8 * 1024 * 1024);
      expect(all.every((b) => b === 0)).to.equal(true);
    });

    it('clones a qcow2 image into a new partition as raw data (qemu-img convert, as libvirt 9.0)', async function () {
      if (!hasTool('qemu-img') || !hasTool('qemu-io')) this.skip();
      const tmp = makeTempDir('cistern-disk-clone-');
      try {
        const image = join(tmp.path, 'src.qcow2');
        execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, String(4n * MiB)]);
        execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 1M 64k', image], { stdio: 'pipe' });
        const source = VolumeDefinition.fromPartial({ name: 'src.qcow2', capacity: 4n * MiB, target: { path: image, format: 'qcow2' } });
        const planned = await backend.createVol(ctx, vol(`${base}p4`, 4n * MiB, 'none'));
        await backend.buildVolFrom(ctx, planned, { pool: ctx.pool, volume: source }, { preallocMetadata: false });
        const bytes = readFileSync(`${loop.device}p4`);
        // the guest's data at 1 MiB, zeros elsewhere: no qcow2 header ('QFI\xfb') copied in
        expect(bytes.subarray(1024 * 1024, 1024 * 1024 + 65536).every((b) => b === 0x5a)).to.equal(true);
        expect(bytes.subarray(0, 1024 * 1024).every((b) => b === 0)).to.equal(true);
        // an image's virtual size, not its file size, is what the partition must hold
        const small = await rejects(backend.buildVolFrom(ctx, { ...planned, name: `${base}p5`, capacity: MiB }, { pool: ctx.pool, volume: source }, { preallocMetadata: false }));
        expect(small.code).to.equal('INVALID_ARGUMENT');
        await backend.deleteVol(ctx, vol(`${base}p4`, 0n));
        expect(partedPartitions(loop.device).map((p) => p.n)).to.deep.equal([1, 2, 3]);
      } finally {
        await tmp.remove();
      }
    });

    it('a clone reads its source through the descriptor its check opened: the name swapped for a link while mkpart runs copies (raw) or converts (qcow2) the source, not the link', async function () {
      if (!hasTool('qemu-img') || !hasTool('qemu-io')) this.skip();
      const tmp = makeTempDir('cistern-disk-clone-swap-');
      try {
        for (const format of ['raw', 'qcow2'] as const) {
          const image = join(tmp.path, `src.${format}`);
          const outside = join(tmp.path, `shadow.${format}`);
          for (const [path, pattern] of [[image, '0x5a'], [outside, '0x53']] as const) {
            execFileSync('qemu-img', ['create', '-q', '-f', format, '--', path, String(2n * MiB)]);
            execFileSync('qemu-io', ['-f', format, '-c', `write -P ${pattern} 1M 64k`, path], { stdio: 'pipe' });
          }
          // whoever can write in the source's directory swaps its name while the partition is made
          const swapping = new SwappingRunner(
            (argv) => argv.includes('mkpart'),
            () => {
              renameSync(image, `${image}.aside`);
              symlinkSync(outside, image);
            },
          );
          const swapCtx = { runner: swapping, pool: ctx.pool };
          const source = VolumeDefinition.fromPartial({ name: `src.${format}`, capacity: 2n * MiB, target: { path: image, format } });
          const planned = await backend.createVol(swapCtx, vol(`${base}p4`, 2n * MiB, 'none'));
          await backend.buildVolFrom(swapCtx, planned, { pool: ctx.pool, volume: source }, { preallocMetadata: false });
          expect(swapping.swapped, format).to.equal(1);
          const bytes = readFileSync(`${loop.device}p4`);
          expect(bytes.subarray(1024 * 1024, 1024 * 1024 + 65536).every((b) => b === 0x5a), format).to.equal(true);
          await backend.deleteVol(ctx, vol(`${base}p4`, 0n));
        }
      } finally {
        await tmp.remove();
      }
    });

    it('refuses to relabel (overwrite) or wipe (delete) the table while a partition is in use; device bytes unchanged', async () => {
      // an exclusive open holds the partition as a mount, swap or an LVM PV would
      const held = openSync(`${loop.device}p1`, fsConstants.O_RDONLY | fsConstants.O_EXCL);
      try {
        const before = sha(loop.device);
        const build = await rejects(backend.buildPool({ runner, pool: diskPool(loop.device, 'dos') }, { overwrite: true, noOverwrite: false }));
        expect(build.code).to.equal('FAILED_PRECONDITION');
        expect(build.message).to.contain(`its partition ${loop.device}p1 is in use`);
        const del = await rejects(backend.deletePool(ctx));
        expect(del.code).to.equal('FAILED_PRECONDITION');
        expect(sha(loop.device)).to.equal(before);
        expect(partedPrint(loop.device)).to.match(/:gpt:/);
      } finally {
        closeSync(held);
      }
    });

    it('no_overwrite on a labelled device: FAILED_PRECONDITION, device bytes unchanged', async () => {
      const before = sha(loop.device);
      const err = await rejects(backend.buildPool(ctx, { overwrite: false, noOverwrite: true }));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.match(/gpt partition table/);
      expect(sha(loop.device)).to.equal(before);
    });

    it('refuses to start as a dos pool: FAILED_PRECONDITION naming both formats', async () => {
      const err = await rejects(backend.startPool({ runner, pool: diskPool(loop.device, 'dos') }));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.match(/'gpt' partition table but the pool's format is 'dos'/);
    });

    it('checkPool says active for its own label only; deletePool wipes the table (libvirt 9.0)', async () => {
      expect(await backend.checkPool(ctx)).to.equal(true);
      expect(await backend.checkPool({ runner, pool: diskPool(loop.device, 'dos') })).to.equal(false);
      await backend.deletePool(ctx);
      expect(() => execFileSync('parted', ['-m', '-s', loop.device, 'print'], { stdio: 'pipe', env: { ...process.env, LC_ALL: 'C' } })).to.throw(/unrecognised disk label/i);
      expect(await backend.checkPool(ctx)).to.equal(false);
    });
  });

  describe('a device that came to hold a filesystem over the whole of it (parted reads that as its "loop" label)', () => {
    let loop: LoopDevice;
    let ctx: PoolContext;
    let base: string;

    before(function () {
      if (!usable) return;
      if (!hasTool('mkfs.ext4') || !hasTool('blkid')) this.skip();
      loop = attachDisk(32 * 1024 * 1024, 'wholefs');
      ctx = { runner, pool: diskPool(loop.device, 'gpt') };
      base = loop.device.slice('/dev/'.length);
    });
    after(async () => loop && (await loop.detach()));

    it('is no partition table: refresh, delete, upload and wipe of its phantom partition 1 are refused, the filesystem untouched', async () => {
      await backend.buildPool(ctx, { overwrite: false, noOverwrite: true });
      await backend.startPool(ctx);
      await create(ctx, `${base}p1`, 8n * MiB);
      // the pool is running; the whole device is then formatted (by hand, or by a guest given
      // the disk), and the kernel keeps the partition node it had: parted now prints one
      // partition 1 over the whole device, the filesystem, under its label 'loop'
      execFileSync('mkfs.ext4', ['-q', '-F', loop.device], { stdio: 'pipe' });
      expect(partedPrint(loop.device)).to.match(/:loop:/);
      expect(existsSync(`${loop.device}p1`)).to.equal(true);
      const before = sha(loop.device);
      const refresh = await rejects(backend.refreshPool(ctx));
      expect(refresh.code).to.equal('FAILED_PRECONDITION');
      expect(refresh.message).to.match(/no partition table/);
      expect(await backend.checkPool(ctx)).to.equal(false);
      // parted rm 1 on a 'loop' label writes its own signature over the device's first sector
      // (an XFS or FAT superblock); an upload or wipe of the stale node writes inside the filesystem
      const v = vol(`${base}p1`, 0n);
      const outcomes = [
        await rejects(backend.deleteVol(ctx, v)),
        await rejects(
          backend.uploadVol(
            ctx,
            v,
            0n,
            0n,
            (async function* () {
              yield Buffer.alloc(4096, 0x77);
            })(),
          ),
        ),
        await rejects(backend.wipeVol(ctx, v, WipeAlgorithm.WIPE_ALGORITHM_ZERO)),
      ];
      expect(outcomes.map((e) => e.code)).to.deep.equal(['FAILED_PRECONDITION', 'FAILED_PRECONDITION', 'FAILED_PRECONDITION']);
      expect(sha(loop.device)).to.equal(before);
      expect(execFileSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', loop.device], { encoding: 'utf8' }).trim()).to.equal('ext4');
    });
  });

  describe('dos', () => {
    let loop: LoopDevice;
    let ctx: PoolContext;
    let base: string;

    before(() => {
      if (!usable) return;
      loop = attachDisk(96 * 1024 * 1024, 'dos');
      ctx = { runner, pool: diskPool(loop.device, 'dos') };
      base = loop.device.slice('/dev/'.length);
    });
    after(async () => loop && (await loop.detach()));

    it('overwrites any old content with an msdos label', async () => {
      execFileSync('parted', ['-s', loop.device, 'mklabel', 'gpt']);
      await backend.buildPool(ctx, { overwrite: true, noOverwrite: false });
      expect(partedPrint(loop.device)).to.match(/:msdos:/);
      await backend.startPool(ctx);
    });

    it('more than four partitions: three primary, one extended, logical ones inside it', async () => {
      await create(ctx, `${base}p1`, 8n * MiB);
      await create(ctx, `${base}p2`, 8n * MiB, 'fat32');
      await create(ctx, `${base}p3`, 8n * MiB, 'linux-swap');
      await create(ctx, `${base}p4`, 48n * MiB, 'extended');
      await create(ctx, `${base}p5`, 8n * MiB);
      await create(ctx, `${base}p6`, 8n * MiB);
      const r = await backend.refreshPool(ctx);
      expect(r.volumes.map((v) => [v.name, v.target?.format])).to.deep.equal([
        [`${base}p1`, 'linux'],
        [`${base}p2`, 'fat32'],
        [`${base}p3`, 'linux-swap'],
        [`${base}p4`, 'extended'],
        [`${base}p5`, 'linux'],
        [`${base}p6`, 'linux'],
      ]);
      const ext = partedPartitions(loop.device).find((p) => p.n === 4)!;
      for (const n of [5, 6]) {
        const p = partedPartitions(loop.device).find((q) => q.n === n)!;
        expect(p.start > ext.start && p.end <= ext.end, `p${n} inside the extended partition`).to.equal(true);
        expect(statSync(`${loop.device}p${n}`).isBlockDevice()).to.equal(true);
      }
      // dos partitions are at least the size asked, ending on a cylinder boundary
      for (const v of r.volumes.filter((x) => x.target?.format !== 'extended')) expect(v.capacity! >= 8n * MiB).to.equal(true);
      const extVol = r.volumes.find((v) => v.name === `${base}p4`)!;
      expect(extVol.allocation).to.equal(r.volumes.filter((v) => ['5', '6'].includes(v.name.slice(-1))).reduce((s, v) => s + v.capacity!, 0n));
      expect(r.runtime.devices![0]!.freeExtents).to.deep.equal(partedFree(loop.device));
      expect(r.runtime.allocation).to.equal(r.volumes.filter((v) => v.target?.format !== 'extended').reduce((s, v) => s + v.capacity!, 0n));
    });

    it("reports each partition's physical size as its node's size, as libvirt 9.0 (1024 bytes for the extended one)", async () => {
      const r = await backend.refreshPool(ctx);
      const nodeSize = (path: string): bigint => BigInt(execFileSync('blockdev', ['--getsize64', path], { encoding: 'utf8' }).trim());
      expect(r.volumes.map((v) => [v.name, v.physical])).to.deep.equal(r.volumes.map((v) => [v.name, nodeSize(v.key)]));
      const ext = r.volumes.find((v) => v.name === `${base}p4`)!;
      expect(ext.physical).to.equal(1024n);
      for (const v of r.volumes.filter((x) => x.name !== `${base}p4`)) expect(v.physical, v.name).to.equal(v.capacity);
    });

    it('deletes a partition in the middle; the others and their nodes stay', async () => {
      await backend.deleteVol(ctx, vol(`${base}p2`, 0n));
      expect(partedPartitions(loop.device).map((p) => p.n)).to.deep.equal([1, 3, 4, 5, 6]);
      expect(existsSync(`${loop.device}p2`)).to.equal(false);
      const r = await backend.refreshPool(ctx);
      expect(r.runtime.devices![0]!.freeExtents).to.deep.equal(partedFree(loop.device));
    });

    it('refuses to delete the extended partition while it holds logical ones', async () => {
      const before = partedPrint(loop.device);
      const err = await rejects(backend.deleteVol(ctx, vol(`${base}p4`, 0n)));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(partedPrint(loop.device)).to.equal(before);
    });

    it('a primary partition larger than the free space outside the extended one: RESOURCE_EXHAUSTED, table unchanged', async () => {
      // four primary/extended slots are not all used (2 was deleted): the next one is primary p2
      const before = partedPrint(loop.device);
      const err = await rejects(create(ctx, `${base}p2`, 80n * MiB));
      expect(err.code).to.equal('RESOURCE_EXHAUSTED');
      expect(partedPrint(loop.device)).to.equal(before);
    });
  });
});
