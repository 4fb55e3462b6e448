// What a coordinator announces when a host comes back: the differences between its
// cached view and the host's full sync, and nothing when nothing changed.
import { expect } from 'chai';
import { FleetCache } from '../../../services/coordinator/cache.js';
import { lostEventDedupeId, lostEventsReconcile, publishUntilStored, reconcileEvents } from '../../../services/coordinator/reconcile.js';
import { silentLogger } from '../../../libs/log/logger.js';
import { Event, EventKind, Pool, PoolDefinition, PoolState, PoolType, Volume } from '../../../libs/proto/cistern/v1/storage.js';

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

  it("a qcow2 cluster size the host's full probe read, shown as not known before (a create's or clone's commit), is no change; another one is", () => {
    const qcow2 = (revision: bigint, clusterSize: bigint) =>
      Volume.fromPartial({ ...vol('disk', 'sdb1', revision), definition: { ...vol('disk', 'sdb1', revision).definition!, target: { path: '/dev/sdb1', clusterSize } } });
    const c = cacheWith(pool('disk', 5n), [qcow2(5n, 0n)]);
    expect(reconcileEvents(c, 'a', { pools: [pool('disk', 9n)], volumes: [qcow2(9n, 65536n)], revision: 9n }, 's7')).to.deep.equal([]);
    const known = cacheWith(pool('disk', 5n), [qcow2(5n, 65536n)]);
    const events = reconcileEvents(known, 'a', { pools: [pool('disk', 9n)], volumes: [qcow2(9n, 4096n)], revision: 9n }, 's8');
    expect(events.map((e) => [EventKind[e.kind], e.volume])).to.deep.equal([['VOLUME_CHANGED', 'sdb1']]);
  });

  it('announces a pool that stopped while the host was away', () => {
    const c = cacheWith(pool('disk', 5n), []);
    const events = reconcileEvents(c, 'a', { pools: [], volumes: [], revision: 9n }, 's3');
    expect(events.map((e) => EventKind[e.kind])).to.deep.equal(['POOL_STOPPED']);
  });

  it("a pool that stopped while the host was away shows what the agent kept of its last run, or nothing (an agent restarted forgot it, as libvirtd's restart)", () => {
    const c = cacheWith(pool('disk', 5n, { runtimeDevices: extents(60n, 100n) }), []);
    // the agent restarted: it keeps nothing of the pool's run, and the stopped pool shows 0
    const forgotten = reconcileEvents(c, 'a', { pools: [], volumes: [], revision: 9n }, 's5')[0]!.poolState!;
    expect([forgotten.state, forgotten.capacity, forgotten.allocation, forgotten.available, forgotten.runtimeDevices]).to.deep.equal([PoolState.POOL_STATE_INACTIVE, 0n, 0n, 0n, []]);
    c.applyPool('a', forgotten);
    expect(c.stoppedPool('a', 'disk')).to.equal(undefined);
    // stopped by the agent while away (a failed refresh): its sync says what it kept
    const c2 = cacheWith(pool('disk', 5n), []);
    const kept = pool('disk', 7n, { state: PoolState.POOL_STATE_INACTIVE, capacity: 100n, allocation: 50n, available: 50n });
    const stopped = reconcileEvents(c2, 'a', { pools: [], volumes: [], revision: 9n, stoppedPools: [kept] }, 's6')[0]!.poolState!;
    expect([stopped.state, stopped.capacity, stopped.allocation, stopped.available, stopped.revision]).to.deep.equal([PoolState.POOL_STATE_INACTIVE, 100n, 50n, 50n, 9n]);
  });
});

