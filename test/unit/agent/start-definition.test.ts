// StartPool starts the definition the catalog holds when the pool's turn comes, with its
// flags, not the copy the coordinator sent: a coordinator answers from its cache, which may
// not have read a redefinition (or an autostart change) made a moment ago through another
// coordinator. libvirt has one list: a define, then a start, starts what was defined.
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
