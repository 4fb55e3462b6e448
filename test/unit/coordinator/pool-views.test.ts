// ListPools / GetPool answers built from held views and their kept bytes are, after every kind
// of change, byte for byte what Pool.encode / ListPoolsResponse.encode of the view built now
// from the cache would give.
import { expect } from 'chai';
import { Metadata } from '@grpc/grpc-js';
import { FleetCache } from '../../../services/coordinator/cache.js';
import { HostRegistry } from '../../../services/coordinator/hosts.js';
import { silentLogger } from '../../../libs/log/logger.js';
import { poolView, poolViews } from '../../../services/coordinator/catalog-view.js';
import { getPool, listPools } from '../../../services/coordinator/handlers/pools.js';
import { serializeListPools, serializePool } from '../../../services/coordinator/pool-list-encoding.js';
import type { CallContext, CoordinatorServices } from '../../../services/coordinator/context.js';
import { CatalogPool, Heartbeat } from '../../../libs/proto/cistern/agent/v1/agent.js';
import {
  Event,
  EventKind,
  ListPoolsResponse,
  Pool,
  PoolDefinition,
  PoolState,
  PoolType,
  Volume,
  type ListPoolsRequest,
} from '../../../libs/proto/cistern/v1/storage.js';

const HEARTBEAT_MS = 1000;

function setup() {
  let clock = 1_000_000;
  const cache = new FleetCache();
  const hosts = new HostRegistry({ log: silentLogger, now: () => clock });
  const beat = (id: string): void => {
    hosts.onHeartbeat(Heartbeat.fromPartial({ host: { hostId: id, poolTypes: [PoolType.POOL_TYPE_DIR] }, bootId: 1n, intervalMs: HEARTBEAT_MS }));
    hosts.onSync(id, undefined);
  };
  for (const id of ['a', 'b']) beat(id);
  const svc = { cache, hosts, log: silentLogger } as unknown as CoordinatorServices;
  const ctx: CallContext = {
    method: 'test',
    principal: 'anonymous',
    metadata: new Metadata(),
    peer: 'test',
    signal: new AbortController().signal,
    log: silentLogger,
    requestId: '',
  };
  /** Only `keep` heartbeats for 4 intervals: the other hosts go offline. */
  const silence = (keep: string[]): void => {
    clock += 4 * HEARTBEAT_MS;
    for (const id of keep) beat(id);
    hosts.tick();
  };
  return { cache, hosts, svc, ctx, beat, silence };
}

const def = (name: string, extra: Partial<PoolDefinition> = {}) =>
  PoolDefinition.fromPartial({ name, type: PoolType.POOL_TYPE_DIR, uuid: `u-${name}`, target: { path: `/p/${name}`, permissions: { mode: 0o711, owner: 0n, group: 0n } }, ...extra });

const running = (d: PoolDefinition, revision: bigint, sizes: Partial<Pool> = {}) =>
  Pool.fromPartial({ name: `hosts/x/pools/${d.name}`, definition: d, state: PoolState.POOL_STATE_RUNNING, capacity: 1n << 40n, allocation: 1n << 30n, available: (1n << 40n) - (1n << 30n), revision, ...sizes });

const vol = (pool: string, name: string, revision: bigint) =>
  Volume.fromPartial({ name: `hosts/a/pools/${pool}/volumes/${name}`, host: 'a', pool, revision, definition: { name, capacity: 1n << 30n, target: { path: `/p/${pool}/${name}`, format: 'raw' } } });

const BASE: ListPoolsRequest = { host: '', types: [], pageSize: 0, pageToken: '' };

/**
 * Every page of a listing, each checked against the encoding of views built now by poolView
 * (never held ones); then GetPool of every listed pool the same way. Returns the pools.
 */
async function checkListing(t: ReturnType<typeof setup>, req: Partial<ListPoolsRequest> = {}): Promise<Pool[]> {
  const all: Pool[] = [];
  let pageToken = '';
  do {
    const res = await listPools(t.svc, t.ctx, { ...BASE, ...req, pageToken });
    const fresh = res.pools.map((p) => {
      const pool = p.name.slice(p.name.lastIndexOf('/') + 1);
      return poolView(t.cache, p.host, pool, t.hosts.freshness(p.host))!;
    });
    const want = Buffer.from(ListPoolsResponse.encode({ pools: fresh, nextPageToken: res.nextPageToken }).finish());
    expect(serializeListPools(res).equals(want), 'page bytes').to.equal(true);
    expect(serializeListPools(res).equals(want), 'page bytes, kept').to.equal(true);
    expect(ListPoolsResponse.decode(serializeListPools(res))).to.deep.equal({ pools: fresh, nextPageToken: res.nextPageToken });
    for (const [i, p] of res.pools.entries()) {
      const got = serializePool(await getPool(t.svc, t.ctx, { name: p.name }));
      expect(got.equals(Buffer.from(Pool.encode(fresh[i]!).finish())), `GetPool ${p.name}`).to.equal(true);
    }
    all.push(...res.pools);
    pageToken = res.nextPageToken;
  } while (pageToken);
  return all;
}

