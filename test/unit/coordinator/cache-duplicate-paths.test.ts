// One path on volumes of two active pools of a host: a dir pool and an fs pool with the same
// target directory (libvirt allows it, and so does DefinePool: sourceConflict), or a dir pool
// over /dev/<vg> beside the logical pool of that VG. libvirt's storageVolLookupByPath (and
// ByKey: a file volume's key is its path) answers with a volume of the first active pool
// holding the path; while any pool holds it, a lookup by it finds one. The cache answers as
// for a shared key (cache-duplicate-keys.test.ts): the pool first by name, on every coordinator.
import { expect } from 'chai';
import { FleetCache } from '../../../services/coordinator/cache.js';
import { PoolState, Volume } from '../../../libs/proto/cistern/v1/storage.js';
import { pool } from './cache-fixtures.js';

const PATH = '/srv/shared/v2';
const at = (poolName: string, revision: bigint) =>
  Volume.fromPartial({
    name: `hosts/a/pools/${poolName}/volumes/v2`,
    host: 'a',
    pool: poolName,
    revision,
    definition: { name: 'v2', key: PATH, capacity: 1n, target: { path: PATH } },
  });

describe('coordinator fleet cache: one path on volumes of two pools of a host', () => {
  it('a pool stopped leaves the path, and the key, to the volume of the pool still active', () => {
    for (const [first, second] of [['dirp', 'fsp'], ['fsp', 'dirp']] as const) {
      const c = new FleetCache();
      c.applyPool('a', pool(first, 10n));
      c.applyPool('a', pool(second, 10n));
      c.applyVolume('a', first, at(first, 11n));
      c.applyVolume('a', second, at(second, 12n));
      c.applyPool('a', pool(second, 20n, PoolState.POOL_STATE_INACTIVE));
      expect(c.volumeByPath('a', PATH)?.pool, `${second} stopped: path`).to.equal(first);
      expect(c.volumeByKey('a', PATH)?.pool, `${second} stopped: key`).to.equal(first);
    }
  });

  it('a lookup finds the volume of the pool first by name, whatever the order they came in', () => {
    for (const order of [['dirp', 'fsp'], ['fsp', 'dirp']]) {
      const c = new FleetCache();
      for (const p of order) c.applyPool('a', pool(p, 10n));
      for (const p of order) c.applyVolume('a', p, at(p, 11n));
      expect(c.volumeByPath('a', PATH)?.pool, `path, added ${order.join(', ')}`).to.equal('dirp');
      expect(c.volumeByKey('a', PATH)?.pool, `key, added ${order.join(', ')}`).to.equal('dirp');
    }
  });

  it('a full sync keeps every holder of the path; a volume removed leaves it to the other', () => {
    const c = new FleetCache();
    c.replaceHost('a', { pools: [pool('fsp', 10n), pool('dirp', 10n)], volumes: [at('fsp', 11n), at('dirp', 12n)], revision: 20n });
    expect(c.volumeByPath('a', PATH)?.pool).to.equal('dirp');
    c.removeVolume('a', 'dirp', 'v2', 21n);
    expect(c.volumeByPath('a', PATH)?.pool).to.equal('fsp');
    expect(c.volumeByKey('a', PATH)?.pool).to.equal('fsp');
    c.removeVolume('a', 'fsp', 'v2', 22n);
    expect(c.volumeByPath('a', PATH)).to.equal(undefined);
  });
});
