// Catalog entries written by hand into the bucket (`nats kv put cistern-catalog ...`, a bad
// restore, another tool) that are not what Cistern writes: bytes that do not decode, a pool
// entry without a definition, one whose definition names another pool, a host record that
// does not decode. Such an entry is no pool (nor host): it is left out of every read and
// logged, and the coordinators and agents go on. Before, the first undecodable entry killed
// every running coordinator (its catalog watch threw outside any handler), no coordinator
// could start while it was there, and an agent's autostart started none of its pools.
import { expect } from 'chai';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { status } from '@grpc/grpc-js';
import { connectBus } from '../../libs/bus/connect.js';
import { CATALOG_BUCKET } from '../../libs/bus/subjects.js';
import { CatalogPool } from '../../libs/proto/cistern/agent/v1/agent.js';
import { PoolState } from '../../libs/proto/cistern/v1/storage.js';
import { connectClient, promiseApi, registerCleanup, startCoordinator, useStack, useTempDir, waitFor, type StorageApi } from '../support/index.js';
import { dirPool, expectCode } from './reliability-helpers.js';

const GARBAGE = new Uint8Array([0xff, 0xff, 0xff, 0xff]);

async function poolNames(api: StorageApi): Promise<string[]> {
  const { pools } = await api.listPools({ host: '', types: [], pageSize: 0, pageToken: '' });
  return pools.map((p) => p.name);
}

describe('catalog entries that are not what Cistern writes (real processes)', function () {
  this.timeout(180_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-bad-entries-it-');

  it('are left out: the coordinators run on, a new one starts, the agent autostarts its pools', async () => {
    const { api } = ctx.stack;
    const define = (name: string) =>
      api.definePool({ host: 'a', definition: dirPool(name, join(scratch.path, name)), xml: '', requestId: '', validate: false });
    await define('auto');
    await api.buildPool({ name: 'hosts/a/pools/auto', flags: undefined, requestId: '' });
    await api.setPoolAutostart({ name: 'hosts/a/pools/auto', autostart: true, requestId: '' });
    await define('spare');

    const nc = await connectBus({ servers: ctx.stack.natsUrl, name: 'test-bad-entries' });
    registerCleanup('bad entries nats connection', () => nc.close());
    const kv = await new Kvm(nc).open(CATALOG_BUCKET);
    await kv.put('pools.a.garbage', GARBAGE);
    await kv.put('pools.a.empty', new Uint8Array(0));
    await kv.put(
      'pools.a.mismatch',
      CatalogPool.encode(CatalogPool.fromPartial({ definition: dirPool('other', join(scratch.path, 'other')), persistent: true, autostart: true })).finish(),
    );
    await kv.put('hosts.zz', GARBAGE);
    // a good entry overwritten with garbage: the pool it was is gone
    await kv.put('pools.a.spare', GARBAGE);

    // the running coordinator read them all (the last one written is gone from its view)
    await waitFor('the running coordinator to drop pool spare', async () => !(await poolNames(api)).includes('hosts/a/pools/spare'), {
      context: () => ctx.stack.logs(),
    });
    expect(ctx.stack.coordinator.process.alive, 'the running coordinator is alive').to.equal(true);
    expect(await poolNames(api)).to.deep.equal(['hosts/a/pools/auto']);
    await expectCode(api.getPool({ name: 'hosts/a/pools/garbage' }), status.NOT_FOUND);
    await expectCode(api.getPool({ name: 'hosts/a/pools/empty' }), status.NOT_FOUND);
    await expectCode(api.getPool({ name: 'hosts/a/pools/mismatch' }), status.NOT_FOUND);
    expect((await api.listHosts({ pageSize: 0, pageToken: '' })).hosts.map((h) => h.hostId)).to.deep.equal(['a']);

    // a coordinator that starts now reads them at start
    const second = await startCoordinator({ natsUrl: ctx.stack.natsUrl });
    const client2 = connectClient(second.address);
    const done = registerCleanup('second coordinator', async () => {
      client2.close();
      await second.stop();
    });
    try {
      expect(await poolNames(promiseApi(client2))).to.deep.equal(['hosts/a/pools/auto']);
    } finally {
      await done();
    }

    // the agent's autostart reads its host's entries without a coordinator
    await ctx.stack.restartAgent('a');
    const auto = await waitFor('pool auto autostarted', async () => {
      const p = await api.getPool({ name: 'hosts/a/pools/auto' });
      return p.state === PoolState.POOL_STATE_RUNNING ? p : undefined;
    });
    expect(auto.autostart).to.equal(true);
  });

  it('a DefinePool of the name replaces one, an UndefinePool removes one; a CreatePool of the name says what is wrong', async () => {
    const { api } = ctx.stack;
    const nc = await connectBus({ servers: ctx.stack.natsUrl, name: 'test-bad-entries-2' });
    registerCleanup('bad entries nats connection 2', () => nc.close());
    const kv = await new Kvm(nc).open(CATALOG_BUCKET);
    await kv.put('pools.a.fixme', GARBAGE);
    await kv.put('pools.a.dropme', GARBAGE);

    await expectCode(
      api.createPool({ host: 'a', definition: dirPool('fixme', join(scratch.path, 'fixme')), xml: '', build: true, buildFlags: undefined, requestId: '' }),
      status.FAILED_PRECONDITION,
      /key pools\.a\.fixme, revision \d+\) is not a pool definition Cistern wrote: .*do not decode/,
    );
    const defined = await api.definePool({ host: 'a', definition: dirPool('fixme', join(scratch.path, 'fixme')), xml: '', requestId: '', validate: false });
    expect(defined.persistent).to.equal(true);
    expect(await poolNames(api)).to.include('hosts/a/pools/fixme');

    await api.undefinePool({ name: 'hosts/a/pools/dropme', requestId: '' });
    expect((await kv.get('pools.a.dropme'))?.operation).to.equal('DEL');
  });
});
