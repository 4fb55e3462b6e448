// A zero wipe of a sparse file that the agent's death interrupts: the agent can die (kill -9)
// at any point of it, and what the file shows then is what the next start lists. libvirt
// (storageBackendVolZeroSparseFileLocal) cuts the file to nothing and back to its size, two
// system calls in a row; here each is a thread-pool round trip with the event loop running in
// between, and an agent killed there left the volume at capacity 0 for good. The points where
// it can die are observed here: after every truncate of the file the wipe does.
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, truncateSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirBackend } from '../../libs/backends/dir.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { PoolContext } from '../../libs/backends/backend.js';
import { forgetPoolDirectory } from '../../libs/backends/dir/pool-directory.js';
import { PoolType, WipeAlgorithm, type PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { usePrivateTmpdir } from '../support/private-tmpdir.js';
import { fileVolume as vol } from '../support/volume-definitions.js';

const MiB = 1024 * 1024;

function poolDef(path: string): PoolDefinition {
  return { type: PoolType.POOL_TYPE_DIR, name: 'p', uuid: '', source: undefined, target: { path, permissions: undefined }, features: undefined, mountOptions: [] };
}

describe('dir backend: a zero wipe of a sparse file interrupted at any point keeps the volume\'s capacity', function () {
  usePrivateTmpdir();
  this.timeout(60_000);
  const backend = new DirBackend();
  let root: string;
  let ctx: PoolContext;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'cistern-dir-wipe-killed-'));
    ctx = { runner: new ExecRunner(), pool: poolDef(root) };
  });
  after(() => {
    forgetPoolDirectory(ctx.pool);
    rmSync(root, { recursive: true, force: true });
  });

  it('a 16 MiB sparse raw file with data: every size a kill could leave is 16 MiB, and it ends all zeros, with no blocks', async () => {
    const path = join(root, 'sparse.raw');
    writeFileSync(path, Buffer.alloc(MiB, 0x5a));
    truncateSync(path, 16 * MiB);
    // every truncate of a file handle, in this process, followed by the size it left
    const probe = await open(path, 'r');
    const proto = Object.getPrototypeOf(probe) as { truncate: (len?: number) => Promise<void> };
    await probe.close();
    const real = proto.truncate;
    const seen: number[] = [];
    proto.truncate = async function (this: { stat: () => Promise<{ size: number }> }, len?: number): Promise<void> {
      await real.call(this, len);
      seen.push((await this.stat()).size);
    };
    try {
      await backend.wipeVol(ctx, vol('sparse.raw', ''), WipeAlgorithm.WIPE_ALGORITHM_ZERO);
    } finally {
      proto.truncate = real;
    }
    expect(seen.filter((size) => size !== 16 * MiB), 'sizes a kill during the wipe would have left').to.deep.equal([]);
    const st = statSync(path);
    expect(st.size).to.equal(16 * MiB);
    expect(st.blocks, 'blocks left allocated').to.equal(0);
    expect(readFileSync(path).every((b) => b === 0)).to.equal(true);
  });
});
