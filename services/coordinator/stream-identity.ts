// Notices the event stream being deleted and made again under a running coordinator. Its
// sequences then start again at 1: every reader of this coordinator (its cache, the shared
// tail, its watchers) waits at a sequence the new stream reaches much later, and its cache
// holds the old stream's view. Nothing in a reader's own traffic says so, so the stream's
// creation time and last sequence are asked for every STREAM_CHECK_MS. The stream gone, or
// another creation time with a last sequence behind what was seen of it, is told once, and the
// coordinator starts again on the new stream (main.ts). Another creation time alone is not
// enough: nats-server 2.9 gives a stream updated since its last start that start's time when it
// restarts (fixed in later nats-server releases), and coordinators update the stream's limits.
// Nor are sequences that went on: a stream made again may have taken more events between two
// checks than this coordinator had read. So one message seen in the stream (its sequence and
// the time it was stored) is kept, and another creation time is the same stream only if that
// message is still there, or gone with everything before the stream's first sequence.
//
// The catalog bucket's stream is watched the same way (its revisions are its sequences): made
// again, the coordinator's watch would go on at the revision it had reached, skipping the new
// bucket's entries up to there and keeping the old bucket's pools in its cache.
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { EVENT_STREAM } from '../../libs/bus/subjects.js';
import type { Logger } from '../../libs/log/logger.js';

export const STREAM_CHECK_MS = 2_000;

interface StreamState {
  created: string;
  firstSeq: number;
  lastSeq: number;
}

/** The stream's creation time and sequences, or 'gone' when JetStream says it does not exist. */
async function streamCreated(jsm: JetStreamManager, stream: string): Promise<StreamState | 'gone'> {
  try {
    const info = await jsm.streams.info(stream);
    return { created: info.created, firstSeq: info.state.first_seq, lastSeq: info.state.last_seq };
  } catch (err) {
    if (/stream not found/i.test((err as Error).message)) return 'gone';
    throw err;
  }
}

/** A message seen in the stream: its sequence and when it was stored (nanoseconds, as the server says). */
interface Anchor {
  seq: number;
  stored: string;
}

/** The stream's message at `seq`, as an anchor; undefined when the stream holds none there. */
async function anchorAt(jsm: JetStreamManager, stream: string, seq: number): Promise<Anchor | undefined> {
  if (seq <= 0) return undefined;
  try {
    const msg = await jsm.streams.getMessage(stream, { seq });
    return msg ? { seq, stored: msg.timestamp } : undefined;
  } catch (err) {
    if (/no message found|message not found/i.test((err as Error).message)) return undefined;
    throw err;
  }
}

/** Is the anchor's message still in the stream `now`, or gone only because the stream's limits dropped it? */
async function holdsAnchor(jsm: JetStreamManager, stream: string, anchor: Anchor | undefined, now: StreamState): Promise<boolean> {
  if (!anchor) return true;
  const there = await anchorAt(jsm, stream, anchor.seq);
  if (there) return there.stored === anchor.stored;
  // none there: dropped by the limits only if the first sequence is past it now, after this
  // look (events may have pushed it out since `now` was read)
  const after = await streamCreated(jsm, stream);
  return after !== 'gone' && after.created === now.created && after.firstSeq > anchor.seq;
}

export interface StreamIdentityWatch {
  stop(): void;
}

export interface StreamIdentityOptions {
  /** how often the stream is asked (STREAM_CHECK_MS) */
  periodMs?: number;
  /** the last sequence this coordinator has read of the stream: a stream made again is behind it */
  readUpTo?: () => bigint;
  /** the stream watched (EVENT_STREAM) ... */
  stream?: string;
  /** ... as log lines and `onReplaced` name it ('the event stream') */
  what?: string;
}

/**
 * Calls `onReplaced` once when the stream is gone, or has another creation time and its last
 * sequence is behind the highest seen of it (by these checks, or `readUpTo`: what this
 * coordinator has read) or another message at the kept one's sequence. A check that fails
 * otherwise (NATS down, JetStream not ready) says nothing: the next one asks again.
 */
export async function watchStreamIdentity(
  nc: NatsConnection,
  log: Logger,
  onReplaced: (why: string) => void,
  { periodMs = STREAM_CHECK_MS, readUpTo = () => 0n, stream = EVENT_STREAM, what = 'the event stream' }: StreamIdentityOptions = {},
): Promise<StreamIdentityWatch> {
  const jsm = await jetstreamManager(nc);
  const first = await streamCreated(jsm, stream);
  let created = first === 'gone' ? 'gone' : first.created;
  let lastSeq = first === 'gone' ? 0 : first.lastSeq;
  let anchor = first === 'gone' ? undefined : await anchorAt(jsm, stream, first.lastSeq).catch(() => undefined);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const check = async (): Promise<void> => {
    let now: StreamState | 'gone';
    let sameStream = false;
    try {
      now = await streamCreated(jsm, stream);
      if (now !== 'gone' && now.created === created) {
        // a newer anchor when the stream moved on, or one at last when none is kept (its look
        // failed, or the stream held no message then); the older one stands if it cannot be read
        if (now.lastSeq !== lastSeq || !anchor) anchor = (await anchorAt(jsm, stream, now.lastSeq).catch(() => undefined)) ?? anchor;
        lastSeq = now.lastSeq;
        return schedule();
      }
      const read = readUpTo();
      const seen = BigInt(lastSeq) > read ? BigInt(lastSeq) : read;
      // another creation time, the sequences going on, and the message seen still there: the
      // same stream, its metadata rewritten (nats-server 2.9 restores a stream updated since its
      // last start with the time of that start)
      sameStream = now !== 'gone' && created !== 'gone' && BigInt(now.lastSeq) >= seen && (await holdsAnchor(jsm, stream, anchor, now));
    } catch (err) {
      log.debug(`${what} check failed; asking again`, { err, stream });
      return schedule();
    }
    if (stopped) return;
    if (sameStream && now !== 'gone') {
      log.info(`${what} reports another creation time, its sequences going on: the same stream`, { stream, was: created, now: now.created, lastSeq: now.lastSeq });
      created = now.created;
      lastSeq = now.lastSeq;
      return schedule();
    }
    const why = now === 'gone' ? `${what} was deleted` : `${what} was made again (created ${now.created}, was ${created})`;
    log.warn(`${why}: its sequences start again, so this coordinator starts again on it`, { stream });
    stopped = true;
    onReplaced(why);
  };
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => void check(), periodMs);
    timer.unref();
  };
  schedule();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