describe('reconciliation of events the agent could not store', () => {
  const lostVolume = (kind: EventKind, v: Volume) => Event.fromPartial({ kind, host: 'a', pool: v.pool, volume: v.definition!.name, requestId: 'd-1', volumeState: v });
  const lostPool = (kind: EventKind, p: Pool) => Event.fromPartial({ kind, host: 'a', pool: p.definition!.name, poolState: p });
  const said = (events: Event[]) => events.map((e) => `${EventKind[e.kind]} ${e.pool}/${e.volume} @${(e.volumeState ?? e.poolState)?.revision}`);

  it('publishes the state the sync shows even when the cache holds it already (the reply brought it): a deletion and a creation', () => {
    // the delete's and the create's replies reached the cache, their events did not reach the stream
    const c = cacheWith(pool('disk', 7n), [vol('disk', 'sdb1', 5n), vol('disk', 'sdb2', 6n)]);
    c.removeVolume('a', 'disk', 'sdb2', 7n);
    const snapshot = { pools: [pool('disk', 7n)], volumes: [vol('disk', 'sdb1', 5n)], revision: 8n };
    expect(reconcileEvents(c, 'a', snapshot, 's1'), 'no difference with the cache').to.deep.equal([]);
    const lost = [lostVolume(EventKind.VOLUME_CREATED, vol('disk', 'sdb1', 5n)), lostVolume(EventKind.VOLUME_DELETED, { ...vol('disk', 'sdb2', 7n) })];
    const events = lostEventsReconcile(c, 'a', snapshot, lost, 's1');
    expect(said(events)).to.deep.equal(['VOLUME_CHANGED disk/sdb1 @5', 'VOLUME_DELETED disk/sdb2 @8']);
    expect(events.every((e) => e.requestId === 'reconcile-s1' && e.principal === 'coordinator')).to.equal(true);
    // the deleted volume's last state, at the sync's revision; the pool's sizes as the sync shows them
    expect(events[1]!.volumeState).to.deep.equal({ ...vol('disk', 'sdb2', 7n), revision: 8n });
    expect(events[1]!.poolState).to.deep.equal(pool('disk', 7n));
  });

  it('leaves out what the cache holds a newer state of (changed after the sync, with an event of its own)', () => {
    const c = cacheWith(pool('disk', 7n), [vol('disk', 'sdb1', 10n)]);
    c.removeVolume('a', 'disk', 'sdb3', 11n);
    const snapshot = { pools: [pool('disk', 7n)], volumes: [vol('disk', 'sdb3', 6n)], revision: 9n };
    // sdb1: deleted before the sync, created again after it; sdb3: created before the sync, deleted after it
    const lost = [lostVolume(EventKind.VOLUME_DELETED, vol('disk', 'sdb1', 8n)), lostVolume(EventKind.VOLUME_CREATED, vol('disk', 'sdb3', 6n))];
    expect(lostEventsReconcile(c, 'a', snapshot, lost, 's2')).to.deep.equal([]);
  });

  it('pools: started (again) or refreshed when the sync holds them, stopped when it does not; a volume of a pool gone says nothing', () => {
    const c = cacheWith(pool('disk', 3n), []);
    c.applyPool('a', pool('other', 3n));
    const snapshot = { pools: [pool('disk', 5n), pool('new', 6n)], volumes: [], revision: 9n };
    const lost = [
      lostPool(EventKind.POOL_STARTED, pool('new', 6n)),
      lostPool(EventKind.POOL_REFRESHED, pool('disk', 5n)),
      lostPool(EventKind.POOL_STARTED, pool('other', 4n)),
      lostVolume(EventKind.VOLUME_CREATED, vol('other', 'x', 4n)),
      lostPool(EventKind.POOL_DELETED, pool('old', 2n, { state: PoolState.POOL_STATE_INACTIVE })),
    ];
    const events = lostEventsReconcile(c, 'a', snapshot, lost, 's3');
    expect(said(events)).to.deep.equal(['POOL_STARTED new/ @6', 'POOL_REFRESHED disk/ @5', 'POOL_STOPPED other/ @9', 'POOL_DELETED old/ @2']);
    expect(events[2]!.poolState?.state).to.equal(PoolState.POOL_STATE_INACTIVE);
  });

  it('names each event by the lost event it stands for: the same lost event in a later sync gets the same duplicate id', () => {
    const c = cacheWith(pool('disk', 7n), [vol('disk', 'sdb1', 5n), vol('disk', 'sdb2', 6n)]);
    c.removeVolume('a', 'disk', 'sdb2', 7n);
    const lost = [lostVolume(EventKind.VOLUME_CREATED, vol('disk', 'sdb1', 5n)), lostVolume(EventKind.VOLUME_DELETED, { ...vol('disk', 'sdb2', 7n) })];
    // the agent sends them again in a new sync (its confirmation came too late), at a newer revision
    const first = lostEventsReconcile(c, 'a', { pools: [pool('disk', 7n)], volumes: [vol('disk', 'sdb1', 5n)], revision: 8n }, lost, 's1');
    const again = lostEventsReconcile(c, 'a', { pools: [pool('disk', 7n)], volumes: [vol('disk', 'sdb1', 5n)], revision: 12n }, lost, 's2');
    expect(said(again)).to.deep.equal(['VOLUME_CHANGED disk/sdb1 @5', 'VOLUME_DELETED disk/sdb2 @12']);
    expect(again.map((e) => e.requestId)).to.deep.equal(['reconcile-s2', 'reconcile-s2']);
    const ids = first.map(lostEventDedupeId);
    expect(again.map(lostEventDedupeId)).to.deep.equal(ids);
    expect(ids).to.deep.equal([
      `lost:a:disk:sdb1:${EventKind.VOLUME_CREATED}:5:${EventKind.VOLUME_CHANGED}`,
      `lost:a:disk:sdb2:${EventKind.VOLUME_DELETED}:7:${EventKind.VOLUME_DELETED}`,
    ]);
    // another loss of the same volume (a newer revision) is another change: another id
    const later = lostEventsReconcile(c, 'a', { pools: [pool('disk', 7n)], volumes: [vol('disk', 'sdb1', 13n)], revision: 14n }, [lostVolume(EventKind.VOLUME_RESIZED, vol('disk', 'sdb1', 13n))], 's3');
    expect(later.map(lostEventDedupeId)).to.deep.equal([`lost:a:disk:sdb1:${EventKind.VOLUME_RESIZED}:13:${EventKind.VOLUME_CHANGED}`]);
    // a lost event without a revision cannot be told from another loss: the sync's ids stand
    const bare = lostEventsReconcile(c, 'a', { pools: [pool('disk', 7n)], volumes: [], revision: 15n }, [lostPool(EventKind.POOL_REFRESHED, { ...pool('disk', 7n), revision: 0n })], 's4');
    expect(bare.map(lostEventDedupeId)).to.deep.equal([undefined]);
    // reconcile events of a returning host are not lost events: no such id
    expect(reconcileEvents(c, 'a', { pools: [], volumes: [], revision: 16n }, 's5').map(lostEventDedupeId)).to.deep.equal([undefined]);
  });

  it('publishes again while the stream refuses them, and gives up after a while', async () => {
    let attempts = 0;
    const stored = await publishUntilStored(
      async () => {
        if (++attempts < 3) throw new Error('maximum messages exceeded');
      },
      [Event.fromPartial({ host: 'a' })],
      silentLogger,
      { everyMs: 1, forMs: 1000 },
    );
    expect([stored, attempts]).to.deep.equal([true, 3]);
    const refused = await publishUntilStored(async () => Promise.reject(new Error('no')), [Event.fromPartial({ host: 'a' })], silentLogger, { everyMs: 5, forMs: 20 });
    expect(refused).to.equal(false);
  });
});
