// The statistics behind every table of the benchmarks (bench/stats.ts).
import { expect } from 'chai';
import { median, percentile } from '../../../bench/stats.js';

describe('bench statistics (bench/stats)', () => {
  it('takes the middle sample of an odd count', () => {
    expect(median([5, 1, 3])).to.equal(3);
    expect(median([7])).to.equal(7);
  });

  it('takes the mean of the two middle samples of an even count, not the lower one', () => {
    // BENCH_REPS=2 or 4: the lower middle would favour whichever side had one fast repetition
    expect(median([100, 200])).to.equal(150);
    expect(median([4, 1, 3, 2])).to.equal(2.5);
  });

  it('has no median of nothing', () => {
    expect(Number.isNaN(median([]))).to.equal(true);
  });

  it('gives nearest-rank percentiles of the latency rows', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).to.equal(50);
    expect(percentile(xs, 99)).to.equal(99);
    expect(percentile(xs, 100)).to.equal(100);
  });
});
