// libvirt's storageVolResize rules as the agent applies them, before any backend runs: delta
// adds to the capacity (or, with shrink, takes from it), a smaller capacity needs the shrink
// flag, and no resize goes below what the volume already allocates.
import { expect } from 'chai';
import { resizeTarget } from '../../../services/agent/handlers/volume-ops.js';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';

const GiB = 1n << 30n;
const volume = { capacity: 10n * GiB, allocation: 4n * GiB };
const resize = (capacity: bigint, flags: { delta?: boolean; shrink?: boolean } = {}) =>
  resizeTarget(volume, { capacity, delta: flags.delta ?? false, shrink: flags.shrink ?? false });

describe('resize target (libvirt storageVolResize rules)', () => {
  it('grows to an absolute capacity, or by a delta', () => {
    expect(resize(12n * GiB)).to.equal(12n * GiB);
    expect(resize(2n * GiB, { delta: true })).to.equal(12n * GiB);
    expect(resize(10n * GiB)).to.equal(10n * GiB); // the same capacity is no change, and allowed
  });

  it('shrinks only with the flag, absolute or by a delta', () => {
    expect(() => resize(8n * GiB)).to.throw(InvalidArgumentError, /^capacity: can't shrink capacity below current capacity \(10737418240 bytes\) unless the shrink flag is given$/);
    expect(resize(8n * GiB, { shrink: true })).to.equal(8n * GiB);
    expect(resize(2n * GiB, { delta: true, shrink: true })).to.equal(8n * GiB);
  });

  it('never goes below the allocation, to its last byte, even with the shrink flag', () => {
    expect(resize(4n * GiB, { shrink: true })).to.equal(4n * GiB);
    expect(resize(6n * GiB, { delta: true, shrink: true })).to.equal(4n * GiB);
    const below = /^capacity: can't shrink capacity below existing allocation \(4294967296 bytes\)$/;
    expect(() => resize(4n * GiB - 1n, { shrink: true })).to.throw(InvalidArgumentError, below);
    expect(() => resize(6n * GiB + 1n, { delta: true, shrink: true })).to.throw(InvalidArgumentError, below);
    // a delta larger than the capacity is clamped to 0, which is still below the allocation
    expect(() => resize(20n * GiB, { delta: true, shrink: true })).to.throw(InvalidArgumentError, below);
    // without the flag, going below the allocation names the allocation: it is the harder limit
    expect(() => resize(1n * GiB)).to.throw(InvalidArgumentError, below);
  });

  it('lets an empty volume shrink to nothing', () => {
    expect(resizeTarget({ capacity: GiB, allocation: 0n }, { capacity: GiB, delta: true, shrink: true })).to.equal(0n);
  });
});
