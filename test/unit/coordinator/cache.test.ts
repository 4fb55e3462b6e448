// The coordinator's fleet cache: revision ordering between sync and events, sync
// replacement, catalog revisions, indexes, sequence waits.
import { expect } from 'chai';
import { FleetCache } from '../../../services/coordinator/cache.js';
import { poolView } from '../../../services/coordinator/catalog-view.js';
import { CatalogPool } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { def, pool, vol } from './cache-fixtures.js';
import { Event, EventKind, PoolState, Volume } from '../../../libs/proto/cistern/v1/storage.js';

const event = (seq: bigint, kind: EventKind, fields: Partial<Event>) =>
  Event.fromPartial({ sequence: seq, kind, host: 'a', ...fields });

describe('coordinator fleet cache', () => {
  it('keeps the newer state when an older one arrives later (events vs sync)', () => {
    const c = new FleetCache();
    c.applyPool('a', pool('p', 10n));
    c.applyVolume('a', 'p', vol('p', 'v', 20n, 5n));
    c.applyVolume('a', 'p', vol('p', 'v', 15n, 1n)); // older: ignored
    expect(c.volume('a', 'p', 'v')?.definition?.capacity).to.equal(5n);
    c.applyVolume('a', 'p', vol('p', 'v', 25n, 9n));
    expect(c.volume('a', 'p', 'v')?.definition?.capacity).to.equal(9n);
  });

  it('does not resurrect a deleted volume from an older sync snapshot', () => {
    const c = new FleetCache();
    c.applyPool('a', pool('p', 10n));
    c.applyVolume('a', 'p', vol('p', 'v', 11n));
    c.removeVolume('a', 'p', 'v', 30n);
    c.replaceHost('a', { pools: [pool('p', 10n)], volumes: [vol('p', 'v', 11n)], revision: 20n });
    expect(c.volume('a', 'p', 'v')).to.equal(undefined);
    // a snapshot taken after the delete that has the volume again (recreated) wins
    c.replaceHost('a', { pools: [pool('p', 10n)], volumes: [vol('p', 'v', 35n)], revision: 40n });
    expect(c.volume('a', 'p', 'v')?.revision).to.equal(35n);
  });

  it('replaces a host on sync but keeps what changed after the snapshot', () => {
    const c = new FleetCache();
    c.applyPool('a', pool('p', 10n));
    c.applyPool('a', pool('q', 12n));
    c.applyVolume('a', 'p', vol('p', 'old', 11n));
    c.applyVolume('a', 'p', vol('p', 'fresh', 50n)); // created after the snapshot
    c.replaceHost('a', { pools: [pool('p', 10n)], volumes: [vol('p', 'new', 13n)], revision: 40n });
    expect(c.runtimePool('a', 'q')).to.equal(undefined);
    expect(c.volumeNames('a', 'p')).to.deep.equal(['fresh', 'new']);
  });

  it('drops a stopped pool with its volumes and their key/path index', () => {
    const c = new FleetCache();
    c.applyPool('a', pool('p', 10n));
    c.applyVolume('a', 'p', vol('p', 'v', 11n));
    expect(c.volumeByPath('a', '/p/p/v')?.name).to.equal('hosts/a/pools/p/volumes/v');
    expect(c.volumeByKey('a', '/p/p/v')?.name).to.equal('hosts/a/pools/p/volumes/v');
    c.applyEvent(event(5n, EventKind.POOL_STOPPED, { pool: 'p', poolState: pool('p', 12n, PoolState.POOL_STATE_INACTIVE) }));
    expect(c.runtimePool('a', 'p')).to.equal(undefined);
    expect(c.volumeByPath('a', '/p/p/v')).to.equal(undefined);
    // a late start event older than the stop does not bring it back
    c.applyPool('a', pool('p', 11n));
    expect(c.runtimePool('a', 'p')).to.equal(undefined);
  });

  it('merges catalog entries with runtime state into the pool view', () => {
    const c = new FleetCache();
    c.applyCatalog('a', 'p', CatalogPool.create({ definition: def('p'), autostart: true, persistent: true }), 3);
    let view = poolView(c, 'a', 'p')!;
    expect(view.state).to.equal(PoolState.POOL_STATE_INACTIVE);
    expect(view.persistent).to.equal(true);
    expect(view.autostart).to.equal(true);
    c.applyPool('a', pool('p', 10n));
    c.applyVolume('a', 'p', vol('p', 'v', 11n));
    view = poolView(c, 'a', 'p')!;
    expect(view.state).to.equal(PoolState.POOL_STATE_RUNNING);
    expect(view.capacity).to.equal(100n);
    expect(view.volumeCount).to.equal(1);
    // a transient pool: runtime state only
    c.applyPool('a', pool('t', 13n));
    expect(poolView(c, 'a', 't')!.persistent).to.equal(false);
  });

  it('ignores catalog writes older than a deletion it has seen, but takes a re-definition', () => {
    const c = new FleetCache();
    c.applyCatalog('a', 'p', CatalogPool.create({ definition: def('p') }), 5);
    c.applyCatalog('a', 'p', undefined, 6); // undefined (deleted) at 6
    c.applyCatalog('a', 'p', CatalogPool.create({ definition: def('p') }), 5); // late watch delivery
    expect(c.catalogEntry('a', 'p')).to.equal(undefined);
    c.applyCatalog('a', 'p', CatalogPool.create({ definition: def('p'), autostart: true }), 9);
    expect(c.catalogEntry('a', 'p')?.value.autostart).to.equal(true);
    c.applyCatalog('a', 'p', undefined, 6); // the old deletion, delivered late
    expect(c.catalogEntry('a', 'p')?.revision).to.equal(9);
  });

  it('orders pools by host then name and volumes by name', () => {
    const c = new FleetCache();
    c.applyCatalog('b', 'x', CatalogPool.create({ definition: def('x') }), 1);
    c.applyCatalog('a', 'z', CatalogPool.create({ definition: def('z') }), 2);
    c.applyPool('a', pool('m', 1n));
    expect(c.poolKeys()).to.deep.equal([
      ['a', 'm'],
      ['a', 'z'],
      ['b', 'x'],
    ]);
    for (const n of ['c', 'a', 'b']) c.applyVolume('a', 'm', vol('m', n, 2n));
    expect(c.volumeNames('a', 'm')).to.deep.equal(['a', 'b', 'c']);
  });

  it('finds volumes by key and by path: key = path (files), key != path (LVs), updates and removals', () => {
    const c = new FleetCache();
    c.applyPool('a', pool('p', 10n));
    const lv = (path: string, revision: bigint) =>
      Volume.fromPartial({ name: 'hosts/a/pools/p/volumes/lv', host: 'a', pool: 'p', revision, definition: { name: 'lv', key: 'uuid-1', target: { path } } });
    c.applyVolume('a', 'p', vol('p', 'f', 11n));
    c.applyVolume('a', 'p', lv('/dev/vg/lv', 12n));
    expect(c.volumeByKey('a', '/p/p/f')?.name).to.equal('hosts/a/pools/p/volumes/f');
    expect(c.volumeByPath('a', '/p/p/f')?.name).to.equal('hosts/a/pools/p/volumes/f');
    expect(c.volumeByKey('a', 'uuid-1')?.name).to.equal('hosts/a/pools/p/volumes/lv');
    expect(c.volumeByPath('a', '/dev/vg/lv')?.name).to.equal('hosts/a/pools/p/volumes/lv');
    // a path is not a key, a key is not a path
    expect(c.volumeByKey('a', '/dev/vg/lv')).to.equal(undefined);
    expect(c.volumeByPath('a', 'uuid-1')).to.equal(undefined);
    // renamed device: the old path no longer answers
    c.applyVolume('a', 'p', lv('/dev/vg2/lv', 13n));
    expect(c.volumeByPath('a', '/dev/vg/lv')).to.equal(undefined);
    expect(c.volumeByPath('a', '/dev/vg2/lv')?.revision).to.equal(13n);
    expect(c.volumeByKey('a', 'uuid-1')?.revision).to.equal(13n);
    c.removeVolume('a', 'p', 'lv', 14n);
    c.removeVolume('a', 'p', 'f', 14n);
    for (const k of ['/p/p/f', 'uuid-1', '/dev/vg2/lv']) {
      expect(c.volumeByKey('a', k)).to.equal(undefined);
      expect(c.volumeByPath('a', k)).to.equal(undefined);
    }
    expect(c.hasVolume('a', 'p', 'f')).to.equal(false);
  });

  it('takes volumes as wire bytes exactly as it takes them decoded (events, syncs, resyncs)', () => {
    const bytes = (v: Volume) => Volume.encode(v).finish();
    const decoded = new FleetCache();
    const raw = new FleetCache();
    const lv = Volume.fromPartial({ name: 'hosts/a/pools/q/volumes/lv', host: 'a', pool: 'q', revision: 14n, definition: { name: 'lv', key: 'uuid-9', target: { path: '/dev/vg/lv' } } });
    const first = { pools: [pool('p', 10n), pool('q', 10n)], volumes: [vol('p', 'a1', 11n), vol('p', 'a2', 12n, 7n), vol('q', 'b1', 13n), lv], revision: 20n };
    decoded.replaceHost('a', first);
    raw.replaceHost('a', { ...first, volumes: first.volumes.map(bytes) });
    const later = [vol('p', 'a2', 30n, 9n), vol('p', 'a3', 31n), vol('p', 'a1', 5n, 99n) /* older: ignored */];
    for (const v of later) {
      expect(raw.applyVolumeBytes('a', 'p', bytes(v))).to.equal(decoded.applyVolume('a', 'p', v));
    }
    expect(raw.applyVolumeBytes('a', 'stopped', bytes(vol('stopped', 'x', 40n)))).to.equal(false);
    const resync = { pools: [pool('p', 10n), pool('q', 10n)], volumes: [vol('p', 'a1', 11n), vol('p', 'a3', 31n), lv], revision: 35n };
    decoded.replaceHost('a', resync);
    raw.replaceHost('a', { ...resync, volumes: resync.volumes.map(bytes) });
    for (const p of ['p', 'q']) {
      expect(raw.volumeNames('a', p)).to.deep.equal(decoded.volumeNames('a', p));
      for (const n of raw.volumeNames('a', p)) {
        expect(raw.volume('a', p, n)).to.deep.equal(decoded.volume('a', p, n));
        expect(raw.storedVolume('a', p, n)).to.equal(decoded.storedVolume('a', p, n));
      }
    }
    expect(raw.volumeNames('a', 'p')).to.deep.equal(['a1', 'a3']);
    expect(raw.volumeByKey('a', 'uuid-9')).to.deep.equal(lv);
    expect(raw.volumeByPath('a', '/p/p/a3')?.revision).to.equal(31n);
    expect(raw.volumeByPath('a', '/p/p/a2')).to.equal(undefined);
  });

  it('refuses a sync with a malformed volume before changing anything', () => {
    const c = new FleetCache();
    c.replaceHost('a', { pools: [pool('p', 10n)], volumes: [vol('p', 'v', 11n)], revision: 20n });
    const broken = Volume.encode(vol('p', 'w', 12n)).finish().subarray(0, 20);
    expect(() => c.replaceHost('a', { pools: [], volumes: [broken], revision: 30n })).to.throw();
    expect(c.volumeNames('a', 'p')).to.deep.equal(['v']);
    expect(() => c.applyVolumeBytes('a', 'p', broken)).to.throw();
    expect(c.volumeNames('a', 'p')).to.deep.equal(['v']);
  });

  it('resolves sequence waits once the event is applied, and gives up after the timeout', async () => {
    const c = new FleetCache();
    c.advance(10n);
    expect(await c.waitForSequence(9n, 10)).to.equal(true);
    const waiting = c.waitForSequence(12n, 5_000);
    c.applyEvent(event(11n, EventKind.POOL_REFRESHED, { pool: 'p' }));
    c.applyEvent(event(12n, EventKind.HOST_ONLINE, {}));
    expect(await waiting).to.equal(true);
    expect(await c.waitForSequence(100n, 10)).to.equal(false);
  });
});
