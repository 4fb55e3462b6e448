// A WatchEvents session's own consumer, read so that no event reaches the watcher past events
// retention removed before the consumer got to them.
//
// A consumer skips what the stream no longer holds without a word, and a filtered one (one
// subject) skips other subjects' events all the time: a jump in the sequences it delivers is
// either. The stream's first sequence, read after the consumer delivered the event after the
// jump, tells them apart: retention removes from the front, so when the stream still begins at
// or before the sequence after the jump's start, everything in between was stored when the
// consumer passed it (it was another subject's). Otherwise events after the jump's start may
// be lost to this watcher, and the call must end there, before sending anything after it.
//
// Asking the stream at every jump would cost a request per event of a filtered replay, one
// after the other. So events are taken in batches: whatever the consumer has delivered
// already, without waiting for more; one answer, asked after the whole batch arrived, covers
// every jump in it. While that answer is on its way, the next batch arrives.
import { OutOfRangeError, UnavailableError } from '../../libs/errors/errors.js';
import type { RawEvent, RawEventReader, StreamBounds } from './event-log.js';

/** Events after `after` were removed by retention before the watcher was sent them; `first` is the oldest it can still get. */
export function retentionGap(after: bigint, first: bigint): OutOfRangeError {
  return new OutOfRangeError(
    `events after sequence ${after} are no longer retained (this watcher fell behind the stream's retention); the oldest available sequence is ${first}: read the state you need again, then watch after ${first - 1n}`,
    { oldestSequence: String(first), afterSequence: String(after) },
  );
}

/**
 * Most events in one batch: what a session holds beside its consumer's own buffer, and how
 * long its first events wait behind a long replay.
 */
export const MAX_BATCH = 256;

/** Waits between attempts to read the stream's bounds (the bus may be reconnecting). */
const BOUNDS_RETRY_MS = [100, 250, 500, 1000, 2000, 2000, 2000, 2000, 2000, 2000];

const NOTHING_YET = Symbol('nothing delivered yet');

/** Resolves after the promises already settled have run their callbacks. */
function afterSettled(): Promise<typeof NOTHING_YET> {
  return new Promise((resolve) => setImmediate(() => resolve(NOTHING_YET)));
}

export interface RetainedBatchesOptions {
  /** the last sequence dealt with before the reader's start: a first event past its next one is a jump too */
  after: bigint;
  bounds: () => Promise<StreamBounds>;
  signal: AbortSignal;
  maxBatch?: number;
}

/**
 * The reader's events in batches, each one verified: none follows a jump over events the
 * stream no longer held when it was checked. At such a jump, the events before it are yielded
 * and then the OUT_OF_RANGE error for the jump's start is thrown.
 */
export async function* retainedBatches(reader: RawEventReader, o: RetainedBatchesOptions): AsyncGenerator<RawEvent[]> {
  const maxBatch = o.maxBatch ?? MAX_BATCH;
  const it = reader[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<RawEvent>> | undefined;
  const next = (): Promise<IteratorResult<RawEvent>> => (pending ??= it.next());
  // (a stream's first sequence is 1: a cursor below 0 means its start)
  let prev = o.after < 0n ? 0n : o.after;
  try {
    for (;;) {
      const head = await next();
      pending = undefined;
      if (head.done) return;
      const batch = [head.value];
      let ended = false;
      while (batch.length < maxBatch) {
        const r = await Promise.race([next(), afterSettled()]);
        if (r === NOTHING_YET) break;
        pending = undefined;
        if (r.done) {
          ended = true;
          break;
        }
        batch.push(r.value);
      }
      // the sequence before each jump, and the batch position of the event after it
      const jumps: Array<{ after: bigint; at: number }> = [];
      batch.forEach((raw, at) => {
        if (raw.seq > prev + 1n) jumps.push({ after: prev, at });
        prev = raw.seq;
      });
      if (jumps.length > 0) {
        const first = await firstStored(o);
        if (first === undefined) return; // aborted
        const lost = jumps.find((j) => first > j.after + 1n);
        if (lost) {
          if (lost.at > 0) yield batch.slice(0, lost.at);
          throw retentionGap(lost.after, first);
        }
      }
      yield batch;
      if (ended) return;
    }
  } finally {
    // Closing the reader makes a read still pending settle (with an event it had buffered, or
    // done); ending its iterator (return) is what lets the close finish: a consumer closes only
    // once its iterator has gone past what it buffered, or was ended.
    const closing = reader.close().catch(() => undefined);
    await pending?.catch(() => undefined);
    await it.return?.(undefined)?.catch(() => undefined);
    await closing;
  }
}

/** The stream's first sequence now; undefined when the call was cancelled meanwhile. */
async function firstStored(o: RetainedBatchesOptions): Promise<bigint | undefined> {
  for (let attempt = 0; ; attempt++) {
    if (o.signal.aborted) return undefined;
    try {
      return (await o.bounds()).first;
    } catch (err) {
      const wait = BOUNDS_RETRY_MS[attempt];
      if (wait === undefined) {
        throw new UnavailableError(
          `cannot tell whether the event stream still holds the events this watcher skipped (${(err as Error)?.message ?? err}); watch again after the last sequence you received`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, wait).unref());
    }
  }
}
