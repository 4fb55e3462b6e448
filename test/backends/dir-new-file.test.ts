// createFileDirect (a sparse raw or small qcow2 create) on real files: what a failed create
// removes is the file it made, never what the name leads to by then. Its removal may run after
// the create has returned (the fsync's failure, BuiltVolume.durable), when whoever can write in
// the pool has had time to move the name, or the pool target, elsewhere.
import { expect } from 'chai';
import fs, { existsSync, ftruncateSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { DirBackend } from '../../libs/backends/dir.js';
import { createFileDirect, createsUnderWay, untilFlushed } from '../../libs/backends/dir/new-file.js';
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

let cases = 0;

/** A started dir pool at a new `pool` directory under `under`. */
async function startedPoolIn(under: string) {
  const root = join(under, `case-${cases++}`);
  const target = join(root, 'pool');
  mkdirSync(target, { recursive: true });
  const ctx = { runner: new RecordingRunner(), pool: poolDef(target) };
  await new DirBackend().startPool(ctx);
  return { root, target, ctx };
}

/** What createFileDirect makes: a 1 MiB raw volume `name` in the pool. */
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

describe('dir backend: a failed in-process create removes only the file it made', () => {
  const scratch = useTempDir('cistern-new-file-');
  const startedPool = () => startedPoolIn(scratch.path);

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

describe('dir backend: in-process creates side by side', () => {
  const scratch = useTempDir('cistern-new-file-side-');
  const startedPool = () => startedPoolIn(scratch.path);
  const sized = (fd: number) => ftruncateSync(fd, 1024 * 1024);

  it('alone, a create opens its file with a direct system call; with another under way, in the thread pool', async () => {
    const { target, ctx } = await startedPool();
    const exclusiveOpens: string[] = [];
    const realOpenSync = fs.openSync;
    fs.openSync = ((path: fs.PathLike, flags: fs.OpenMode, mode?: fs.Mode) => {
      if (typeof flags === 'number' && flags & fs.constants.O_EXCL) exclusiveOpens.push(String(path).replace(/.*\//, ''));
      return realOpenSync(path, flags, mode);
    }) as typeof fs.openSync;
    syncBuiltinESMExports();
    try {
      const first = await createFileDirect(ctx, plan(ctx, 'a.img'), 'create raw volume', sized);
      // a.img's fsync cannot have finished: its completion runs no sooner than the next turn of the event loop
      const second = await createFileDirect(ctx, plan(ctx, 'b.img'), 'create raw volume', sized);
      await Promise.all([first.durable, second.durable]);
      expect(createsUnderWay()).to.equal(0);
      const third = await createFileDirect(ctx, plan(ctx, 'c.img'), 'create raw volume', sized);
      await third.durable;
    } finally {
      fs.openSync = realOpenSync;
      syncBuiltinESMExports();
    }
    expect(exclusiveOpens).to.deep.equal(['a.img', 'c.img']);
    for (const name of ['a.img', 'b.img', 'c.img']) expect(statSync(join(target, name)).size).to.equal(1024 * 1024);
  });

  it('many at once, one of them refused: every other file is made whole, and none is left counted as under way', async () => {
    const { target, ctx } = await startedPool();
    writeFileSync(join(target, 'taken.img'), 'x');
    const names = Array.from({ length: 12 }, (_, i) => `v${i}.img`);
    const outcomes = await Promise.allSettled(
      [...names, 'taken.img'].map(async (name) => {
        const built = await createFileDirect(ctx, plan(ctx, name), 'create raw volume', sized);
        await built.durable;
        return built.volume;
      }),
    );
    expect(outcomes.filter((o) => o.status === 'rejected')).to.have.length(1);
    expect(String((outcomes.at(-1) as PromiseRejectedResult).reason)).to.match(/exist/i);
    expect(readFileSync(join(target, 'taken.img'), 'utf8')).to.equal('x');
    for (const name of names) expect(statSync(join(target, name)).size).to.equal(1024 * 1024);
    expect(createsUnderWay()).to.equal(0);
  });

  it("untilFlushed waits for a new file's fsync and close in that pool (a mounted pool is not unmounted under it)", async () => {
    const { target, ctx } = await startedPool();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const realFsync = fs.fsync;
    fs.fsync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
      fs.fsync = realFsync;
      syncBuiltinESMExports();
      void held.then(() => realFsync(fd, cb));
    }) as typeof fs.fsync;
    syncBuiltinESMExports();
    const openOnIt = () => readdirSync('/proc/self/fd').some((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === join(target, 'held.img');
      } catch {
        return false;
      }
    });
    try {
      const built = await createFileDirect(ctx, plan(ctx, 'held.img'), 'create raw volume', sized);
      let flushed = false;
      const waiting = untilFlushed(target).then(() => (flushed = true));
      await new Promise((r) => setTimeout(r, 30));
      expect(flushed, 'untilFlushed returned with the fsync held').to.equal(false);
      expect(openOnIt(), 'the new file is still open while it is flushed').to.equal(true);
      release();
      await waiting;
      expect(openOnIt(), 'the new file is closed once flushed').to.equal(false);
      await built.durable;
    } finally {
      fs.fsync = realFsync;
      syncBuiltinESMExports();
    }
    await untilFlushed(join(target, 'elsewhere'));
  });
});
