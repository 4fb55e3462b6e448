// Events the coordinator's cache never read. The cache follows the stream with one unfiltered
// ordered consumer, which delivers every stored message in sequence order; a stored message it
// did not deliver was removed before it got there: retention (max age, max events, max bytes)
// outran a coordinator that was slow, paused, or cut off from NATS while NATS kept taking
// events, or someone deleted messages by hand. The consumer skips what is gone without a word,
// and the changes those events carried would be missing from the cache until the next full
// sync of their hosts, which may not come for days. Which hosts they were about can no longer
// be known, so a gap means: ask every agent for a full sync (taken in silently, like any
// resync, and it replaces what the cache holds of the host).
//
// Asks are coalesced: gaps found within MIN_ASK_INTERVAL_MS of the last ask are covered by one
// more ask at the end of that interval. An ask always goes out after the gap was found, so the
// syncs it brings were taken after the removed events' changes were made.

/** Sequences an unfiltered reader skipped: `after` was the last it delivered (or start - 1). */
export interface SequenceGap {
  after: bigint;
  /** the sequence it delivered next: (after, next) were not delivered */
  next: bigint;
}

/**
 * Follows the sequences an unfiltered reader delivers, from `start` on, and reports each jump.
 * An unfiltered consumer skips only sequences the stream no longer holds.
 */
export class SequenceGaps {
  private expected: bigint;

  constructor(
    start: bigint,
    private readonly onGap: (gap: SequenceGap) => void,
  ) {
    this.expected = start < 1n ? 1n : start;
  }

  /** The reader delivered `seq`. */
  delivered(seq: bigint): void {
    if (seq < this.expected) return; // (a reader never repeats one; nothing to say if it did)
    if (seq > this.expected) this.onGap({ after: this.expected - 1n, next: seq });
    this.expected = seq + 1n;
  }
}

export const MIN_ASK_INTERVAL_MS = 5_000;

/** Sends a fleet-wide resync for gaps, at most one per `minIntervalMs`, never before the gap it covers. */
export class GapResync {
  private lastAskAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ask: () => void,
    private readonly minIntervalMs = MIN_ASK_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A gap was found: the fleet is asked now, or once the last ask is `minIntervalMs` old. */
  gapFound(): void {
    if (this.timer) return; // the ask already planned comes after this gap
    const wait = this.lastAskAt + this.minIntervalMs - this.now();
    if (wait <= 0) {
      this.askNow();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.askNow();
    }, wait);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private askNow(): void {
    this.lastAskAt = this.now();
    this.ask();
  }
}
