// Pools that a full sync fills from nothing keep their volumes as checked bytes until first
// read (cache.ts PendingVolumes). Pinned here: such pools are really left pending, and every
// query, event and later sync gives exactly what a cache that indexed them at once gives.
import { expect } from 'chai';
import { FleetCache, type FleetCacheOptions, type SyncSnapshot } from '../../../services/coordinator/cache.js';
import { SlabArena } from '../../../services/coordinator/slab-arena.js';
import { splitHostSync } from '../../../services/coordinator/volume-wire.js';
import { HostSync } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { storeVolume } from '../../../services/coordinator/stored-volume.js';
import { PoolState, Volume } from '../../../libs/proto/cistern/v1/storage.js';
import { pool, vol as fileVol } from './cache-fixtures.js';

/** key = path, except every third volume (an LVM-like key of its own) */
const vol = (poolName: string, name: string, revision: bigint, capacity = 1n) =>
  fileVol(poolName, name, revision, capacity, name.endsWith('3') ? `key-${poolName}-${name}` : undefined);
const bytes = (v: Volume) => Volume.encode(v).finish();
const asBytes = (s: SyncSnapshot): SyncSnapshot => ({ ...s, volumes: s.volumes.map((v) => (v instanceof Uint8Array ? v : bytes(v))) });