describe('pool views and their kept encodings', () => {
  it('ListPools and GetPool bytes equal a fresh encoding across catalog, runtime, volume count and host online changes', async () => {
    const t = setup();
    const { cache } = t;
    const names = (ps: Pool[]) => ps.map((p) => p.name);

    cache.applyCatalog('a', 'p1', CatalogPool.create({ definition: def('p1'), persistent: true }), 1);
    cache.applyCatalog('a', 'p2', CatalogPool.create({ definition: def('p2'), autostart: true, persistent: true }), 2);
    cache.applyCatalog('b', 'p1', CatalogPool.create({ definition: def('p1'), persistent: true }), 3);
    expect(names(await checkListing(t, { pageSize: 2 }))).to.deep.equal(['hosts/a/pools/p1', 'hosts/a/pools/p2', 'hosts/b/pools/p1']);

    // nothing changed: the same view objects, so the kept bytes serve the next listing
    const before = await checkListing(t);
    const again = await checkListing(t);
    again.forEach((p, i) => expect(p, p.name).to.equal(before[i]));

    // a pool starts (runtime state), then its volumes arrive (volume count), then its sizes change
    const d1 = def('p1');
    cache.applyPool('a', running(d1, 10n));
    let listed = await checkListing(t);
    expect(listed[0]!.state).to.equal(PoolState.POOL_STATE_RUNNING);
    expect(listed[1], 'an unchanged pool keeps its view').to.equal(before[1]);
    cache.applyVolume('a', 'p1', vol('p1', 'v1', 11n));
    cache.applyVolume('a', 'p1', vol('p1', 'v2', 12n));
    listed = await checkListing(t);
    expect(listed[0]!.volumeCount).to.equal(2);
    cache.applyEvent(Event.fromPartial({
      sequence: 1n,
      kind: EventKind.VOLUME_CREATED,
      host: 'a',
      pool: 'p1',
      volume: 'v3',
      volumeState: vol('p1', 'v3', 13n),
      poolState: running(d1, 13n, { allocation: 2n << 30n, available: (1n << 40n) - (2n << 30n), volumeCount: 3 }),
    }));
    listed = await checkListing(t);
    expect([listed[0]!.volumeCount, listed[0]!.allocation]).to.deep.equal([3, 2n << 30n]);
    cache.removeVolume('a', 'p1', 'v1', 14n);
    expect((await checkListing(t))[0]!.volumeCount).to.equal(2);

    // catalog changes: autostart, a new definition of an inactive pool
    cache.applyCatalog('a', 'p1', CatalogPool.create({ definition: d1, autostart: true, persistent: true }), 4);
    expect((await checkListing(t))[0]!.autostart).to.equal(true);
    cache.applyCatalog('a', 'p2', CatalogPool.create({ definition: def('p2', { target: { path: '/elsewhere', permissions: undefined } }), persistent: true }), 5);
    listed = await checkListing(t);
    expect([listed[1]!.definition?.target?.path, listed[1]!.autostart]).to.deep.equal(['/elsewhere', false]);

    // a transient pool appears; filters see held views too
    cache.applyPool('a', running(def('t'), 15n));
    expect(names(await checkListing(t))).to.deep.equal(['hosts/a/pools/p1', 'hosts/a/pools/p2', 'hosts/a/pools/t', 'hosts/b/pools/p1']);
    expect(names(await checkListing(t, { persistent: false }))).to.deep.equal(['hosts/a/pools/t']);
    expect(names(await checkListing(t, { active: true, pageSize: 1 }))).to.deep.equal(['hosts/a/pools/p1', 'hosts/a/pools/t']);
    expect(names(await checkListing(t, { host: 'b' }))).to.deep.equal(['hosts/b/pools/p1']);

    // host a goes offline: its pools are stale; back online: not stale
    t.silence(['b']);
    expect(t.hosts.isOnline('a')).to.equal(false);
    listed = await checkListing(t);
    expect(listed.map((p) => p.stale)).to.deep.equal([true, true, true, false]);
    t.beat('a');
    listed = await checkListing(t);
    expect(listed.map((p) => p.stale)).to.deep.equal([false, false, false, false]);

    // the pool stops (no runtime state left), the transient one stops and is gone, one is undefined
    cache.applyPool('a', { ...running(d1, 16n), state: PoolState.POOL_STATE_INACTIVE });
    cache.applyPool('a', { ...running(def('t'), 17n), state: PoolState.POOL_STATE_INACTIVE });
    cache.applyCatalog('b', 'p1', undefined, 6);
    listed = await checkListing(t);
    expect(names(listed)).to.deep.equal(['hosts/a/pools/p1', 'hosts/a/pools/p2']);
    expect([listed[0]!.state, listed[0]!.volumeCount]).to.deep.equal([PoolState.POOL_STATE_INACTIVE, 0]);
    expect(poolViews(cache).size, 'views of pools that are gone are dropped').to.equal(2);
  });

  it('a held view cannot be changed by whoever receives it', async () => {
    const t = setup();
    t.cache.applyCatalog('a', 'p1', CatalogPool.create({ definition: def('p1'), persistent: true }), 1);
    const [p] = (await listPools(t.svc, t.ctx, BASE)).pools;
    expect(() => {
      (p as { stale: boolean }).stale = true;
    }).to.throw(TypeError);
    expect(() => p!.runtimeDevices.push({} as Pool['runtimeDevices'][number])).to.throw(TypeError);
    await checkListing(t);
  });
});
