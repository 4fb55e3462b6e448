// The create journal's cleanup after a restart removes what the interrupted create left in
// the directory it wrote in, and nowhere else: a dir pool's target swapped for a link (or
// another directory) while the agent was down must not lead the agent, root, to unlink a
// same-named file wherever the link points (review h87).
import { expect } from 'chai';
import { existsSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir } from '../../support/index.js';
import { interruptedDirCreate } from '../../support/interrupted-create.js';
import { CreateJournal, cleanupInterruptedCreates, cleanupWhenStarted } from '../../../services/agent/journal.js';
import { PoolDefinition, PoolType, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { DirBackend } from '../../../libs/backends/dir.js';
import { forgetPoolDirectory, rememberPoolDirectory } from '../../../libs/backends/dir/pool-directory.js';
import { execRunner } from '../../../libs/backends/exec-runner.js';

const silent = { debug() {}, info() {}, warn() {}, error() {}, child() { return silent; } } as never;

describe('create journal: a pool target swapped while the agent was down', () => {
  it('leaves a same-named file behind the new link alone, and the partial file where it is, at boot and when the pool starts', async () => {
    const tmp = makeTempDir('cistern-journal-swap-');
    const target = join(tmp.path, 'pool');
    const victim = join(tmp.path, 'elsewhere');
    mkdirSync(target);
    mkdirSync(victim);
    const pool = PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: target } });
    const vol = VolumeDefinition.fromPartial({ name: 'keep.txt', target: { path: join(target, 'keep.txt'), format: 'raw' } });
    // the pool runs (its start remembered its directory), a clone begins writing and the agent dies
    await rememberPoolDirectory(pool);
    const first = await CreateJournal.open(join(tmp.path, 'root'));
    await first.begin({ operation: 'clone', pool, volume: vol, requestId: 'r', principal: 'p' });
    writeFileSync(join(target, 'keep.txt'), 'partial');
    forgetPoolDirectory(pool); // a new agent process knows nothing of the old one's pools
    // meanwhile someone who can write in the target's parent swaps it for a link
    renameSync(target, `${target}.old`);
    writeFileSync(join(victim, 'keep.txt'), 'precious');
    symlinkSync(victim, target);

    const boot = await CreateJournal.open(join(tmp.path, 'root'));
    const result = await cleanupInterruptedCreates(boot, () => new DirBackend(), execRunner, silent);
    expect(readFileSync(join(victim, 'keep.txt'), 'utf8'), 'the file behind the link').to.equal('precious');
    expect(existsSync(join(`${target}.old`, 'keep.txt')), 'the partial file, in the directory it was written in').to.equal(true);
    expect(result).to.deep.equal({ removed: [], failed: ['p/keep.txt'] });
    expect(await boot.pending()).to.have.length(1);

    // the pool started over the link (libvirt follows a target that is a link): still not there
    await rememberPoolDirectory(pool);
    await cleanupWhenStarted(boot, pool, new DirBackend(), execRunner, silent);
    expect(readFileSync(join(victim, 'keep.txt'), 'utf8'), 'the file behind the link, after the start').to.equal('precious');
    forgetPoolDirectory(pool);
  });

  it('still removes the partial file when the target is the directory the create wrote in', async () => {
    const { target, root, pool } = await interruptedDirCreate('cistern-journal-swap-');
    const boot = await CreateJournal.open(root);
    expect(await cleanupInterruptedCreates(boot, () => new DirBackend(), execRunner, silent)).to.deep.equal({ removed: ['p/half.img'], failed: [] });
    expect(existsSync(join(target, 'half.img'))).to.equal(false);
    forgetPoolDirectory(pool);
  });
});
