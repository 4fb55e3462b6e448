// One key on two volumes of a host: the same LUN seen by two scsi pools (two HBAs, or two target
// ports zoned to two hosts), or a LUN of a scsi pool that an mpath or disk pool also lists.
// libvirt's storageVolLookupByKey answers with a volume of the first active pool holding the key;
// the cache answers with the one of the pool first by name (then the volume first by name), the
// same on every coordinator, and while any volume holds the key, a lookup by it finds one.
import { expect } from 'chai';
import { FleetCache } from '../../../services/coordinator/cache.js';
import { PoolState } from '../../../libs/proto/cistern/v1/storage.js';
import { pool, vol } from './cache-fixtures.js';

const KEY = '3600140512345678901234567890abcde';
const lun = (poolName: string, name: string, revision: bigint) => vol(poolName, name, revision, 1n, KEY);

describe('coordinator fleet cache: one key on volumes of two pools of a host', () => {
  it('a lookup by the key finds the volume of the pool first by name, whatever the order they came in', () => {
    for (const order of [['p', 'q'], ['q', 'p']]) {
      const c = new FleetCache();
      for (const p of order) c.applyPool('a', pool(p, 10n));
      for (const p of order) c.applyVolume('a', p, lun(p, 'unit:0:0:0', 11n));
      expect(c.volumeByKey('a', KEY)?.pool, `added ${order.join(', ')}`).to.equal('p');
    }
  });

  it('a pool stopped, or its volume removed, leaves the key to the volume still there', () => {
    const c = new FleetCache();
    c.applyPool('a', pool('p', 10n));
    c.applyPool('a', pool('q', 10n));
    c.applyVolume('a', 'p', lun('p', 'unit:0:0:0', 11n));
    c.applyVolume('a', 'q', lun('q', 'unit:0:0:0', 12n));
    c.applyPool('a', pool('q', 20n, PoolState.POOL_STATE_INACTIVE));
    expect(c.volumeByKey('a', KEY)?.pool, 'q stopped').to.equal('p');
    c.applyPool('a', pool('q', 21n));
    c.applyVolume('a', 'q', lun('q', 'unit:0:0:0', 22n));
    c.removeVolume('a', 'p', 'unit:0:0:0', 23n);
    expect(c.volumeByKey('a', KEY)?.pool, 'p\'s volume removed').to.equal('q');
    c.applyPool('a', pool('p', 24n, PoolState.POOL_STATE_INACTIVE));
    c.applyPool('a', pool('q', 25n, PoolState.POOL_STATE_INACTIVE));
    expect(c.volumeByKey('a', KEY), 'both stopped').to.equal(undefined);
  });

  it('a full sync keeps every holder of the key, and the lookup picks the same one', () => {
    const c = new FleetCache();
    c.replaceHost('a', { pools: [pool('q', 10n), pool('p', 10n)], volumes: [lun('q', 'unit:0:0:0', 11n), lun('p', 'unit:0:1:0', 12n), lun('p', 'unit:0:0:0', 13n)], revision: 20n });
    expect(c.volumeByKey('a', KEY)?.definition?.name).to.equal('unit:0:0:0');
    expect(c.volumeByKey('a', KEY)?.pool).to.equal('p');
    c.removeVolume('a', 'p', 'unit:0:0:0', 21n);
    expect(c.volumeByKey('a', KEY)?.definition?.name).to.equal('unit:0:1:0');
  });
});
