// Restoring the pools running before an agent restart (services/agent/restore.ts): a pool
// its backend finds up is running again with its volumes and the catalog's flags; one found
// down, or failing its refresh, stays inactive and is stopped; each record is settled once.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlreadyExistsError } from '../../../libs/errors/errors.js';
import { claimStorage } from '../../../services/agent/storage-claims.js';
import { PoolDefinition, PoolType, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { CatalogPool } from '../../../libs/proto/cistern/agent/v1/agent.js';
import type { PoolContext, StorageBackend } from '../../../libs/backends/backend.js';
import { restoreRunningPools } from '../../../services/agent/restore.js';
import type { CatalogLister } from '../../../services/agent/autostart.js';
import { inProcessAgent } from '../../support/agent-context.js';

const def = (name: string) => PoolDefinition.fromPartial({ name, type: PoolType.POOL_TYPE_DIR, target: { path: `/p/${name}` } });

function backend(up: Set<string>, refreshFails: Set<string>, calls: string[]): StorageBackend {
  return {
    type: PoolType.POOL_TYPE_DIR,
    operations: new Set(['checkPool', 'refreshPool', 'stopPool']),
    poolFormats: [],
    defaultPoolFormat: '',
    volumeFormats: ['raw'],
    defaultVolumeFormat: 'raw',
    async checkPool(ctx: PoolContext) {
      calls.push(`check ${ctx.pool.name}`);
      return up.has(ctx.pool.name);
    },
    async refreshPool(ctx: PoolContext) {
      calls.push(`refresh ${ctx.pool.name}`);
      if (refreshFails.has(ctx.pool.name)) throw new Error('refresh failed');
      return { runtime: { capacity: 10n, allocation: 0n, available: 10n }, volumes: [VolumeDefinition.fromPartial({ name: 'v', key: '/k', capacity: 1n, target: { path: '/k', format: 'raw' } })] };
    },
    async stopPool(ctx: PoolContext) {
      calls.push(`stop ${ctx.pool.name}`);
    },
  } as unknown as StorageBackend;
}

describe('restoring running pools at agent start', () => {
  it('keeps the pools found up, with the catalog flags; stops one whose refresh fails; settles each once', async () => {
    const calls: string[] = [];
    const { ctx, events } = inProcessAgent({ runner: { run: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, backend: backend(new Set(['up', 'transient', 'broken']), new Set(['broken']), calls) });
    const catalog: CatalogLister = { list: async () => [{ host: 'h', pool: 'up', value: CatalogPool.fromPartial({ definition: def('up'), autostart: true, persistent: true }), revision: 1 }] };
    const settled: string[] = [];
    const result = await restoreRunningPools(ctx, ['up', 'transient', 'down', 'broken'].map((n) => ({ definition: def(n) })), catalog, (p) => settled.push(p));
    expect(result.restored.sort()).to.deep.equal(['transient', 'up']);
    expect(result.down.map((d) => d.pool).sort()).to.deep.equal(['broken', 'down']);
    expect(settled.sort()).to.deep.equal(['broken', 'down', 'transient', 'up']);
    const up = ctx.state.getPool('up')!;
    expect([up.persistent, up.autostart, up.volumes.size]).to.deep.equal([true, true, 1]);
    const transient = ctx.state.getPool('transient')!;
    expect([transient.persistent, transient.autostart]).to.deep.equal([false, false]);
    expect(ctx.state.getPool('down')).to.equal(undefined);
    expect(ctx.state.getPool('broken')).to.equal(undefined);
    expect(calls).to.include('stop broken');
    expect(calls).to.not.include('stop down');
    expect(events).to.deep.equal([]); // nothing happened to the pools: no event
  });

  it('a record whose definition a request could not carry (a relative or unnormalised target) is down, not taken back: the file is checked as a request is', async () => {
    const calls: string[] = [];
    const { ctx } = inProcessAgent({ runner: { run: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, backend: backend(new Set(['rel', 'dots']), new Set(), calls) });
    const catalog: CatalogLister = { list: async () => [] };
    const records = [
      { definition: PoolDefinition.fromPartial({ name: 'rel', type: PoolType.POOL_TYPE_DIR, target: { path: 'pools/rel' } }) },
      { definition: PoolDefinition.fromPartial({ name: 'dots', type: PoolType.POOL_TYPE_DIR, target: { path: '/srv/pools/../../etc' } }) },
    ];
    const result = await restoreRunningPools(ctx, records, catalog);
    expect(result.restored).to.deep.equal([]);
    expect(result.down.map((d) => d.pool).sort()).to.deep.equal(['dots', 'rel']);
    for (const d of result.down) expect(d.reason).to.match(/target/);
    expect(calls).to.deep.equal([]);
  });

  it('settles nothing when the catalog cannot be read: the record stays for the next start', async () => {
    const calls: string[] = [];
    const { ctx } = inProcessAgent({ runner: { run: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, backend: backend(new Set(['up']), new Set(), calls) });
    const settled: string[] = [];
    const failing: CatalogLister = { list: async () => Promise.reject(new Error('no NATS')) };
    let error: unknown;
    await restoreRunningPools(ctx, [{ definition: def('up') }], failing, (p) => settled.push(p)).catch((err: unknown) => (error = err));
    expect(String(error)).to.match(/no NATS/);
    expect(settled).to.deep.equal([]);
    expect(calls).to.deep.equal([]);
  });

  // A restore can outlast the agent's wait for it (AUTOSTART_WAIT_MS: a big pool's refresh, a
  // slow check); the agent then serves requests and autostarts pools meanwhile. A start over
  // the storage of a pool being restored must be refused as one over an active pool's, not
  // pass because that pool is neither active nor a start yet: two pools would then run over
  // one directory, each locking its volumes on its own.
  it('holds the storage of a pool while it is restored: a start over it meanwhile is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cistern-restore-'));
    try {
      mkdirSync(join(dir, 'a'));
      symlinkSync(join(dir, 'a'), join(dir, 'link'));
      const slow = backend(new Set(['up']), new Set(), []);
      let refreshing!: () => void;
      const refreshStarted = new Promise<void>((r) => (refreshing = r));
      let finish!: () => void;
      const held = new Promise<void>((r) => (finish = r));
      const plainRefresh = slow.refreshPool.bind(slow);
      slow.refreshPool = async (pc: PoolContext) => {
        refreshing();
        await held;
        return plainRefresh(pc);
      };
      const { ctx } = inProcessAgent({ runner: { run: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, backend: slow });
      const catalog: CatalogLister = { list: async () => [] };
      const restoring = restoreRunningPools(ctx, [{ definition: PoolDefinition.fromPartial({ name: 'up', type: PoolType.POOL_TYPE_DIR, target: { path: join(dir, 'a') } }) }], catalog);
      await refreshStarted;
      for (const path of [join(dir, 'a'), join(dir, 'link')]) {
        const other = PoolDefinition.fromPartial({ name: 'other', type: PoolType.POOL_TYPE_DIR, target: { path } });
        const refused = await claimStorage(ctx, other).then((release) => (release(), undefined), (err: unknown) => err);
        expect(refused, path).to.be.instanceOf(AlreadyExistsError);
        expect((refused as Error).message).to.match(/storage source conflict with pool 'up' on host /);
      }
      finish();
      expect((await restoring).restored).to.deep.equal(['up']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('holds it already while the catalog is read: a start served meanwhile is refused (review h39)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cistern-restore-'));
    try {
      mkdirSync(join(dir, 'a'));
      const { ctx } = inProcessAgent({ runner: { run: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, backend: backend(new Set(['up']), new Set(), []) });
      let answer!: () => void;
      const slowCatalog: CatalogLister = { list: () => new Promise((r) => (answer = () => r([]))) };
      const restoring = restoreRunningPools(ctx, [{ definition: PoolDefinition.fromPartial({ name: 'up', type: PoolType.POOL_TYPE_DIR, target: { path: join(dir, 'a') } }) }], slowCatalog);
      const other = PoolDefinition.fromPartial({ name: 'other', type: PoolType.POOL_TYPE_DIR, target: { path: join(dir, 'a') } });
      const refused = await claimStorage(ctx, other).then((release) => (release(), undefined), (err: unknown) => err);
      expect(refused).to.be.instanceOf(AlreadyExistsError);
      answer();
      expect((await restoring).restored).to.deep.equal(['up']);
      // and gives it back once restored: the active pool holds it now, under its own name
      const again = await claimStorage(ctx, PoolDefinition.fromPartial({ name: 'up', type: PoolType.POOL_TYPE_DIR, target: { path: join(dir, 'a') } })).then((release) => (release(), 'claimed'), (err: unknown) => err);
      expect(again).to.equal('claimed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
