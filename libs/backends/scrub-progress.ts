// Progress of a multi-pass wipe, read from scrub's own output. scrub prints one bar per
// pass (and per verification), each 48 dots between two '|', one dot at a time as the pass
// goes ("scrub: random  |.....|"), flushed even into a pipe. A wipe of a large volume runs
// for minutes: without this it published no progress until it ended (docs/events.md promises
// wipe progress, the last one with done == total).
import type { ProgressFn } from './backend.js';

/** Bars scrub 2.6 prints for each algorithm (its passes and verifications), as `scrub -p ALG` shows them. */
export const SCRUB_BARS: Readonly<Record<string, number>> = {
  nnsa: 4,
  dod: 4,
  bsi: 9,
  gutmann: 35,
  schneier: 7,
  pfitzner7: 7,
  pfitzner33: 33,
  random: 1,
};

/** What a line holds before its bar opens ('scrub: random  |'); the header lines name the file, which may hold dots. */
const BAR_START = /^scrub: [^\s|]+ +$/;

/** Dots in one of scrub's bars. */
export const SCRUB_DOTS_PER_BAR = 48;

/**
 * A reader of scrub's stdout that reports progress in bytes of a volume of `size` bytes: the
 * share of all the algorithm's bars drawn so far. Never reaches `size` (the caller says
 * done == total once scrub has exited successfully) and never goes back.
 */
export function scrubProgressReader(algorithm: string, size: bigint, progress: ProgressFn): (chunk: string) => void {
  const bars = SCRUB_BARS[algorithm] ?? 1;
  const totalDots = BigInt(bars * SCRUB_DOTS_PER_BAR);
  let line = ''; // the current line up to its bar, if any: a bar opens only after 'scrub: PATTERN  '
  let inBar = false;
  let barsDone = 0;
  let dots = 0;
  let reported = 0n; // the caller reports 0 before scrub starts
  return (chunk) => {
    for (const c of chunk) {
      if (c === '\n') {
        line = '';
        inBar = false;
      } else if (inBar) {
        if (c === '.') dots++;
        else if (c === '|') {
          barsDone++;
          dots = 0;
          inBar = false;
          line = '|';
        }
      } else if (c === '|' && BAR_START.test(line)) {
        inBar = true;
        dots = 0;
      } else if (line.length < 64) {
        line += c;
      }
    }
    const drawn = BigInt(Math.min(barsDone * SCRUB_DOTS_PER_BAR + Math.min(dots, SCRUB_DOTS_PER_BAR), bars * SCRUB_DOTS_PER_BAR));
    let done = (size * drawn) / totalDots;
    if (done >= size) done = size > 0n ? size - 1n : 0n;
    if (done <= reported) return;
    reported = done;
    progress(done, size);
  };
}
