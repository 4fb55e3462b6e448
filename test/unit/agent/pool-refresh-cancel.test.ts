// A refresh that fails stops its pool, as libvirt's storagePoolRefresh: what the pool holds can
// no longer be read. A refresh its caller gave up on (the client cancelled, its deadline passed)
// did not fail: it was stopped part-way, and the pool is as it was. Stopping the pool then
// would stop (a transient one: remove) a running pool because a client's timeout was short or
// a user pressed Ctrl-C during `pool-refresh`.
import { expect } from 'chai';
import { EventKind } from '../../../libs/proto/cistern/v1/storage.js';
import { CisternError } from '../../../libs/errors/errors.js';
import { REFRESH_POOL, settle, slowReadAgent } from '../../support/slow-read-backend.js';

const codeOf = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'OK',
    (err: unknown) => (err as CisternError).code,
  );

describe('a pool refresh cancelled by its caller (fake backend)', () => {
  it('ends CANCELLED and leaves the pool running, its volumes as they were, with no POOL_STOPPED', async () => {
    const { backend, ctx, events, call, holdNextScan } = await slowReadAgent();
    backend.size = 5n;
    await call(REFRESH_POOL);
    const from = events.length;
    const caller = new AbortController();
    const open = holdNextScan();
    const scanning = codeOf(call(REFRESH_POOL, caller.signal));
    await settle();
    caller.abort();
    open();
    expect(await scanning).to.equal('CANCELLED');
    expect(ctx.state.getPool('p'), 'the pool still runs').to.not.equal(undefined);
    expect(ctx.state.pools.get('p')!.volumes.get('v')?.definition.capacity).to.equal(5n);
    expect(events.slice(from).map((e) => EventKind[e.kind])).to.deep.equal([]);
    // and it takes work again
    expect(await codeOf(call(REFRESH_POOL))).to.equal('OK');
  });
});
