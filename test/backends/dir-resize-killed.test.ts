// An allocating grow of a raw volume that the agent's death interrupts: the agent can die
// (kill -9) at any point of it, and what the volume shows then is what the next start finds.
// The capacity must be the old one until the grow is done, as libvirt's posix_fallocate leaves
// it on a filesystem that can allocate. The points where it can die are observed here: each
// progress report, and the moment each fallocate(1) the backend ran has finished (the tool
// dies with the agent; what it allocated before that stays).
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirBackend } from '../../libs/backends/dir.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { CommandRunner, RunOptions, RunResult } from '../../libs/backends/runner.js';
import type { AllocatingGrow, PoolContext } from '../../libs/backends/backend.js';
import { forgetPoolDirectory } from '../../libs/backends/dir/pool-directory.js';
import { rejects } from '../support/rejects.js';
import { PoolType, type PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { hasTool } from '../support/index.js';
import { usePrivateTmpdir } from '../support/private-tmpdir.js';
import { fileVolume as vol } from '../support/volume-definitions.js';

const MiB = 1024n * 1024n;

/** Runs the real tools; after each fallocate, `after` sees what it left. */
class ObservingRunner implements CommandRunner {
  private readonly real = new ExecRunner();
  constructor(private readonly after: () => void) {}
  async run(argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    const result = await this.real.run(argv, options);
    if (argv[0] === 'fallocate') this.after();
    return result;
  }
}

function poolDef(path: string): PoolDefinition {
  return { type: PoolType.POOL_TYPE_DIR, name: 'p', uuid: '', source: undefined, target: { path, permissions: undefined }, features: undefined, mountOptions: [] };
}

describe('dir backend: an allocating grow interrupted at any point leaves the old capacity', function () {
  usePrivateTmpdir();
  this.timeout(60_000);
  const backend = new DirBackend();
  let root: string;
  let target: string;

  before(function () {
    if (!hasTool('qemu-img') || !hasTool('fallocate')) this.skip(); // skip reason: qemu-img and util-linux fallocate are needed
    root = mkdtempSync(join(tmpdir(), 'cistern-dir-resize-killed-'));
    target = join(root, 'pools', 'p');
  });
  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const cases: [string, bigint, bigint, bigint][] = [
    // name, allocation before, capacity before, capacity after
    ['dense-small.raw', 8n * MiB, 8n * MiB, 24n * MiB], // a grow small enough to be zeros written in-process
    ['dense-large.raw', 8n * MiB, 8n * MiB, 88n * MiB], // one fallocate(1)
    ['sparse.raw', 0n, 8n * MiB, 24n * MiB], // holes and the new range in one fallocate(1)
  ];
  for (const [name, allocation, before, after] of cases) {
    it(`${name}: ${before / MiB} MiB grown to ${after / MiB} MiB with allocate`, async () => {
      const path = join(target, name);
      const seen: number[] = [];
      const observe = (): void => void seen.push(statSync(path).size);
      const ctx: PoolContext = { runner: new ObservingRunner(observe), pool: poolDef(target) };
      await backend.buildPool?.(ctx, { overwrite: false, noOverwrite: false });
      const def = await backend.createVol(ctx, vol(name, 'raw', before, { allocation }));
      await backend.buildVol(ctx, def, { preallocMetadata: false });
      seen.length = 0;

      await backend.resizeVol({ ...ctx, progress: observe }, vol(name, ''), after, { allocate: true, delta: false, shrink: false });

      expect(seen.length, 'points observed during the grow').to.be.greaterThan(0);
      expect(seen.filter((size) => size !== Number(before)), 'sizes a kill during the grow would have left').to.deep.equal([]);
      const now = await backend.refreshVol(ctx, vol(name, ''));
      expect(now.capacity).to.equal(after);
      expect(now.allocation! >= after, `allocation ${now.allocation}`).to.equal(true);
    });
  }
});

describe('dir backend: the undo of an interrupted allocating grow (the next start)', function () {
  usePrivateTmpdir();
  this.timeout(60_000);
  const backend = new DirBackend();
  let root: string;
  let target: string;
  let ctx: PoolContext;

  before(function () {
    if (!hasTool('fallocate')) this.skip(); // skip reason: util-linux fallocate is needed
  });
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cistern-dir-grow-undo-'));
    target = join(root, 'pool');
    mkdirSync(target);
    ctx = { runner: new ExecRunner(), pool: poolDef(target) };
  });
  afterEach(() => {
    forgetPoolDirectory(ctx.pool);
    rmSync(root, { recursive: true, force: true });
  });

  /** An 8 MiB allocated file with 80 MiB allocated past its end, as a grow to 88 MiB killed before its truncate leaves it; and the grow's record. */
  function killedGrow(name: string): AllocatingGrow {
    const path = join(target, name);
    writeFileSync(path, Buffer.alloc(Number(8n * MiB), 1));
    execFileSync('fallocate', ['--keep-size', '-o', String(8n * MiB), '-l', String(80n * MiB), path]);
    const st = statSync(path, { bigint: true });
    expect(st.blocks * 512n >= 88n * MiB, 'the blocks past the end are there').to.equal(true);
    return { file: { ino: st.ino, birthtimeNs: st.birthtimeNs }, size: 8n * MiB, capacity: 88n * MiB };
  }
  const directory = (): { dev: number; ino: number } => ({ dev: statSync(target).dev, ino: statSync(target).ino });

  it('gives back the blocks past the end of the file the grow opened; its data and size stay', async () => {
    const grow = killedGrow('v.raw');
    expect(await backend.undoInterruptedGrow(ctx, 'v.raw', grow, directory())).to.equal('released');
    const st = statSync(join(target, 'v.raw'));
    expect(st.size).to.equal(Number(8n * MiB));
    expect(st.blocks * 512).to.equal(Number(8n * MiB));
    expect(readFileSync(join(target, 'v.raw')).every((b) => b === 1)).to.equal(true);
  });

  it('keeps a grow that had set its new size', async () => {
    const grow = killedGrow('v.raw');
    truncateSync(join(target, 'v.raw'), Number(88n * MiB));
    expect(await backend.undoInterruptedGrow(ctx, 'v.raw', grow, directory())).to.equal('finished');
    expect(statSync(join(target, 'v.raw')).size).to.equal(Number(88n * MiB));
  });

  it('leaves another file under the name, and a link there, as they are', async () => {
    const grow = killedGrow('v.raw');
    // the volume deleted and made again while the agent was down: another file, same name
    renameSync(join(target, 'v.raw'), join(root, 'old.raw'));
    killedGrow('v.raw');
    const blocks = statSync(join(target, 'v.raw')).blocks;
    expect(await backend.undoInterruptedGrow(ctx, 'v.raw', grow, directory())).to.equal('not-found');
    expect(statSync(join(target, 'v.raw')).blocks).to.equal(blocks);
    // the grow's own file, now reached through a link under the name: not followed
    rmSync(join(target, 'v.raw'));
    symlinkSync(join(root, 'old.raw'), join(target, 'v.raw'));
    expect(await backend.undoInterruptedGrow(ctx, 'v.raw', grow, directory())).to.equal('not-found');
    expect(statSync(join(root, 'old.raw')).blocks * 512 >= Number(88n * MiB)).to.equal(true);
  });

  it('refuses a pool target that is not the directory the grow wrote in, and changes nothing', async () => {
    const grow = killedGrow('v.raw');
    const wrote = directory();
    // the target swapped for a link to another directory holding the same file name
    renameSync(target, join(root, 'moved'));
    mkdirSync(join(root, 'elsewhere'));
    symlinkSync(join(root, 'elsewhere'), target);
    execFileSync('cp', ['--sparse=never', join(root, 'moved', 'v.raw'), join(root, 'elsewhere', 'v.raw')]);
    const err = await rejects(backend.undoInterruptedGrow(ctx, 'v.raw', grow, wrote));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.match(/is not the directory the interrupted create or grow wrote in/);
    expect(statSync(join(root, 'moved', 'v.raw')).blocks * 512 >= Number(88n * MiB)).to.equal(true);
  });
});
