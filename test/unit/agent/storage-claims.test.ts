// The agent's last word on a storage source conflict (storage-claims.ts): a start is compared
// with the pools active on the host and the starts claimed before it, by what their paths are.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PoolDefinition, PoolType } from '../../../libs/proto/cistern/v1/storage.js';
import { AlreadyExistsError } from '../../../libs/errors/errors.js';
import { AgentState } from '../../../services/agent/state.js';
import type { AgentContext } from '../../../services/agent/context.js';
import { claimStorage } from '../../../services/agent/storage-claims.js';

describe('storage claims', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cistern-claims-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const dirPool = (name: string, path: string) => PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name, target: { path } });
  const contextOf = (state: AgentState) => ({ state, host: 'a' }) as unknown as AgentContext;
  const runtime = { capacity: 0n, allocation: 0n, available: 0n };
  const started = async (ctx: AgentContext, def: PoolDefinition): Promise<void> => {
    const release = await claimStorage(ctx, def);
    ctx.state.addPool(def, { persistent: true, autostart: false }, runtime);
    release();
  };

  // An fs or netfs pool's volumes are the files in its target directory, as a dir pool's are:
  // a dir pool over that directory (through a link, or by the same name: the path rule compares
  // only pools of one type, as libvirt's) would lock the same files on its own.
  const fsPool = (name: string, target: string, device = join(dir, 'disk.img')) =>
    PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_FS, name, source: { devices: [{ path: device }], format: 'ext4' }, target: { path: target } });
  const netfsPool = (name: string, target: string) =>
    PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_NETFS, name, source: { hosts: [{ name: '127.0.0.1' }], dir: '/export' }, target: { path: target } });

  it('an fs or netfs pool and a dir pool over one target directory (by a link or the same name): the later start is refused', async () => {
    mkdirSync(join(dir, 'a'));
    symlinkSync(join(dir, 'a'), join(dir, 'link'));
    const ctx = contextOf(new AgentState('a'));
    await started(ctx, fsPool('fs-one', join(dir, 'a')));
    for (const later of [dirPool('dir-link', join(dir, 'link')), dirPool('dir-same', join(dir, 'a'))]) {
      const refused = await claimStorage(ctx, later).then(() => undefined, (err: unknown) => err);
      expect(refused, later.name).to.be.instanceOf(AlreadyExistsError);
      expect((refused as Error).message).to.contain(`storage source conflict with pool 'fs-one' on host 'a': both would use the target directory '${join(dir, 'a')}'`);
    }
    const other = contextOf(new AgentState('a'));
    await started(other, dirPool('dir-one', join(dir, 'a')));
    for (const later of [fsPool('fs-link', join(dir, 'link')), netfsPool('netfs-same', join(dir, 'a'))]) {
      const refused = await claimStorage(other, later).then(() => undefined, (err: unknown) => err);
      expect(refused, later.name).to.be.instanceOf(AlreadyExistsError);
      expect((refused as Error).message).to.contain("storage source conflict with pool 'dir-one'");
    }
  });

  it('an fs pool whose start builds its target (not there at its claim) still holds that directory', async () => {
    // its image is there: what its claim found is kept, and read no more
    writeFileSync(join(dir, 'disk.img'), '');
    const ctx = contextOf(new AgentState('a'));
    await started(ctx, fsPool('fs-built', join(dir, 'made-by-build')));
    mkdirSync(join(dir, 'made-by-build'));
    symlinkSync(join(dir, 'made-by-build'), join(dir, 'link'));
    const refused = await claimStorage(ctx, dirPool('dir-link', join(dir, 'link'))).then(() => undefined, (err: unknown) => err);
    expect(refused).to.be.instanceOf(AlreadyExistsError);
    expect((refused as Error).message).to.contain(`both would use the target directory '${join(dir, 'made-by-build')}'`);
  });

  it('an fs pool and a dir pool over different directories both start', async () => {
    mkdirSync(join(dir, 'a'));
    mkdirSync(join(dir, 'b'));
    const ctx = contextOf(new AgentState('a'));
    await started(ctx, fsPool('fs-one', join(dir, 'a')));
    await started(ctx, dirPool('dir-two', join(dir, 'b')));
    expect([...ctx.state.pools.keys()]).to.deep.equal(['fs-one', 'dir-two']);
  });

  it('of two starts at once over one directory through two names, the later one is refused', async () => {
    mkdirSync(join(dir, 'a'));
    symlinkSync(join(dir, 'a'), join(dir, 'link'));
    const ctx = contextOf(new AgentState('a'));
    const outcomes = await Promise.allSettled([claimStorage(ctx, dirPool('one', join(dir, 'a'))), claimStorage(ctx, dirPool('two', join(dir, 'link')))]);
    expect(outcomes[0]!.status).to.equal('fulfilled');
    expect(outcomes[1]!.status).to.equal('rejected');
    expect((outcomes[1] as PromiseRejectedResult).reason).to.be.instanceOf(AlreadyExistsError);
  });

  // What an active dir pool uses is the directory it started with: its operations refuse a
  // target swapped since (libs/backends/dir/pool-directory.ts). So a start is compared with that,
  // which the agent knows from the pool's own start, and does not read the paths of every active
  // pool again: with 1,000 active pools that cost each start 1,000 stats (a 1,000-pool autostart
  // 8 s instead of 0.25 s), and one pool on a dead NFS server hung every start on the host.
  it('an active pool is compared by the directory it started with, not by what its path leads to now', async () => {
    mkdirSync(join(dir, 'a'));
    mkdirSync(join(dir, 'b'));
    const ctx = contextOf(new AgentState('a'));
    await started(ctx, dirPool('one', join(dir, 'a')));
    renameSync(join(dir, 'a'), join(dir, 'a-then'));
    symlinkSync(join(dir, 'b'), join(dir, 'a'));
    await started(ctx, dirPool('two', join(dir, 'b')));
    const refused = await claimStorage(ctx, dirPool('three', join(dir, 'a-then'))).then(() => undefined, (err: unknown) => err);
    expect(refused).to.be.instanceOf(AlreadyExistsError);
    expect((refused as Error).message).to.match(/storage source conflict with pool 'one' on host 'a': both would use the target directory '.*\/a' \(named '.*\/a-then' here\)/);
  });
});
