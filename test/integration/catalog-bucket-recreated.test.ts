// The catalog bucket deleted and made again under a running coordinator (an operator's
// `nats kv rm` + a restore, or a nats-server that lost its store). Its revisions start again at
// 1: the coordinator's watch, recreated by the client library at the revision it had reached,
// would skip every entry of the new bucket up to there and keep the old bucket's pools in its
// cache for good. The coordinator notices and starts again on the new bucket, as it does for
// the event stream (stream-identity.ts).
import { expect } from 'chai';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { registerCleanup, useStack, waitFor } from '../support/index.js';
import { Catalog } from '../../libs/bus/catalog.js';
import { CATALOG_BUCKET } from '../../libs/bus/subjects.js';
import { CatalogPool } from '../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType } from '../../libs/proto/cistern/v1/storage.js';

const entry = (name: string) =>
  CatalogPool.fromPartial({ definition: PoolDefinition.fromPartial({ name, type: PoolType.POOL_TYPE_DIR, target: { path: `/srv/${name}` } }), persistent: true });

describe('catalog bucket deleted and made again under a running coordinator', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'], agentArgs: ['--heartbeat-ms', '300'] });

  it('the coordinator starts again on the new bucket: its pools, not the old ones', async () => {
    const { api } = ctx.stack;
    const nc = await connect({ servers: ctx.stack.natsUrl });
    const closeNats = registerCleanup('recreated-catalog test NATS connection', () => nc.close());
    const listed = async (): Promise<string[]> => (await api.listPools({ host: 'a', types: [], pageSize: 0, pageToken: '' })).pools.map((p) => p.definition!.name).sort();
    // revisions 1-3 of the old bucket
    const old = await Catalog.open(nc);
    for (const name of ['old1', 'old2', 'old3']) await old.create('a', name, entry(name));
    await waitFor('the old pools listed', async () => ((await listed()).length === 3 ? true : undefined), { timeoutMs: 10_000, intervalMs: 100 });

    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(`KV_${CATALOG_BUCKET}`);
    // made again, as another coordinator or a restore would, with a pool at revision 1
    const fresh = await Catalog.open(nc);
    await fresh.create('a', 'fresh', entry('fresh'));

    const coordinatorLog = ctx.stack.coordinator.process;
    let last = '';
    await waitFor('the new bucket\'s pools listed', async () => ((last = (await listed().catch((e: Error) => [e.message])).join()) === 'fresh' ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 200,
      context: () => `listed: ${last}`,
    });
    expect(coordinatorLog.logs()).to.match(/the catalog bucket was (deleted|made again)/);
    expect(coordinatorLog.logs()).to.include('coordinator starting again');
    await closeNats();
  });
});