describe('coordinator fleet cache: pools synced from nothing, indexed on first read', () => {
  it('counts a synced pool at once and indexes it on the first read of its volumes', () => {
    const c = new FleetCache();
    const snapshot = { pools: [pool('p', 10n), pool('q', 10n)], volumes: [vol('p', 'v1', 11n), vol('p', 'v2', 12n), vol('q', 'w3', 13n)], revision: 20n };
    c.replaceHost('a', asBytes(snapshot));
    expect(c.pendingPools('a')).to.equal(2);
    expect(c.runtimePool('a', 'p')?.volumeCount).to.equal(2);
    expect(c.runtimePool('a', 'q')?.volumeCount).to.equal(1);
    expect(c.volumeNames('a', 'p')).to.deep.equal(['v1', 'v2']);
    expect(c.pendingPools('a')).to.equal(1);
    expect(c.storedVolume('a', 'p', 'v2')).to.equal(storeVolume(vol('p', 'v2', 12n)));
    // a lookup by key or path looks through the whole host: every pool gets indexed
    expect(c.volumeByKey('a', 'key-q-w3')?.revision).to.equal(13n);
    expect(c.pendingPools('a')).to.equal(0);
    expect(c.runtimePool('a', 'q')?.volumeCount).to.equal(1);
  });

  it('indexes at once what it cannot keep as bytes: decoded volumes, bytes ts-proto would not write, pools with volumes or deletions', () => {
    const c = new FleetCache();
    c.replaceHost('a', { pools: [pool('p', 10n)], volumes: [vol('p', 'v1', 11n)], revision: 20n });
    expect(c.pendingPools('a')).to.equal(0);
    const unknownField = Buffer.concat([Buffer.from(bytes(vol('q', 'w1', 12n))), Buffer.from([0xf8, 0x07, 0x01])]);
    c.replaceHost('a', { pools: [pool('p', 10n), pool('q', 10n)], volumes: [bytes(vol('p', 'v1', 11n)), unknownField], revision: 21n });
    expect(c.pendingPools('a')).to.equal(0);
    expect(c.volume('a', 'q', 'w1')?.revision).to.equal(12n);
    const other = new FleetCache();
    other.applyPool('a', pool('r', 10n));
    other.removeVolume('a', 'r', 'gone', 30n);
    other.replaceHost('a', { pools: [pool('r', 10n)], volumes: [bytes(vol('r', 'gone', 25n)), bytes(vol('r', 'kept', 26n))], revision: 28n });
    expect(other.pendingPools('a')).to.equal(0);
    expect(other.volumeNames('a', 'r')).to.deep.equal(['kept']);
  });

  it('refuses a sync with a malformed volume before keeping any of it', () => {
    const c = new FleetCache();
    const broken = bytes(vol('p', 'w', 12n)).subarray(0, 20);
    expect(() => c.replaceHost('a', { pools: [pool('p', 10n)], volumes: [bytes(vol('p', 'v', 11n)), broken], revision: 20n })).to.throw();
    expect(c.runtimePool('a', 'p')).to.equal(undefined);
    expect(c.pendingPools('a')).to.equal(0);
  });

  it('drops a pending pool whole when it stops, and takes a second sync over a pending pool', () => {
    const c = new FleetCache();
    c.replaceHost('a', asBytes({ pools: [pool('p', 10n), pool('q', 10n)], volumes: [vol('p', 'v1', 11n), vol('q', 'w1', 12n)], revision: 20n }));
    c.applyPool('a', pool('q', 30n, PoolState.POOL_STATE_INACTIVE));
    expect(c.pendingPools('a')).to.equal(1);
    expect(c.volumeByPath('a', '/p/q/w1')).to.equal(undefined);
    c.replaceHost('a', asBytes({ pools: [pool('p', 10n)], volumes: [vol('p', 'v2', 33n)], revision: 35n }));
    expect(c.volumeNames('a', 'p')).to.deep.equal(['v2']);
    expect(c.volumeByPath('a', '/p/p/v1')).to.equal(undefined);
  });

  // a cache given decoded volumes indexes everything at once: the reference
  it('answers like a cache that indexed everything at once, over 300 random histories', () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const poolNames = ['p', 'q', 'r'];
    const volNames = ['v1', 'v2', 'v3', 'v4', 'v5', 'v6'];
    let withPending = 0;
    for (let history = 0; history < 300; history++) {
      const eager = new FleetCache();
      const lazy = new FleetCache();
      let revision = 10n;
      const compare = (what: string, a: unknown, b: unknown): void => {
        expect(b, `history ${history}: ${what}`).to.deep.equal(a);
      };
      const observe = (p: string, v: string): void => {
        switch (rand(6)) {
          case 0:
            return compare(`names of ${p}`, eager.volumeNames('a', p), lazy.volumeNames('a', p));
          case 1:
            return compare(`${p}/${v}`, eager.storedVolume('a', p, v), lazy.storedVolume('a', p, v));
          case 2:
            return compare(`path of ${p}/${v}`, eager.volumeByPath('a', `/p/${p}/${v}`), lazy.volumeByPath('a', `/p/${p}/${v}`));
          case 3:
            return compare(`key of ${p}/${v}`, eager.volumeByKey('a', `key-${p}-${v}`), lazy.volumeByKey('a', `key-${p}-${v}`));
          case 4:
            return compare(`has ${p}/${v}`, eager.hasVolume('a', p, v), lazy.hasVolume('a', p, v));
          default:
            return compare(`count of ${p}`, eager.runtimePool('a', p)?.volumeCount, lazy.runtimePool('a', p)?.volumeCount);
        }
      };
      let pending = 0;
      for (let step = 0; step < 25; step++) {
        const p = poolNames[rand(3)]!;
        const v = volNames[rand(6)]!;
        const op = rand(10);
        if (op < 3) {
          // a full sync: some pools, each with some volumes; sometimes older than what is held
          const pools = poolNames.filter(() => rand(4) > 0);
          const volumes = pools.flatMap((name) => volNames.filter(() => rand(2) === 0).map((vn) => vol(name, vn, revision - BigInt(rand(8)), BigInt(rand(50)))));
          const snap = { pools: pools.map((name) => pool(name, revision - BigInt(rand(3)))), volumes, revision: rand(8) === 0 ? 0n : revision - BigInt(rand(4)) };
          eager.replaceHost('a', snap);
          lazy.replaceHost('a', asBytes(snap));
        } else if (op < 6) {
          const state = vol(p, v, revision - BigInt(rand(6)), BigInt(rand(50)));
          compare(`apply ${p}/${v}`, eager.applyVolume('a', p, state), lazy.applyVolumeBytes('a', p, bytes(state)));
        } else if (op < 7) {
          const r = revision - BigInt(rand(6));
          compare(`remove ${p}/${v}`, eager.removeVolume('a', p, v, r), lazy.removeVolume('a', p, v, r));
        } else if (op < 8) {
          const state = pool(p, revision - BigInt(rand(4)), rand(2) === 0 ? PoolState.POOL_STATE_INACTIVE : PoolState.POOL_STATE_RUNNING);
          compare(`pool ${p}`, eager.applyPool('a', state), lazy.applyPool('a', state));
        } else {
          observe(p, v);
        }
        pending += lazy.pendingPools('a');
        revision += BigInt(rand(3));
      }
      for (const p of poolNames) {
        compare(`pool ${p} at the end`, eager.runtimePool('a', p)?.volumeCount, lazy.runtimePool('a', p)?.volumeCount);
        compare(`names of ${p} at the end`, eager.volumeNames('a', p), lazy.volumeNames('a', p));
        for (const v of volNames) {
          compare(`${p}/${v} at the end`, eager.storedVolume('a', p, v), lazy.storedVolume('a', p, v));
          compare(`path of ${p}/${v} at the end`, eager.volumeByPath('a', `/p/${p}/${v}`), lazy.volumeByPath('a', `/p/${p}/${v}`));
          compare(`key of ${p}/${v} at the end`, eager.volumeByKey('a', `key-${p}-${v}`), lazy.volumeByKey('a', `key-${p}-${v}`));
        }
      }
      if (pending > 0) withPending++;
    }
    // the histories did go through pending pools (else this compared two eager caches)
    expect(withPending).to.be.greaterThan(30);
  });

  it("keeps pending pools' bytes in its slab arena, one slab for many pools, and lets the slab go once none is pending", () => {
    // a fleet's resync leaves ~10,000 pools pending at once: one allocation each stayed in the
    // C heap after they were indexed (slab-arena.ts)
    const arena = new SlabArena(16 * 1024);
    const options: FleetCacheOptions & { arena: SlabArena } = { arena };
    const c = new FleetCache(options);
    const pools = ['p', 'q', 'r'];
    const volumes = pools.flatMap((p) => Array.from({ length: 10 }, (_, i) => vol(p, `v${i}`, 11n + BigInt(i))));
    c.replaceHost('a', asBytes({ pools: pools.map((p) => pool(p, 10n)), volumes, revision: 30n }));
    expect(c.pendingPools('a')).to.equal(3);
    const bytesOf = volumes.reduce((n, v) => n + bytes(v).length, 0);
    // the three pools in one slab, back to back (each view 8-byte aligned)
    expect(arena.slabs).to.equal(1);
    expect(arena.filled).to.be.within(bytesOf, bytesOf + 3 * 7);
    // read from the slab as they were sent
    expect(c.volumeNames('a', 'q')).to.deep.equal(Array.from({ length: 10 }, (_, i) => `v${i}`));
    expect(c.storedVolume('a', 'r', 'v9')).to.equal(storeVolume(vol('r', 'v9', 20n)));
    // indexed in the background: nothing pending, the slab being filled is let go
    while (c.indexPendingFor(50).more);
    expect(c.pendingPools('a')).to.equal(0);
    expect(arena.filled).to.equal(0);
    expect(c.storedVolume('a', 'p', 'v0')).to.equal(storeVolume(vol('p', 'v0', 11n)));
  });

  it('keeps a view of the sync chunk a pending pool came in, copying nothing, and copies a pool that came in pieces', () => {
    // the sync intake's chunks are its own copies (sync-intake.ts): a second copy of a fleet's
    // volumes into pool buffers doubled the memory a resync holds until its pools are indexed
    const arena = new SlabArena(64 * 1024);
    const options: FleetCacheOptions & { arena: SlabArena } = { arena };
    const c = new FleetCache(options);
    const inP = Array.from({ length: 20 }, (_, i) => vol('p', `v${i}`, 11n + BigInt(i)));
    const inQ = [vol('q', 'w1', 40n), vol('q', 'w2', 41n)];
    // p's volumes back to back in one chunk (as an agent writes them, pool by pool); q's in two chunks
    const chunk = splitHostSync(HostSync.encode(HostSync.fromPartial({ syncId: 's', volumes: [...inP, inQ[0]!] })).finish());
    const second = splitHostSync(HostSync.encode(HostSync.fromPartial({ syncId: 's', chunk: 1, volumes: [inQ[1]!] })).finish());
    c.replaceHost('a', { pools: [pool('p', 10n), pool('q', 10n)], volumes: [...chunk.volumes, ...second.volumes], revision: 50n });
    expect(c.pendingPools('a')).to.equal(2);
    const qBytes = inQ.reduce((n, v) => n + bytes(v).length, 0);
    expect(arena.filled).to.be.within(qBytes, qBytes + 7);
    expect(c.runtimePool('a', 'p')?.volumeCount).to.equal(20);
    expect(c.volumeNames('a', 'p')).to.deep.equal(inP.map((v) => v.definition!.name).sort());
    for (const v of inP) expect(c.storedVolume('a', 'p', v.definition!.name)).to.equal(storeVolume(v));
    expect(c.storedVolume('a', 'q', 'w2')).to.equal(storeVolume(inQ[1]!));
  });
});
