// A GetVolume refresh (vol-info, vol-dumpxml) is a read: as in libvirt, where
// storageVolGetInfoFlags takes no volume in_use count, a delete, a resize or a pool stop that
// comes while it reads goes ahead rather than failing because of it (a dashboard polling
// vol-info must not make an operator's vol-delete fail ABORTED). What the read found is then
// not stored over what the writer left.
import { expect } from 'chai';
import { EventKind } from '../../../libs/proto/cistern/v1/storage.js';
import { outcomeOf } from '../../support/rejects.js';
import { settle, slowReadAgent } from '../../support/slow-read-backend.js';


describe('GetVolume refresh beside writers (fake backend)', () => {
  it('a delete while a re-read runs deletes; the re-read answers NOT_FOUND and stores nothing', async () => {
    const { backend, ctx, events, call, reread, holdNextRead } = await slowReadAgent();
    backend.size = 5n;
    const open = holdNextRead();
    const reading = outcomeOf(call(reread));
    await settle();
    expect(await outcomeOf(call({ $case: 'deleteVolume', value: { name: 'hosts/h/pools/p/volumes/v', requestId: '' } }))).to.equal('OK');
    open();
    expect(await reading).to.match(/^NOT_FOUND/);
    expect(ctx.state.pools.get('p')!.volumes.has('v')).to.equal(false);
    expect(events.filter((e) => e.volume === 'v').map((e) => EventKind[e.kind]).at(-1)).to.equal('VOLUME_DELETED');
  });

  it('a resize while a re-read runs resizes; the older read does not put the old size back', async () => {
    const { backend, ctx, call, reread, capacityOf, holdNextRead } = await slowReadAgent();
    backend.size = 5n;
    const open = holdNextRead();
    const reading = call(reread);
    await settle();
    const resized = await outcomeOf(call({ $case: 'resizeVolume', value: { name: 'hosts/h/pools/p/volumes/v', capacity: 9n, allocate: false, delta: false, shrink: false, requestId: '' } }));
    expect(resized).to.equal('OK');
    open();
    expect(capacityOf(await reading)).to.equal(9n);
    expect(ctx.state.pools.get('p')!.volumes.get('v')!.definition.capacity).to.equal(9n);
  });

  it('a pool stop while a re-read runs stops the pool; the re-read answers the pool is not active', async () => {
    const { backend, ctx, call, reread, holdNextRead } = await slowReadAgent();
    backend.size = 5n;
    const open = holdNextRead();
    const reading = outcomeOf(call(reread));
    await settle();
    expect(await outcomeOf(call({ $case: 'stopPool', value: { name: 'hosts/h/pools/p', requestId: '' } }))).to.equal('OK');
    open();
    expect(await reading).to.equal("FAILED_PRECONDITION: storage pool 'p' is not active");
    expect(ctx.state.getPool('p')).to.equal(undefined);
  });
});
