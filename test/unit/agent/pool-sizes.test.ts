// Pool sizes after a volume operation where nothing re-reads them (logical pools): libvirt's
// own accounting, the volume's allocation added on create and given back on delete.
import { expect } from 'chai';
import { accountedPoolSizes } from '../../../services/agent/pool-sizes.js';

describe('agent pool sizes: libvirt accounting after a volume operation', () => {
  const last = { capacity: 100n, allocation: 40n, available: 60n, devices: [] };

  it('a delete gives the allocation back, a create takes it; capacity and other runtime data stay', () => {
    expect(accountedPoolSizes(last, -15n)).to.deep.equal({ capacity: 100n, allocation: 25n, available: 75n, devices: [] });
    expect(accountedPoolSizes(last, 15n)).to.deep.equal({ capacity: 100n, allocation: 55n, available: 45n, devices: [] });
    expect(accountedPoolSizes(last, 0n)).to.equal(last);
  });

  it('stays within 0..capacity when the known sizes were off (an LV made outside the pool)', () => {
    expect(accountedPoolSizes(last, -50n)).to.include({ allocation: 0n, available: 100n });
    expect(accountedPoolSizes(last, 70n)).to.include({ allocation: 100n, available: 0n });
  });
});
