// The stream's view of one host: what a reader that followed the event stream believes of the
// host's pools and volumes, built from the host's retained events (cistern.events.<host>.>) the
// way the coordinator's own view follows the stream (FleetCache.applyEvent, events their subject
// does not vouch for skipped: untrustedEvent, event-log.ts). A coordinator that never took a
// full sync of a host has no view of it to reconcile the host's return against; this is that
// baseline (sync-intake.ts): the sync is compared with what the stream says, and the
// differences are published.
// Events already removed by retention are not in it: a reader that was relying on them is told
// OUT_OF_RANGE anyway (docs/events.md, "Retention").
import { decodeEvent } from '../../libs/bus/events.js';
import { subjects } from '../../libs/bus/subjects.js';
import { FleetCache } from './cache.js';
import { eventTrusted, type EventSource } from './event-log.js';

/** Longest wait for the next of the host's stored events before the read is given up. */
export const BASELINE_IDLE_MS = 10_000;
/** Hosts whose events are read at once; the others wait their turn. */
export const BASELINE_READS_AT_ONCE = 4;

export interface StreamBaseline {
  /** the host's pools and volumes as its events up to `upTo` say */
  cache: FleetCache;
  /** events applied */
  events: number;
  /** the last sequence read (0: none) */
  through: bigint;
}

/**
 * Folds the host's stored events up to sequence `upTo` (and no further than its newest event
 * now) into a fresh FleetCache. Throws when the stream does not answer, or when no event came
 * for `idleMs` before the end was reached.
 */
export async function readStreamBaseline(source: Pick<EventSource, 'read' | 'lastSequence'>, host: string, upTo: bigint, idleMs = BASELINE_IDLE_MS): Promise<StreamBaseline> {
  const cache = new FleetCache();
  const subject = subjects.eventsOfHost(host);
  const newest = await source.lastSequence(subject);
  const end = newest < upTo ? newest : upTo;
  let events = 0;
  let through = 0n;
  if (end <= 0n) return { cache, events, through };
  const reader = await source.read(1n, subject);
  let idle = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      idle = true;
      void reader.close();
    }, idleMs);
    timer.unref();
  };
  try {
    arm();
    for await (const m of reader) {
      if (m.seq > end) break;
      arm();
      through = m.seq;
      let event;
      try {
        event = decodeEvent(m.data, m.seq);
      } catch {
        event = undefined; // not an Event: the coordinator's view skips it too
      }
      if (event && event.host === host && eventTrusted(m.subject, event)) {
        cache.applyEvent(event);
        events++;
      }
      if (m.seq >= end) break;
    }
  } finally {
    clearTimeout(timer);
    await reader.close();
  }
  if (through < end && idle) throw new Error(`no event of host '${host}' came for ${idleMs} ms, at sequence ${through} of ${end}`);
  return { cache, events, through };
}

/** readStreamBaseline with at most `atOnce` reads running; the others wait in order. */
export class StreamBaselines {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly source: Pick<EventSource, 'read' | 'lastSequence'>,
    private readonly atOnce = BASELINE_READS_AT_ONCE,
  ) {}

  async read(host: string, upTo: bigint): Promise<StreamBaseline> {
    if (this.running < this.atOnce) this.running++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve)); // a finished read hands its place over
    try {
      return await readStreamBaseline(this.source, host, upTo);
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
