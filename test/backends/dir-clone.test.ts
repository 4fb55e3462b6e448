// The dir backend's raw -> raw clone on real files (libvirt's createRawFile +
// virStorageBackendCopyToFD semantics): a sparse clone has data exactly where the source
// has non-zero 4 KiB blocks (read back with SEEK_DATA/SEEK_HOLE through `xfs_io seek`),
// including blocks across the copy's chunk and probe edges and zeros the source has
// allocated; a clone whose allocation reaches the capacity is fully allocated; a larger
// capacity is honoured; cancelling mid-copy leaves no file; concurrent clones stay apart.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirBackend } from '../../libs/backends/dir.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { PoolContext } from '../../libs/backends/backend.js';
import type { CisternError } from '../../libs/errors/errors.js';
import { PoolType, type PoolDefinition, type VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { hasTool, writeSparseFile } from '../support/index.js';
import { fileVolume } from '../support/volume-definitions.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 4096;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The file's data ranges as the filesystem reports them (lseek SEEK_DATA / SEEK_HOLE via xfs_io). */
function dataMap(path: string): [number, number][] {
  const out = execFileSync('xfs_io', ['-r', '-c', 'seek -a -r 0', '--', path], { encoding: 'utf8' });
  const marks = out
    .split('\n')
    .map((l) => /^(DATA|HOLE)\s+(\d+)/.exec(l))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => ({ kind: m[1], at: Number(m[2]) }));
  const size = statSync(path).size;
  const runs: [number, number][] = [];
  marks.forEach((m, i) => {
    if (m.kind === 'DATA') runs.push([m.at, Math.min(marks[i + 1]?.at ?? size, size)]);
  });
  return runs;
}

/** Where a sparse copy must put data: each 4 KiB block (file-aligned) holding a non-zero byte, neighbours merged. */
function nonZeroBlocks(buf: Buffer): [number, number][] {
  const runs: [number, number][] = [];
  for (let off = 0; off < buf.length; off += BLOCK) {
    const end = Math.min(off + BLOCK, buf.length);
    if (buf.subarray(off, end).some((b) => b !== 0)) {
      const last = runs.at(-1);
      if (last && last[1] === off) last[1] = end;
      else runs.push([off, end]);
    }
  }
  return runs;
}

function poolDef(path: string): PoolDefinition {
  return { type: PoolType.POOL_TYPE_DIR, name: 'p', uuid: '', source: undefined, target: { path, permissions: undefined }, features: undefined, mountOptions: [] };
}

const vol = (name: string, extra: Partial<VolumeDefinition> = {}): VolumeDefinition => fileVolume(name, 'raw', undefined, extra);

