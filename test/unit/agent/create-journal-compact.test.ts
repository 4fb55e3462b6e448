// The create journal stays bounded while a create or clone is in flight (review h10 F4): past
// its compaction size it is replaced by a file holding only its open begin records, so an
// agent killed at any point still finds, at its next start, exactly the creates it must undo.
import { expect } from 'chai';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir } from '../../support/index.js';
import { CreateJournal, cleanupInterruptedCreates } from '../../../services/agent/journal.js';
import { PoolDefinition, PoolType, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { DirBackend } from '../../../libs/backends/dir.js';
import { execRunner } from '../../../libs/backends/exec-runner.js';

const silent = { debug() {}, info() {}, warn() {}, error() {}, child() { return silent; } } as never;

/** Small enough that a few hundred creates pass it (a begin and an end record are about 600 bytes). */
const COMPACT = 64 * 1024;

describe('create journal compaction', () => {
  let dir: { path: string; remove: () => Promise<void> };
  beforeEach(() => {
    dir = makeTempDir('cistern-journal-compact-');
  });
  afterEach(() => dir.remove());

  const root = () => join(dir.path, 'root');
  const log = () => join(root(), 'journal', 'creates.log');
  const size = () => (existsSync(log()) ? statSync(log()).size : 0);
  const poolOf = (name: string, type = PoolType.POOL_TYPE_DIR) => PoolDefinition.fromPartial({ name, type, target: { path: join(dir.path, name) } });
  const vol = (pool: PoolDefinition, name: string) => VolumeDefinition.fromPartial({ name, target: { path: join(pool.target!.path, name), format: 'raw' } });
  /** `n` creates that begin and end, one after the other; the largest the journal was after one. */
  async function churn(journal: CreateJournal, pool: PoolDefinition, n: number): Promise<number> {
    let largest = 0;
    for (let i = 0; i < n; i++) {
      const done = await journal.begin({ operation: 'create', pool, volume: vol(pool, `v${i}.img`), requestId: `r${i}`, principal: 'p' });
      await done();
      largest = Math.max(largest, size());
    }
    return largest;
  }
  const pendingNames = async () => (await (await CreateJournal.open(root(), COMPACT)).pending()).map((e) => `${e.pool.name}/${e.volume.name}`);

  it('a clone in flight does not keep it growing: many creates later it is still below the compaction size, and the clone still open in it', async () => {
    const pool = poolOf('p');
    const journal = await CreateJournal.open(root(), COMPACT);
    const clone = await journal.begin({ operation: 'clone', pool, volume: vol(pool, 'big.img'), requestId: 'c', principal: 'p' });
    const largest = await churn(journal, pool, 2_000); // about 1.2 MB of records
    expect(largest).to.be.at.most(COMPACT + 1024);
    // the agent killed now: its next start undoes the clone, and only it
    expect(await pendingNames()).to.deep.equal(['p/big.img']);
    expect(readdirSync(join(root(), 'journal'))).to.deep.equal(['creates.log']); // no .tmp left
    // the clone ends: nothing is left to undo
    await clone();
    expect(await pendingNames()).to.deep.equal([]);
  });

  it('an entry an earlier run left waiting for its pool to start is kept by a compaction', async () => {
    const fsPool = poolOf('fsp', PoolType.POOL_TYPE_FS);
    const first = await CreateJournal.open(root(), COMPACT);
    await first.begin({ operation: 'create', pool: fsPool, volume: vol(fsPool, 'half.img'), requestId: 'r', principal: 'p' });
    // the agent is killed and starts again: the pool is not mounted yet, the entry waits
    const boot = await CreateJournal.open(root(), COMPACT);
    expect(await cleanupInterruptedCreates(boot, () => new DirBackend(), execRunner, silent)).to.deep.equal({ removed: [], failed: [] });
    // creates in another pool, none in flight at the end of each, pass the compaction size
    await churn(boot, poolOf('p'), 400);
    expect(size()).to.be.below(COMPACT);
    // killed again before fsp started: the next start still knows what to undo there
    expect(await pendingNames()).to.deep.equal(['fsp/half.img']);
  });

  it('after a compaction, an end record that cannot be appended voids the begin record where it now is', async () => {
    const pool = poolOf('p');
    const journal = await CreateJournal.open(root(), COMPACT);
    await churn(journal, pool, 50); // the two begin records below start some way into the file
    await journal.begin({ operation: 'clone', pool, volume: vol(pool, 'a.img'), requestId: 'a', principal: 'p' });
    const endB = await journal.begin({ operation: 'clone', pool, volume: vol(pool, 'b.img'), requestId: 'b', principal: 'p' });
    await churn(journal, pool, 400);
    expect(size(), 'the journal was compacted').to.be.below(COMPACT);
    // the root is full: no end record can be appended
    const file = (journal as unknown as { log: { append: () => number } }).log;
    const append = file.append;
    file.append = () => {
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    };
    await endB();
    file.append = append;
    // b's begin record is voided, a's (beside it) intact
    expect(await pendingNames()).to.deep.equal(['p/a.img']);
  });
});
