// Whether this process's event loop has just stood still: a SIGSTOP, a paused VM, a long
// synchronous call. Messages that queued on the socket meanwhile are then read in one go, a
// request together with the cancel its caller sent while it waited (agent-rpc.ts). A timer
// that fires far later than asked says so; one that has not fired for that long, at the moment
// it is asked, says so too (the socket may be read before the timers after a stall). Blind to
// a paused VM (QEMU stops the guest's kvmclock with the guest: no clock inside it jumps), which
// agent-rpc.ts tells by the messages read in one go instead.
import { performance } from 'node:perf_hooks';

/** How often the timer fires. */
const TICK_MS = 50;
/** A gap between firings this long is a stall (five ticks). */
const STALL_MS = 250;
/** For how long after a stall ends the messages read count as read with it. */
const AFTER_MS = 100;

/** The process's one detector while some subscription uses it (sharedStallDetector). */
let shared: { detector: LoopStallDetector; users: number } | undefined;

/**
 * The process-wide detector, one timer however many agents it serves (the fleet simulator runs
 * hundreds in one process); `release` when done with it, and the last release stops it.
 */
export function sharedStallDetector(): { detector: LoopStallDetector; release: () => void } {
  shared ??= { detector: new LoopStallDetector(), users: 0 };
  const mine = shared;
  mine.users++;
  let released = false;
  return {
    detector: mine.detector,
    release: () => {
      if (released) return;
      released = true;
      if (--mine.users === 0) {
        mine.detector.stop();
        if (shared === mine) shared = undefined;
      }
    },
  };
}

export class LoopStallDetector {
  private lastFire = performance.now();
  private resumedAt = Number.NEGATIVE_INFINITY;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly now: () => number = () => performance.now()) {
    this.lastFire = this.now();
    this.timer = setInterval(() => this.fired(), TICK_MS);
    this.timer.unref();
  }

  /** Did the loop stand still just now (or is it coming out of a stall this very turn)? */
  suspected(): boolean {
    const now = this.now();
    return now - this.lastFire > STALL_MS || now - this.resumedAt < AFTER_MS;
  }

  /** Stops the timer. */
  stop(): void {
    clearInterval(this.timer);
  }

  /** The timer's firing; exposed for tests, which drive a fake clock. */
  fired(): void {
    const now = this.now();
    if (now - this.lastFire > STALL_MS) this.resumedAt = now;
    this.lastFire = now;
  }
}
