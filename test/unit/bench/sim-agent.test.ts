// The fleet simulator's protocol pieces (bench/fleet/sim-agent.ts), without NATS: what a
// coordinator receives from a simulated host must be what a real agent would send.
import { expect } from 'chai';
import { AgentRequest, HostSync } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { EventKind, PoolType, VolumeDefinition, type Event } from '../../../libs/proto/cistern/v1/storage.js';
import { CisternError } from '../../../libs/errors/errors.js';
import { dispatch } from '../../../services/agent/agent.js';
import { buildSyncChunks } from '../../../services/agent/sync.js';
import { prng, SimHost, simPools } from '../../../bench/fleet/sim-agent.js';

function recordingSink(): { events: Event[]; publish(e: Event): void; flush(): Promise<bigint> } {
  const events: Event[] = [];
  return { events, publish: (e) => void events.push(e), flush: async () => BigInt(events.length) };
}

const host = (pools = 4, volumes = 30) => {
  const sink = recordingSink();
  return { sink, sim: new SimHost({ index: 7, prefix: 'sim', pools, volumes, events: sink }) };
};

describe('fleet simulator (bench/fleet/sim-agent)', () => {
  it('builds the same fleet every time: host ids, pool and volume names, sizes that fit their pools', () => {
    const a = simPools(3, 5, 20);
    const b = simPools(3, 5, 20);
    expect(a.map((p) => p.volumes.map((v) => v.name))).to.deep.equal(b.map((p) => p.volumes.map((v) => v.name)));
    expect(a.map((p) => p.definition.name)).to.deep.equal(['vmstore-00', 'vmstore-01', 'vmstore-02', 'vmstore-03', 'vg-data-04']);
    expect(a[4]!.definition.type).to.equal(PoolType.POOL_TYPE_LOGICAL);
    // definitions alone (for the catalog) are the same pools
    expect(simPools(3, 5, 0).map((p) => p.definition)).to.deep.equal(a.map((p) => p.definition));
    for (const pool of a) {
      expect(new Set(pool.volumes.map((v) => v.name)).size).to.equal(20);
      const used = pool.volumes.reduce((n, v) => n + (v.allocation ?? 0n), 0n);
      expect(used <= pool.capacity).to.equal(true);
      for (const v of pool.volumes) {
        expect(v.allocation! <= v.capacity!).to.equal(true);
        expect(v.target?.path).to.match(/^\/(var\/lib\/libvirt\/vmstore-\d\d|dev\/vg-data-\d\d)\//);
      }
    }
    expect(prng(1)()).to.equal(prng(1)());
  });

  it('sends a full sync byte for byte as HostSync.encode of the agent chunks, with a fresh sync id each time', () => {
    const { sim } = host(20, 100);
    const first = sim.syncMessages('sync-1');
    const decoded = first.map((m) => HostSync.decode(m));
    expect(decoded.length).to.be.greaterThan(1);
    decoded.forEach((c, i) => {
      expect(c.syncId).to.equal('sync-1');
      expect(c.chunk).to.equal(i);
      expect(c.last).to.equal(i === decoded.length - 1);
      expect(c.host?.hostId ?? '').to.equal(i === 0 ? 'sim-0007' : '');
      expect(first[i]!.length).to.be.below(512 * 1024);
    });
    const expected = buildSyncChunks('sync-1', { host: sim.hostInfo(), ...sim.state.snapshot() });
    expect(decoded.map((c) => c.volumes.length)).to.deep.equal(expected.map((c) => c.volumes.length));
    expect(decoded.flatMap((c) => c.volumes)).to.deep.equal(expected.flatMap((c) => c.volumes));
    expect(decoded.flatMap((c) => c.pools).map((p) => p.name)).to.deep.equal(expected.flatMap((c) => c.pools).map((p) => p.name));
    expect(decoded.reduce((n, c) => n + c.volumes.length, 0)).to.equal(2000);
    const second = sim.syncMessages('sync-2').map((m) => HostSync.decode(m));
    expect(second.map((c) => c.syncId)).to.deep.equal(second.map(() => 'sync-2'));
  });

  it('serves createVolume, deleteVolume and refreshPool through the agent handlers, publishing their events', async () => {
    const { sim, sink } = host();
    const pool = [...sim.state.pools.values()][0]!.definition;
    const parent = `hosts/${sim.id}/pools/${pool.name}`;
    const create = AgentRequest.fromPartial({ pool, requestId: 'r1' });
    const definition = VolumeDefinition.fromPartial({ name: 'new-disk.qcow2', capacity: 10n * 1024n ** 3n, allocation: 0n, target: { format: 'qcow2' } });
    create.op = { $case: 'createVolume', value: { parent, definition, xml: '', preallocMetadata: false, requestId: '', validate: false } };
    const created = await dispatch(sim.ctx, 'createVolume', create);
    expect(created.result?.$case).to.equal('volume');
    expect(sink.events.map((e) => e.kind)).to.deep.equal([EventKind.VOLUME_CREATED]);
    expect(sink.events[0]!.volumeState?.definition?.target?.path).to.equal(`/var/lib/libvirt/${pool.name}/new-disk.qcow2`);
    expect(sink.events[0]!.poolState?.volumeCount).to.equal(31);

    const again = dispatch(sim.ctx, 'createVolume', create);
    const err = await again.then(() => undefined, (e: unknown) => e);
    expect((err as CisternError).code).to.equal('ALREADY_EXISTS');

    const del = AgentRequest.fromPartial({ pool, requestId: 'r2' });
    del.op = { $case: 'deleteVolume', value: { name: `${parent}/volumes/new-disk.qcow2`, requestId: '' } };
    await dispatch(sim.ctx, 'deleteVolume', del);
    expect(sink.events.at(-1)!.kind).to.equal(EventKind.VOLUME_DELETED);
    expect(sim.counts().volumes).to.equal(4 * 30);

    // a refresh after guest writes grew a volume finds exactly that change
    sim.backend.grow(pool.name, [...sim.state.pools.get(pool.name)!.volumes.keys()][0]!, 1024n * 1024n);
    const refresh = AgentRequest.fromPartial({ pool, requestId: 'r3' });
    refresh.op = { $case: 'refreshPool', value: { name: parent, requestId: '' } };
    const before = sink.events.length;
    await dispatch(sim.ctx, 'refreshPool', refresh);
    expect(sink.events.slice(before).map((e) => e.kind)).to.deep.equal([EventKind.VOLUME_CHANGED, EventKind.POOL_REFRESHED]);
  });

  it('churn publishes VOLUME_CHANGED with the volume and its pool, and the next sync carries the change', () => {
    const { sim, sink } = host();
    const before = sim.syncMessages('a').map((m) => HostSync.decode(m));
    expect(sim.churnOne(prng(9), 'fanout:0:123.5')).to.equal(true);
    const e = sink.events[0]!;
    expect(e.kind).to.equal(EventKind.VOLUME_CHANGED);
    expect(e.requestId).to.equal('fanout:0:123.5');
    expect(e.poolState?.name).to.equal(`hosts/${sim.id}/pools/${e.pool}`);
    const after = sim.syncMessages('b').map((m) => HostSync.decode(m));
    const find = (chunks: HostSync[]) => chunks.flatMap((c) => c.volumes).find((v) => v.pool === e.pool && v.definition?.name === e.volume)!;
    expect(find(after).revision > find(before).revision).to.equal(true);
    expect(find(after).definition?.allocation).to.equal(e.volumeState?.definition?.allocation);
  });
});
