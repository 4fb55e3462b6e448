// The cache's pending pools are carved out of large slabs (slab-arena.ts), so a fleet's resync
// does not leave ~10,000 freed allocations in the C heap. Pinned here: views are carved from one
// slab until it is full, never overlap, start 8-byte aligned; a large request gets a buffer of
// its own; release() starts the next view on a new slab.
import { expect } from 'chai';
import { SLAB_BYTES, SlabArena } from '../../../services/coordinator/slab-arena.js';

describe('coordinator slab arena (pending pools outside the C heap)', () => {
  it('makes its slabs larger than the largest mmap threshold glibc raises itself to (32 MiB)', () => {
    expect(SLAB_BYTES).to.be.greaterThan(32 * 1024 * 1024);
  });

  it('carves views out of one slab until it is full, then starts another', () => {
    const arena = new SlabArena(1024);
    const a = arena.alloc(100);
    const b = arena.alloc(13);
    expect(arena.slabs).to.equal(1);
    expect(a.buffer).to.equal(b.buffer);
    expect(a.length).to.equal(100);
    expect(b.length).to.equal(13);
    expect(b.byteOffset - a.byteOffset).to.equal(104); // 8-byte aligned, after a
    a.fill(1);
    b.fill(2);
    expect([...a].every((x) => x === 1)).to.equal(true);
    expect(arena.filled).to.equal(104 + 16);
    // 7 x 128 bytes fill the slab to 1016 of 1024; the 8th does not fit in the rest: a new slab
    const views = Array.from({ length: 7 }, () => arena.alloc(128));
    expect(views.every((v) => v.buffer === a.buffer)).to.equal(true);
    expect(arena.filled).to.equal(1016);
    const next = arena.alloc(128);
    expect(next.buffer).to.not.equal(a.buffer);
    expect(arena.slabs).to.equal(2);
    expect(arena.filled).to.equal(128);
    for (const v of views) v.fill(3);
    expect([...a].every((x) => x === 1)).to.equal(true);
    expect([...b].every((x) => x === 2)).to.equal(true);
  });

  it('gives a request over an eighth of a slab a buffer of its own', () => {
    const arena = new SlabArena(1024);
    const small = arena.alloc(8);
    const large = arena.alloc(129);
    expect(large.length).to.equal(129);
    expect(large.buffer).to.not.equal(small.buffer);
    expect(arena.slabs).to.equal(1);
    expect(arena.filled).to.equal(8);
  });

  it('starts a new slab after release, leaving the views already handed out as they are', () => {
    const arena = new SlabArena(1024);
    const a = arena.alloc(10).fill(7);
    arena.release();
    expect(arena.filled).to.equal(0);
    const b = arena.alloc(10);
    expect(b.buffer).to.not.equal(a.buffer);
    expect(arena.slabs).to.equal(2);
    expect([...a].every((x) => x === 7)).to.equal(true);
  });
});
