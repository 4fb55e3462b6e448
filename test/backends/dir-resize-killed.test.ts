// An allocating grow of a raw volume that the agent's death interrupts: the agent can die
// (kill -9) at any point of it, and what the volume shows then is what the next start finds.
// The capacity must be the old one until the grow is done, as libvirt's posix_fallocate leaves
// it on a filesystem that can allocate. The points where it can die are observed here: each
// progress report, and the moment each fallocate(1) the backend ran has finished (the tool
// dies with the agent; what it allocated before that stays).
import { expect } from 'chai';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirBackend } from '../../libs/backends/dir.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { CommandRunner, RunOptions, RunResult } from '../../libs/backends/runner.js';
import type { PoolContext } from '../../libs/backends/backend.js';
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
