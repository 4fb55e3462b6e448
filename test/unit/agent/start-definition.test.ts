// StartPool, BuildPool and DeletePool work on the definition the catalog holds when the pool's
// turn comes (a start with its flags), not on the copy the coordinator sent: a coordinator
// answers from its cache, which may not have read a redefinition (or an autostart change, or
// an undefine) made a moment ago through another coordinator. libvirt has one list: a define,
// then a start, starts what was defined.
import { expect } from 'chai';
import { AgentRequest, CatalogPool } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType } from '../../../libs/proto/cistern/v1/storage.js';
import type { BackendOperation, PoolContext, StorageBackend } from '../../../libs/backends/backend.js';
import { dispatch } from '../../../services/agent/agent.js';
import { inProcessAgent } from '../../support/agent-context.js';

/** A dir-like backend that records the target each start and refresh was given. */
class RecordingBackend implements StorageBackend {
  readonly type = PoolType.POOL_TYPE_DIR;
  readonly operations: ReadonlySet<BackendOperation> = new Set<BackendOperation>(['checkPool', 'refreshPool']);
  readonly poolFormats = [];
  readonly defaultPoolFormat = '';
  readonly volumeFormats = ['raw'];
  readonly defaultVolumeFormat = 'raw';
  targets: string[] = [];
  async checkPool(ctx: PoolContext) {
    this.targets.push(ctx.pool.target?.path ?? '');
    return true;
  }
  async refreshPool() {
    return { runtime: { capacity: 1n, allocation: 0n, available: 1n }, volumes: [] };
  }
}

const uuid = '6b1c0ad3-1d5e-4c47-9b7e-0c1c6a4b1e11';
const sent = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'p', uuid, target: { path: '/srv/old' } });
const stored = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'p', uuid, target: { path: '/srv/new' } });

describe('StartPool starts the catalog definition read in the pool turn', () => {
  it('a redefinition (and autostart) the coordinator had not read yet is what starts', async () => {
    const backend = new RecordingBackend();
    const { ctx } = inProcessAgent({ runner: { run: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, backend });
    ctx.catalog = { get: async () => ({ value: CatalogPool.fromPartial({ definition: stored, persistent: true, autostart: true }), revision: 7 }) };
    const req = AgentRequest.fromPartial({ principal: 'alice', requestId: '', pool: sent, persistent: true, autostart: false });
    req.op = { $case: 'startPool', value: { name: 'hosts/h/pools/p', build: false, buildFlags: undefined, requestId: '' } };
    await dispatch(ctx, 'startPool', req);
    const running = ctx.state.getPool('p')!;
    expect(backend.targets).to.deep.equal(['/srv/new']);
    expect(running.definition.target?.path).to.equal('/srv/new');
    expect([running.persistent, running.autostart]).to.deep.equal([true, true]);
  });
});

/** Records the target each build and delete was given. */
class BuildDeleteBackend extends RecordingBackend {
  override readonly operations: ReadonlySet<BackendOperation> = new Set<BackendOperation>(['checkPool', 'refreshPool', 'buildPool', 'deletePool']);
  async buildPool(ctx: PoolContext) {
    this.targets.push(`build ${ctx.pool.target?.path}`);
  }
  async deletePool(ctx: PoolContext) {
    this.targets.push(`delete ${ctx.pool.target?.path}`);
  }
}

describe('BuildPool and DeletePool work on the catalog definition read in the pool turn', () => {
  const setup = (entry: CatalogPool | undefined) => {
    const backend = new BuildDeleteBackend();
    const { ctx } = inProcessAgent({ runner: { run: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, backend });
    ctx.catalog = { get: async () => (entry ? { value: entry, revision: 7 } : undefined) };
    const call = (op: AgentRequest['op']) => {
      const req = AgentRequest.fromPartial({ principal: 'alice', requestId: '', pool: sent, persistent: true, autostart: false });
      req.op = op;
      return dispatch(ctx, op!.$case, req);
    };
    return { backend, call };
  };
  const build = { $case: 'buildPool' as const, value: { name: 'hosts/h/pools/p', flags: undefined, requestId: '' } };
  const del = { $case: 'deletePool' as const, value: { name: 'hosts/h/pools/p', requestId: '' } };

  it('a redefinition the coordinator had not read yet is what is built and deleted', async () => {
    const { backend, call } = setup(CatalogPool.fromPartial({ definition: stored, persistent: true }));
    await call(build);
    await call(del);
    expect(backend.targets).to.deep.equal(['build /srv/new', 'delete /srv/new']);
  });

  it('a pool undefined meanwhile is NOT_FOUND, and nothing is built or deleted', async () => {
    const { backend, call } = setup(undefined);
    for (const op of [build, del]) {
      const outcome = await call(op).then(() => 'OK', (err: { code?: string }) => err.code);
      expect(outcome).to.equal('NOT_FOUND');
    }
    expect(backend.targets).to.deep.equal([]);
  });
});
