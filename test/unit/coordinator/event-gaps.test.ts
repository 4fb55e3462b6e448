// Gaps in what the coordinator's cache reader was delivered, and the fleet resync they cause:
// every jump is reported once with the sequences skipped; asks are coalesced but never sent
// before the gap they cover.
import { expect } from 'chai';
import { GapResync, SequenceGaps, type SequenceGap } from '../../../services/coordinator/event-gaps.js';

describe('SequenceGaps', () => {
  it('reports each jump past the next sequence with the last one delivered before it, and nothing for consecutive ones', () => {
    const gaps: SequenceGap[] = [];
    const s = new SequenceGaps(10n, (g) => gaps.push(g));
    for (const seq of [10n, 11n, 15n, 16n, 17n, 40n]) s.delivered(seq);
    expect(gaps).to.deep.equal([
      { after: 11n, next: 15n },
      { after: 17n, next: 40n },
    ]);
  });

  it('a first sequence past the start is a gap too (removed before the reader got there); a start of 0 means 1', () => {
    const gaps: SequenceGap[] = [];
    new SequenceGaps(5n, (g) => gaps.push(g)).delivered(9n);
    new SequenceGaps(0n, (g) => gaps.push(g)).delivered(1n);
    expect(gaps).to.deep.equal([{ after: 4n, next: 9n }]);
  });
});

describe('GapResync', () => {
  it('asks at once, then at most once per interval, and never before the gap it covers', async () => {
    let now = 1_000;
    let asks = 0;
    const r = new GapResync(() => asks++, 30, () => now);
    try {
      r.gapFound();
      expect(asks).to.equal(1);
      // two more gaps within the interval: one ask, at its end
      now += 10;
      r.gapFound();
      r.gapFound();
      expect(asks).to.equal(1);
      now += 20;
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(asks).to.equal(2);
      // long after: at once again
      now += 1_000;
      r.gapFound();
      expect(asks).to.equal(3);
    } finally {
      r.stop();
    }
  });
});
