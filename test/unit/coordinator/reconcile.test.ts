// What a coordinator announces when a host comes back: the differences between its
// cached view and the host's full sync, and nothing when nothing changed.
import { expect } from 'chai';
import { FleetCache } from '../../../services/coordinator/cache.js';
import { reconcileEvents } from '../../../services/coordinator/reconcile.js';
import { EventKind, Pool, PoolDefinition, PoolState, PoolType, Volume } from '../../../libs/proto/cistern/v1/storage.js';

const def = (name: string) => PoolDefinition.fromPartial({ name, type: PoolType.POOL_TYPE_DISK, target: { path: '/dev' } });
const pool = (name: string, revision: bigint, fields: Partial<Pool> = {}) =>
  Pool.fromPartial({ name: `hosts/a/pools/${name}`, host: 'a', definition: def(name), state: PoolState.POOL_STATE_RUNNING, revision, capacity: 100n, allocation: 40n, available: 60n, ...fields });
const vol = (poolName: string, name: string, revision: bigint, capacity = 10n) =>
  Volume.fromPartial({ name: `hosts/a/pools/${poolName}/volumes/${name}`, host: 'a', pool: poolName, revision, definition: { name, capacity, target: { path: `/dev/${name}` } } });
const extents = (start: bigint, end: bigint) => [{ path: '/dev/sdb', partSeparator: 0, freeExtents: [{ start, end }] }];

function cacheWith(p: Pool, volumes: Volume[]): FleetCache {
  const c = new FleetCache();
  c.applyPool('a', p);
  for (const v of volumes) c.applyVolume('a', 'disk', v);
  return c;
}

describe('reconciliation after a host returns', () => {
  it('announces nothing when the host comes back as it left', () => {
    const c = cacheWith(pool('disk', 5n, { runtimeDevices: extents(60n, 100n) }), [vol('disk', 'sdb1', 5n)]);
    const events = reconcileEvents(c, 'a', { pools: [pool('disk', 9n, { runtimeDevices: extents(60n, 100n) })], volumes: [vol('disk', 'sdb1', 9n)], revision: 9n }, 's1');
    expect(events).to.deep.equal([]);
  });

  it('announces volumes new, changed and gone, and a pool whose sizes or free extents changed', () => {
    const c = cacheWith(pool('disk', 5n, { runtimeDevices: extents(60n, 100n) }), [vol('disk', 'sdb1', 5n), vol('disk', 'sdb2', 5n)]);
    const back = pool('disk', 9n, { allocation: 70n, available: 30n, runtimeDevices: extents(70n, 100n) });
    const events = reconcileEvents(c, 'a', { pools: [back], volumes: [vol('disk', 'sdb1', 9n, 20n), vol('disk', 'sdb3', 9n)], revision: 9n }, 's2');
    const seen = events.map((e) => [EventKind[e.kind], e.volume]);
    expect(seen).to.deep.include.members([
      ['VOLUME_DELETED', 'sdb2'],
      ['VOLUME_CHANGED', 'sdb1'],
      ['VOLUME_CHANGED', 'sdb3'],
      ['POOL_REFRESHED', ''],
    ]);
    const refreshed = events.find((e) => e.kind === EventKind.POOL_REFRESHED)!;
    expect(refreshed.poolState?.runtimeDevices[0]?.freeExtents).to.deep.equal([{ start: 70n, end: 100n }]);
    expect(events.every((e) => e.requestId === 'reconcile-s2')).to.equal(true);
  });

  it('announces the same from a sync whose volumes are wire bytes', () => {
    const bytes = (v: Volume) => Volume.encode(v).finish();
    const c = cacheWith(pool('disk', 5n, { runtimeDevices: extents(60n, 100n) }), [vol('disk', 'sdb1', 5n), vol('disk', 'sdb2', 5n), vol('disk', 'sdb4', 5n)]);
    const back = pool('disk', 9n, { runtimeDevices: extents(60n, 100n) });
    // sdb4: only its timestamps changed (not a change a user would call one)
    const touched = Volume.fromPartial({ ...vol('disk', 'sdb4', 9n), definition: { ...vol('disk', 'sdb4', 9n).definition!, target: { path: '/dev/sdb4', timestamps: { atime: '1.5' } } } });
    const volumes = [vol('disk', 'sdb1', 9n, 20n), vol('disk', 'sdb3', 9n), touched];
    const fromDecoded = reconcileEvents(c, 'a', { pools: [back], volumes, revision: 9n }, 's4', new Date(0));
    const fromBytes = reconcileEvents(c, 'a', { pools: [back], volumes: volumes.map(bytes), revision: 9n }, 's4', new Date(0));
    expect(fromBytes).to.deep.equal(fromDecoded);
    expect(fromBytes.map((e) => [EventKind[e.kind], e.volume])).to.deep.equal([
      ['VOLUME_DELETED', 'sdb2'],
      ['VOLUME_CHANGED', 'sdb1'],
      ['VOLUME_CHANGED', 'sdb3'],
    ]);
    expect(fromBytes[0]!.volumeState).to.deep.equal({ ...vol('disk', 'sdb2', 5n), revision: 9n });
    expect(fromBytes[1]!.volumeState).to.deep.equal(vol('disk', 'sdb1', 9n, 20n));
  });

  it('announces a pool that stopped while the host was away', () => {
    const c = cacheWith(pool('disk', 5n), []);
    const events = reconcileEvents(c, 'a', { pools: [], volumes: [], revision: 9n }, 's3');
    expect(events.map((e) => EventKind[e.kind])).to.deep.equal(['POOL_STOPPED']);
  });
});
