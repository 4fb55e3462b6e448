// The host-wide revision counter, kept monotonic across restarts without trusting the
// clock (clocks skew and step back). A floor file under the agent's root holds a value above
// every revision handed out so far; a boot starts at max(clock, floor) and moves the floor
// ahead by a step (one small write per boot, and again only when the counter reaches it).
// The step is small against the clock's pace (2^24, ~17 s of clock-scale revisions): every
// boot starts at the floor the last one left, so a large one would put an agent that restarts
// often ever further ahead of its clock, and then far above where it counts from once it
// loses its root (the coordinators take a new boot's sync whole when that happens).
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RevisionCounter } from './state.js';
import { replaceSmallFile } from './small-file.js';

const STEP = 1n << 24n;

export class PersistentRevisions extends RevisionCounter {
  private ceiling: bigint;

  private constructor(start: bigint, private readonly file: string) {
    super(start);
    this.ceiling = start + STEP;
    this.store(this.ceiling);
  }

  /** The counter for this boot of the agent whose state lives under `root`. */
  static open(root: string, clock: () => number = Date.now): PersistentRevisions {
    mkdirSync(root, { recursive: true });
    const file = join(root, 'revision-floor');
    let floor = 0n;
    try {
      floor = BigInt(readFileSync(file, 'utf8').trim());
    } catch {
      /* first boot, or unreadable: the clock decides */
    }
    const byClock = BigInt(clock()) * 1000n;
    return new PersistentRevisions(byClock > floor ? byClock : floor, file);
  }

  override next(): bigint {
    const value = super.next();
    if (value >= this.ceiling) {
      this.ceiling = value + STEP;
      this.store(this.ceiling);
    }
    return value;
  }

  private store(value: bigint): void {
    replaceSmallFile(this.file, `${value}\n`);
  }
}
