// createFileDirect (a sparse raw or small qcow2 create) on real files: what a failed create
// removes is the file it made, never what the name leads to by then. Its removal may run after
// the create has returned (the fsync's failure, BuiltVolume.durable), when whoever can write in
// the pool has had time to move the name, or the pool target, elsewhere.
import { expect } from 'chai';
import fs, { existsSync, ftruncateSync, mkdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { DirBackend } from '../../libs/backends/dir.js';
import { createFileDirect } from '../../libs/backends/dir/new-file.js';
import type { ResolvedCreate } from '../../libs/backends/dir/volume-plan.js';
import { RecordingRunner } from '../../libs/backends/recording-runner.js';
import { PoolType, type PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { useTempDir } from '../support/index.js';
import { rejects } from '../support/rejects.js';

const SECRET = 'root:$y$j9T$not-a-real-hash:19000:0:99999:7:::\n';

function poolDef(path: string): PoolDefinition {
  return { type: PoolType.POOL_TYPE_DIR, name: 'p', uuid: '', source: undefined, target: { path, permissions: undefined }, features: undefined, mountOptions: [] };
}

const noSpace = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

describe('dir backend: a failed in-process create removes only the file it made', () => {
  const scratch = useTempDir('cistern-new-file-');
  let n = 0;

  async function startedPool() {
    const root = join(scratch.path, `case-${n++}`);
    const target = join(root, 'pool');
    mkdirSync(target, { recursive: true });
    const ctx = { runner: new RecordingRunner(), pool: poolDef(target) };
    await new DirBackend().startPool(ctx);
    return { root, target, ctx };
  }

  const plan = (ctx: { pool: PoolDefinition }, name: string): ResolvedCreate => ({
    name,
    path: join(ctx.pool.target!.path, name),
    pool: ctx.pool,
    format: 'raw',
    capacity: 1024n * 1024n,
    mode: 0o600,
    uid: -1,
    gid: -1,
  });

  it('the pool target swapped for a link to another directory: the same-named file there stays', async () => {
    const { root, target, ctx } = await startedPool();
    const elsewhere = join(root, 'etc');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'shadow'), SECRET);
    const err = await rejects(
      createFileDirect(ctx, plan(ctx, 'shadow'), 'create raw volume', () => {
        renameSync(target, `${target}.moved`);
        symlinkSync(elsewhere, target);
        throw noSpace();
      }),
    );
    expect(err.code).to.equal('RESOURCE_EXHAUSTED');
    expect(readFileSync(join(elsewhere, 'shadow'), 'utf8')).to.equal(SECRET);
  });

  it("the volume's name given to another file meanwhile: that file stays", async () => {
    const { target, ctx } = await startedPool();
    const path = join(target, 'v.img');
    await rejects(
      createFileDirect(ctx, plan(ctx, 'v.img'), 'create raw volume', () => {
        renameSync(path, `${path}.aside`);
        writeFileSync(path, SECRET);
        throw noSpace();
      }),
    );
    expect(existsSync(path)).to.equal(true);
    expect(readFileSync(path, 'utf8')).to.equal(SECRET);
  });

  it('a failure with the name still its own removes the new file', async () => {
    const { target, ctx } = await startedPool();
    await rejects(
      createFileDirect(ctx, plan(ctx, 'gone.img'), 'create raw volume', () => {
        throw noSpace();
      }),
    );
    expect(existsSync(join(target, 'gone.img'))).to.equal(false);
  });

  it('a close that fails after the fsync succeeded: durable resolves, and the volume stays (never a rejection with the file left)', async () => {
    const { target, ctx } = await startedPool();
    const built = await createFileDirect(ctx, plan(ctx, 'closed.img'), 'create raw volume', (fd) => ftruncateSync(fd, 1024 * 1024));
    // the next close on this thread is the new file's, once its fsync is done (Linux frees the
    // descriptor whatever close(2) returns)
    const realClose = fs.closeSync;
    fs.closeSync = (fd: number) => {
      fs.closeSync = realClose;
      syncBuiltinESMExports();
      realClose(fd);
      throw Object.assign(new Error('EIO: i/o error, close'), { code: 'EIO' });
    };
    syncBuiltinESMExports();
    try {
      await built.durable;
    } finally {
      fs.closeSync = realClose;
      syncBuiltinESMExports();
    }
    expect(statSync(join(target, 'closed.img')).size).to.equal(1024 * 1024);
  });
});
