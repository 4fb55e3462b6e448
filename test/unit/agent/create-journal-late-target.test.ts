// A dir pool whose target is not there when the agent starts (its filesystem mounted later:
// fstab _netdev, automount) proves nothing about what an interrupted create left in it: the
// undo waits until the pool starts, and removes the partial file then, before the pool's first
// scan would list it as a volume (review h87: the entry was ended at boot as if removed).
import { expect } from 'chai';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { interruptedDirCreate } from '../../support/interrupted-create.js';
import { CreateJournal, cleanupInterruptedCreates, cleanupWhenStarted } from '../../../services/agent/journal.js';
import { DirBackend } from '../../../libs/backends/dir.js';
import { forgetPoolDirectory, rememberPoolDirectory } from '../../../libs/backends/dir/pool-directory.js';
import { execRunner } from '../../../libs/backends/exec-runner.js';

const silent = { debug() {}, info() {}, warn() {}, error() {}, child() { return silent; } } as never;

describe('create journal: a dir pool target that is not there at boot', () => {
  it('keeps the entry, and removes the partial file once the same directory is back and the pool starts', async () => {
    const { tmp, target, root, pool } = await interruptedDirCreate('cistern-journal-late-');
    renameSync(target, join(tmp, 'not-mounted-yet'));

    const boot = await CreateJournal.open(root);
    const atBoot = await cleanupInterruptedCreates(boot, () => new DirBackend(), execRunner, silent);
    expect(atBoot.removed, 'nothing was removed').to.deep.equal([]);
    expect(await boot.pending(), 'the entry is kept').to.have.length(1);

    renameSync(join(tmp, 'not-mounted-yet'), target); // mounted: the same directory
    await rememberPoolDirectory(pool); // the pool starts
    await cleanupWhenStarted(boot, pool, new DirBackend(), execRunner, silent);
    expect(existsSync(join(target, 'half.img')), 'the partial file').to.equal(false);
    expect(await boot.pending()).to.deep.equal([]);
    forgetPoolDirectory(pool);
  });

  it('forgets the entry, removing nothing, when the pool starts over another directory (rebuilt, or a link)', async () => {
    const { tmp, target, root, pool } = await interruptedDirCreate('cistern-journal-late-');
    renameSync(target, join(tmp, 'old'));
    const boot = await CreateJournal.open(root);
    await cleanupInterruptedCreates(boot, () => new DirBackend(), execRunner, silent);
    // the pool is built again (a new directory) and started; someone's file has the name
    mkdirSync(target);
    writeFileSync(join(target, 'half.img'), 'not the create\'s');
    await rememberPoolDirectory(pool);
    await cleanupWhenStarted(boot, pool, new DirBackend(), execRunner, silent);
    expect(existsSync(join(target, 'half.img'))).to.equal(true);
    expect(await boot.pending(), 'nothing left waiting for ever').to.deep.equal([]);
    forgetPoolDirectory(pool);
  });
});
