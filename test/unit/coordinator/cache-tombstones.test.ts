// Tombstones (cache.ts header): a removed pool or volume is remembered so that an older state
// of it arriving late (an event published late, a sync built before the removal, a reply) does
// not bring it back. Pinned here: a host that removes objects and never syncs again keeps a
// bounded number of them, and the ones it forgot still refuse every older state.
import { expect } from 'chai';
import { FleetCache, type FleetCacheOptions } from '../../../services/coordinator/cache.js';
import { Event, EventKind, PoolState, Volume } from '../../../libs/proto/cistern/v1/storage.js';
import { pool, vol } from './cache-fixtures.js';

/** How many tombstones the cache holds of a host (a private field: the point of these tests is its size). */
const tombstones = (c: FleetCache, host = 'a'): number =>
  (c as unknown as { hosts: Map<string, { tombstones: Map<string, bigint> }> }).hosts.get(host)?.tombstones.size ?? 0;

let seq = 0n;
const event = (kind: EventKind, fields: Partial<Event>) => Event.fromPartial({ sequence: ++seq, kind, host: 'a', ...fields });
const bytes = (v: Volume) => Volume.encode(v).finish();

/** A cache holding pool p (revision 1); `removed` volumes created and deleted in it from revision `from`. */
function churned(removed: number, from = 100n, options: FleetCacheOptions = {}): { c: FleetCache; next: bigint } {
  const c = new FleetCache(options);
  c.applyPool('a', pool('p', 1n));
  let rev = from;
  for (let i = 0; i < removed; i++) {
    c.applyVolume('a', 'p', vol('p', `churn${i}`, rev++));
    c.removeVolume('a', 'p', `churn${i}`, rev++);
  }
  return { c, next: rev };
}

