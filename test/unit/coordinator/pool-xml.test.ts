// GetPoolXML from the cache, as libvirt's storagePoolGetXMLDesc: --inactive of a running pool
// prints its pending new definition (newDef: the catalog's, when a define changed it while the
// pool ran) with sizes 0, else the pool's own definition with the live sizes, as without
// --inactive; an inactive pool prints its stored definition.
import { expect } from 'chai';
import { Metadata } from '@grpc/grpc-js';
import { FleetCache } from '../../../services/coordinator/cache.js';
import { HostRegistry } from '../../../services/coordinator/hosts.js';
import { silentLogger } from '../../../libs/log/logger.js';
import { pendingDefinition } from '../../../services/coordinator/catalog-view.js';
import { getPoolXml } from '../../../services/coordinator/handlers/pools.js';
import type { CallContext, CoordinatorServices } from '../../../services/coordinator/context.js';
import { CatalogPool, Heartbeat } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { Pool, PoolDefinition, PoolState, PoolType } from '../../../libs/proto/cistern/v1/storage.js';

function setup() {
  const cache = new FleetCache();
  const hosts = new HostRegistry({ log: silentLogger, now: () => 1_000_000 });
  hosts.onHeartbeat(Heartbeat.fromPartial({ host: { hostId: 'a', poolTypes: [PoolType.POOL_TYPE_DIR] }, bootId: 1n, intervalMs: 1000 }));
  hosts.onSync('a', undefined);
  const svc = { cache, hosts, log: silentLogger } as unknown as CoordinatorServices;
  const ctx: CallContext = { method: 'test', principal: 'anonymous', metadata: new Metadata(), peer: 'test', signal: new AbortController().signal, log: silentLogger, requestId: '' };
  const xml = async (inactive: boolean) => (await getPoolXml(svc, ctx, { name: 'hosts/a/pools/p', inactive })).xml;
  return { cache, xml };
}

const def = (mode: number) => PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, uuid: '8f0e2a4c-1b3d-4e5f-9a7b-6c8d0e2f4a6b', target: { path: '/p', permissions: { mode, owner: -1n, group: -1n } } });
const running = (d: PoolDefinition) =>
  Pool.fromPartial({ name: 'hosts/a/pools/p', host: 'a', definition: d, state: PoolState.POOL_STATE_RUNNING, capacity: 1000n, allocation: 400n, available: 600n, revision: 1n, targetPermissions: { mode: 0o750, owner: 0n, group: 0n } });
const catalog = (d: PoolDefinition) => CatalogPool.create({ definition: d, persistent: true });

describe('GetPoolXML inactive (libvirt newDef)', () => {
  it('a running pool with no pending definition: --inactive is the live document, sizes and target permissions included', async () => {
    const { cache, xml } = setup();
    cache.applyCatalog('a', 'p', catalog(def(0o711)), 1);
    cache.applyPool('a', running(def(0o711)));
    const live = await xml(false);
    expect(live).to.contain("<capacity unit='bytes'>1000</capacity>").and.contain('<mode>0750</mode>');
    expect(await xml(true)).to.equal(live);
    expect(pendingDefinition(cache, 'a', 'p')).to.equal(undefined);
  });

  it('a transient running pool (no catalog entry): --inactive is the live document', async () => {
    const { cache, xml } = setup();
    cache.applyPool('a', running(def(0o711)));
    expect(await xml(true)).to.equal(await xml(false));
  });

  it('redefined while running: --inactive is the new definition with sizes 0; the live document is unchanged', async () => {
    const { cache, xml } = setup();
    cache.applyCatalog('a', 'p', catalog(def(0o711)), 1);
    cache.applyPool('a', running(def(0o711)));
    const live = await xml(false);
    cache.applyCatalog('a', 'p', catalog(def(0o700)), 2);
    expect(pendingDefinition(cache, 'a', 'p')?.target?.permissions?.mode).to.equal(0o700);
    const pending = await xml(true);
    expect(pending).to.contain("<capacity unit='bytes'>0</capacity>").and.contain("<available unit='bytes'>0</available>").and.contain('<mode>0700</mode>');
    expect(pending).to.not.contain('0750');
    expect(await xml(false)).to.equal(live);
  });

  it('an inactive pool: its stored definition with sizes 0, with or without --inactive', async () => {
    const { cache, xml } = setup();
    cache.applyCatalog('a', 'p', catalog(def(0o711)), 1);
    const stored = await xml(true);
    expect(stored).to.contain("<capacity unit='bytes'>0</capacity>").and.contain('<mode>0711</mode>');
    expect(await xml(false)).to.equal(stored);
  });
});
