// The journal of allocating grows (services/agent/grow-journal.ts): what the next start finds
// open is exactly the grows a kill interrupted, and its undo goes through the backend.
import { expect } from 'chai';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { PoolDefinition, PoolType } from '../../../libs/proto/cistern/v1/storage.js';
import type { AllocatingGrow, StorageBackend } from '../../../libs/backends/backend.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { forgetPoolDirectory, rememberPoolDirectory } from '../../../libs/backends/dir/pool-directory.js';
import { GrowJournal, undoGrowsWhenStarted, undoInterruptedGrows } from '../../../services/agent/grow-journal.js';
import { silentLogger } from '../../../libs/log/logger.js';
import { makeTempDir } from '../../support/index.js';

const grow: AllocatingGrow = { file: { ino: 12n, birthtimeNs: 1700000000123456789n }, size: 8n << 20n, capacity: 88n << 20n };

describe('agent: the journal of allocating grows', () => {
  let tmp: string;
  let pool: PoolDefinition;
  beforeEach(async () => {
    tmp = makeTempDir('cistern-grow-journal-').path;
    mkdirSync(join(tmp, 'pool'));
    pool = PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: join(tmp, 'pool') } });
    await rememberPoolDirectory(pool);
  });
  afterEach(() => forgetPoolDirectory(pool));

  it('finds open at the next start only a grow that began allocating and never ended; undone, the file goes', async () => {
    const journal = await GrowJournal.open(join(tmp, 'root'));
    const ended = journal.track(pool, 'done.raw', 'r1');
    ended.onAllocatingPastEnd!(grow);
    ended.done();
    journal.track(pool, 'never-allocated.raw', 'r2').done();
    journal.track(pool, 'killed.raw', 'r3').onAllocatingPastEnd!(grow);

    const next = await GrowJournal.open(join(tmp, 'root'));
    const pending = await next.pending();
    expect(pending.map((e) => [e.volume, e.requestId, e.grow])).to.deep.equal([['killed.raw', 'r3', grow]]);
    expect(pending[0]!.poolDirectory).to.not.equal(undefined);

    const asked: unknown[] = [];
    const backend = { undoInterruptedGrow: async (_ctx: unknown, volume: string, g: AllocatingGrow, dir: unknown) => (asked.push([volume, g, dir]), 'released' as const) } as unknown as StorageBackend;
    const result = await undoInterruptedGrows(next, () => backend, new RecordingRunner(), silentLogger);
    expect(result).to.deep.equal({ undone: ['p/killed.raw'], failed: [] });
    expect(asked).to.deep.equal([['killed.raw', grow, pending[0]!.poolDirectory]]);
    expect(existsSync(join(tmp, 'root', 'journal', 'grows.log'))).to.equal(false);
  });

  it('keeps an entry whose undo fails for the next start', async () => {
    const journal = await GrowJournal.open(join(tmp, 'root'));
    journal.track(pool, 'killed.raw', 'r').onAllocatingPastEnd!(grow);
    const failing = { undoInterruptedGrow: async () => { throw new Error('target not there'); } } as unknown as StorageBackend;
    const next = await GrowJournal.open(join(tmp, 'root'));
    expect(await undoInterruptedGrows(next, () => failing, new RecordingRunner(), silentLogger)).to.deep.equal({ undone: [], failed: ['p/killed.raw'] });
    expect((await (await GrowJournal.open(join(tmp, 'root'))).pending()).map((e) => e.volume)).to.deep.equal(['killed.raw']);
  });

  it("records an fs pool's grow without its directory, and undoes it when the pool starts, not at the agent's start (mounted later)", async () => {
    const journal = await GrowJournal.open(join(tmp, 'root'));
    const fsPool = PoolDefinition.fromPartial({ ...pool, name: 'f', type: PoolType.POOL_TYPE_FS });
    await rememberPoolDirectory(fsPool);
    try {
      journal.track(fsPool, 'v.raw', 'r').onAllocatingPastEnd!(grow);
      const next = await GrowJournal.open(join(tmp, 'root'));
      const pending = await next.pending();
      // mounted again, the same file system may show another device number: the file's identity is what counts
      expect(pending.map((e) => [e.pool.name, e.volume, e.poolDirectory])).to.deep.equal([['f', 'v.raw', undefined]]);
      const asked: unknown[] = [];
      const backend = { undoInterruptedGrow: async (ctx: { pool: PoolDefinition }, volume: string, g: AllocatingGrow, dir: unknown) => (asked.push([ctx.pool.name, volume, g, dir]), 'released' as const) } as unknown as StorageBackend;
      expect(await undoInterruptedGrows(next, () => backend, new RecordingRunner(), silentLogger)).to.deep.equal({ undone: [], failed: [] });
      expect(asked, 'nothing at the agent start: the pool is not mounted yet').to.deep.equal([]);
      expect(existsSync(join(tmp, 'root', 'journal', 'grows.log'))).to.equal(true);
      await undoGrowsWhenStarted(next, fsPool, backend, new RecordingRunner(), silentLogger);
      expect(asked).to.deep.equal([['f', 'v.raw', grow, undefined]]);
      expect(await (await GrowJournal.open(join(tmp, 'root'))).pending()).to.deep.equal([]);
    } finally {
      forgetPoolDirectory(fsPool);
    }
  });

  it("forgets a dir pool's grow when the pool starts over another directory than the one it wrote in", async () => {
    const journal = await GrowJournal.open(join(tmp, 'root'));
    journal.track(pool, 'v.raw', 'r').onAllocatingPastEnd!(grow);
    const failing = { undoInterruptedGrow: async () => { throw new Error('target not there'); } } as unknown as StorageBackend;
    const next = await GrowJournal.open(join(tmp, 'root'));
    expect((await undoInterruptedGrows(next, () => failing, new RecordingRunner(), silentLogger)).failed).to.deep.equal(['p/v.raw']);
    // rebuilt: another directory under the same path (the old one moved aside keeps its inode)
    forgetPoolDirectory(pool);
    renameSync(join(tmp, 'pool'), join(tmp, 'pool.old'));
    mkdirSync(join(tmp, 'pool'));
    await rememberPoolDirectory(pool);
    const asked: string[] = [];
    const backend = { undoInterruptedGrow: async (_c: unknown, volume: string) => (asked.push(volume), 'released' as const) } as unknown as StorageBackend;
    await undoGrowsWhenStarted(next, pool, backend, new RecordingRunner(), silentLogger);
    expect(asked).to.deep.equal([]);
    expect(await (await GrowJournal.open(join(tmp, 'root'))).pending()).to.deep.equal([]);
  });
});
