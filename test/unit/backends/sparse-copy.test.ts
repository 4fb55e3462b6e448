// The raw clone's data copy (libs/backends/sparse-copy.ts): which byte ranges count as
// data (all-zero 4 KiB blocks skipped, probes and chunk edges not changing the answer),
// the synchronous loop on real files, and the worker-thread copy's progress, errors,
// cancellation and reuse of its worker after a failure.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSparseFile } from '../../support/volume-data.js';
import {
  COPY_CHUNK,
  CopyCancelledError,
  CopyStoppedError,
  MAX_COPY_WORKERS,
  ZERO_BLOCK,
  ZERO_PROBE,
  alignedBuffer,
  copyFileData,
  copyRangeSync,
  dataRuns,
} from '../../../libs/backends/sparse-copy.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The answer by definition: one block at a time, adjacent data blocks merged. */
function referenceRuns(buf: Buffer, n: number, block: number): [number, number][] {
  const runs: [number, number][] = [];
  for (let off = 0; off < n; off += block) {
    const end = Math.min(off + block, n);
    if (!buf.subarray(off, end).every((b) => b === 0)) {
      const last = runs.at(-1);
      if (last && last[1] === off) last[1] = end;
      else runs.push([off, end]);
    }
  }
  return runs;
}

function runsOf(buf: Buffer, n: number, block = ZERO_BLOCK, probe = ZERO_PROBE): [number, number][] {
  const runs: [number, number][] = [];
  dataRuns(buf, n, Buffer.alloc(Math.max(n, 1)), (s, e) => runs.push([s, e]), block, probe);
  return runs;
}

