// The in-process qcow2 writer against the real qemu-img: for a matrix of sizes, cluster
// sizes, compat levels, lazy refcounts and backing files, `qemu-img create` writes one
// file and planQcow2Image + writeQcow2ImageSync another, and the two must be the same
// bytes with the same length; what qemu-img refuses, the planner declines; in-process
// images pass `qemu-img check` and `qemu-img info` reports the requested options.
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants as fsc, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirBackend } from '../../libs/backends/dir.js';
import { qemuImgCreateArgv } from '../../libs/backends/qemu-img-argv.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { PoolContext } from '../../libs/backends/backend.js';
import type { RunOptions, RunResult } from '../../libs/backends/runner.js';
import { PoolType, VolumeType, type VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { planQcow2Image, qcow2BaseProblem, renderQcow2Image, writeQcow2Image, writeQcow2ImageSync, type Qcow2CreateOptions, type Qcow2Plan } from '../../libs/backends/qcow2-image.js';

const KiB = 1024n;
const MiB = 1024n * KiB;
const GiB = 1024n * MiB;
const TiB = 1024n * GiB;

function hasQemuImg(): boolean {
  return spawnSync('qemu-img', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** qemu-img create with the options as libvirt passes them (-b, -o backing_fmt,compat,cluster_size,lazy_refcounts). */
function qemuCreate(path: string, o: Qcow2CreateOptions): { ok: true } | { ok: false; stderr: string } {
  const opts: string[] = [];
  if (o.backingFormat) opts.push(`backing_fmt=${o.backingFormat}`);
  if (o.compat) opts.push(`compat=${o.compat}`);
  if (o.clusterSize) opts.push(`cluster_size=${o.clusterSize}`);
  if (o.lazyRefcounts) opts.push('lazy_refcounts');
  const argv = ['create', '-q', '-f', 'qcow2', ...(o.backingFile ? ['-b', o.backingFile] : []), ...(opts.length ? ['-o', opts.join(',')] : []), '--', path, String(o.capacity)];
  const r = spawnSync('qemu-img', argv, { encoding: 'utf8' });
  return r.status === 0 ? { ok: true } : { ok: false, stderr: r.stderr };
}

function writeInProcess(path: string, plan: Qcow2Plan): void {
  const fd = openSync(path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o600);
  try {
    writeQcow2ImageSync(fd, plan);
  } finally {
    closeSync(fd);
  }
}

function label(o: Qcow2CreateOptions): string {
  const parts = [`size=${o.capacity}`, `cluster=${o.clusterSize ?? 'default'}`, `compat=${o.compat ?? 'default'}`];
  if (o.lazyRefcounts) parts.push('lazy_refcounts');
  if (o.backingFile) parts.push(`backing=${o.backingFile}(${o.backingFormat ?? '-'})`);
  return parts.join(' ');
}

interface QemuInfo {
  format: string;
  'virtual-size': number;
  'cluster-size': number;
  'backing-filename'?: string;
  'backing-filename-format'?: string;
  'format-specific': { type: string; data: { compat: string; 'lazy-refcounts'?: boolean; 'refcount-bits'?: number } };
}

describe('in-process qcow2 images against qemu-img create', function () {
  this.timeout(300_000);
  let dir: string;
  let n = 0;

  before(function () {
    if (!hasQemuImg()) this.skip(); // skip reason: qemu-img is not installed (Debian package qemu-utils)
    dir = mkdtempSync(join(tmpdir(), 'cistern-qcow2-image-'));
    writeFileSync(join(dir, 'base.raw'), Buffer.alloc(3000, 1));
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'compat=1.1', '--', join(dir, 'base.qcow2'), '5M']);
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'b,1.raw'), Buffer.alloc(512));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Creates the image both ways and asserts the same bytes; returns the in-process path. */
  function same(o: Qcow2CreateOptions): string {
    const i = n++;
    const ref = join(dir, `ref-${i}.qcow2`);
    const mine = join(dir, `mine-${i}.qcow2`);
    const q = qemuCreate(ref, o);
    expect(q.ok, `${label(o)}: qemu-img failed: ${q.ok ? '' : q.stderr}`).to.equal(true);
    const res = planQcow2Image(o);
    expect(res.ok, `${label(o)}: ${res.ok ? '' : res.reason}`).to.equal(true);
    if (!res.ok) throw new Error('unreachable');
    writeInProcess(mine, res.plan);
    const a = readFileSync(ref);
    const b = readFileSync(mine);
    expect(b.length, `${label(o)}: file length`).to.equal(a.length);
    const at = a.findIndex((x, k) => x !== b[k]);
    expect(at, `${label(o)}: first differing byte`).to.equal(-1);
    expect(statSync(mine).size).to.equal(res.plan.fileLength);
    rmSync(ref);
    return mine;
  }

  describe('the same bytes as qemu-img', () => {
    const sizes = [0n, 1n, 1000n, 1025n, MiB + 1n, GiB, 100n * GiB];
    const clusters = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576, 2097152];
    for (const clusterSize of clusters) {
      it(`cluster size ${clusterSize}: sizes 0 to 100 GiB, compat 0.10 and 1.1 (with and without lazy refcounts)`, () => {
        sizes.forEach((capacity, i) => {
          // 512-byte clusters and 100 GiB make qemu grow the refcount table: declined (below)
          if (clusterSize === 512 && capacity > 16n * GiB) return;
          rmSync(same({ capacity, clusterSize, compat: '0.10' }));
          rmSync(same({ capacity, clusterSize, compat: '1.1', lazyRefcounts: i % 2 === 1 }));
        });
      });
    }

    it('the default cluster size and compat (qemu-img with no -o), 16 TiB and the largest 64 KiB-cluster image (2 PiB)', () => {
      rmSync(same({ capacity: 10n * MiB }));
      rmSync(same({ capacity: 16n * TiB, compat: '0.10' }));
      rmSync(same({ capacity: 2048n * TiB, compat: '1.1', clusterSize: 65536 }));
    });

    it('512-byte clusters up to 16 GiB: qemu adds refcount blocks and restarts its allocation, in the same places', () => {
      for (const capacity of [4n * GiB, 16n * GiB]) rmSync(same({ capacity, clusterSize: 512, compat: '1.1' }));
    });

    it('backing files: absolute and relative names, raw and qcow2, with every compat and small and large clusters', () => {
      for (const clusterSize of [512, 4096, 65536, 2097152]) {
        for (const compat of ['0.10', '1.1'] as const) {
          for (const [backingFile, backingFormat] of [
            [join(dir, 'base.raw'), 'raw'],
            ['base.qcow2', 'qcow2'],
            ['sub/b,1.raw', 'raw'],
          ] as const) {
            // qemu-img resolves a relative backing name against the image's directory (dir)
            const o = { capacity: GiB, clusterSize, compat, backingFile, backingFormat };
            rmSync(same(o));
          }
        }
      }
    });
  });

  describe('what qemu-img refuses, the planner declines', () => {
    it('sizes past the 32 MiB L1 table, lazy refcounts with compat 0.10, bad cluster sizes, a backing name that does not fit', () => {
      const refused: Qcow2CreateOptions[] = [
        { capacity: 16n * TiB, clusterSize: 4096, compat: '1.1' },
        { capacity: 2048n * TiB + 512n, clusterSize: 65536, compat: '1.1' },
        { capacity: (1n << 63n) - 1024n, clusterSize: 2097152, compat: '1.1' },
        { capacity: GiB, compat: '0.10', lazyRefcounts: true },
        { capacity: GiB, clusterSize: 3000 },
        { capacity: GiB, clusterSize: 256 },
        { capacity: GiB, clusterSize: 4 * 1024 * 1024 },
        { capacity: MiB, clusterSize: 512, compat: '1.1', backingFile: join(dir, 'x'.repeat(200), 'y'.repeat(200)), backingFormat: 'raw' },
      ];
      for (const o of refused) {
        if (o.backingFile) {
          mkdirSync(join(o.backingFile, '..'), { recursive: true });
          writeFileSync(o.backingFile, Buffer.alloc(512));
        }
        const i = n++;
        const q = qemuCreate(join(dir, `refused-${i}.qcow2`), o);
        expect(q.ok, `${label(o)}: qemu-img accepted it`).to.equal(false);
        expect(planQcow2Image(o).ok, label(o)).to.equal(false);
      }
    });

    it('512-byte clusters and 32 GiB (qemu grows the refcount table): declined, so the caller runs qemu-img', () => {
      const r = planQcow2Image({ capacity: 32n * GiB, clusterSize: 512, compat: '1.1' });
      expect(r.ok).to.equal(false);
      if (!r.ok) expect(r.reason).to.contain('refcount table');
    });
  });

  describe('in-process images as qemu-img sees them', () => {
    const cases: Array<{ o: Qcow2CreateOptions; compat: string; lazy: boolean }> = [
      { o: { capacity: GiB, compat: '0.10' }, compat: '0.10', lazy: false },
      { o: { capacity: 100n * GiB, compat: '1.1', clusterSize: 2097152 }, compat: '1.1', lazy: false },
      { o: { capacity: 3n * GiB + 512n, compat: '1.1', clusterSize: 512, lazyRefcounts: true }, compat: '1.1', lazy: true },
      { o: { capacity: 16n * TiB, compat: '1.1', clusterSize: 65536, lazyRefcounts: true }, compat: '1.1', lazy: true },
    ];
    for (const c of cases) {
      it(`${label(c.o)}: qemu-img check is clean; info says qcow2, the size, cluster size, compat, lazy refcounts`, () => {
        const res = planQcow2Image(c.o);
        if (!res.ok) throw new Error(res.reason);
        const path = join(dir, `info-${n++}.qcow2`);
        writeInProcess(path, res.plan);
        execFileSync('qemu-img', ['check', '-q', '--', path]);
        const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '--', path], { encoding: 'utf8' })) as QemuInfo;
        expect(info.format).to.equal('qcow2');
        expect(BigInt(info['virtual-size'])).to.equal(c.o.capacity);
        expect(info['cluster-size']).to.equal(c.o.clusterSize ?? 65536);
        expect(info['format-specific'].data.compat).to.equal(c.compat);
        if (c.compat === '1.1') expect(info['format-specific'].data['lazy-refcounts']).to.equal(c.lazy);
        rmSync(path);
      });
    }

    it('with a backing file: backing-filename and backing-filename-format; qemu-img reads through to the base', () => {
      const res = planQcow2Image({ capacity: 4n * KiB, compat: '1.1', backingFile: join(dir, 'base.raw'), backingFormat: 'raw' });
      if (!res.ok) throw new Error(res.reason);
      const path = join(dir, `overlay-${n++}.qcow2`);
      writeInProcess(path, res.plan);
      execFileSync('qemu-img', ['check', '-q', '--', path]);
      const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '--', path], { encoding: 'utf8' })) as QemuInfo;
      expect(info['backing-filename']).to.equal(join(dir, 'base.raw'));
      expect(info['backing-filename-format']).to.equal('raw');
      // the overlay reads the base's bytes (3000 bytes of 1, then zeros)
      const out = join(dir, `flat-${n++}.raw`);
      execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', '--', path, out]);
      const flat = readFileSync(out);
      expect(flat.length).to.equal(4096);
      expect(flat.subarray(0, 3000).every((x) => x === 1)).to.equal(true);
      expect(flat.subarray(3000).every((x) => x === 0)).to.equal(true);
    });

    it('the asynchronous writer writes the same file as the synchronous one and the rendered buffer', async () => {
      const res = planQcow2Image({ capacity: 2048n * TiB, compat: '1.1' }); // a 32 MiB L1 table: written in chunks
      if (!res.ok) throw new Error(res.reason);
      const a = join(dir, `sync-${n++}.qcow2`);
      const b = join(dir, `async-${n++}.qcow2`);
      writeInProcess(a, res.plan);
      const fh = await open(b, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      try {
        await writeQcow2Image(fh, res.plan);
      } finally {
        await fh.close();
      }
      const bytesA = readFileSync(a);
      expect(readFileSync(b).equals(bytesA)).to.equal(true);
      expect(renderQcow2Image(res.plan).equals(bytesA)).to.equal(true);
      execFileSync('qemu-img', ['check', '-q', '--', b]);
    });
  });

  describe('through the dir backend: the bytes of the qemu-img command line libvirt would run', () => {
    /** Runs nothing itself; counts what the backend asked for. */
    class CountingRunner extends ExecRunner {
      calls: string[][] = [];
      override async run(argv: readonly string[], options?: RunOptions): Promise<RunResult> {
        this.calls.push([...argv]);
        return super.run(argv, options);
      }
    }

    const cases: Array<{ name: string; capacity?: bigint; compat?: string; lazy?: boolean; cluster?: bigint; backing?: [string, string] }> = [
      { name: 'plain 1 GiB (libvirt default compat 0.10)', capacity: GiB },
      { name: '1000 bytes (1K on the command line), compat 1.1, lazy refcounts, 4 KiB clusters', capacity: 1000n, compat: '1.1', lazy: true, cluster: 4096n },
      { name: 'a raw backing file and no capacity: the base size rounded up to 512', backing: ['base.raw', ''] },
      { name: 'a qcow2 backing file and no capacity: the base virtual size', backing: ['base.qcow2', 'qcow2'], compat: '1.1' },
      { name: 'a raw backing file by absolute path, with a capacity', capacity: 20n * MiB, backing: ['ABS/base.raw', 'raw'] },
    ];
    type Case = (typeof cases)[number];
    /** Creates the case's volume through the backend and the reference with qemu-img; fails on any difference. */
    async function sameAsQemuImg(c: Case): Promise<void> {
      const runner = new CountingRunner();
      const ctx: PoolContext = { runner, pool: { type: PoolType.POOL_TYPE_DIR, name: 'p', uuid: '', source: undefined, target: { path: dir, permissions: undefined }, features: undefined, mountOptions: [] } };
      const backend = new DirBackend();
      const name = `be-${n++}.qcow2`;
      const backingPath = c.backing?.[0].replace('ABS', dir);
      const v: VolumeDefinition = {
        type: VolumeType.VOLUME_TYPE_UNSPECIFIED,
        name,
        key: '',
        capacity: c.capacity ?? 0n,
        allocation: undefined,
        sourceDevices: [],
        target: { path: '', format: 'qcow2', permissions: undefined, timestamps: undefined, compat: c.compat ?? '', nocow: false, clusterSize: c.cluster ?? 0n, lazyRefcounts: c.lazy ?? false, extendedL2: false, encryption: undefined },
        backingStore: backingPath ? { path: backingPath, format: c.backing![1], permissions: undefined, timestamps: undefined } : undefined,
      };
      const planned = await backend.createVol(ctx, v);
      await backend.buildVol(ctx, planned, { preallocMetadata: false });
      expect(runner.calls, 'processes run').to.deep.equal([]);
      const ref = join(dir, `ref-${name}`);
      const argv = qemuImgCreateArgv({
        format: 'qcow2',
        path: ref,
        capacity: c.capacity ?? 0n,
        backingPath,
        backingFormat: c.backing ? c.backing[1] || 'raw' : undefined,
        compat: planned.target!.compat || undefined,
        clusterSize: c.cluster,
        lazyRefcounts: c.lazy,
      });
      execFileSync(argv[0]!, argv.slice(1));
      expect(readFileSync(join(dir, name)).equals(readFileSync(ref)), argv.join(' ')).to.equal(true);
      expect(statSync(join(dir, name)).mode & 0o777).to.equal(0o600);
    }
    for (const c of cases) it(c.name, () => sameAsQemuImg(c));

    it('layouts kept between creates: the same options again, after others and after more than are kept, are the same bytes', async () => {
      const first: Case = { name: 'first', capacity: GiB };
      const sameSizeV3: Case = { name: 'same size, compat 1.1, lazy refcounts', capacity: GiB, compat: '1.1', lazy: true };
      const others: Case[] = Array.from({ length: 20 }, (_, i) => ({ name: `other ${i}`, capacity: BigInt(i + 2) * GiB, compat: i % 2 ? '1.1' : '' }));
      for (const c of [first, first, sameSizeV3, ...others.slice(0, 3), first, sameSizeV3, ...others, first]) await sameAsQemuImg(c);
    });
  });

  describe('qcow2BaseProblem: which bases qemu-img must open itself', () => {
    const headerOf = (p: string) => readFileSync(p).subarray(0, 4096);

    it('a plain qemu-img image (v2, v3, lazy refcounts, 512-byte clusters) has none', () => {
      for (const o of ['compat=0.10', 'compat=1.1', 'compat=1.1,lazy_refcounts', 'compat=1.1,cluster_size=512']) {
        const p = join(dir, `plain-${n++}.qcow2`);
        execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', o, '--', p, '1G']);
        expect(qcow2BaseProblem(headerOf(p)), o).to.equal(undefined);
      }
    });

    it('a backing file, encryption, an external data file, extended L2, a zeroed or truncated header: a problem each', () => {
      const mk = (args: string[]) => {
        const p = join(dir, `odd-${n++}.qcow2`);
        execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', ...args, '--', p, '1M']);
        return p;
      };
      expect(qcow2BaseProblem(headerOf(mk(['-b', join(dir, 'base.raw'), '-F', 'raw'])))).to.equal('has a backing file');
      const encrypted = Buffer.from(headerOf(mk(['-o', 'compat=1.1'])));
      encrypted.writeUInt32BE(2, 32); // crypt_method luks (a real LUKS header takes seconds of key derivation)
      expect(qcow2BaseProblem(encrypted)).to.equal('encrypted');
      expect(qcow2BaseProblem(headerOf(mk(['-o', `data_file=${join(dir, `data-${n}.raw`)}`])))).to.equal('incompatible features set');
      expect(qcow2BaseProblem(headerOf(mk(['-o', 'extended_l2=on'])))).to.equal('incompatible features set');
      const zeroed = Buffer.alloc(512);
      zeroed.writeUInt32BE(0x514649fb, 0);
      zeroed.writeUInt32BE(3, 4);
      expect(qcow2BaseProblem(zeroed)).to.match(/cluster bits/);
      expect(qcow2BaseProblem(zeroed.subarray(0, 40))).to.equal('short header');
    });
  });
});
