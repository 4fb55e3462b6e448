// A refresh that fails stops its pool (libvirt's storagePoolRefresh). libvirt refuses the
// refresh itself while its pool has asynchronous jobs (a volume being built); here a refresh
// runs beside volume work (docs/bus.md, item 10), so its stop must meet that work as a StopPool
// does: refused. Stopping under a create, clone or upload left the work to finish in a pool the
// agent no longer runs, and its VOLUME_CREATED / VOLUME_UPLOADED (pool RUNNING) came after the
// refresh's POOL_STOPPED: a watcher, the coordinator's cache among them, saw the pool run again.
import { expect } from 'chai';
import { EventKind, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { NotFoundError } from '../../../libs/errors/errors.js';
import { outcomeOf } from '../../support/rejects.js';
import { REFRESH_POOL, settle, slowReadAgent } from '../../support/slow-read-backend.js';


describe('a pool refresh that fails while volume work runs (fake backend)', () => {
  it('fails with its own error, naming the work that kept the pool running; nothing is stopped', async () => {
    const { backend, ctx, events, call, holdNextBuildThenFail } = await slowReadAgent();
    backend.size = undefined;
    await call(REFRESH_POOL);
    const from = events.length;
    const finishBuild = holdNextBuildThenFail();
    const creating = outcomeOf(call({
      $case: 'createVolume',
      value: { parent: 'hosts/h/pools/p', definition: VolumeDefinition.fromPartial({ name: 'v', capacity: 7n }), xml: '', preallocMetadata: false, requestId: '', validate: false },
    }));
    await settle();
    backend.nextScanFailure = new NotFoundError("cannot read pool directory '/p': no such file or directory");
    expect(await outcomeOf(call(REFRESH_POOL))).to.equal(
      "NOT_FOUND: cannot read pool directory '/p': no such file or directory; storage pool 'p' was not stopped: it has operations in progress: create of volume 'v'",
    );
    expect(ctx.state.getPool('p'), 'the pool still runs').to.not.equal(undefined);
    finishBuild();
    expect(await creating).to.match(/cannot write '\/p\/v'/);
    expect(events.slice(from).map((e) => EventKind[e.kind])).to.not.include('POOL_STOPPED');
    // with nothing at work, a failed refresh stops the pool, as libvirt's
    backend.nextScanFailure = new NotFoundError("cannot read pool directory '/p': no such file or directory");
    expect(await outcomeOf(call(REFRESH_POOL))).to.equal("NOT_FOUND: cannot read pool directory '/p': no such file or directory");
    expect(ctx.state.getPool('p')).to.equal(undefined);
    expect(events.slice(from).map((e) => EventKind[e.kind])).to.deep.equal(['POOL_STOPPED']);
  });
});
