// Agent pieces of issue 6 without a bus: request-id replay cache, the create journal and
// its cleanup, revisions that keep growing when the clock goes back.
import { expect } from 'chai';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir } from '../../support/index.js';
import { RequestCache } from '../../../services/agent/request-cache.js';
import { CreateJournal, cleanupInterruptedCreates, cleanupWhenStarted } from '../../../services/agent/journal.js';
import { PersistentRevisions } from '../../../services/agent/revisions.js';
import { AgentReply, AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { asCisternError } from '../../../libs/errors/errors.js';
import { DirBackend } from '../../../libs/backends/dir.js';
import { execRunner } from '../../../libs/backends/exec-runner.js';

const silent = { debug() {}, info() {}, warn() {}, error() {}, child() { return silent; } } as never;

const create = (name: string, requestId: string, principal = 'p') =>
  AgentRequest.fromPartial({
    principal,
    requestId,
    op: { $case: 'createVolume', value: { parent: 'hosts/a/pools/p', definition: VolumeDefinition.fromPartial({ name }), xml: '', preallocMetadata: false, requestId } },
  });

describe('agent request cache', () => {
  it('runs a request id once: a retry during and after the call gets the same reply', async () => {
    const cache = new RequestCache();
    let runs = 0;
    let finish!: (r: AgentReply) => void;
    const work = () => {
      runs++;
      return new Promise<AgentReply>((r) => (finish = r));
    };
    const first = cache.run('createVolume', create('v', 'id-1'), work);
    const during = cache.run('createVolume', create('v', 'id-1'), work);
    finish(AgentReply.create({ eventSequence: 7n }));
    expect((await first).eventSequence).to.equal(7n);
    expect((await during).eventSequence).to.equal(7n);
    expect((await cache.run('createVolume', create('v', 'id-1'), work)).eventSequence).to.equal(7n);
    expect(runs).to.equal(1);
  });

  it('forgets failures, keeps principals apart, refuses an id reused for another request, ignores calls without an id', async () => {
    const cache = new RequestCache();
    let runs = 0;
    const fail = () => {
      runs++;
      return Promise.reject(new Error('boom'));
    };
    const ok = () => {
      runs++;
      return Promise.resolve(AgentReply.create({ eventSequence: BigInt(runs) }));
    };
    await cache.run('createVolume', create('v', 'id-2'), fail).catch(() => undefined);
    expect((await cache.run('createVolume', create('v', 'id-2'), ok)).eventSequence).to.equal(2n);
    expect((await cache.run('createVolume', create('v', 'id-2', 'other'), ok)).eventSequence).to.equal(3n);
    const err = await cache.run('createVolume', create('w', 'id-2'), ok).catch((e) => asCisternError(e));
    expect((err as { code: string }).code).to.equal('INVALID_ARGUMENT');
    await cache.run('createVolume', create('v', ''), ok);
    await cache.run('createVolume', create('v', ''), ok);
    expect(runs).to.equal(5);
  });

  it('expires replies after the ttl', async () => {
    let now = 0;
    const cache = new RequestCache(1000, 100, () => now);
    let runs = 0;
    const ok = () => Promise.resolve(AgentReply.create({ eventSequence: BigInt(++runs) }));
    await cache.run('deleteVolume', create('v', 'id-3'), ok);
    now = 2000;
    await cache.run('createPool', create('v', 'id-4'), ok);
    expect((await cache.run('deleteVolume', create('v', 'id-3'), ok)).eventSequence).to.equal(3n);
  });

  it('an undefine: its retry without a catalog revision (the coordinator has no entry) gets the first answer; one over an entry (defined again since) is done again', async () => {
    const cache = new RequestCache();
    let runs = 0;
    const ok = () => Promise.resolve(AgentReply.create({ eventSequence: BigInt(++runs) }));
    const undefine = (catalogRevision: bigint) =>
      AgentRequest.fromPartial({ principal: 'p', requestId: 'undef-1', catalogRevision, pool: { name: 'u' }, op: { $case: 'undefinePool', value: { name: 'hosts/a/pools/u', requestId: 'undef-1' } } });
    expect((await cache.run('undefinePool', undefine(5n), ok)).eventSequence).to.equal(1n);
    // the first coordinator died after deleting the entry: the retry finds none
    expect((await cache.run('undefinePool', undefine(0n), ok)).eventSequence).to.equal(1n);
    // the pool defined again since: the agent's answer would let the coordinator delete the new
    // entry without the agent's checks in the pool's turn (still active, a start queued)
    expect((await cache.run('undefinePool', undefine(9n), ok)).eventSequence).to.equal(2n);
    expect(runs).to.equal(2);
  });
});

describe('create journal', () => {
  it('removes what an interrupted create left, but never a file that was there before', async () => {
    const dir = makeTempDir('cistern-journal-');
    const pool = PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: dir.path } });
    const journal = await CreateJournal.open(join(dir.path, 'root'));
    const vol = (name: string) => VolumeDefinition.fromPartial({ name, target: { path: join(dir.path, name), format: 'raw' } });
    await journal.begin({ operation: 'create', pool, volume: vol('half.img'), requestId: 'r', principal: 'p' });
    writeFileSync(join(dir.path, 'half.img'), 'partial');
    writeFileSync(join(dir.path, 'mine.img'), 'was here first');
    await journal.begin({ operation: 'clone', pool, volume: vol('mine.img'), requestId: '', principal: 'p' });
    const done = await journal.begin({ operation: 'create', pool, volume: vol('ok.img'), requestId: '', principal: 'p' });
    await done();
    const result = await cleanupInterruptedCreates(journal, () => new DirBackend(), execRunner, silent);
    expect(result.removed.sort()).to.deep.equal(['p/half.img', 'p/mine.img']);
    expect(existsSync(join(dir.path, 'half.img'))).to.equal(false);
    expect(existsSync(join(dir.path, 'mine.img'))).to.equal(true);
    expect(await journal.pending()).to.deep.equal([]);
  });

  it('an entry kept waiting never removes a volume created again under that name later', async () => {
    const dir = makeTempDir('cistern-journal-');
    const pool = PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: dir.path } });
    const vol = (name: string) => VolumeDefinition.fromPartial({ name, target: { path: join(dir.path, name), format: 'raw' } });
    const first = await CreateJournal.open(join(dir.path, 'root'));
    await first.begin({ operation: 'create', pool, volume: vol('half.img'), requestId: 'r', principal: 'p' });
    // the next start cannot remove it (here: a backend whose delete fails)
    const failing = Object.assign(new DirBackend(), { deleteVol: async () => { throw new Error('immutable'); } });
    const next = await CreateJournal.open(join(dir.path, 'root'));
    expect((await cleanupInterruptedCreates(next, () => failing, execRunner, silent)).failed).to.deep.equal(['p/half.img']);
    // the user frees the name and creates the volume again: its data is theirs
    const done = await next.begin({ operation: 'create', pool, volume: vol('half.img'), requestId: 'r2', principal: 'p' });
    writeFileSync(join(dir.path, 'half.img'), 'important');
    await done();
    const third = await CreateJournal.open(join(dir.path, 'root'));
    expect((await cleanupInterruptedCreates(third, () => new DirBackend(), execRunner, silent)).removed).to.deep.equal([]);
    expect(readFileSync(join(dir.path, 'half.img'), 'utf8')).to.equal('important');
  });

  it('a pool that must be mounted or activated is cleaned when it starts, not at boot (a missing file there proves nothing)', async () => {
    const dir = makeTempDir('cistern-journal-');
    const pool = PoolDefinition.fromPartial({ name: 'fsp', type: PoolType.POOL_TYPE_FS, target: { path: dir.path } });
    const vol = VolumeDefinition.fromPartial({ name: 'half.img', target: { path: join(dir.path, 'half.img'), format: 'raw' } });
    const first = await CreateJournal.open(join(dir.path, 'root'));
    await first.begin({ operation: 'create', pool, volume: vol, requestId: 'r', principal: 'p' });
    const boot = await CreateJournal.open(join(dir.path, 'root'));
    const atBoot = await cleanupInterruptedCreates(boot, () => new DirBackend(), execRunner, silent);
    expect(atBoot).to.deep.equal({ removed: [], failed: [] });
    expect(await boot.pending()).to.have.length(1); // kept: the filesystem is not mounted yet
    writeFileSync(join(dir.path, 'half.img'), 'partial'); // mounted: there it is
    await cleanupWhenStarted(boot, pool, new DirBackend(), execRunner, silent);
    expect(existsSync(join(dir.path, 'half.img'))).to.equal(false);
    expect(await boot.pending()).to.deep.equal([]);
  });
});

describe('persistent revisions', () => {
  it('keep growing across restarts when the clock goes back', () => {
    const root = makeTempDir('cistern-revisions-').path;
    const first = PersistentRevisions.open(root, () => 2_000_000);
    const last = [first.next(), first.next()].at(-1)!;
    const second = PersistentRevisions.open(root, () => 1_000_000); // clock set back
    expect(second.next() > last).to.equal(true);
    const third = PersistentRevisions.open(root, () => 9_000_000_000_000); // far ahead: the clock wins
    expect(third.next()).to.equal(9_000_000_000_000n * 1000n + 1n);
  });
});
