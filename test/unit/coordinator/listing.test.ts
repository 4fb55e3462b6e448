// ListPools / ListVolumes against the cache: filters, stable pages, page tokens.
import { expect } from 'chai';
import { Metadata } from '@grpc/grpc-js';
import { FleetCache } from '../../../services/coordinator/cache.js';
import { HostRegistry } from '../../../services/coordinator/hosts.js';
import { silentLogger } from '../../../libs/log/logger.js';
import { listPools } from '../../../services/coordinator/handlers/pools.js';
import { listHosts } from '../../../services/coordinator/handlers/hosts.js';
import { encodePageToken, pageOf } from '../../../services/coordinator/pagination.js';
import { getVolume, listVolumes, lookupVolume } from '../../../services/coordinator/handlers/volumes.js';
import type { CallContext, CoordinatorServices } from '../../../services/coordinator/context.js';
import { CatalogPool, Heartbeat } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { ListVolumesResponse, Pool, PoolDefinition, PoolState, PoolType, Volume } from '../../../libs/proto/cistern/v1/storage.js';
import { asCisternError } from '../../../libs/errors/errors.js';
import { serializeListVolumes } from '../../../services/coordinator/list-encoding.js';
import { serializeListPools } from '../../../services/coordinator/pool-list-encoding.js';

function setup() {
  const cache = new FleetCache();
  const hosts = new HostRegistry({ log: silentLogger });
  for (const id of ['a', 'b']) {
    hosts.onHeartbeat(Heartbeat.fromPartial({ host: { hostId: id, poolTypes: [PoolType.POOL_TYPE_DIR] }, bootId: 1n, intervalMs: 60_000 }));
    hosts.onSync(id, undefined); // online once its full sync is in
  }
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
  return { cache, hosts, svc, ctx };
}

const def = (name: string, type = PoolType.POOL_TYPE_DIR) => PoolDefinition.fromPartial({ name, type, uuid: `u-${name}`, target: { path: `/p/${name}` } });

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return asCisternError(err).code;
  }
  return 'OK';
}

