// A pool refresh runs beside volume work (docs/bus.md, item 10) and reads the pool over time:
// a create, delete or resize that commits while the scan reads is newer than what the scan
// found, so the scan must not store its older view over it (a volume created meanwhile
// announced deleted, a deleted one brought back, a resize undone).
import { expect } from 'chai';
import { EventKind, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { outcomeOf } from '../../support/rejects.js';
import { REFRESH_POOL, settle, slowReadAgent } from '../../support/slow-read-backend.js';


describe('pool refresh beside volume writers (fake backend)', () => {
  it('a volume created while the scan reads stays, and is not announced deleted', async () => {
    const { backend, ctx, events, call, holdNextScan } = await slowReadAgent();
    backend.size = undefined;
    await call(REFRESH_POOL);
    const from = events.length;
    const open = holdNextScan();
    const scanning = outcomeOf(call(REFRESH_POOL));
    await settle();
    const created = await outcomeOf(call({
      $case: 'createVolume',
      value: { parent: 'hosts/h/pools/p', definition: VolumeDefinition.fromPartial({ name: 'v', capacity: 7n }), xml: '', preallocMetadata: false, requestId: '', validate: false },
    }));
    expect(created).to.equal('OK');
    open();
    expect(await scanning).to.equal('OK');
    expect(ctx.state.pools.get('p')!.volumes.get('v')?.definition.capacity).to.equal(7n);
    expect(events.slice(from).filter((e) => e.volume === 'v').map((e) => EventKind[e.kind])).to.deep.equal(['VOLUME_CREATED']);
  });

  it('a volume deleted while the scan reads stays deleted, and is not announced again', async () => {
    const { backend, ctx, events, call, holdNextScan } = await slowReadAgent();
    backend.size = 5n;
    await call(REFRESH_POOL);
    const open = holdNextScan();
    const scanning = outcomeOf(call(REFRESH_POOL));
    await settle();
    expect(await outcomeOf(call({ $case: 'deleteVolume', value: { name: 'hosts/h/pools/p/volumes/v', requestId: '' } }))).to.equal('OK');
    open();
    expect(await scanning).to.equal('OK');
    expect(ctx.state.pools.get('p')!.volumes.has('v')).to.equal(false);
    expect(events.filter((e) => e.volume === 'v').map((e) => EventKind[e.kind]).at(-1)).to.equal('VOLUME_DELETED');
  });

  it('a volume resized while the scan reads keeps its new size', async () => {
    const { backend, ctx, events, call, holdNextScan } = await slowReadAgent();
    backend.size = 5n;
    await call(REFRESH_POOL);
    const open = holdNextScan();
    const scanning = outcomeOf(call(REFRESH_POOL));
    await settle();
    const resized = await outcomeOf(call({ $case: 'resizeVolume', value: { name: 'hosts/h/pools/p/volumes/v', capacity: 9n, allocate: false, delta: false, shrink: false, requestId: '' } }));
    expect(resized).to.equal('OK');
    open();
    expect(await scanning).to.equal('OK');
    expect(ctx.state.pools.get('p')!.volumes.get('v')!.definition.capacity).to.equal(9n);
    expect(events.filter((e) => e.volume === 'v').at(-1)?.volumeState?.definition?.capacity).to.equal(9n);
  });

  // a writer that leaves the volume as it was when the scan began (created, then deleted; or a
  // create that failed and removed what it made) still came after what the scan read
  it('a volume created and deleted while the scan reads is not brought back by the scan', async () => {
    const { backend, ctx, events, call, holdNextScan, holdNextScanRead } = await slowReadAgent();
    backend.size = undefined;
    await call(REFRESH_POOL);
    const from = events.length;
    const read = holdNextScanRead();
    const apply = holdNextScan();
    const scanning = outcomeOf(call(REFRESH_POOL));
    await settle();
    const created = await outcomeOf(call({
      $case: 'createVolume',
      value: { parent: 'hosts/h/pools/p', definition: VolumeDefinition.fromPartial({ name: 'v', capacity: 7n }), xml: '', preallocMetadata: false, requestId: '', validate: false },
    }));
    expect(created).to.equal('OK');
    read(); // the scan finds 'v'
    await settle();
    expect(await outcomeOf(call({ $case: 'deleteVolume', value: { name: 'hosts/h/pools/p/volumes/v', requestId: '' } }))).to.equal('OK');
    apply();
    expect(await scanning).to.equal('OK');
    expect(ctx.state.pools.get('p')!.volumes.has('v')).to.equal(false);
    expect(events.slice(from).filter((e) => e.volume === 'v').map((e) => EventKind[e.kind])).to.deep.equal(['VOLUME_CREATED', 'VOLUME_DELETED']);
  });

  it('the file of a create that failed while the scan read is not taken for a volume', async () => {
    const { backend, ctx, events, call, holdNextScan, holdNextScanRead, holdNextBuildThenFail } = await slowReadAgent();
    backend.size = undefined;
    await call(REFRESH_POOL);
    const from = events.length;
    const read = holdNextScanRead();
    const apply = holdNextScan();
    const scanning = outcomeOf(call(REFRESH_POOL));
    await settle();
    const fail = holdNextBuildThenFail();
    const creating = outcomeOf(call({
      $case: 'createVolume',
      value: { parent: 'hosts/h/pools/p', definition: VolumeDefinition.fromPartial({ name: 'v', capacity: 7n }), xml: '', preallocMetadata: false, requestId: '', validate: false },
    }));
    await settle();
    read(); // the scan finds the file the create is writing
    await settle();
    fail();
    expect(await creating).to.match(/No space left on device/);
    apply();
    expect(await scanning).to.equal('OK');
    expect(ctx.state.pools.get('p')!.volumes.has('v')).to.equal(false);
    expect(events.slice(from).filter((e) => e.volume === 'v')).to.deep.equal([]);
  });

  it('the pool sizes a writer stored while the scan read are kept, not the scan\'s older ones', async () => {
    const { backend, ctx, call, holdNextScan } = await slowReadAgent();
    backend.size = 5n;
    await call(REFRESH_POOL);
    const open = holdNextScan();
    const scanning = outcomeOf(call(REFRESH_POOL));
    await settle();
    expect(await outcomeOf(call({ $case: 'resizeVolume', value: { name: 'hosts/h/pools/p/volumes/v', capacity: 9n, allocate: false, delta: false, shrink: false, requestId: '' } }))).to.equal('OK');
    expect(ctx.state.pools.get('p')!.runtime.allocation).to.equal(9n);
    open();
    expect(await scanning).to.equal('OK');
    expect(ctx.state.pools.get('p')!.runtime.allocation).to.equal(9n);
  });

  it('what changed on disk before the scan began is still taken', async () => {
    const { backend, ctx, call } = await slowReadAgent();
    backend.size = 5n;
    await call(REFRESH_POOL);
    backend.size = 11n;
    expect(await outcomeOf(call(REFRESH_POOL))).to.equal('OK');
    expect(ctx.state.pools.get('p')!.volumes.get('v')!.definition.capacity).to.equal(11n);
  });
});