/** A small deterministic PRNG (xorshift32), so a failing case can be replayed. */
function rng(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('sparse copy (raw clone data path)', () => {
  describe('dataRuns: the non-zero 4 KiB blocks of a chunk', () => {
    it('an all-zero chunk has no data; a lone byte makes exactly its block data', () => {
      const buf = Buffer.alloc(COPY_CHUNK);
      expect(runsOf(buf, COPY_CHUNK)).to.deep.equal([]);
      buf[5 * ZERO_BLOCK + 17] = 1;
      expect(runsOf(buf, COPY_CHUNK)).to.deep.equal([[5 * ZERO_BLOCK, 6 * ZERO_BLOCK]]);
    });

    it('first and last byte of blocks, a run across a 64 KiB probe edge, a short last block', () => {
      const n = COPY_CHUNK - 100; // the chunk at the end of a file whose size is not a block multiple
      const buf = Buffer.alloc(COPY_CHUNK);
      buf[0] = 1; // block 0
      buf[ZERO_BLOCK - 1] = 1; // still block 0
      buf[ZERO_PROBE - 1] = 2; // last block of probe 0 ...
      buf[ZERO_PROBE] = 3; // ... and first of probe 1: one run over the probe edge
      buf[n - 1] = 4; // the short last block
      buf[n] = 9; // past n: not looked at
      expect(runsOf(buf, n)).to.deep.equal([
        [0, ZERO_BLOCK],
        [ZERO_PROBE - ZERO_BLOCK, ZERO_PROBE + ZERO_BLOCK],
        [COPY_CHUNK - ZERO_BLOCK, n],
      ]);
    });

    it('a data run that fills whole probes ends where the zeros start', () => {
      const buf = Buffer.alloc(COPY_CHUNK, 0xab);
      buf.fill(0, 3 * ZERO_PROBE + ZERO_BLOCK, 5 * ZERO_PROBE); // zeros from inside probe 3 to the end of probe 4
      expect(runsOf(buf, COPY_CHUNK)).to.deep.equal([
        [0, 3 * ZERO_PROBE + ZERO_BLOCK],
        [5 * ZERO_PROBE, COPY_CHUNK],
      ]);
    });

    it('agrees with the block-by-block answer on 400 random patterns (real and tiny block/probe sizes)', () => {
      const next = rng(0x5eed);
      for (let i = 0; i < 400; i++) {
        const tiny = i % 2 === 0;
        const [block, probe, size] = tiny ? [4, 16, 200] : [ZERO_BLOCK, ZERO_PROBE, 256 * KiB];
        const n = size - Math.floor(next() * block * 3);
        const buf = Buffer.alloc(size);
        const spans = Math.floor(next() * 6);
        for (let s = 0; s < spans; s++) {
          const at = Math.floor(next() * size);
          const len = 1 + Math.floor(next() * (tiny ? 20 : 3 * block));
          for (let k = at; k < Math.min(size, at + len); k++) buf[k] = 1 + Math.floor(next() * 255);
        }
        expect(runsOf(buf, n, block, probe), `pattern ${i}`).to.deep.equal(referenceRuns(buf, n, block));
      }
    });
  });

  describe('on files', () => {
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cistern-sparse-copy-'))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    /** A sparse file of `size` bytes with `data` written at the given offsets. */
    const sparseFile = (name: string, size: number, data: [number, Buffer][]): string => writeSparseFile(join(dir, name), size, data);

    it('copyRangeSync copies the bytes; sparse leaves zero blocks unwritten, not sparse writes them all', () => {
      const size = 3 * COPY_CHUNK + 100;
      const src = sparseFile('src', size, [
        [COPY_CHUNK - 2 * ZERO_BLOCK, Buffer.alloc(4 * ZERO_BLOCK, 0x11)], // across the first chunk edge
        [size - 10, Buffer.alloc(10, 0x22)], // the short tail
      ]);
      const srcFd = openSync(src, 'r');
      try {
        for (const sparse of [true, false]) {
          const dst = join(dir, `dst-${sparse}`);
          const dstFd = openSync(dst, 'w+');
          try {
            ftruncateSync(dstFd, size);
            const chunks: number[] = [];
            const r = copyRangeSync(srcFd, dstFd, { total: size, sparse, onChunk: (d) => chunks.push(d) });
            expect(r.done).to.equal(size);
            expect(r.written).to.equal(sparse ? 4 * ZERO_BLOCK + ZERO_BLOCK - (ZERO_BLOCK - 100) : size);
            expect(chunks).to.deep.equal([COPY_CHUNK, 2 * COPY_CHUNK, 3 * COPY_CHUNK, size]);
          } finally {
            closeSync(dstFd);
          }
          expect(sha256(readFileSync(dst)), `sparse=${sparse}`).to.equal(sha256(readFileSync(src)));
        }
      } finally {
        closeSync(srcFd);
      }
    });

    it('copyRangeSync stops before the next chunk when asked, and stops at the end of a shorter source', () => {
      const src = sparseFile('src', 2 * COPY_CHUNK, [[0, Buffer.alloc(10, 1)]]);
      const srcFd = openSync(src, 'r');
      const dstFd = openSync(join(dir, 'dst'), 'w+');
      try {
        let chunks = 0;
        expect(() => copyRangeSync(srcFd, dstFd, { total: 2 * COPY_CHUNK, sparse: true, onChunk: () => chunks++, stopped: () => chunks >= 1 })).to.throw(CopyStoppedError);
        expect(chunks).to.equal(1);
        expect(copyRangeSync(srcFd, dstFd, { total: 5 * COPY_CHUNK, sparse: true }).done).to.equal(2 * COPY_CHUNK);
      } finally {
        closeSync(srcFd);
        closeSync(dstFd);
      }
    });

    it('copyFileData: a worker copies it, progress never goes back and ends at the bytes copied', async () => {
      const size = 40 * MiB + 123;
      const src = sparseFile('src', size, [
        [7, Buffer.from('first')],
        [17 * MiB - 3, Buffer.alloc(MiB, 0x5a)],
        [size - 1, Buffer.from([0xff])],
      ]);
      const fh = await open(join(dir, 'dst'), 'w+');
      const seen: [bigint, bigint][] = [];
      try {
        await fh.truncate(size);
        const done = await copyFileData(src, fh, BigInt(size), true, { progress: (d, t) => seen.push([d, t]), flushEvery: 4 * MiB });
        expect(done).to.equal(BigInt(size));
      } finally {
        await fh.close();
      }
      expect(sha256(readFileSync(join(dir, 'dst')))).to.equal(sha256(readFileSync(src)));
      expect(seen.length).to.be.greaterThan(1);
      expect(seen.every(([, t]) => t === BigInt(size))).to.equal(true);
      expect(seen.every(([d], i) => i === 0 || d >= seen[i - 1]![0])).to.equal(true);
      expect(seen.at(-1)![0]).to.equal(BigInt(size));
      // only the data blocks were written: far less than the file's size is allocated
      expect(statSync(join(dir, 'dst')).blocks * 512).to.be.lessThan(4 * MiB);
    });

    it('copyFileData: a missing source fails with its errno code, and the next copy still works', async () => {
      const fh = await open(join(dir, 'dst'), 'w+');
      try {
        const err = await copyFileData(join(dir, 'nope'), fh, 10n, true).then(
          () => undefined,
          (e: NodeJS.ErrnoException) => e,
        );
        expect(err?.code).to.equal('ENOENT');
        const src = sparseFile('src', 3 * MiB, [[MiB, Buffer.from('x')]]);
        await fh.truncate(3 * MiB); // the copy writes data blocks only: the size is the caller's
        expect(await copyFileData(src, fh, 3n * BigInt(MiB), true)).to.equal(3n * BigInt(MiB));
        expect(sha256(readFileSync(join(dir, 'dst')))).to.equal(sha256(readFileSync(src)));
      } finally {
        await fh.close();
      }
    });

    it('copyFileData: an aborted signal stops the copy with CopyCancelledError; already aborted copies nothing', async () => {
      // 2 GiB of holes: far more than the worker reads before the first progress report is acted on
      const size = 2048 * MiB;
      const src = sparseFile('src', size, [[size - MiB, Buffer.alloc(MiB, 7)]]);
      const fh = await open(join(dir, 'dst'), 'w+');
      try {
        const ac = new AbortController();
        let last = 0n;
        const err = await copyFileData(src, fh, BigInt(size), true, {
          signal: ac.signal,
          progress: (d) => {
            last = d;
            ac.abort();
          },
        }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(CopyCancelledError);
        expect(last < BigInt(size)).to.equal(true);
        expect(statSync(join(dir, 'dst')).blocks).to.equal(0); // the data at the end was never reached
        const again = await copyFileData(src, fh, BigInt(size), true, { signal: ac.signal }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(again).to.be.instanceOf(CopyCancelledError);
      } finally {
        await fh.close();
      }
    });
    it(`copyFileData: more than ${MAX_COPY_WORKERS} copies at once wait for a worker; a waiting one can be cancelled`, async () => {
      const size = 2048 * MiB; // holes: the running copies are still busy when the waiting one is cancelled
      const src = sparseFile('src', size, [[size - 1, Buffer.from([1])]]);
      const handles = await Promise.all(Array.from({ length: MAX_COPY_WORKERS + 1 }, (_, i) => open(join(dir, `dst${i}`), 'w+')));
      try {
        const running = new AbortController();
        const queued = new AbortController();
        const settle = (p: Promise<bigint>): Promise<unknown> => p.then((v) => v, (e: unknown) => e);
        const first = handles.slice(0, MAX_COPY_WORKERS).map((fh) => settle(copyFileData(src, fh, BigInt(size), true, { signal: running.signal })));
        // a missing source: a copy that started would fail with ENOENT; a waiting one never opens it
        const last = settle(copyFileData(join(dir, 'missing'), handles.at(-1)!, BigInt(size), true, { signal: queued.signal }));
        queued.abort();
        expect(await last).to.be.instanceOf(CopyCancelledError);
        running.abort();
        for (const outcome of await Promise.all(first)) expect(outcome).to.be.instanceOf(CopyCancelledError);
        // the workers are free again: the same number of small copies all complete with the right bytes
        const small = sparseFile('small', 3 * MiB, [[2 * MiB + 1, Buffer.from('end')]]);
        for (const fh of handles) await fh.truncate(0), await fh.truncate(3 * MiB);
        await Promise.all(handles.map((fh) => copyFileData(small, fh, 3n * BigInt(MiB), true)));
        for (let i = 0; i < handles.length; i++) expect(sha256(readFileSync(join(dir, `dst${i}`))), `dst${i}`).to.equal(sha256(readFileSync(small)));
      } finally {
        await Promise.all(handles.map((fh) => fh.close()));
      }
    });
  });

  it('alignedBuffer: the size asked for, all zeros', () => {
    for (const size of [1, 4096, COPY_CHUNK, COPY_CHUNK + 1]) {
      const b = alignedBuffer(size);
      expect(b.length).to.equal(size);
      expect(b.every((x) => x === 0)).to.equal(true);
    }
  });
});