describe('coordinator fleet cache: tombstones', () => {
  it('keeps a bounded number of tombstones of a host that removes volumes and pools and never syncs again', () => {
    // 30,000 deletes; the cap is TOMBSTONES_PER_HOST (10,000), forgotten an eighth at a time
    const { c, next } = churned(30_000);
    expect(tombstones(c)).to.be.at.most(11_250);
    // the newest removals are still known as they were
    expect(c.heldRevision('a', 'p', 'churn29999')).to.equal(next - 1n);
    let rev = next;
    for (let i = 0; i < 30_000; i++) {
      c.applyPool('a', pool(`gone${i}`, rev++));
      c.applyPool('a', pool(`gone${i}`, rev++, PoolState.POOL_STATE_INACTIVE));
    }
    expect(tombstones(c)).to.be.at.most(11_250);
    expect(c.poolsOfHost('a')).to.deep.equal(['p']);
    expect(c.heldRevision('a', 'gone29999')).to.equal(rev - 1n);
    expect(c.highestRevision('a')).to.equal(rev - 1n);
  });

  it('does not bring back a deleted volume from a late event, reply or older sync once its tombstone is forgotten', () => {
    const c = new FleetCache({ tombstonesPerHost: 4 });
    c.applyPool('a', pool('p', 1n));
    c.applyEvent(event(EventKind.VOLUME_CREATED, { pool: 'p', volume: 'v', volumeState: vol('p', 'v', 11n) }));
    c.applyEvent(event(EventKind.VOLUME_CHANGED, { pool: 'p', volume: 'v', volumeState: vol('p', 'v', 12n, 2n) }));
    c.applyEvent(event(EventKind.VOLUME_DELETED, { pool: 'p', volume: 'v', volumeState: vol('p', 'v', 30n) }));
    let rev = 40n;
    for (let i = 0; i < 10; i++) {
      c.applyVolume('a', 'p', vol('p', `w${i}`, rev++));
      c.removeVolume('a', 'p', `w${i}`, rev++);
    }
    expect(tombstones(c)).to.be.at.most(4);
    // its older states, late: a rescan's event published after the delete's, a reply, bytes
    c.applyEvent(event(EventKind.VOLUME_CHANGED, { pool: 'p', volume: 'v', volumeState: vol('p', 'v', 12n, 2n) }));
    expect(c.applyVolume('a', 'p', vol('p', 'v', 29n))).to.equal(false);
    expect(c.applyVolumeBytes('a', 'p', bytes(vol('p', 'v', 11n)))).to.equal(false);
    expect(c.volume('a', 'p', 'v')).to.equal(undefined);
    // a full sync built before the delete (and before the other deletes), decoded or as bytes
    c.replaceHost('a', { pools: [pool('p', 1n)], volumes: [vol('p', 'v', 12n, 2n), vol('p', 'w0', 40n)], revision: 20n });
    c.replaceHost('a', { pools: [pool('p', 1n)], volumes: [bytes(vol('p', 'v', 12n, 2n))], revision: 35n });
    expect(c.volumeNames('a', 'p')).to.deep.equal([]);
    expect(c.heldRevision('a', 'p', 'v') >= 30n).to.equal(true);
    // and its deletion again, late: nothing to do
    c.removeVolume('a', 'p', 'v', 30n);
    expect(c.volume('a', 'p', 'v')).to.equal(undefined);
    // created again after every removal: taken without a sync
    c.applyVolume('a', 'p', vol('p', 'v', rev + 1n, 7n));
    expect(c.volume('a', 'p', 'v')?.definition?.capacity).to.equal(7n);
  });

  it('does not start a stopped pool again from a late state once its tombstone is forgotten', () => {
    const { c, next } = churned(0, 100n, { tombstonesPerHost: 4 });
    c.applyEvent(event(EventKind.POOL_STARTED, { pool: 'q', poolState: pool('q', 5n) }));
    c.applyVolume('a', 'q', vol('q', 'x', 6n));
    c.applyEvent(event(EventKind.POOL_STOPPED, { pool: 'q', poolState: pool('q', 50n, PoolState.POOL_STATE_INACTIVE) }));
    let rev = next;
    for (let i = 0; i < 10; i++) {
      c.applyVolume('a', 'p', vol('p', `w${i}`, rev++));
      c.removeVolume('a', 'p', `w${i}`, rev++);
    }
    c.applyEvent(event(EventKind.POOL_REFRESHED, { pool: 'q', poolState: pool('q', 7n) }));
    expect(c.applyPool('a', pool('q', 49n))).to.equal(false);
    c.replaceHost('a', { pools: [pool('p', 1n), pool('q', 5n)], volumes: [vol('q', 'x', 6n)], revision: 20n });
    expect(c.poolsOfHost('a')).to.deep.equal(['p']);
    expect(c.runtimePool('a', 'q')).to.equal(undefined);
    expect(c.heldRevision('a', 'q') >= 50n).to.equal(true);
    // started again after every removal
    c.applyPool('a', pool('q', rev + 1n));
    expect(c.runtimePool('a', 'q')?.pool.revision).to.equal(rev + 1n);
  });

  it('takes a full sync newer than the forgotten removals whole, as before any removal', () => {
    const { c, next } = churned(10, 100n, { tombstonesPerHost: 4 });
    // x: a volume whose event the cache never got (lost), older than the forgotten removals
    expect(c.applyVolume('a', 'p', vol('p', 'x', 50n))).to.equal(false);
    c.replaceHost('a', { pools: [pool('p', 1n)], volumes: [vol('p', 'x', 50n), vol('p', 'y', next + 1n)], revision: next + 2n });
    expect(c.volumeNames('a', 'p')).to.deep.equal(['x', 'y']);
    expect(tombstones(c)).to.equal(0);
    // what the sync did not hold counts removed at the sync's revision: an older state of it is
    // refused, a newer one (made after the sync) taken
    expect(c.heldRevision('a', 'p', 'z')).to.equal(next + 2n);
    expect(c.applyVolume('a', 'p', vol('p', 'z', 60n))).to.equal(false);
    expect(c.applyVolume('a', 'p', vol('p', 'z', next + 3n))).to.equal(true);
  });

  it('a state older than a full sync, of an object the sync does not hold, does not bring it back after the sync cleared its tombstone', () => {
    const c = new FleetCache();
    c.replaceHost('a', { pools: [pool('p', 1n)], volumes: [vol('p', 'v', 2n), vol('p', 'gone', 3n)], revision: 3n });
    // gone is deleted at 5; its state of 4 (published after awaits, or a reconcile event) is late
    expect(c.removeVolume('a', 'p', 'gone', 5n)).to.equal(true);
    // a sync after the removal clears its tombstone: the sync itself says what is there
    c.replaceHost('a', { pools: [pool('p', 6n)], volumes: [vol('p', 'v', 2n)], revision: 7n });
    expect(tombstones(c)).to.equal(0);
    expect(c.applyVolume('a', 'p', vol('p', 'gone', 4n))).to.equal(false);
    expect(c.applyPool('a', pool('q', 6n))).to.equal(false);
    expect(c.volumeNames('a', 'p')).to.deep.equal(['v']);
    expect(c.poolsOfHost('a')).to.deep.equal(['p']);
    // created again after the sync: taken
    expect(c.applyVolume('a', 'p', vol('p', 'gone', 8n))).to.equal(true);
    expect(c.volumeNames('a', 'p')).to.deep.equal(['gone', 'v']);
  });

  it('a full sync without a revision orders nothing: any state after it is taken', () => {
    const c = new FleetCache();
    c.replaceHost('a', { pools: [pool('p', 1n)], volumes: [vol('p', 'v', 2n)], revision: 0n });
    expect(c.heldRevision('a', 'p', 'w')).to.equal(-1n);
    expect(c.applyVolume('a', 'p', vol('p', 'w', 1n))).to.equal(true);
  });

  it('keeps the removals it forgot in the host highest revision (a new boot syncing below it lost its revisions)', () => {
    const c = new FleetCache({ tombstonesPerHost: 2 });
    c.applyPool('a', pool('p', 1n));
    // removals arriving out of revision order: the first one, the highest, is forgotten first
    c.removeVolume('a', 'p', 'x1', 100n);
    c.removeVolume('a', 'p', 'x2', 50n);
    c.removeVolume('a', 'p', 'x3', 51n);
    expect(tombstones(c)).to.equal(2);
    expect(c.highestRevision('a')).to.equal(100n);
    // a removal below the forgotten revision needs no tombstone of its own
    c.removeVolume('a', 'p', 'x4', 52n);
    expect(tombstones(c)).to.equal(2);
    expect(c.heldRevision('a', 'p', 'x4')).to.equal(100n);
  });

  it('indexes a pool synced from nothing before forgetting a tombstone: its volumes stay', () => {
    const c = new FleetCache({ tombstonesPerHost: 4 });
    c.replaceHost('a', {
      pools: [pool('p', 10n), pool('q', 10n)],
      volumes: [bytes(vol('p', 'v1', 11n)), bytes(vol('p', 'v2', 12n)), bytes(vol('p', 'v3', 13n))],
      revision: 20n,
    });
    expect(c.pendingPools('a')).to.equal(1);
    let rev = 30n;
    for (let i = 0; i < 10; i++) {
      c.applyVolume('a', 'q', vol('q', `w${i}`, rev++));
      c.removeVolume('a', 'q', `w${i}`, rev++);
    }
    expect(c.pendingPools('a')).to.equal(0);
    expect(c.volumeNames('a', 'p')).to.deep.equal(['v1', 'v2', 'v3']);
  });

  it('never holds a pool or volume that a cache keeping every tombstone does not hold (random states, removals and syncs, out of order)', () => {
    for (let seed = 1; seed <= 40; seed++) {
      let state = seed;
      // mulberry32
      const random = (n: number): number => {
        state = (state + 0x6d2b79f5) | 0;
        let t = Math.imul(state ^ (state >>> 15), 1 | state);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) % n;
      };
      const capped = new FleetCache({ tombstonesPerHost: 3 });
      const every = new FleetCache({ tombstonesPerHost: 1_000_000 });
      const both = (f: (c: FleetCache) => unknown): void => {
        f(capped);
        f(every);
      };
      const pools = ['p', 'q'];
      const names = Array.from({ length: 16 }, (_, i) => `v${i}`);
      let clock = 100n;
      // states come late by up to ~20 others
      const revision = (): bigint => (clock += 3n) - BigInt(random(60));
      both((c) => c.applyPool('a', pool('p', 1n)));
      for (let step = 0; step < 400; step++) {
        const p = pools[random(pools.length)]!;
        const v = names[random(names.length)]!;
        const r = revision();
        const op = random(40);
        if (op < 18) both((c) => c.applyVolume('a', p, vol(p, v, r)));
        else if (op < 34) both((c) => c.removeVolume('a', p, v, r));
        else if (op < 38) {
          const stopped = random(3) === 0;
          both((c) => c.applyPool('a', pool(p, r, stopped ? PoolState.POOL_STATE_INACTIVE : PoolState.POOL_STATE_RUNNING)));
        } else {
          const volumes = names.filter(() => random(2) === 0).map((n) => vol('p', n, r - BigInt(random(40))));
          const asBytes = random(2) === 0;
          both((c) => c.replaceHost('a', { pools: [pool('p', r - 45n)], volumes: asBytes ? volumes.map(bytes) : volumes, revision: r }));
        }
        // (what it holds may be older: a state refused below `forgotten` is not there to refuse an
        // older one after a sync clears it; it exists in both all the same)
        for (const name of capped.poolsOfHost('a')) {
          const where = `seed ${seed} step ${step} pool ${name}`;
          expect(every.runtimePool('a', name), where).to.not.equal(undefined);
          for (const vname of capped.volumeNames('a', name)) expect(every.hasVolume('a', name, vname), `${where} volume ${vname}`).to.equal(true);
        }
      }
      expect(tombstones(capped)).to.be.at.most(3);
    }
  });
});
