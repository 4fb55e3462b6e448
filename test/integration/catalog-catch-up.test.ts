// A coordinator's catch-up (catch-up.ts) waits until its catalog watch has read as far as the
// bucket's newest pool entry. Every entry under `pools.>` counts as read, a key that names no
// pool included (`pools.a.b.c`, written by hand): before, the watch skipped such a key without
// moving its watermark, so no catch-up ever finished, and every NOT_FOUND, ALREADY_EXISTS or
// FAILED_PRECONDITION a coordinator gave from its view waited out the full 2 s first.
import { expect } from 'chai';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectBus } from '../../libs/bus/connect.js';
import { Catalog } from '../../libs/bus/catalog.js';
import { ensureEventStream } from '../../libs/bus/events.js';
import { silentLogger } from '../../libs/log/logger.js';
import { CatalogPool } from '../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType } from '../../libs/proto/cistern/v1/storage.js';
import { FleetCache } from '../../services/coordinator/cache.js';
import { CatalogWatermark } from '../../services/coordinator/catalog-watermark.js';
import { feedCache } from '../../services/coordinator/cache-feed.js';
import { catchUp } from '../../services/coordinator/catch-up.js';
import type { CoordinatorServices } from '../../services/coordinator/context.js';
import { startNats, type NatsServer } from '../support/nats.js';

describe('catalog catch-up past keys that name no pool (real nats-server)', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  const stops: Array<() => Promise<void> | void> = [];

  before(async () => {
    nats = await startNats();
    nc = await connectBus({ servers: nats.url, name: 'test-catalog-catch-up' });
    await ensureEventStream(nc);
  });

  after(async () => {
    for (const stop of stops.reverse()) await stop();
    await nc?.close();
    await nats?.stop();
  });

  it('catches up past a key under pools. that is no pool key, read at start and followed after', async () => {
    const catalog = await Catalog.open(nc);
    // one at start (read by the ordered pass), as the bucket's newest pool entry
    await catalog.create('a', 'p', CatalogPool.fromPartial({ definition: PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: '/srv/p' } }) }));
    await catalog.kv.put('pools.a.b.c', new Uint8Array([1]));
    const cache = new FleetCache();
    const catalogWatermark = new CatalogWatermark();
    stops.push(...(await feedCache({ nc, cache, catalog, catalogWatermark, log: silentLogger, resyncFleet: () => undefined })));
    const svc = { nc, cache, catalog, catalogWatermark, log: silentLogger } as unknown as CoordinatorServices;
    expect(await catchUp(svc, 5_000), 'caught up past the key read at start').to.equal(true);
    // one written while the watch follows
    await catalog.kv.put('pools.b.x.y.z', new Uint8Array([2]));
    expect(await catchUp(svc, 5_000), 'caught up past the key followed').to.equal(true);
    expect(cache.catalogEntry('a', 'p')?.value.definition?.name).to.equal('p');
  });
});
