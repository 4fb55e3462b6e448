// Deleting a dos logical partition renumbers the logical partitions after it. An upload or
// wipe of one of those resolves its device node and then opens it: a renumbering in between
// points it at another partition (found by review h28). The delete therefore holds the locks
// of the volumes it moves (backend.volumesMovedByDelete), or is refused while one is busy.
import { expect } from 'chai';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import type { BackendOperation, StorageBackend } from '../../../libs/backends/backend.js';
import { DiskBackend } from '../../../libs/backends/disk.js';
import { outcomeOf } from '../../support/rejects.js';
import { dispatch } from '../../../services/agent/agent.js';
import { inProcessAgent } from '../../support/agent-context.js';

/** Two volumes; deleting 'p5' moves 'p6' (and renames it, as the kernel renumbers it). */
class RenumberingBackend implements StorageBackend {
  readonly type = PoolType.POOL_TYPE_DISK;
  readonly poolFormats = [];
  readonly defaultPoolFormat = '';
  readonly volumeFormats = ['none'];
  readonly defaultVolumeFormat = 'none';
  readonly refreshAfterDeleteVol = true;
  readonly operations: ReadonlySet<BackendOperation> = new Set(['refreshPool', 'deleteVol']);
  names = ['p5', 'p6'];
  deleteGate: Promise<void> | undefined;
  deletes = 0;
  readonly volumesMovedByDelete = (v: VolumeDefinition): string[] => (v.name === 'p5' ? ['p6'] : []);
  async refreshPool() {
    return {
      runtime: { capacity: 100n, allocation: 0n, available: 100n },
      volumes: this.names.map((name, i) => VolumeDefinition.fromPartial({ name, key: `/dev/x${name}`, capacity: BigInt(10 + i), target: { path: `/dev/x${name}`, format: 'none' } })),
    };
  }
  async deleteVol() {
    this.deletes++;
    if (this.deleteGate) await this.deleteGate;
    this.names = ['p5']; // the old p6 is p5 now
  }
}

const poolDef = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DISK, name: 'd', source: { devices: [{ path: '/dev/x' }] }, target: { path: '/dev' } });

async function agent() {
  const backend = new RenumberingBackend();
  const { ctx, events } = inProcessAgent({ runner: { run: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, backend });
  const call = (op: AgentRequest['op']) => {
    const req = AgentRequest.fromPartial({ principal: 'alice', pool: poolDef });
    req.op = op;
    return dispatch(ctx, op!.$case, req);
  };
  await call({ $case: 'startPool', value: { name: 'hosts/h/pools/d', build: false, buildFlags: undefined, requestId: '' } });
  const del = (name: string) => call({ $case: 'deleteVolume', value: { name: `hosts/h/pools/d/volumes/${name}`, requestId: '' } });
  return { backend, ctx, events, del };
}

describe('delete of a volume that renumbers others', () => {
  it('is ABORTED, naming the busy one, while an operation holds a volume it would renumber; nothing is deleted', async () => {
    const { backend, ctx, del } = await agent();
    const release = ctx.locks.acquireVolume('d', 'p6', 'upload');
    try {
      expect(await outcomeOf(del('p5'))).to.equal("ABORTED: deleting 'p5' renumbers p6, and volume 'p6' is busy: upload in progress; nothing was deleted");
    } finally {
      release();
    }
    expect(backend.deletes).to.equal(0);
    expect([...ctx.state.getPool('d')!.volumes.keys()]).to.deep.equal(['p5', 'p6']);
  });

  it('holds the renumbered volume while it deletes: an upload of it meanwhile is ABORTED', async () => {
    const { backend, ctx, del } = await agent();
    let open!: () => void;
    backend.deleteGate = new Promise<void>((r) => (open = r));
    const deleting = outcomeOf(del('p5'));
    await new Promise((r) => setImmediate(r));
    expect(() => ctx.locks.acquireVolume('d', 'p6', 'upload')).to.throw("volume 'p6' is busy: delete in progress");
    open();
    expect(await deleting).to.equal('OK');
    // the re-read after the delete takes the renumbered table, not skipping what it held
    const left = ctx.state.getPool('d')!.volumes;
    expect([...left.keys()]).to.deep.equal(['p5']);
    expect(left.get('p5')!.definition.capacity).to.equal(10n);
    // and lets go of it
    ctx.locks.acquireVolume('d', 'p6', 'upload')();
  });

  it('the disk backend names every other logical partition for a logical one, none for a primary', () => {
    const part = (name: string, start: bigint, end: bigint, format = 'linux') =>
      VolumeDefinition.fromPartial({ name, sourceDevices: [{ path: '/dev/x', extents: [{ start, end }] }], target: { format } });
    const known = [part('x1', 1n, 100n), part('x2', 100n, 1000n, 'extended'), part('x5', 101n, 200n), part('x6', 201n, 300n), part('x7', 301n, 400n)];
    const moved = new DiskBackend().volumesMovedByDelete;
    expect(moved(known[2]!, known)).to.deep.equal(['x6', 'x7']);
    expect(moved(known[0]!, known)).to.deep.equal([]);
    expect(moved(known[1]!, known)).to.deep.equal([]);
  });
});