describe('coordinator listings', () => {
  it('filters pools like virsh pool-list and pages them in host, name order', async () => {
    const { cache, svc, ctx } = setup();
    cache.applyCatalog('b', 'p1', CatalogPool.create({ definition: def('p1'), autostart: true, persistent: true }), 1);
    cache.applyCatalog('a', 'p2', CatalogPool.create({ definition: def('p2'), persistent: true }), 2);
    cache.applyCatalog('a', 'p1', CatalogPool.create({ definition: def('p1', PoolType.POOL_TYPE_LOGICAL), persistent: true }), 3);
    cache.applyPool('a', Pool.fromPartial({ definition: def('p2'), state: PoolState.POOL_STATE_RUNNING, revision: 1n }));
    cache.applyPool('a', Pool.fromPartial({ definition: def('t'), state: PoolState.POOL_STATE_RUNNING, revision: 2n }));

    const names = (r: { pools: Pool[] }) => r.pools.map((p) => p.name);
    const base = { host: '', types: [], pageSize: 0, pageToken: '' };
    expect(names(await listPools(svc, ctx, base))).to.deep.equal(['hosts/a/pools/p1', 'hosts/a/pools/p2', 'hosts/a/pools/t', 'hosts/b/pools/p1']);
    expect(names(await listPools(svc, ctx, { ...base, active: true }))).to.deep.equal(['hosts/a/pools/p2', 'hosts/a/pools/t']);
    expect(names(await listPools(svc, ctx, { ...base, active: false }))).to.deep.equal(['hosts/a/pools/p1', 'hosts/b/pools/p1']);
    expect(names(await listPools(svc, ctx, { ...base, persistent: false }))).to.deep.equal(['hosts/a/pools/t']);
    expect(names(await listPools(svc, ctx, { ...base, autostart: true }))).to.deep.equal(['hosts/b/pools/p1']);
    expect(names(await listPools(svc, ctx, { ...base, types: [PoolType.POOL_TYPE_LOGICAL] }))).to.deep.equal(['hosts/a/pools/p1']);
    expect(names(await listPools(svc, ctx, { ...base, host: 'b' }))).to.deep.equal(['hosts/b/pools/p1']);
    expect(await code(listPools(svc, ctx, { ...base, host: 'nope' }))).to.equal('NOT_FOUND');
    expect(await code(listPools(svc, ctx, { ...base, pageToken: 'garbage' }))).to.equal('INVALID_ARGUMENT');

    const seen: string[] = [];
    let token = '';
    do {
      const page = await listPools(svc, ctx, { ...base, pageSize: 3, pageToken: token });
      seen.push(...names(page));
      token = page.nextPageToken;
    } while (token);
    expect(seen).to.have.length(4);

    // a token belongs to its listing's filters: used with others it is refused, not answered
    // with a wrong (empty, final) page
    const onB = await listPools(svc, ctx, { ...base, host: 'a', pageSize: 1 });
    expect(onB.nextPageToken).to.not.equal('');
    expect(await code(listPools(svc, ctx, { ...base, host: 'b', pageToken: onB.nextPageToken }))).to.equal('INVALID_ARGUMENT');
    expect(await code(listPools(svc, ctx, { ...base, host: 'a', active: true, pageToken: onB.nextPageToken }))).to.equal('INVALID_ARGUMENT');
    expect(await code(listPools(svc, ctx, { ...base, host: 'a', types: [PoolType.POOL_TYPE_LOGICAL], pageToken: onB.nextPageToken }))).to.equal('INVALID_ARGUMENT');
    // the same filters (types in any order) take it; a page size may change
    const typed = await listPools(svc, ctx, { ...base, types: [PoolType.POOL_TYPE_LOGICAL, PoolType.POOL_TYPE_DIR], pageSize: 1 });
    const rest = await listPools(svc, ctx, { ...base, types: [PoolType.POOL_TYPE_DIR, PoolType.POOL_TYPE_LOGICAL], pageSize: 10, pageToken: typed.nextPageToken });
    expect([...names(typed), ...names(rest)]).to.deep.equal(['hosts/a/pools/p1', 'hosts/a/pools/p2', 'hosts/a/pools/t', 'hosts/b/pools/p1']);
  });

  it("names a refused ListPools type by its entry, types[i], as every repeated field's entry is named", async () => {
    // WatchEvents' kinds[0], hosts[0], a definition's source.devices[0]: a client with several
    // types learns which one is wrong from the field (BadRequest, x-cistern-field) alone
    const { svc, ctx } = setup();
    for (const bad of [0, 99]) {
      let err: unknown;
      try {
        await listPools(svc, ctx, { host: '', types: [PoolType.POOL_TYPE_DIR, bad as PoolType], pageSize: 0, pageToken: '' });
      } catch (e) {
        err = e;
      }
      const refusal = asCisternError(err) as { code: string; field?: string; message: string };
      expect(refusal.code).to.equal('INVALID_ARGUMENT');
      expect(refusal.field).to.equal('types[1]');
      expect(refusal.message).to.match(new RegExp(`^types\\[1\\]: pool type ${bad} is not valid; allowed: POOL_TYPE_DIR \\(1\\)`));
    }
  });

  it('pages 10,000 volumes in name order, stable while volumes come and go', async () => {
    const { cache, svc, ctx } = setup();
    cache.applyCatalog('a', 'big', CatalogPool.create({ definition: def('big'), persistent: true }), 1);
    cache.applyPool('a', Pool.fromPartial({ definition: def('big'), state: PoolState.POOL_STATE_RUNNING, revision: 1n }));
    for (let i = 0; i < 10_000; i++) {
      const name = `vol-${String(i).padStart(5, '0')}`;
      cache.applyVolume('a', 'big', Volume.fromPartial({ name: `hosts/a/pools/big/volumes/${name}`, pool: 'big', host: 'a', revision: 2n, definition: { name, key: `/p/big/${name}`, target: { path: `/p/big/${name}` } } }));
    }
    const first = await listVolumes(svc, ctx, { parent: 'hosts/a/pools/big', pageSize: 0, pageToken: '' });
    expect(first.volumes).to.have.length(1000);
    expect(first.volumes[0]!.name).to.equal('hosts/a/pools/big/volumes/vol-00000');
    // a volume before the boundary disappears: the next page still starts right after the last one seen
    cache.removeVolume('a', 'big', 'vol-00010', 3n);
    const second = await listVolumes(svc, ctx, { parent: 'hosts/a/pools/big', pageSize: 0, pageToken: first.nextPageToken });
    expect(second.volumes[0]!.name).to.equal('hosts/a/pools/big/volumes/vol-01000');
    let total = first.volumes.length + second.volumes.length;
    let token = second.nextPageToken;
    while (token) {
      const page = await listVolumes(svc, ctx, { parent: 'hosts/a/pools/big', pageSize: 4000, pageToken: token });
      total += page.volumes.length;
      token = page.nextPageToken;
    }
    expect(total).to.equal(10_000);
    expect((await lookupVolume(svc, ctx, { host: 'a', key: '/p/big/vol-09999', path: '' })).name).to.equal('hosts/a/pools/big/volumes/vol-09999');
    expect((await lookupVolume(svc, ctx, { host: 'a', key: '', path: '/p/big/vol-00001' })).name).to.equal('hosts/a/pools/big/volumes/vol-00001');
    expect(await code(lookupVolume(svc, ctx, { host: 'a', key: '/nope', path: '' }))).to.equal('NOT_FOUND');
    // network volumes have libvirt paths that are not absolute: looked up as given
    expect(await code(lookupVolume(svc, ctx, { host: 'a', key: '', path: 'ip-127.0.0.1:3260-iscsi-iqn.x-lun-1' }))).to.equal('NOT_FOUND');
    expect(await code(lookupVolume(svc, ctx, { host: 'a', key: '', path: '/p/../etc' }))).to.equal('INVALID_ARGUMENT');
    expect(await code(lookupVolume(svc, ctx, { host: 'a', key: '', path: 'bad\npath' }))).to.equal('INVALID_ARGUMENT');
    // a token of another listing is refused
    expect(await code(listVolumes(svc, ctx, { parent: 'hosts/a/pools/other', pageSize: 0, pageToken: first.nextPageToken }))).to.equal('INVALID_ARGUMENT');
    // and so is one with junk added (base64url decoding skips it) or in standard base64
    const standard = Buffer.from(first.nextPageToken, 'base64url').toString('base64');
    for (const pageToken of [`${first.nextPageToken}!!!`, standard === first.nextPageToken ? `${standard}=` : standard]) {
      expect(await code(listVolumes(svc, ctx, { parent: 'hosts/a/pools/big', pageSize: 0, pageToken })), pageToken).to.equal('INVALID_ARGUMENT');
    }
  });

  it('keeps every page under the 4 MiB a gRPC client accepts by default: fewer items than page_size when they are big', async () => {
    const { cache, svc, ctx } = setup();
    const MiB4 = 4 * 1024 * 1024;
    const longName = (i: number) => `${String(i).padStart(5, '0')}${'v'.repeat(250)}`;
    cache.applyCatalog('a', 'long', CatalogPool.create({ definition: def('long'), persistent: true }), 1);
    cache.applyPool('a', Pool.fromPartial({ definition: def('long'), state: PoolState.POOL_STATE_RUNNING, revision: 1n }));
    for (let i = 0; i < 5000; i++) {
      const name = longName(i);
      const path = `/p/long/${name}`;
      cache.applyVolume('a', 'long', Volume.fromPartial({ name: `hosts/a/pools/long/volumes/${name}`, pool: 'long', host: 'a', revision: 2n, definition: { name, key: path, target: { path } } }));
    }
    const seen: string[] = [];
    let token = '';
    let pages = 0;
    do {
      const page = await listVolumes(svc, ctx, { parent: 'hosts/a/pools/long', pageSize: 10_000, pageToken: token });
      expect(serializeListVolumes(page).length).to.be.at.most(MiB4);
      seen.push(...page.volumes.map((v) => v.definition!.name));
      token = page.nextPageToken;
      pages++;
    } while (token);
    expect(pages).to.be.greaterThan(1);
    expect(seen).to.deep.equal(Array.from({ length: 5000 }, (_, i) => longName(i)));

    for (let i = 0; i < 3000; i++) {
      const name = `${String(i).padStart(4, '0')}${'p'.repeat(251)}`;
      cache.applyCatalog('b', name, CatalogPool.create({ definition: PoolDefinition.fromPartial({ name, type: PoolType.POOL_TYPE_DIR, target: { path: `/p/${'d'.repeat(1000)}/${name}` } }), persistent: true }), 10 + i);
    }
    let pools = 0;
    token = '';
    pages = 0;
    do {
      const page = await listPools(svc, ctx, { host: 'b', types: [], pageSize: 10_000, pageToken: token });
      expect(serializeListPools(page).length).to.be.at.most(MiB4);
      pools += page.pools.length;
      token = page.nextPageToken;
      pages++;
    } while (token);
    expect([pools, pages > 1]).to.deep.equal([3000, true]);
  });

  it('pages hosts (and any short listing) in key order with tokens of their own', async () => {
    const { svc, ctx } = setup();
    const first = await listHosts(svc, ctx, { pageSize: 1, pageToken: '' });
    expect(first.hosts.map((h) => h.hostId)).to.deep.equal(['a']);
    const second = await listHosts(svc, ctx, { pageSize: 1, pageToken: first.nextPageToken });
    expect([second.hosts.map((h) => h.hostId), second.nextPageToken]).to.deep.equal([['b'], '']);
    expect((await listHosts(svc, ctx, { pageSize: 0, pageToken: '' })).hosts).to.have.length(2);
    expect(await code(listHosts(svc, ctx, { pageSize: -1, pageToken: '' }))).to.equal('INVALID_ARGUMENT');
    expect(await code(listHosts(svc, ctx, { pageSize: 0, pageToken: 'garbage' }))).to.equal('INVALID_ARGUMENT');
    const volumesToken = encodePageToken('volumes:a/p', ['x']);
    expect(await code(listHosts(svc, ctx, { pageSize: 0, pageToken: volumesToken }))).to.equal('INVALID_ARGUMENT');

    const uuids = Array.from({ length: 25 }, (_, i) => `0000000${String(i).padStart(2, '0')}-0000-4000-8000-000000000000`);
    const seen: string[] = [];
    let token = '';
    do {
      const page = pageOf(uuids, (u) => u, { pageSize: 10, pageToken: token }, 'secrets');
      seen.push(...page.items);
      token = page.nextPageToken;
    } while (token);
    expect(seen).to.deep.equal(uuids);
  });

  it('gives at most 10,000 items for a larger page_size, with a token for the rest', () => {
    const keys = Array.from({ length: 10_001 }, (_, i) => `k-${String(i).padStart(5, '0')}`);
    const first = pageOf(keys, (k) => k, { pageSize: 50_000, pageToken: '' }, 'secrets');
    expect(first.items).to.have.length(10_000);
    expect(first.nextPageToken).to.not.equal('');
    const rest = pageOf(keys, (k) => k, { pageSize: 50_000, pageToken: first.nextPageToken }, 'secrets');
    expect([rest.items, rest.nextPageToken]).to.deep.equal([['k-10000'], '']);
  });

  it('refuses a page token whose key parts are not strings: INVALID_ARGUMENT', () => {
    for (const key of [5, null, ['x'], { k: 'x' }]) {
      const pageToken = Buffer.from(JSON.stringify(['secrets', key]), 'utf8').toString('base64url');
      let refused: unknown;
      try {
        pageOf(['a', 'b'], (k) => k, { pageSize: 0, pageToken }, 'secrets');
      } catch (err) {
        refused = err;
      }
      expect(refused, JSON.stringify(key)).to.not.equal(undefined);
      expect(asCisternError(refused).code).to.equal('INVALID_ARGUMENT');
      expect(asCisternError(refused).message).to.match(/^page_token: is not a page token of this listing/);
    }
  });

  it('answers volume reads on an inactive pool FAILED_PRECONDITION and unknown names NOT_FOUND', async () => {
    const { cache, svc, ctx } = setup();
    cache.applyCatalog('a', 'off', CatalogPool.create({ definition: def('off'), persistent: true }), 1);
    expect(await code(listVolumes(svc, ctx, { parent: 'hosts/a/pools/off', pageSize: 0, pageToken: '' }))).to.equal('FAILED_PRECONDITION');
    expect(await code(getVolume(svc, ctx, { name: 'hosts/a/pools/off/volumes/v', refresh: false }))).to.equal('FAILED_PRECONDITION');
    expect(await code(getVolume(svc, ctx, { name: 'hosts/a/pools/none/volumes/v', refresh: false }))).to.equal('NOT_FOUND');
    expect(await code(getVolume(svc, ctx, { name: 'hosts/zz/pools/none/volumes/v', refresh: false }))).to.equal('NOT_FOUND');
    expect(await code(getVolume(svc, ctx, { name: 'hosts/a/pools/../volumes/v', refresh: false }))).to.equal('INVALID_ARGUMENT');
  });

  it('marks a volume found by LookupVolume stale while this coordinator is cut off from NATS, as GetVolume and ListVolumes do', async () => {
    const { cache, hosts, svc, ctx } = setup();
    cache.applyPool('a', Pool.fromPartial({ definition: def('p'), state: PoolState.POOL_STATE_RUNNING, revision: 1n }));
    cache.applyVolume('a', 'p', Volume.fromPartial({ name: 'hosts/a/pools/p/volumes/v', pool: 'p', host: 'a', revision: 2n, definition: { name: 'v', key: '/p/p/v', target: { path: '/p/p/v' } } }));
    const lookups = async () =>
      [await lookupVolume(svc, ctx, { host: 'a', key: '/p/p/v', path: '' }), await lookupVolume(svc, ctx, { host: 'a', key: '', path: '/p/p/v' })].map((v) => v.stale);
    expect(await lookups(), 'connected').to.deep.equal([false, false]);
    // the host is online as last known, but nothing it did since is heard (docs/api.md, "Reads and their freshness")
    hosts.busDisconnected();
    expect(hosts.isOnline('a')).to.equal(true);
    const listed = ListVolumesResponse.decode(serializeListVolumes(await listVolumes(svc, ctx, { parent: 'hosts/a/pools/p', pageSize: 0, pageToken: '' })));
    expect(listed.volumes.map((v) => v.stale), 'ListVolumes').to.deep.equal([true]);
    expect(await lookups(), 'cut off').to.deep.equal([true, true]);
    hosts.busReconnected();
    expect(await lookups(), 'connected again').to.deep.equal([false, false]);
  });
});
