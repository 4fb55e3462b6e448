// scrub's output turned into wipe progress (libs/backends/scrub-progress.ts).
import { expect } from 'chai';
import { SCRUB_DOTS_PER_BAR, scrubProgressReader } from '../../../libs/backends/scrub-progress.js';

const dots = (n: number): string => '.'.repeat(n);
/** What scrub 2.6.1 prints for `-p nnsa` on a file whose name has dots and a bar in it. */
const header = 'scrub: using NNSA NAP-14.1-C patterns\nscrub: scrubbing /p/a.b|c.img 1048576 bytes (~1024KB)\n';
const bar = (pattern: string): string => `scrub: ${pattern.padEnd(7)}|${dots(SCRUB_DOTS_PER_BAR)}|\n`;

describe('scrub progress', () => {
  it('reports the share of all passes drawn, in bytes, rising, never done before scrub has exited', () => {
    const reports: bigint[] = [];
    const read = scrubProgressReader('nnsa', 4800n, (done, total) => {
      expect(total).to.equal(4800n);
      reports.push(done);
    });
    read(header);
    expect(reports, 'the header names a file: its dots are no progress').to.deep.equal([]);
    read('scrub: random  |');
    read(dots(12)); // a quarter of the first of four bars
    expect(reports).to.deep.equal([300n]);
    read(`${dots(36)}|\n`);
    read(bar('random'));
    read(bar('0x00'));
    expect(reports.at(-1)).to.equal(3600n);
    // one character at a time, as scrub flushes them
    for (const c of bar('verify')) read(c);
    expect(reports.at(-1), 'the end is the caller\'s to say').to.equal(4799n);
    expect(reports.every((d, i) => i === 0 || d > reports[i - 1]!)).to.equal(true);
  });

  it('an algorithm with many passes: gutmann moves by 1/35 per pass', () => {
    const reports: bigint[] = [];
    const read = scrubProgressReader('gutmann', 35n * 1000n, (done) => void reports.push(done));
    read('scrub: using Gutmann patterns\nscrub: scrubbing /dev/x 35000 bytes (~35KB)\n');
    read(bar('random'));
    expect(reports).to.deep.equal([1000n]);
  });
});
