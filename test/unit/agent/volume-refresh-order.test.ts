// Two GetVolume refreshes of one volume at once (two vol-info, two coordinators): each reads the
// volume beside the other, and the state they leave must be the newer read, not whichever
// read happened to finish last. A volume that grows (a guest writing) read slowly once, then
// quickly after it grew again, must not go back to the older size in the agent's state, its
// events and its answer.
import { expect } from 'chai';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { EventKind, PoolDefinition, PoolType, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import type { BackendOperation, PoolContext, StorageBackend } from '../../../libs/backends/backend.js';
import { dispatch } from '../../../services/agent/agent.js';
import { inProcessAgent } from '../../support/agent-context.js';

/** A dir-like backend whose volume reads take the size as the read starts and may then wait. */
class SlowReadBackend implements StorageBackend {
  readonly type = PoolType.POOL_TYPE_DIR;
  readonly poolFormats = [];
  readonly defaultPoolFormat = '';
  readonly volumeFormats = ['raw'];
  readonly defaultVolumeFormat = 'raw';
  readonly operations: ReadonlySet<BackendOperation> = new Set(['refreshPool']);
  size = 3n;
  /** the next read waits for this after taking the size (a slow stat, a busy disk) */
  nextReadGate: Promise<void> | undefined;
  def(capacity: bigint): VolumeDefinition {
    return VolumeDefinition.fromPartial({ name: 'v', key: '/p/v', capacity, allocation: capacity, target: { path: '/p/v', format: 'raw' } });
  }
  async refreshPool() {
    return { runtime: { capacity: 1000n, allocation: 0n, available: 1000n }, volumes: [this.def(this.size)] };
  }
  async refreshVol(_ctx: PoolContext, _v: VolumeDefinition): Promise<VolumeDefinition> {
    const read = this.def(this.size);
    const gate = this.nextReadGate;
    this.nextReadGate = undefined;
    if (gate) await gate;
    return read;
  }
}

const poolDef = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'p', target: { path: '/p' } });

describe('GetVolume refresh: two re-reads of one volume at once (fake backend)', () => {
  it('the state left, its last event and the later answer are the newer read, not the slower one', async () => {
    const backend = new SlowReadBackend();
    const { ctx, events } = inProcessAgent({ runner: { run: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, backend });
    const call = (op: AgentRequest['op']) => {
      const req = AgentRequest.fromPartial({ principal: 'alice', pool: poolDef });
      req.op = op;
      return dispatch(ctx, op!.$case, req);
    };
    await call({ $case: 'startPool', value: { name: 'hosts/h/pools/p', build: false, buildFlags: undefined, requestId: '' } });
    const reread = { $case: 'refreshVolume' as const, value: { name: 'hosts/h/pools/p/volumes/v', refresh: true } };
    const capacityOf = (r: Awaited<ReturnType<typeof call>>) => (r.result?.$case === 'volume' ? r.result.value.definition?.capacity : undefined);

    // the first re-read reads 5 and is slow; the volume grows to 7; the second reads 7 at once
    backend.size = 5n;
    let open!: () => void;
    backend.nextReadGate = new Promise<void>((r) => (open = r));
    const slow = call(reread);
    await new Promise((r) => setImmediate(r));
    backend.size = 7n;
    const fast = call(reread);
    await new Promise((r) => setImmediate(r));
    open();
    expect(capacityOf(await fast)).to.equal(7n);
    await slow;

    // the volume is 7 now: the agent's state, the last event about it and a third read say so
    expect(ctx.state.pools.get('p')!.volumes.get('v')!.definition.capacity).to.equal(7n);
    const changed = events.filter((e) => e.kind === EventKind.VOLUME_CHANGED && e.volume === 'v');
    expect(changed.at(-1)?.volumeState?.definition?.capacity).to.equal(7n);
    expect(capacityOf(await call(reread))).to.equal(7n);
  });
});
