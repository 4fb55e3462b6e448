// Notices the event stream being deleted and made again under a running coordinator. Its
// sequences then start again at 1: every reader of this coordinator (its cache, the shared
// tail, its watchers) waits at a sequence the new stream reaches much later, and its cache
// holds the old stream's view. Nothing in a reader's own traffic says so, so the stream's
// creation time is asked for every STREAM_CHECK_MS; another one (or the stream gone) is told
// once, and the coordinator starts again on the new stream (main.ts).
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { EVENT_STREAM } from '../../libs/bus/subjects.js';
import type { Logger } from '../../libs/log/logger.js';

export const STREAM_CHECK_MS = 2_000;

/** The stream's creation time, or 'gone' when JetStream says it does not exist. */
async function streamCreated(jsm: JetStreamManager): Promise<string | 'gone'> {
  try {
    return (await jsm.streams.info(EVENT_STREAM)).created;
  } catch (err) {
    if (/stream not found/i.test((err as Error).message)) return 'gone';
    throw err;
  }
}

export interface StreamIdentityWatch {
  stop(): void;
}

/**
 * Calls `onReplaced` once when the stream's creation time is no longer `created` (read at the
 * start), or the stream is gone. A check that fails otherwise (NATS down, JetStream not ready)
 * says nothing: the next one asks again.
 */
export async function watchStreamIdentity(
  nc: NatsConnection,
  log: Logger,
  onReplaced: (why: string) => void,
  periodMs = STREAM_CHECK_MS,
): Promise<StreamIdentityWatch> {
  const jsm = await jetstreamManager(nc);
  const created = await streamCreated(jsm);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const check = async (): Promise<void> => {
    let now: string | 'gone';
    try {
      now = await streamCreated(jsm);
    } catch (err) {
      log.debug('event stream check failed; asking again', { err });
      return schedule();
    }
    if (stopped) return;
    if (now === created) return schedule();
    const why = now === 'gone' ? 'the event stream was deleted' : `the event stream was made again (created ${now}, was ${created})`;
    log.warn(`${why}: its sequences start again, so this coordinator starts again on it`, { stream: EVENT_STREAM });
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
