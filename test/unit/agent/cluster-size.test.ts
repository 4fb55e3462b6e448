// A qcow2 volume's cluster size as libvirt shows it: after a create, clone or resize only as
// the request gave it (libvirt's refreshVol reads sizes, not the header), once a pool refresh,
// a wipe or an upload probed the image, as the image has it.
import { expect } from 'chai';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { EventKind, PoolDefinition, PoolType, VolumeDefinition, WipeAlgorithm } from '../../../libs/proto/cistern/v1/storage.js';
import type { BackendOperation, PoolContext, StorageBackend } from '../../../libs/backends/backend.js';
import { dispatch } from '../../../services/agent/agent.js';
import { inProcessAgent } from '../../support/agent-context.js';

/** qcow2 "images" in memory; every probe (refreshVol, refreshPool) reads the image's cluster size. */
class Qcow2Backend implements StorageBackend {
  readonly type = PoolType.POOL_TYPE_DIR;
  readonly operations: ReadonlySet<BackendOperation> = new Set<BackendOperation>(['refreshPool', 'createVol', 'buildVol', 'buildVolFrom', 'resizeVol', 'wipeVol']);
  readonly poolFormats = [];
  readonly defaultPoolFormat = '';
  readonly volumeFormats = ['qcow2'];
  readonly defaultVolumeFormat = 'qcow2';
  images = new Map<string, { capacity: bigint; clusterSize: bigint }>();
  probe(name: string): VolumeDefinition {
    const img = this.images.get(name)!;
    return VolumeDefinition.fromPartial({ name, key: `/p/${name}`, capacity: img.capacity, allocation: 196608n, target: { path: `/p/${name}`, format: 'qcow2', clusterSize: img.clusterSize } });
  }
  async refreshPool(_ctx: PoolContext) {
    return { runtime: { capacity: 1n << 30n, allocation: 0n, available: 1n << 30n }, volumes: [...this.images.keys()].map((n) => this.probe(n)) };
  }
  async refreshVol(_ctx: PoolContext, v: VolumeDefinition) {
    return this.probe(v.name);
  }
  async createVol(_ctx: PoolContext, v: VolumeDefinition) {
    return { ...v, key: `/p/${v.name}`, target: { ...v.target!, path: `/p/${v.name}` } };
  }
  async buildVol(_ctx: PoolContext, v: VolumeDefinition) {
    // qemu-img create: 64 KiB clusters unless cluster_size is given
    this.images.set(v.name, { capacity: v.capacity ?? 0n, clusterSize: v.target?.clusterSize || 65536n });
  }
  async buildVolFrom(ctx: PoolContext, v: VolumeDefinition) {
    await this.buildVol(ctx, v);
  }
  async resizeVol(_ctx: PoolContext, v: VolumeDefinition, capacity: bigint) {
    this.images.get(v.name)!.capacity = capacity;
  }
  async wipeVol() {}
}

function setup() {
  const backend = new Qcow2Backend();
  const { ctx, events } = inProcessAgent({ runner: { run: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, backend });
  const pool = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'p', target: { path: '/p' } });
  const call = (op: AgentRequest['op']) => {
    const req = AgentRequest.fromPartial({ principal: 'alice', requestId: '', pool });
    req.op = op;
    return dispatch(ctx, op!.$case, req);
  };
  const clusterSize = (name: string) => ctx.state.getPool('p')!.volumes.get(name)?.definition.target?.clusterSize;
  const create = (name: string, clusterSize = 0n) =>
    call({
      $case: 'createVolume',
      value: { parent: 'hosts/h/pools/p', definition: VolumeDefinition.fromPartial({ name, capacity: 1n << 20n, target: { format: 'qcow2', clusterSize } }), xml: '', preallocMetadata: false, requestId: '', validate: false },
    });
  return { backend, events, call, clusterSize, create };
}

describe('agent: a qcow2 cluster size shows once probed, as in libvirt', () => {
  it('create: not shown (0) until a pool refresh; then it is, published as a change', async () => {
    const { events, call, clusterSize, create } = setup();
    await call({ $case: 'startPool', value: { name: 'hosts/h/pools/p', build: false, buildFlags: undefined, requestId: '' } });
    const reply = await create('q.qcow2');
    expect(reply.result?.$case === 'volume' ? reply.result.value.definition?.target?.clusterSize : 'no volume').to.equal(0n);
    expect(events.at(-1)!.volumeState?.definition?.target?.clusterSize).to.equal(0n);
    expect(clusterSize('q.qcow2')).to.equal(0n);
    // the rest of the re-read is taken: sizes, key, path
    expect(events.at(-1)!.volumeState?.definition?.allocation).to.equal(196608n);

    const before = events.length;
    await call({ $case: 'refreshPool', value: { name: 'hosts/h/pools/p', requestId: '' } });
    expect(clusterSize('q.qcow2')).to.equal(65536n);
    expect(events.slice(before).map((e) => [e.kind, e.volumeState?.definition?.target?.clusterSize])).to.deep.include([EventKind.VOLUME_CHANGED, 65536n]);
  });

  it('create with a cluster size shows it at once; a clone shows what its definition carried', async () => {
    const { call, clusterSize, create } = setup();
    await call({ $case: 'startPool', value: { name: 'hosts/h/pools/p', build: false, buildFlags: undefined, requestId: '' } });
    await create('big.qcow2', 131072n);
    expect(clusterSize('big.qcow2')).to.equal(131072n);
    await create('fresh.qcow2');
    // vol-clone of a volume whose cluster size is not known yet: not known for the clone either
    await call({ $case: 'cloneVolume', value: { parent: 'hosts/h/pools/p', source: 'hosts/h/pools/p/volumes/fresh.qcow2', definition: VolumeDefinition.fromPartial({ name: 'c1.qcow2' }), xml: '', preallocMetadata: false, reflink: false, requestId: '', validate: false } });
    expect(clusterSize('c1.qcow2')).to.equal(0n);
    await call({ $case: 'cloneVolume', value: { parent: 'hosts/h/pools/p', source: 'hosts/h/pools/p/volumes/big.qcow2', definition: VolumeDefinition.fromPartial({ name: 'c2.qcow2' }), xml: '', preallocMetadata: false, reflink: false, requestId: '', validate: false } });
    expect(clusterSize('c2.qcow2')).to.equal(131072n);
  });

  it('resize keeps what was known; wipe probes the image', async () => {
    const { call, clusterSize, create } = setup();
    await call({ $case: 'startPool', value: { name: 'hosts/h/pools/p', build: false, buildFlags: undefined, requestId: '' } });
    await create('r.qcow2');
    await call({ $case: 'resizeVolume', value: { name: 'hosts/h/pools/p/volumes/r.qcow2', capacity: 2n << 20n, allocate: false, delta: false, shrink: false, requestId: '' } });
    expect(clusterSize('r.qcow2')).to.equal(0n);
    await call({ $case: 'wipeVolume', value: { name: 'hosts/h/pools/p/volumes/r.qcow2', algorithm: WipeAlgorithm.WIPE_ALGORITHM_ZERO, requestId: '' } });
    expect(clusterSize('r.qcow2')).to.equal(65536n);
    await call({ $case: 'resizeVolume', value: { name: 'hosts/h/pools/p/volumes/r.qcow2', capacity: 4n << 20n, allocate: false, delta: false, shrink: false, requestId: '' } });
    expect(clusterSize('r.qcow2')).to.equal(65536n);
  });
});