describe('dir backend raw clone on real files', function () {
  this.timeout(120_000);
  let root: string;
  let target: string;
  let ctx: PoolContext;
  const backend = new DirBackend();

  before(function () {
    if (!hasTool('xfs_io')) this.skip(); // skip reason: xfs_io (Debian package xfsprogs) reads the data/hole map
    root = mkdtempSync(join(tmpdir(), 'cistern-dir-clone-'));
    target = join(root, 'pool');
    mkdirSync(target);
    ctx = { runner: new ExecRunner(), pool: poolDef(target) };
    if (statSync(target).blksize !== BLOCK) this.skip(); // skip reason: holes are checked at a 4 KiB filesystem block size
    // a filesystem that shares extents clones by reflink: the map is then the source's, not the copy's
    writeFileSync(join(root, 'r1'), 'x');
    let reflinks = true;
    try {
      execFileSync('cp', ['--reflink=always', '--', join(root, 'r1'), join(root, 'r2')], { stdio: 'ignore' });
    } catch {
      reflinks = false;
    }
    if (reflinks) this.skip(); // skip reason: the temp filesystem reflinks, so the copy path is not taken
  });
  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** A sparse source file in the pool: `size` bytes, `data` at the given offsets. */
  const source = (name: string, size: number, data: [number, Buffer][]): string => writeSparseFile(join(target, name), size, data);

  async function clone(name: string, from: string, extra: Partial<VolumeDefinition> = {}, c: PoolContext = ctx): Promise<VolumeDefinition> {
    const def = await backend.createVol(c, vol(name, extra));
    await backend.buildVolFrom(c, def, { pool: c.pool, volume: vol(from) }, { preallocMetadata: false });
    return backend.refreshVol(c, def);
  }

  it('a sparse clone (allocation 0) has the same bytes and data exactly where the source has non-zero 4 KiB blocks', async () => {
    const size = 5 * MiB + 1000; // a short last block
    const src = source('edges.img', size, [
      [0, Buffer.from('boot')],
      [MiB - BLOCK, Buffer.alloc(2 * BLOCK, 0x11)], // data across the first 1 MiB chunk edge
      [2 * MiB - 64 * KiB, Buffer.alloc(56 * KiB, 0x22)], // data, then zeros across the 2 MiB chunk edge ...
      [2 * MiB + 8 * KiB, Buffer.alloc(56 * KiB, 0x33)], // ... then data again
      [3 * MiB, Buffer.alloc(256 * KiB)], // zeros the source has allocated: holes in the clone
      [3 * MiB + 128 * KiB + 5, Buffer.from([1])], // one data block among them
      [4 * MiB + 60 * KiB, Buffer.alloc(8 * KiB, 0x44)], // across a 64 KiB probe edge
      [size - 1, Buffer.from([0xff])],
    ]);
    const bytes = readFileSync(src);
    const srcMap = dataMap(src);
    expect(srcMap.some(([s, e]) => s <= 3 * MiB && e >= 3 * MiB + 256 * KiB), 'the source has its zeros allocated').to.equal(true);

    const seen: bigint[] = [];
    const c = await clone('edges-copy.img', 'edges.img', { allocation: 0n }, { ...ctx, progress: (d) => seen.push(d) });
    const copy = join(target, 'edges-copy.img');
    expect(c.capacity).to.equal(BigInt(size));
    expect(statSync(copy).size).to.equal(size);
    expect(statSync(copy).mode & 0o777).to.equal(0o600);
    expect(sha256(readFileSync(copy))).to.equal(sha256(bytes));
    const expected = nonZeroBlocks(bytes);
    expect(expected).to.deep.include([2 * MiB - 64 * KiB, 2 * MiB - 8 * KiB]); // the zeros across the chunk edge are a hole
    expect(dataMap(copy)).to.deep.equal(expected);
    expect(seen.at(-1)).to.equal(BigInt(size));
    expect(seen.every((d, i) => i === 0 || d >= seen[i - 1]!)).to.equal(true);
  });

  it('a larger capacity: the source bytes, then a hole up to the new size', async () => {
    source('small.img', 3 * MiB, [[MiB + 3, Buffer.from('middle')]]);
    const c = await clone('bigger.img', 'small.img', { allocation: 0n, capacity: 8n * BigInt(MiB) });
    const copy = join(target, 'bigger.img');
    expect(c.capacity).to.equal(8n * BigInt(MiB));
    const got = readFileSync(copy);
    expect(got.length).to.equal(8 * MiB);
    expect(sha256(got.subarray(0, 3 * MiB))).to.equal(sha256(readFileSync(join(target, 'small.img'))));
    expect(dataMap(copy)).to.deep.equal([[MiB, MiB + BLOCK]]);
  });

  for (const [what, size] of [
    ['small (zeros written in-process)', 6 * MiB],
    ['large (fallocate, then the data blocks)', 80 * MiB],
  ] as const) {
    it(`a clone whose allocation is its capacity is fully allocated: ${what}`, async function () {
      if (size > 64 * MiB && !hasTool('fallocate')) this.skip(); // skip reason: util-linux fallocate allocates large volumes
      const name = `full-${size}.img`;
      source(name, size, [
        [BLOCK + 1, Buffer.from('data')],
        [size / 2 - BLOCK, Buffer.alloc(3 * BLOCK, 0x55)],
      ]);
      const seen: bigint[] = [];
      const c = await clone(`${name}.copy`, name, {}, { ...ctx, progress: (d) => seen.push(d) }); // no allocation given: allocation = capacity
      const copy = join(target, `${name}.copy`);
      expect(c.capacity).to.equal(BigInt(size));
      expect(sha256(readFileSync(copy))).to.equal(sha256(readFileSync(join(target, name))));
      expect(statSync(copy).blocks * 512).to.be.at.least(size);
      expect(c.allocation! >= BigInt(size)).to.equal(true);
      // the allocation before the copy is no step of its own: progress never goes back
      expect(seen.every((d, i) => i === 0 || d >= seen[i - 1]!), seen.join(' ')).to.equal(true);
      expect(seen.at(-1)).to.equal(BigInt(size));
    });
  }

  it('a larger capacity allocated in full: the source bytes, then zeros; progress goes on from the copy to the end', async () => {
    source('three.img', 3 * MiB, [[MiB + 3, Buffer.from('middle')]]);
    const seen: Array<[bigint, bigint]> = [];
    const c = await clone('eight.img', 'three.img', { capacity: 8n * BigInt(MiB), allocation: 8n * BigInt(MiB) }, { ...ctx, progress: (d, t) => seen.push([d, t]) });
    const copy = join(target, 'eight.img');
    expect(c.capacity).to.equal(8n * BigInt(MiB));
    expect(statSync(copy).blocks * 512).to.be.at.least(8 * MiB);
    expect(sha256(readFileSync(copy).subarray(0, 3 * MiB))).to.equal(sha256(readFileSync(join(target, 'three.img'))));
    const done = seen.map(([d]) => d);
    expect(done.every((d, i) => i === 0 || d >= done[i - 1]!), done.join(' ')).to.equal(true);
    expect(seen.at(-1)).to.deep.equal([8n * BigInt(MiB), 8n * BigInt(MiB)]);
  });

  it('cancelling mid-copy rejects with CANCELLED and leaves no file; the name can be used again', async () => {
    const size = 2048 * MiB; // mostly holes: long enough that the abort lands mid-copy
    source('huge.img', size, [[size - MiB, Buffer.alloc(MiB, 9)]]);
    const ac = new AbortController();
    let progressAtAbort: bigint | undefined;
    const c: PoolContext = {
      ...ctx,
      signal: ac.signal,
      progress: (d) => {
        if (progressAtAbort === undefined) progressAtAbort = d;
        ac.abort();
      },
    };
    const err = await clone('cancelled.img', 'huge.img', { allocation: 0n }, c).then(
      () => undefined,
      (e: CisternError) => e,
    );
    expect(err?.code).to.equal('CANCELLED');
    expect(progressAtAbort! < BigInt(size)).to.equal(true);
    expect(existsSync(join(target, 'cancelled.img'))).to.equal(false);
    source('tiny.img', 4096, [[0, Buffer.from('t')]]);
    await clone('cancelled.img', 'tiny.img', { allocation: 0n });
    expect(readFileSync(join(target, 'cancelled.img')).subarray(0, 1).toString()).to.equal('t');
  });

  it('three clones at once from different sources each get their own source bytes', async () => {
    const names = ['a', 'b', 'c'];
    for (const [i, n] of names.entries()) source(`${n}.src`, 20 * MiB, [[i * 3 * MiB + 7, Buffer.alloc(2 * MiB, 0x61 + i)]]);
    await Promise.all(names.map((n) => clone(`${n}.dst`, `${n}.src`, { allocation: 0n })));
    for (const n of names) {
      expect(sha256(readFileSync(join(target, `${n}.dst`))), n).to.equal(sha256(readFileSync(join(target, `${n}.src`))));
      expect(dataMap(join(target, `${n}.dst`))).to.deep.equal(nonZeroBlocks(readFileSync(join(target, `${n}.src`))));
    }
  });
});
