// The dir backend with the recording runner: the exact qemu-img / scrub / fallocate
// command lines, which qcow2 creates are written in-process (no process at all) and which
// still run qemu-img, libvirt's checks (bad names, sizes, formats, resize rules), and that
// a refused or failed request leaves nothing on disk. Files live in a temp directory.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirBackend } from '../../../libs/backends/dir.js';
import { qemuImgCreateArgv } from '../../../libs/backends/qemu-img-argv.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { findBackend } from '../../../libs/backends/registry.js';
import '../../../libs/backends/index.js';
import type { CreateVolOptions, PoolContext } from '../../../libs/backends/backend.js';
import { CommandFailedError } from '../../../libs/errors/errors.js';
import { PoolType, VolumeType, WipeAlgorithm, type PoolDefinition, type VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { attachLoop, loopDevicesAvailable } from '../../support/loop.js';
import { rejects } from '../../support/rejects.js';
import { usePrivateTmpdir } from '../../support/private-tmpdir.js';
import { fileVolume as vol } from '../../support/volume-definitions.js';

const MiB = 1024n * 1024n;

function poolDef(path: string, extra: Partial<PoolDefinition> = {}): PoolDefinition {
  return { type: PoolType.POOL_TYPE_DIR, name: 'p', uuid: '', source: undefined, target: { path, permissions: undefined }, features: undefined, mountOptions: [], ...extra };
}


/** `data` as a stream of `size`-byte pieces. */
async function* pieces(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

describe('dir backend (recording runner)', () => {
  let root: string;
  let target: string;
  let runner: RecordingRunner;
  let ctx: PoolContext;
  const backend = new DirBackend();
  const noPrealloc = { preallocMetadata: false };

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cistern-dir-unit-'));
    target = join(root, 'pool');
    mkdirSync(target);
    runner = new RecordingRunner();
    ctx = { runner, pool: poolDef(target) };
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const build = async (v: VolumeDefinition, opts: CreateVolOptions = noPrealloc) => backend.buildVol(ctx, await backend.createVol(ctx, v), opts);

  it('a refresh reads headers without moving access times: they say when a guest or a user last read a volume', async () => {
    writeFileSync(join(target, 'image.qcow2'), Buffer.alloc(4096));
    writeFileSync(join(target, 'base.raw'), Buffer.alloc(4096));
    // an access time older than the modification: any read would move it (relatime)
    const accessed = new Date('1999-01-01T00:00:00Z');
    for (const name of ['image.qcow2', 'base.raw']) utimesSync(join(target, name), accessed, new Date('2000-06-01T00:00:00Z'));
    await backend.refreshPool(ctx);
    await backend.refreshVol(ctx, vol('image.qcow2', ''));
    for (const name of ['image.qcow2', 'base.raw']) expect(statSync(join(target, name)).atime.toISOString(), name).to.equal(accessed.toISOString());
  });

  it('is registered for POOL_TYPE_DIR by importing libs/backends/index.js', () => {
    expect(findBackend(PoolType.POOL_TYPE_DIR)?.type).to.equal(PoolType.POOL_TYPE_DIR);
  });

  describe('qemu-img command lines (as libvirt 9 builds them)', () => {
    it('qcow2 without compat gets compat=0.10 and the size in KiB', () => {
      expect(qemuImgCreateArgv({ format: 'qcow2', path: `${target}/a.qcow2`, capacity: 10n * MiB })).to.deep.equal([
        'qemu-img', 'create', '-f', 'qcow2', '-o', 'compat=0.10', '--', `${target}/a.qcow2`, '10240K',
      ]);
    });

    it('lazy_refcounts implies compat 1.1; cluster size and nocow are passed', async () => {
      await build(vol('b.qcow2', 'qcow2', 1000n, { lazy: true, cluster: 4096n, nocow: true }));
      expect(runner.argvs).to.deep.equal([
        ['qemu-img', 'create', '-f', 'qcow2', '-o', 'nocow=on,compat=1.1,cluster_size=4096,lazy_refcounts', '--', '/dev/fd/3', '1K'],
      ]);
    });

    it('a backing store becomes -b PATH and backing_fmt; no size when capacity is 0', () => {
      expect(qemuImgCreateArgv({ format: 'qcow2', path: `${target}/c.qcow2`, capacity: 0n, backingPath: 'base.img', backingFormat: 'raw', compat: '1.1' })).to.deep.equal([
        'qemu-img', 'create', '-f', 'qcow2', '-b', 'base.img', '-o', 'backing_fmt=raw,compat=1.1', '--', `${target}/c.qcow2`,
      ]);
    });

    it('an unnamed backing format is probed from the backing file (a base qemu-img must judge: in-process declines it)', async () => {
      const q = Buffer.alloc(512);
      q.write('QFI\xfb', 0, 'latin1');
      q.writeUInt32BE(3, 4);
      writeFileSync(join(target, 'base.qcow2'), q);
      await build(vol('d.qcow2', 'qcow2', MiB, { backingStore: { path: `${target}/base.qcow2`, format: '', permissions: undefined, timestamps: undefined } }));
      expect(runner.argvs[0]).to.include('backing_fmt=qcow2,compat=0.10');
    });

    it('prealloc_metadata: metadata when allocation < capacity, falloc when equal', async () => {
      await build(vol('m.qcow2', 'qcow2', 2n * MiB, { allocation: 0n }), { preallocMetadata: true });
      await build(vol('f.qcow2', 'qcow2', 2n * MiB), { preallocMetadata: true });
      expect(runner.argvs.map((a) => a[5])).to.deep.equal(['preallocation=metadata,compat=0.10', 'preallocation=falloc,compat=0.10']);
    });

    it('other formats: plain create -f FMT', async () => {
      for (const f of ['qcow', 'qed', 'vpc', 'vdi']) await build(vol(`v.${f}`, f, 3n * MiB));
      expect(runner.argvs).to.deep.equal(['qcow', 'qed', 'vpc', 'vdi'].map((f) => ['qemu-img', 'create', '-f', f, '--', '/dev/fd/3', '3072K']));
    });

    it('qemu-img writes the file reserved with O_EXCL, as its fd 3, whatever the name holds by then', async () => {
      const seen: string[] = [];
      runner.on(['qemu-img'], (_argv, options) => {
        seen.push(readlinkSync(`/proc/self/fd/${options.fds![0]}`));
      });
      await build(vol('r.qed', 'qed', MiB));
      expect(runner.argvs[0]!.slice(-2)).to.deep.equal(['/dev/fd/3', '1024K']);
      expect(seen).to.deep.equal([join(target, 'r.qed')]);
    });

    it('a vmdk, which records its file name, gets a link named after the volume leading to /dev/fd/3', async () => {
      const links: string[] = [];
      runner.on(['qemu-img'], (argv) => {
        links.push(readlinkSync(argv.at(-2)!));
      });
      await build(vol('v.vmdk', 'vmdk', 3n * MiB));
      const path = runner.argvs[0]!.at(-2)!;
      expect(path).to.match(/\/cistern-target-[^/]+\/v\.vmdk$/);
      expect(links).to.deep.equal(['/dev/fd/3']);
      expect(existsSync(path)).to.equal(false); // the private link is gone afterwards
    });

    it('a backing path is recorded unopened (-u) into the reserved file, with the size of the checked backing file when none is given', async () => {
      writeFileSync(join(target, 'base.img'), Buffer.alloc(4000));
      const backing = { path: 'base.img', format: 'raw', permissions: undefined, timestamps: undefined };
      await build(vol('sized.qed', 'qed', MiB, { backingStore: backing }));
      await build(vol('unsized.qed', 'qed', 0n, { backingStore: backing }));
      await build(vol('absolute.qed', 'qed', 0n, { backingStore: { ...backing, path: join(target, 'base.img') } }));
      expect(runner.argvs).to.deep.equal([
        ['qemu-img', 'create', '-f', 'qed', '-u', '-b', 'base.img', '-o', 'backing_fmt=raw', '--', '/dev/fd/3', '1024K'],
        // what qemu-img would read: the raw file's size in whole sectors, exactly (not rounded to K)
        ['qemu-img', 'create', '-f', 'qed', '-u', '-b', 'base.img', '-o', 'backing_fmt=raw', '--', '/dev/fd/3', '4096'],
        ['qemu-img', 'create', '-f', 'qed', '-u', '-b', join(target, 'base.img'), '-o', 'backing_fmt=raw', '--', '/dev/fd/3', '4096'],
      ]);
      expect(runner.calls.map((c) => c.options.fds?.length ?? 0)).to.deep.equal([1, 1, 1]);
    });

    it('sets the volume mode after qemu-img (default 0600)', async () => {
      await build(vol('mode.qed', 'qed', MiB));
      expect(runner.argvs).to.have.length(1);
      expect(statSync(join(target, 'mode.qed')).mode & 0o777).to.equal(0o600);
    });

    it('a failed qemu-img leaves no file behind and reports the command and stderr', async () => {
      runner.on(['qemu-img', 'create'], { exitCode: 1, stderr: 'qemu-img: something broke' });
      const err = await rejects(build(vol('x.qcow2', 'qcow2', MiB), { preallocMetadata: true }));
      expect(err).to.be.instanceOf(CommandFailedError);
      expect(err.message).to.contain('something broke');
      expect(existsSync(join(target, 'x.qcow2'))).to.equal(false);
    });

    it('ENOSPC from qemu-img is RESOURCE_EXHAUSTED', async () => {
      runner.on(['qemu-img'], { exitCode: 1, stderr: 'qemu-img: error while writing: No space left on device' });
      const err = await rejects(build(vol('x.vmdk', 'vmdk', MiB)));
      expect(err.code).to.equal('RESOURCE_EXHAUSTED');
      expect(readdirSync(target)).to.deep.equal([]);
    });

    it('clone of a raw volume into qcow2 runs qemu-img convert -f raw -O qcow2, the source as its fd 4', async () => {
      writeFileSync(join(target, 'src.img'), Buffer.alloc(4096, 7));
      await backend.buildVolFrom(ctx, await backend.createVol(ctx, vol('dst.qcow2', 'qcow2')), { pool: ctx.pool, volume: vol('src.img', '') }, noPrealloc);
      const source = 'json:{"driver":"raw","file":{"driver":"file","filename":"/dev/fd/4"}}';
      expect(runner.argvs).to.deep.equal([['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', '-o', 'compat=0.10', '--', source, '/dev/fd/3']]);
    });

    it("a clone from a SCSI pool reads the LUN's own path, not target/NAME (libvirt: inputvol's target.path)", async () => {
      const lun = join(root, 'lun-0-0-1');
      writeFileSync(lun, Buffer.alloc(8192, 3));
      const scsiPool = { ...poolDef('/dev/disk/by-path'), type: PoolType.POOL_TYPE_SCSI, name: 'luns' };
      const source = vol('unit:0:0:1', 'raw', 8192n, { target: { ...vol('x', 'raw').target!, path: lun } });
      await backend.buildVolFrom(ctx, await backend.createVol(ctx, vol('copy.img', 'raw')), { pool: scsiPool, volume: source }, noPrealloc);
      expect(readFileSync(join(target, 'copy.img')).equals(Buffer.alloc(8192, 3))).to.equal(true);
      // that path is checked like any other
      const bad = { ...source, target: { ...source.target!, path: 'relative/lun' } };
      expect((await rejects(backend.buildVolFrom(ctx, await backend.createVol(ctx, vol('copy2.img', 'raw')), { pool: scsiPool, volume: bad }, noPrealloc))).code).to.equal('INVALID_ARGUMENT');
    });

    it('an allocation above the capacity, as libvirt: a raw file grows to it (ftruncate, then fallocate from 0); qcow2 keeps the capacity', async () => {
      await build(vol('ac', 'raw', MiB, { allocation: 2n * MiB }));
      expect(statSync(join(target, 'ac')).size).to.equal(2 * 1024 * 1024);
      expect(statSync(join(target, 'ac')).blocks * 512).to.be.at.least(2 * 1024 * 1024);
      expect((await backend.refreshVol(ctx, vol('ac', 'raw'))).capacity).to.equal(2n * MiB);
      await build(vol('big-ac', 'raw', MiB, { allocation: 100n * MiB }));
      expect(runner.argvs).to.deep.equal([['fallocate', '-o', '0', '-l', String(100n * MiB), '--', '/dev/fd/3']]);
      expect(runner.calls.at(-1)!.options.fds).to.have.length(1);
      // qcow2: the allocation only chooses the preallocation
      await build(vol('ac.qcow2', 'qcow2', MiB, { allocation: 2n * MiB }));
      expect((await backend.refreshVol(ctx, vol('ac.qcow2', 'qcow2'))).capacity).to.equal(MiB);
      await build(vol('acp.qcow2', 'qcow2', MiB, { allocation: 2n * MiB }), { preallocMetadata: true });
      expect(runner.argvs[1]?.[5]).to.equal('preallocation=falloc,compat=0.10');
      // a raw clone the same: the copy, then zeros up to the allocation
      writeFileSync(join(target, 'src.img'), Buffer.alloc(4096, 7));
      await backend.buildVolFrom(ctx, await backend.createVol(ctx, vol('ac-c', 'raw', undefined, { allocation: 8192n })), { pool: ctx.pool, volume: vol('src.img', '') }, noPrealloc);
      expect(readFileSync(join(target, 'ac-c')).equals(Buffer.concat([Buffer.alloc(4096, 7), Buffer.alloc(4096)]))).to.equal(true);
    });

    it('raw volumes are created without any process; large allocations use one fallocate', async () => {
      await build(vol('sparse.raw', 'raw', 100n * MiB, { allocation: 0n }));
      await build(vol('small.raw', 'raw', MiB));
      expect(runner.calls).to.have.length(0);
      expect(statSync(join(target, 'sparse.raw')).blocks).to.equal(0);
      expect(statSync(join(target, 'small.raw')).blocks * 512).to.be.at.least(1024 * 1024);
      await build(vol('big.raw', 'raw', 100n * MiB));
      expect(runner.argvs).to.deep.equal([['fallocate', '-o', '0', '-l', String(100n * MiB), '--', '/dev/fd/3']]);
      expect(runner.calls.at(-1)!.options.fds).to.have.length(1);
    });

    it('an allocation by one fallocate reports its start and its end (docs/events.md, OPERATION_PROGRESS)', async () => {
      // one process with no progress of its own: a watcher saw only its end, the moment it was done
      const reports: Array<[bigint, bigint]> = [];
      const progressed = { ...ctx, progress: (done: bigint, total: bigint) => void reports.push([done, total]) };
      await backend.buildVol(progressed, await backend.createVol(ctx, vol('big.raw', 'raw', 100n * MiB)), noPrealloc);
      expect(runner.argvs).to.have.length(1);
      expect(reports).to.deep.equal([
        [0n, 100n * MiB],
        [100n * MiB, 100n * MiB],
      ]);
    });
  });

  describe('qcow2 written in-process (what qemu-img create would write)', () => {
    const header = (name: string) => readFileSync(join(target, name));

    it('a plain qcow2 create runs no process: qemu\'s header, file length and the volume mode', async () => {
      await build(vol('a.qcow2', 'qcow2', 10n * MiB));
      await build(vol('l.qcow2', 'qcow2', 1000n, { lazy: true, cluster: 4096n, compat: '1.1' }));
      expect(runner.calls).to.have.length(0);
      const a = header('a.qcow2');
      expect(a.subarray(0, 4).toString('latin1')).to.equal('QFI\xfb');
      expect(a.readUInt32BE(4)).to.equal(2); // compat 0.10, libvirt's default
      expect(a.readBigUInt64BE(24)).to.equal(10n * MiB);
      expect(a.length).to.equal(3 * 65536 + 8); // header, refcount table, refcount block, one L1 entry
      expect(statSync(join(target, 'a.qcow2')).mode & 0o777).to.equal(0o600);
      const l = header('l.qcow2');
      expect(l.readUInt32BE(4)).to.equal(3);
      expect(l.readUInt32BE(20)).to.equal(12); // 4 KiB clusters
      expect(l.readBigUInt64BE(24)).to.equal(1024n); // ceil(1000 / 1024) K, as on qemu-img's command line
      expect(l.readBigUInt64BE(80)).to.equal(1n); // lazy refcounts
    });

    it('a raw backing store without a capacity: the backing file name, format and size (rounded up to 512)', async () => {
      writeFileSync(join(target, 'base.img'), Buffer.alloc(1000));
      await build(vol('c.qcow2', 'qcow2', 0n, { backingStore: { path: 'base.img', format: 'raw', permissions: undefined, timestamps: undefined }, compat: '1.1' }));
      expect(runner.calls).to.have.length(0);
      const def = await backend.refreshVol(ctx, vol('c.qcow2', ''));
      expect(def.capacity).to.equal(1024n);
      expect(def.backingStore?.path).to.equal(join(target, 'base.img'));
      expect(def.backingStore?.format).to.equal('raw');
    });

    it('qemu-img still creates encrypted, preallocated, nocow, netfs, and unreplayed layouts', async () => {
      const secrets = new Map([['u1', Buffer.from('pw')]]);
      const enc = vol('e.qcow2', 'qcow2', MiB);
      enc.target!.encryption = { format: 'luks', secrets: [{ uuid: 'u1', usage: '', type: 'passphrase' }], cipher: undefined, ivgen: undefined };
      const c = { ...ctx, secrets };
      await backend.buildVol(c, await backend.createVol(c, enc), noPrealloc);
      await build(vol('m.qcow2', 'qcow2', 2n * MiB, { allocation: 0n }), { preallocMetadata: true });
      await build(vol('f.qcow2', 'qcow2', 2n * MiB), { preallocMetadata: false, preallocation: 'full' });
      await build(vol('n.qcow2', 'qcow2', 2n * MiB, { nocow: true }));
      await build(vol('s.qcow2', 'qcow2', 64n * 1024n * MiB, { cluster: 512n })); // would grow the refcount table
      const netfs = { ...ctx, pool: poolDef(target, { type: PoolType.POOL_TYPE_NETFS }) };
      await backend.buildVol(netfs, await backend.createVol(netfs, vol('nfs.qcow2', 'qcow2', MiB)), noPrealloc);
      expect(runner.argvs.map((a) => a.at(-2))).to.deep.equal(Array(6).fill('/dev/fd/3'));
      expect(runner.argvs.every((a) => a[0] === 'qemu-img' && a[1] === 'create')).to.equal(true);
    });

    it('a backing store in-process cannot judge (a base with its own backing file) goes to qemu-img; a format mismatch is refused', async () => {
      writeFileSync(join(target, 'raw.img'), Buffer.alloc(4096));
      // qemu-img records the chain unopened (-u): the chain check refuses what qemu could not open
      const mismatch = await rejects(build(vol('mis.qcow2', 'qcow2', MiB, { backingStore: { path: 'raw.img', format: 'qcow2', permissions: undefined, timestamps: undefined } })));
      expect(mismatch.message).to.contain("it is read as 'qcow2' but its header says 'raw'");
      await build(vol('b0.qcow2', 'qcow2', MiB));
      await build(vol('mid.qcow2', 'qcow2', MiB, { backingStore: { path: 'b0.qcow2', format: 'qcow2', permissions: undefined, timestamps: undefined } }));
      await build(vol('top.qcow2', 'qcow2', MiB, { backingStore: { path: 'mid.qcow2', format: 'qcow2', permissions: undefined, timestamps: undefined } }));
      // relative backing paths with a size: recorded unopened (-u) into the reserved file
      expect(runner.argvs.map((a) => [a[4], a.at(-2)])).to.deep.equal([['-u', '/dev/fd/3']]);
      expect((await backend.refreshVol(ctx, vol('mid.qcow2', ''))).backingStore?.path).to.equal(join(target, 'b0.qcow2'));
    });

    it('an existing file is ALREADY_EXISTS (O_EXCL) and stays untouched; nothing is left after a refused create', async () => {
      writeFileSync(join(target, 'x.qcow2'), 'mine');
      const planned = await backend.createVol(ctx, vol('y.qcow2', 'qcow2', MiB));
      writeFileSync(join(target, 'y.qcow2'), 'raced');
      const err = await rejects(backend.buildVol(ctx, planned, noPrealloc));
      expect(err.code).to.equal('ALREADY_EXISTS');
      expect(readFileSync(join(target, 'y.qcow2'), 'utf8')).to.equal('raced');
      expect(runner.calls).to.have.length(0);
    });
  });

  describe('resize rules (storageVolResize)', () => {
    beforeEach(() => writeFileSync(join(target, 'r.qcow2'), (() => {
      const b = Buffer.alloc(512);
      b.write('QFI\xfb', 0, 'latin1');
      b.writeUInt32BE(3, 4);
      b.writeUInt32BE(16, 20);
      b.writeBigUInt64BE(10n * MiB, 24);
      return b;
    })()));

    it('qcow2 grows with qemu-img resize; shrink adds --shrink; the size is rounded up to 512', async () => {
      await backend.resizeVol(ctx, vol('r.qcow2', ''), 20n * MiB + 1n, { allocate: false, delta: false, shrink: false });
      await backend.resizeVol(ctx, vol('r.qcow2', ''), MiB, { allocate: false, delta: true, shrink: true });
      // qemu-img gets the agent's own descriptor of the checked file, its backing chain closed
      const image = (argv: readonly string[]) => JSON.parse(argv.at(-2)!.slice('json:'.length)) as { driver: string; backing: null; file: { filename: string } };
      expect(runner.argvs.map((argv) => [...argv.slice(0, -2), argv.at(-1)])).to.deep.equal([
        ['qemu-img', 'resize', '--', String(20n * MiB + 512n)],
        ['qemu-img', 'resize', '--shrink', '--', String(9n * MiB)],
      ]);
      for (const argv of runner.argvs) {
        expect(image(argv)).to.deep.include({ driver: 'qcow2', backing: null });
        expect(image(argv).file.filename).to.match(new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
      }
    });

    it('refuses to shrink without the flag, allocate for non-raw (UNIMPLEMENTED: libvirt\'s VIR_ERR_OPERATION_UNSUPPORTED), and out-of-range sizes', async () => {
      const noShrink = await rejects(backend.resizeVol(ctx, vol('r.qcow2', ''), MiB, { allocate: false, delta: false, shrink: false }));
      expect(noShrink.code).to.equal('INVALID_ARGUMENT');
      expect(noShrink.message).to.contain('shrink flag');
      const alloc = await rejects(backend.resizeVol(ctx, vol('r.qcow2', ''), 20n * MiB, { allocate: true, delta: false, shrink: false }));
      expect(alloc.code, alloc.message).to.equal('UNIMPLEMENTED');
      expect(alloc.message).to.equal("preallocate is only supported for raw type volume: volume 'r.qcow2' is qcow2; resize it without allocate");
      const neg = await rejects(backend.resizeVol(ctx, vol('r.qcow2', ''), -1n, { allocate: false, delta: false, shrink: false }));
      expect(neg.code).to.equal('INVALID_ARGUMENT');
      const over = await rejects(backend.resizeVol(ctx, vol('r.qcow2', ''), (1n << 63n) - 2n, { allocate: false, delta: true, shrink: false }));
      expect(over.code).to.equal('INVALID_ARGUMENT');
      expect(runner.calls).to.have.length(0);
    });

    it('never below the allocation', async () => {
      writeFileSync(join(target, 'full.raw'), Buffer.alloc(64 * 1024, 1));
      const err = await rejects(backend.resizeVol(ctx, vol('full.raw', ''), 4096n, { allocate: false, delta: false, shrink: true }));
      expect(err.message).to.contain('below the existing allocation');
      expect(statSync(join(target, 'full.raw')).size).to.equal(64 * 1024);
    });

    it('a cancelled allocating grow leaves the volume at its old size', async () => {
      writeFileSync(join(target, 'g.raw'), Buffer.alloc(4096, 1));
      const abort = new AbortController();
      abort.abort();
      const err = await rejects(backend.resizeVol({ ...ctx, signal: abort.signal }, vol('g.raw', ''), 8n * MiB, { allocate: true, delta: false, shrink: false }));
      expect(err.code).to.equal('CANCELLED');
      expect(statSync(join(target, 'g.raw')).size).to.equal(4096);
    });

    it('an allocating grow of a sparse volume allocates its holes too (libvirt allocates from 0), by fallocate keeping the size until it is done', async () => {
      const path = join(target, 'h.raw');
      const fd = openSync(path, 'w');
      ftruncateSync(fd, Number(9n * MiB));
      closeSync(fd);
      runner.on(['fallocate'], {});
      await backend.resizeVol(ctx, vol('h.raw', ''), 10n * MiB, { allocate: true, delta: false, shrink: false });
      expect(runner.argvs).to.have.length(1);
      const argv = runner.argvs[0]!;
      expect(argv.slice(0, -1)).to.deep.equal(['fallocate', '--keep-size', '-o', '0', '-l', String(10n * MiB), '--']);
      expect(argv[argv.length - 1]).to.match(/^\/proc\/\d+\/fd\/\d+$/);
      expect(statSync(path).size).to.equal(Number(10n * MiB));
    });

    it('an allocating grow whose fallocate fails names the volume\'s file, not the agent\'s /proc descriptor it ran on', async () => {
      const path = join(target, 'h.raw');
      const fd = openSync(path, 'w');
      ftruncateSync(fd, Number(9n * MiB));
      closeSync(fd);
      runner.on(['fallocate'], { exitCode: 1, stderr: 'fallocate: fallocate failed: Input/output error\n' });
      const err = await rejects(backend.resizeVol(ctx, vol('h.raw', ''), 10n * MiB, { allocate: true, delta: false, shrink: false }));
      expect(err.message).to.contain(path);
      expect(JSON.stringify({ m: err.message, d: err.details })).to.not.match(/\/proc\/\d+\/fd\//);
      expect(statSync(path).size).to.equal(Number(9n * MiB));
    });

    it('raw grows in-process (sparse), and shrinks with the flag', async () => {
      writeFileSync(join(target, 's.raw'), '');
      await backend.resizeVol(ctx, vol('s.raw', ''), 8n * MiB, { allocate: false, delta: false, shrink: false });
      expect(statSync(join(target, 's.raw')).size).to.equal(8 * 1024 * 1024);
      await backend.resizeVol(ctx, vol('s.raw', ''), 4n * MiB, { allocate: false, delta: true, shrink: true });
      expect(statSync(join(target, 's.raw')).size).to.equal(4 * 1024 * 1024);
      expect(runner.calls).to.have.length(0);
    });
  });

  describe('resize of LUKS-encrypted volumes (storageBackendResizeQemuImg)', () => {
    usePrivateTmpdir();
    const UUID = '6f1c1a55-0d1e-4d7e-9a3b-1c2d3e4f5a6b';
    const PASS = `luks-${process.pid}-passphrase`;
    /** A LUKS1 header: payload at 2 MiB; a file of 2 MiB + `payload` bytes. */
    const luksFile = (name: string, payload: bigint) => {
      const b = Buffer.alloc(4096);
      Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]).copy(b, 0);
      b.writeUInt16BE(1, 6);
      b.writeUInt32BE(4096, 104); // payload offset in 512-byte sectors
      const fd = openSync(join(target, name), 'w');
      writeSync(fd, b);
      ftruncateSync(fd, Number(2n * MiB + payload));
      closeSync(fd);
    };
    /** A qcow2 v3 header of `size` bytes with crypt_method `crypt` (1 AES, 2 LUKS). */
    const qcow2File = (name: string, size: bigint, crypt: number) => {
      const b = Buffer.alloc(512);
      b.write('QFI\xfb', 0, 'latin1');
      b.writeUInt32BE(3, 4);
      b.writeUInt32BE(16, 20);
      b.writeBigUInt64BE(size, 24);
      b.writeUInt32BE(crypt, 32);
      writeFileSync(join(target, name), b);
    };
    const encrypted = (name: string, ref?: { uuid?: string; usage?: string }) => {
      const v = vol(name, '');
      if (ref) v.target!.encryption = { format: 'luks', secrets: [{ uuid: ref.uuid ?? '', usage: ref.usage ?? '', type: 'passphrase' }], cipher: undefined, ivgen: undefined };
      return v;
    };
    const secretDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('cistern-secret-'));
    /** Records, while qemu-img "runs", what its secret file holds and its mode. */
    const seen: Array<{ file: string; value: string; mode: number }> = [];
    beforeEach(() => {
      seen.length = 0;
      runner.on(['qemu-img', 'resize'], (argv) => {
        const obj = argv[argv.indexOf('--object') + 1]!;
        const file = obj.slice(obj.indexOf(',file=') + ',file='.length).replace(/,,/g, ',');
        seen.push({ file, value: readFileSync(file, 'utf8'), mode: statSync(file).mode & 0o777 });
      });
    });

    it('raw: qemu-img resize --object secret --image-opts driver=luks on the checked descriptor; the passphrase only in the secret file', async () => {
      luksFile('e.img', 8n * MiB);
      const before = secretDirs();
      const c = { ...ctx, secrets: new Map([[UUID, Buffer.from(PASS)]]) };
      await backend.resizeVol(c, encrypted('e.img', { uuid: UUID }), 16n * MiB, { allocate: false, delta: false, shrink: false });
      expect(runner.argvs).to.have.length(1);
      const argv = runner.argvs[0]!;
      const fdPath = argv.at(-2)!.slice(argv.at(-2)!.indexOf('file.filename=') + 'file.filename='.length);
      expect(fdPath).to.match(new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
      expect(argv).to.deep.equal([
        'qemu-img', 'resize',
        '--object', `secret,id=e.img_encrypt0,file=${seen[0]!.file}`,
        '--image-opts', '--', `driver=luks,key-secret=e.img_encrypt0,file.filename=${fdPath}`,
        String(16n * MiB),
      ]);
      expect(seen[0]).to.deep.include({ value: PASS, mode: 0o600 });
      expect(argv.join(' ')).to.not.include(PASS);
      // the secret file's private directory is gone, and the descriptor closed
      expect(existsSync(seen[0]!.file)).to.equal(false);
      expect(secretDirs()).to.deep.equal(before);
    });

    it('shrink adds --shrink and rounds up to 512; the default secret is the one of the volume path (libvirt after a refresh)', async () => {
      luksFile('e.img', 8n * MiB);
      // the definition names no secret (as the agent reads it from disk): usage = target/name
      const c = { ...ctx, secrets: new Map([[join(target, 'e.img'), Buffer.from(PASS)]]) };
      await backend.resizeVol(c, encrypted('e.img'), 4n * MiB + 1n, { allocate: false, delta: false, shrink: true });
      const argv = runner.argvs[0]!;
      expect(argv.slice(0, 3)).to.deep.equal(['qemu-img', 'resize', '--shrink']);
      expect(argv.at(-1)).to.equal(String(4n * MiB + 512n));
      expect(seen[0]!.value).to.equal(PASS);
    });

    it('qcow2 with LUKS: a json: spec with encrypt.key-secret and its backing chain closed', async () => {
      qcow2File('q.qcow2', 10n * MiB, 2);
      const c = { ...ctx, secrets: new Map([[join(target, 'q.qcow2'), Buffer.from(PASS)]]) };
      await backend.resizeVol(c, encrypted('q.qcow2'), 20n * MiB, { allocate: false, delta: false, shrink: false });
      const argv = runner.argvs[0]!;
      expect(argv.slice(0, 4)).to.deep.equal(['qemu-img', 'resize', '--object', `secret,id=q.qcow2_encrypt0,file=${seen[0]!.file}`]);
      expect(argv.at(-3)).to.equal('--');
      const image = JSON.parse(argv.at(-2)!.slice('json:'.length)) as Record<string, unknown> & { file: { filename: string } };
      expect(image).to.deep.include({ driver: 'qcow2', encrypt: { 'key-secret': 'q.qcow2_encrypt0' }, backing: null });
      expect(image.file.filename).to.match(new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
      expect(argv.at(-1)).to.equal(String(20n * MiB));
    });

    it('a volume name that is no qemu id gets a fixed secret id (a comma cannot end the option)', async () => {
      luksFile('1 disk,x=y', 8n * MiB);
      const c = { ...ctx, secrets: new Map([[UUID, Buffer.from(PASS)]]) };
      await backend.resizeVol(c, encrypted('1 disk,x=y', { uuid: UUID }), 16n * MiB, { allocate: false, delta: false, shrink: false });
      const argv = runner.argvs[0]!;
      expect(argv[3]).to.match(/^secret,id=volume_encrypt0,file=/);
      expect(argv.at(-2)).to.match(/^driver=luks,key-secret=volume_encrypt0,file\.filename=\/proc\//);
    });

    it('refuses allocate (UNIMPLEMENTED, as libvirt\'s VIR_ERR_OPERATION_UNSUPPORTED), legacy qcow encryption, and a missing passphrase, before running anything', async () => {
      luksFile('e.img', 8n * MiB);
      qcow2File('aes.qcow2', 10n * MiB, 1);
      const c = { ...ctx, secrets: new Map([[UUID, Buffer.from(PASS)]]) };
      const alloc = await rejects(backend.resizeVol(c, encrypted('e.img', { uuid: UUID }), 16n * MiB, { allocate: true, delta: false, shrink: false }));
      expect(alloc.code, alloc.message).to.equal('UNIMPLEMENTED');
      expect(alloc.message).to.equal("preallocate is only supported for an unencrypted raw volume: volume 'e.img' is encrypted; resize it without allocate");
      const aes = await rejects(backend.resizeVol(c, encrypted('aes.qcow2'), 20n * MiB, { allocate: false, delta: false, shrink: false }));
      expect(aes.code).to.equal('INVALID_ARGUMENT');
      expect(aes.message).to.contain("with 'qcow' encryption is not supported");
      // no value for the volume's path (its definition names no secret)
      const missing = await rejects(backend.resizeVol(ctx, encrypted('e.img'), 16n * MiB, { allocate: false, delta: false, shrink: false }));
      expect(missing.code).to.equal('FAILED_PRECONDITION');
      expect(missing.message).to.contain(`no secret of usage type 'volume' for '${join(target, 'e.img')}'`);
      // the secret the definition names was not sent
      const other = await rejects(backend.resizeVol(c, encrypted('e.img', { uuid: 'another' }), 16n * MiB, { allocate: false, delta: false, shrink: false }));
      expect(other.code).to.equal('FAILED_PRECONDITION');
      expect(other.message).to.contain("the passphrase secret 'another' of volume 'e.img' was not provided");
      expect(runner.calls).to.have.length(0);
      expect(statSync(join(target, 'e.img')).size).to.equal(Number(10n * MiB));
    });

    it('a passphrase that does not unlock it is FAILED_PRECONDITION without the value; the secret file is removed', async () => {
      luksFile('e.img', 8n * MiB);
      runner.reset();
      const wrong = new RecordingRunner().on(['qemu-img', 'resize'], (argv) => {
        const obj = argv[argv.indexOf('--object') + 1]!;
        seen.push({ file: obj.slice(obj.indexOf(',file=') + 6), value: '', mode: 0 });
        return { exitCode: 1, stderr: "qemu-img: Could not open 'driver=luks,...': Invalid password, cannot unlock any keyslot" };
      });
      const c = { ...ctx, runner: wrong, secrets: new Map([[UUID, Buffer.from(PASS)]]) };
      const err = await rejects(backend.resizeVol(c, encrypted('e.img', { uuid: UUID }), 16n * MiB, { allocate: false, delta: false, shrink: false }));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.contain("does not unlock it");
      expect(JSON.stringify({ m: err.message, d: err.details })).to.not.include(PASS);
      expect(existsSync(seen[0]!.file)).to.equal(false);
    });
  });

  describe('wipe', () => {
    it('runs scrub -f -p ALG -- PATH for every non-zero algorithm', async () => {
      writeFileSync(join(target, 'w.img'), Buffer.alloc(4096, 9));
      const algs: [WipeAlgorithm, string][] = [
        [WipeAlgorithm.WIPE_ALGORITHM_NNSA, 'nnsa'],
        [WipeAlgorithm.WIPE_ALGORITHM_DOD, 'dod'],
        [WipeAlgorithm.WIPE_ALGORITHM_BSI, 'bsi'],
        [WipeAlgorithm.WIPE_ALGORITHM_GUTMANN, 'gutmann'],
        [WipeAlgorithm.WIPE_ALGORITHM_SCHNEIER, 'schneier'],
        [WipeAlgorithm.WIPE_ALGORITHM_PFITZNER7, 'pfitzner7'],
        [WipeAlgorithm.WIPE_ALGORITHM_PFITZNER33, 'pfitzner33'],
        [WipeAlgorithm.WIPE_ALGORITHM_RANDOM, 'random'],
      ];
      // scrub gets the agent's own descriptor of the checked file, not the path: whatever the
      // path holds by the time scrub opens it, scrub writes the file that was checked
      const opened: string[] = [];
      runner.on(['scrub'], (argv) => void opened.push(readlinkSync(argv[argv.length - 1]!)));
      for (const [a] of algs) await backend.wipeVol(ctx, vol('w.img', ''), a);
      expect(runner.argvs.map((argv) => argv.slice(0, -1))).to.deep.equal(algs.map(([, n]) => ['scrub', '-f', '-p', n, '--']));
      for (const argv of runner.argvs) expect(argv[argv.length - 1]).to.match(new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
      expect(opened).to.deep.equal(algs.map(() => join(target, 'w.img')));
    });

    it('a scrub wipe reports progress from scrub\'s passes, from 0 to done == total', async () => {
      writeFileSync(join(target, 'w.img'), Buffer.alloc(4800, 9));
      const pass = (p: string) => `scrub: ${p.padEnd(7)}|${'.'.repeat(48)}|\n`;
      runner.on(['scrub'], { stdout: `scrub: using DoD 5220.22-M patterns\nscrub: scrubbing x 4800 bytes (~4KB)\n${pass('random')}${pass('0x00')}` });
      const reports: Array<[bigint, bigint]> = [];
      await backend.wipeVol({ ...ctx, progress: (done, total) => void reports.push([done, total]) }, vol('w.img', ''), WipeAlgorithm.WIPE_ALGORITHM_DOD);
      expect(reports).to.deep.equal([[0n, 4800n], [2400n, 4800n], [4800n, 4800n]]);
    });

    it('a scrub that fails names the volume\'s file, not the agent\'s /proc descriptor it ran on', async () => {
      writeFileSync(join(target, 'w.img'), Buffer.alloc(4096, 9));
      // scrub names the file it was given, as scrub 2.6 does on a full filesystem
      runner.on(['scrub'], (argv) => ({ exitCode: 1, stderr: `scrub: ${argv[argv.length - 1]}: No space left on device\n` }));
      const err = await rejects(backend.wipeVol(ctx, vol('w.img', ''), WipeAlgorithm.WIPE_ALGORITHM_RANDOM));
      expect(err.code).to.equal('RESOURCE_EXHAUSTED');
      expect(err.message).to.contain(`scrub: ${join(target, 'w.img')}: No space left on device`);
      expect(JSON.stringify({ m: err.message, d: err.details })).to.not.match(/\/proc\/\d+\/fd\//);
    });

    // libvirt cuts a sparse file to nothing and back; one hole punched over it leaves the same
    // at its size throughout (an agent killed between the two truncates left capacity 0)
    for (const punch of ['punched', 'not supported by the filesystem: cut to nothing and back'] as const) {
      it(`zero of a sparse file (hole ${punch}): zeros, same size, still sparse`, async () => {
        const path = join(target, 'thin.img');
        const fd = openSync(path, 'w');
        writeSync(fd, Buffer.alloc(65536, 7), 0, 65536, 3 * 1024 * 1024);
        ftruncateSync(fd, 64 * 1024 * 1024 + 1000);
        closeSync(fd);
        // the real fallocate, on the descriptor the backend hands it as fd 3
        runner.on(['fallocate'], (argv, options) =>
          punch === 'punched'
            ? void execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit', ...(options.fds ?? [])] })
            : { exitCode: 1, stderr: 'fallocate: fallocate failed: Operation not supported\n' },
        );
        const reports: Array<[bigint, bigint]> = [];
        await backend.wipeVol({ ...ctx, progress: (done, total) => void reports.push([done, total]) }, vol('thin.img', ''), WipeAlgorithm.WIPE_ALGORITHM_ZERO);
        // the whole file, its last partial block too: the range ends on the file's block size
        const block = BigInt(statSync(path).blksize);
        const length = ((64n * MiB + 1000n + block - 1n) / block) * block;
        expect(runner.callsOf('fallocate')).to.deep.equal([['fallocate', '--punch-hole', '--keep-size', '-o', '0', '-l', String(length), '--', '/dev/fd/3']]);
        // progress still starts and ends, as a written wipe's does
        expect(reports).to.deep.equal([[0n, 64n * MiB + 1000n], [64n * MiB + 1000n, 64n * MiB + 1000n]]);
        const st = statSync(path);
        expect(st.size).to.equal(64 * 1024 * 1024 + 1000);
        expect(st.blocks).to.equal(0);
        const back = readFileSync(path);
        expect(back.subarray(3 * 1024 * 1024, 3 * 1024 * 1024 + 65536).equals(Buffer.alloc(65536))).to.equal(true);
      });
    }

    it('upload --sparse leaves blocks of zeros unwritten (holes in a fresh volume) and still reaches the end', async () => {
      const path = join(target, 'up.img');
      writeFileSync(path, '');
      const data = Buffer.alloc(2 << 20);
      data.fill(9, 4096, 8192);
      const chunks = async function* () { yield data.subarray(0, 1 << 20); yield data.subarray(1 << 20); };
      const n = await backend.uploadVol(ctx, vol('up.img', ''), 0n, 0n, chunks(), { sparse: true });
      expect(n).to.equal(BigInt(data.length));
      expect(readFileSync(path).equals(data)).to.equal(true);
      expect(statSync(path).blocks * 512).to.be.at.most(2 * 4096);
      await backend.uploadVol(ctx, vol('up.img', ''), 0n, 0n, chunks());
      expect(statSync(path).blocks * 512).to.be.at.least(2 << 20);
    });

    it('upload --sparse over old data writes the zeros of the source: the volume equals it (F1)', async () => {
      const path = join(target, 'old.img');
      writeFileSync(path, randomBytes(3 << 20));
      // 1 MiB of data, 1 MiB of zeros the source holds as written data, 1 MiB of data
      const source = Buffer.concat([randomBytes(1 << 20), Buffer.alloc(1 << 20), randomBytes(1 << 20)]);
      const n = await backend.uploadVol(ctx, vol('old.img', ''), 0n, 0n, pieces(source, 512 * 1024), { sparse: true });
      expect(n).to.equal(BigInt(source.length));
      expect(readFileSync(path).equals(source)).to.equal(true);
    });

    it('upload --sparse at an unaligned offset: zeros over a block partly holding data, and past the end, read back as zeros', async () => {
      const path = join(target, 'edge.img');
      writeFileSync(path, Buffer.alloc(6000, 0xff));
      const source = Buffer.alloc(20_000);
      source.fill(5, 15_000, 15_010);
      await backend.uploadVol(ctx, vol('edge.img', ''), 1000n, 0n, pieces(source, 7000), { sparse: true });
      const back = readFileSync(path);
      expect(back.length).to.equal(21_000);
      expect(back.subarray(0, 1000).equals(Buffer.alloc(1000, 0xff))).to.equal(true);
      expect(back.subarray(1000).equals(source)).to.equal(true);
    });

    it('upload --sparse into a sparse volume keeps its holes where the source has zeros', async () => {
      const path = join(target, 'thin.img');
      const fd = openSync(path, 'w');
      writeSync(fd, Buffer.alloc(100, 0xee), 0, 100, 5000); // one block of data among holes
      ftruncateSync(fd, 8 << 20);
      closeSync(fd);
      const source = Buffer.alloc(8 << 20);
      source.fill(3, 4 << 20, (4 << 20) + 4096);
      await backend.uploadVol(ctx, vol('thin.img', ''), 0n, 0n, pieces(source, 512 * 1024), { sparse: true });
      expect(readFileSync(path).equals(source)).to.equal(true);
      // the block of old data was overwritten with zeros, the new data block written: no more
      expect(statSync(path).blocks * 512).to.be.at.most(2 * 4096);
    });

    it('a FIFO in the pool is refused at once, not waited on', async () => {
      execFileSync('mkfifo', [join(target, 'pipe')]);
      const err = await rejects(backend.uploadVol(ctx, vol('pipe', ''), 0n, 0n, (async function* () { yield Buffer.from('x'); })()));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.match(/FIFO/);
    });

    it('zero writes zeros in-process; trim is UNIMPLEMENTED', async () => {
      writeFileSync(join(target, 'z.img'), Buffer.alloc(8192, 9));
      await backend.wipeVol(ctx, vol('z.img', ''), WipeAlgorithm.WIPE_ALGORITHM_ZERO);
      const { readFileSync } = await import('node:fs');
      expect(readFileSync(join(target, 'z.img')).equals(Buffer.alloc(8192))).to.equal(true);
      const err = await rejects(backend.wipeVol(ctx, vol('z.img', ''), WipeAlgorithm.WIPE_ALGORITHM_TRIM));
      expect(err.code).to.equal('UNIMPLEMENTED');
      expect(runner.calls).to.have.length(0);
    });
  });

  describe('upload and download past the end (libvirt checks no offset)', () => {
    const collect = async (it: AsyncIterable<Buffer>): Promise<Buffer> => {
      const parts: Buffer[] = [];
      for await (const p of it) parts.push(p);
      return Buffer.concat(parts);
    };

    it('an upload past the end of a file grows it, zeros in between; an empty one changes nothing', async () => {
      const path = join(target, 'grow.img');
      writeFileSync(path, Buffer.alloc(8192, 1));
      const data = randomBytes(100);
      expect(await backend.uploadVol(ctx, vol('grow.img', ''), MiB, 0n, pieces(data, 64))).to.equal(100n);
      const back = readFileSync(path);
      expect(back.length).to.equal(Number(MiB) + 100);
      expect(back.subarray(8192, Number(MiB)).equals(Buffer.alloc(Number(MiB) - 8192))).to.equal(true);
      expect(back.subarray(Number(MiB)).equals(data)).to.equal(true);
      for (const sparse of [false, true]) {
        await backend.uploadVol(ctx, vol('grow.img', ''), 4n * MiB, 0n, pieces(Buffer.alloc(0), 1), { sparse });
        expect(statSync(path).size).to.equal(Number(MiB) + 100);
      }
    });

    it('a download from the end or past it is empty, not an error', async () => {
      writeFileSync(join(target, 'short.img'), Buffer.alloc(8192, 1));
      for (const [offset, length] of [[8192n, 0n], [8192n, 10n], [1n << 40n, 0n]] as const) {
        expect((await collect(backend.downloadVol(ctx, vol('short.img', ''), offset, length))).length, `offset ${offset}`).to.equal(0);
      }
      expect((await collect(backend.downloadVol(ctx, vol('short.img', ''), 8000n, 0n))).length).to.equal(192);
    });

    it('a block device in the pool is not written past its end', async function () {
      if (!loopDevicesAvailable()) this.skip();
      const loop = attachLoop(1 << 20, 'dir-blk');
      try {
        const rdev = statSync(loop.device).rdev;
        const node = join(target, 'blk');
        execFileSync('mknod', [node, 'b', String((rdev >> 8) & 0xfff), String((rdev & 0xff) | ((rdev >> 12) & 0xfff00))]);
        const past = await rejects(backend.uploadVol(ctx, vol('blk', ''), (1n << 20n) + 1n, 0n, pieces(Buffer.alloc(10, 2), 10)));
        expect(past.code).to.equal('INVALID_ARGUMENT');
        const over = await rejects(backend.uploadVol(ctx, vol('blk', ''), (1n << 20n) - 4096n, 0n, pieces(Buffer.alloc(8192, 2), 4096)));
        expect(over.code).to.equal('INVALID_ARGUMENT');
        expect(over.message).to.contain('longer than the device');
        // what fits was written, nothing past the end
        const back = readFileSync(loop.file);
        expect(back.length).to.equal(1 << 20);
        expect(back.subarray((1 << 20) - 4096).equals(Buffer.alloc(4096, 2))).to.equal(true);
        expect((await collect(backend.downloadVol(ctx, vol('blk', ''), 2n << 20n, 0n))).length).to.equal(0);
      } finally {
        await loop.detach();
      }
    });
  });

  describe('bad input is refused and changes nothing', () => {
    const badNames = ['../x', 'a/b', '', 'x'.repeat(300), 'ctl\x01char', '-leading', '.', '..'];
    for (const name of badNames) {
      it(`refuses volume name ${JSON.stringify(name.length > 20 ? `${name.slice(0, 10)}...(${name.length})` : name)}`, async () => {
        const err = await rejects(build(vol(name, 'raw', MiB)));
        expect(err.code).to.equal('INVALID_ARGUMENT');
        expect(err.message).to.contain('volume.name');
        expect(readdirSync(target)).to.deep.equal([]);
        expect(readdirSync(root)).to.deep.equal(['pool']);
      });
    }

    it('refuses negative and overflowing sizes', async () => {
      for (const v of [vol('n', 'raw', -1n), vol('o', 'raw', 1n << 63n), vol('a', 'raw', MiB, { allocation: 1n << 63n })]) {
        const err = await rejects(build(v));
        expect(err.code).to.equal('INVALID_ARGUMENT');
      }
      expect(readdirSync(target)).to.deep.equal([]);
    });

    it('refuses unknown and read-only formats, saying what is allowed', async () => {
      const unknown = await rejects(build(vol('u', 'qcow9', MiB)));
      expect(unknown.code).to.equal('INVALID_ARGUMENT');
      expect(unknown.message).to.contain('allowed: raw, dir, iso, qcow, qcow2, qed, vmdk, vpc, vdi');
      const ro = await rejects(build(vol('b', 'bochs', MiB)));
      expect(ro.code).to.equal('INVALID_ARGUMENT');
      expect(readdirSync(target)).to.deep.equal([]);
      expect(runner.calls).to.have.length(0);
    });

    it('refuses qcow2-only options elsewhere, lazy_refcounts with compat 0.10, bad cluster sizes, backing on raw', async () => {
      const cases = [
        vol('a', 'raw', MiB, { compat: '1.1' }),
        vol('b', 'vmdk', MiB, { lazy: true }),
        vol('c', 'qcow2', MiB, { lazy: true, compat: '0.10' }),
        vol('c2', 'qcow2', MiB, { extendedL2: true, compat: '0.10' }),
        // legacy qcow (AES) encryption is read, never made
        vol('c3', 'qcow2', MiB, { target: { path: '', format: 'qcow2', permissions: undefined, timestamps: undefined, compat: '', nocow: false, clusterSize: 0n, lazyRefcounts: false, extendedL2: false, encryption: { format: 'qcow', secrets: [{ type: 'passphrase', uuid: 'f52a81b2-424e-490c-823d-6bd4235bc572', usage: '' }], cipher: undefined, ivgen: undefined } } }),
        vol('d', 'qcow2', MiB, { cluster: 3000n }),
        vol('e', 'raw', MiB, { cluster: 65536n }),
        vol('f', 'raw', MiB, { backingStore: { path: '/x', format: 'raw', permissions: undefined, timestamps: undefined } }),
        vol('g', 'qcow2', MiB, { backingStore: { path: '../../etc/passwd', format: 'raw', permissions: undefined, timestamps: undefined } }),
        vol('h', 'qcow2', MiB, { compat: '2.5' }),
        // qemu would read these as network addresses and connect there as root
        vol('i', 'qcow2', MiB, { backingStore: { path: 'nbd:127.0.0.1:10809', format: 'raw', permissions: undefined, timestamps: undefined } }),
        vol('j', 'qcow2', MiB, { backingStore: { path: 'http:x/y', format: 'raw', permissions: undefined, timestamps: undefined } }),
      ];
      for (const v of cases) {
        const err = await rejects(build(v));
        expect(err.code, v.name).to.equal('INVALID_ARGUMENT');
      }
      const meta = await rejects(build(vol('r', 'raw', MiB), { preallocMetadata: true }));
      expect(meta.code).to.equal('INVALID_ARGUMENT');
      expect(readdirSync(target)).to.deep.equal([]);
      expect(runner.calls).to.have.length(0);
    });

    it('lazy_refcounts or extended_l2 on another format names that field, not the compat 1.1 it implied', async () => {
      // a definition's normalization gives either feature compat 1.1, as libvirt's <features> imply
      for (const [v, field] of [
        [vol('la', 'raw', MiB, { lazy: true, compat: '1.1' }), 'volume.target.lazy_refcounts'],
        [vol('lb', 'vmdk', MiB, { extendedL2: true, compat: '1.1' }), 'volume.target.extended_l2'],
      ] as const) {
        const err = await rejects(build(v));
        expect(err.code, v.name).to.equal('INVALID_ARGUMENT');
        expect(err.message, v.name).to.match(new RegExp(`^${field.replace(/\./g, '\\.')}: `));
      }
      expect(runner.calls).to.have.length(0);
    });

    it("a relative backing name with ':' is accepted as './NAME' and reaches qemu-img as a file", async () => {
      writeFileSync(join(target, 'nbd:127.0.0.1:10809'), Buffer.alloc(4096));
      const err = await rejects(build(vol('k', 'qcow2', MiB, { backingStore: { path: 'nbd:127.0.0.1:10809', format: 'raw', permissions: undefined, timestamps: undefined } })));
      expect(err.message).to.match(/'\.\/nbd:127\.0\.0\.1:10809'/);
      await build(vol('k', 'qcow2', MiB, { backingStore: { path: './nbd:127.0.0.1:10809', format: 'raw', permissions: undefined, timestamps: undefined } }));
      expect(readdirSync(target).sort()).to.deep.equal(['k', 'nbd:127.0.0.1:10809']);
    });

    it('refuses an existing name with ALREADY_EXISTS and leaves the file alone', async () => {
      writeFileSync(join(target, 'taken'), 'keep');
      const err = await rejects(build(vol('taken', 'raw', MiB)));
      expect(err.code).to.equal('ALREADY_EXISTS');
      const { readFileSync } = await import('node:fs');
      expect(readFileSync(join(target, 'taken'), 'utf8')).to.equal('keep');
    });

    it('refuses to write through a link that leaves the pool', async () => {
      const outside = join(root, 'outside.img');
      writeFileSync(outside, Buffer.alloc(4096, 5));
      symlinkSync(outside, join(target, 'escape'));
      for (const op of [
        () => backend.wipeVol(ctx, vol('escape', ''), WipeAlgorithm.WIPE_ALGORITHM_ZERO),
        () => backend.resizeVol(ctx, vol('escape', ''), MiB, { allocate: false, delta: false, shrink: false }),
        () => backend.uploadVol(ctx, vol('escape', ''), 0n, 0n, (async function* () { yield Buffer.from('x'); })()),
      ]) {
        const err = await rejects(op());
        expect(err.code).to.equal('PERMISSION_DENIED');
      }
      const { readFileSync } = await import('node:fs');
      expect(readFileSync(outside).equals(Buffer.alloc(4096, 5))).to.equal(true);
      // a link that stays inside the pool is followed, as libvirt follows it
      writeFileSync(join(target, 'real.img'), Buffer.alloc(4096, 5));
      symlinkSync('real.img', join(target, 'inside'));
      await backend.wipeVol(ctx, vol('inside', ''), WipeAlgorithm.WIPE_ALGORITHM_ZERO);
      expect(readFileSync(join(target, 'real.img')).equals(Buffer.alloc(4096))).to.equal(true);
      // delete removes the link, not what it points to
      await backend.deleteVol(ctx, vol('escape', ''));
      expect(existsSync(join(target, 'escape'))).to.equal(false);
      expect(existsSync(outside)).to.equal(true);
    });

    it("refuses a link into a sibling directory whose name begins with the pool's ('pool-sibling' is not inside 'pool')", async () => {
      mkdirSync(`${target}-sibling`);
      const victim = `${target}-sibling/victim`;
      writeFileSync(victim, Buffer.alloc(4096, 7));
      symlinkSync(victim, join(target, 'sideways'));
      const read = async () => {
        for await (const _ of backend.downloadVol!(ctx, vol('sideways', ''), 0n, 0n)) void _;
      };
      for (const [what, op] of [
        ['wipe', () => backend.wipeVol(ctx, vol('sideways', ''), WipeAlgorithm.WIPE_ALGORITHM_ZERO)],
        ['resize', () => backend.resizeVol(ctx, vol('sideways', ''), MiB, { allocate: false, delta: false, shrink: false })],
        ['upload', () => backend.uploadVol(ctx, vol('sideways', ''), 0n, 0n, (async function* () { yield Buffer.from('x'); })())],
        ['download', read],
      ] as const) {
        const err = await rejects(op());
        expect(err.code, what).to.equal('PERMISSION_DENIED');
        expect(err.message, what).to.include(`resolves to '${victim}', outside the pool target '${target}'`);
      }
      expect(readFileSync(victim).equals(Buffer.alloc(4096, 7))).to.equal(true);
    });

    it('delete of a directory volume holding a root.hds but no DiskDescriptor.xml (not a ploop image) refuses to remove its files', async () => {
      // libvirt's virStorageBackendIsPloopDir needs both files; any other directory volume is
      // removed with rmdir, which a non-empty one fails
      mkdirSync(join(target, 'data'));
      writeFileSync(join(target, 'data', 'root.hds'), 'kept');
      writeFileSync(join(target, 'data', 'notes.txt'), 'kept');
      const listed = (await backend.refreshPool(ctx)).volumes.find((v) => v.name === 'data');
      expect(listed?.type).to.equal(VolumeType.VOLUME_TYPE_DIR);
      const err = await rejects(backend.deleteVol(ctx, vol('data', '')));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(readdirSync(join(target, 'data')).sort()).to.deep.equal(['notes.txt', 'root.hds']);
      // a ploop image directory (both files) is removed whole
      writeFileSync(join(target, 'data', 'DiskDescriptor.xml'), '<Parallels_disk_image/>');
      await backend.deleteVol(ctx, vol('data', ''));
      expect(existsSync(join(target, 'data'))).to.equal(false);
    });

    it('a ploop image file is a ploop volume (libvirt types a refreshed volume by its format), sized from its header', async () => {
      // the header qemu-img writes for -f parallels: the magic, then the sector count at byte 36
      const header = Buffer.alloc(64);
      header.write('WithouFreSpacExt', 0, 'latin1');
      header.writeBigUInt64LE(2n * 1024n * 1024n, 36);
      writeFileSync(join(target, 'p.hds'), header);
      const listed = (await backend.refreshPool(ctx)).volumes.find((v) => v.name === 'p.hds');
      expect(listed?.type).to.equal(VolumeType.VOLUME_TYPE_PLOOP);
      expect(listed?.target?.format).to.equal('ploop');
      expect(listed?.capacity).to.equal(1024n * MiB);
      expect(listed?.physical).to.equal(64n);
    });

    it('build flags: overwrite with no_overwrite is INVALID_ARGUMENT; either alone is FAILED_PRECONDITION; nothing is created', async () => {
      const c = { runner, pool: poolDef(join(root, 'new', 'pool')) };
      expect((await rejects(backend.buildPool(c, { overwrite: true, noOverwrite: true }))).code).to.equal('INVALID_ARGUMENT');
      expect((await rejects(backend.buildPool(c, { overwrite: true, noOverwrite: false }))).code).to.equal('FAILED_PRECONDITION');
      expect(existsSync(join(root, 'new'))).to.equal(false);
    });

    it('a relative or dotted pool target is INVALID_ARGUMENT', async () => {
      for (const p of ['relative/dir', '/a/../b', '']) {
        const err = await rejects(backend.buildPool({ runner, pool: poolDef(p) }, { overwrite: false, noOverwrite: false }));
        expect(err.code).to.equal('INVALID_ARGUMENT');
      }
    });
  });
});
