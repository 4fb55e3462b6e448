// The catalog calls (DefinePool, UndefinePool) are done by the coordinator alone: it writes the
// entry and publishes the call's event itself. A coordinator that dies after its write and before
// storing the answer (request-results.ts) leaves the retry to another coordinator, which must
// recognise the write as the call's own and see to it that the call's event is in the stream
// once: the dead one may have published it, or not (review h122: a retried define wrote and
// published again, and told the agent of a "new" definition; a retried undefine published
// nothing, so no watcher learnt that the pool was gone).
//
// - A define records `defined_by` (requestMark) in the entry it writes, a SetPoolAutostart
//   `autostart_by`; a retry that finds such a write of its own in the key's history (ownWrite)
//   was done. It changes nothing, so neither does it undo a change made since (another
//   client's redefinition, autostart turned off again) as running the call again did.
// - A catalog event with a request id is published under a duplicate id named by the call
//   (catalogEventId): JetStream stores it once within its 2 minute window, also when the first
//   coordinator was only slow and publishes it after the retry did.
// - Past that window the retry looks for the event in the stream (publishedSince), on the pool's
//   coordinator subject only, from the time of the write on.
import { createHash } from 'node:crypto';
import { jetstream, jetstreamManager, DeliverPolicy } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { EVENT_STREAM, subjects } from '../../libs/bus/subjects.js';
import { Event, EventKind } from '../../libs/proto/cistern/v1/storage.js';
import type { CatalogPool } from '../../libs/proto/cistern/agent/v1/agent.js';
import type { CatalogRevision } from '../../libs/bus/catalog.js';

/** The mark of one caller's request id in the catalog entry its define wrote. */
export function requestMark(principal: string, requestId: string): string {
  return createHash('sha256').update(`${principal}\u0000${requestId}`).digest('hex');
}

/** A call's own write found in a key's history. */
export interface OwnWrite {
  /** the write itself: the first of the newest run of revisions that show it */
  write: CatalogRevision & { value: CatalogPool };
  /** the key's newest revision, when it still shows the write (else undefined: changed since) */
  latest?: CatalogRevision & { value: CatalogPool };
}

/**
 * The call's write among the key's revisions (oldest first), `shows` telling a revision that
 * carries it: writes that leave it as it was (an autostart change after a define) continue it.
 * Undefined when none does, or the history no longer reaches back to it.
 */
export function ownWrite(history: readonly CatalogRevision[], shows: (value: CatalogPool) => boolean): OwnWrite | undefined {
  let write: OwnWrite['write'] | undefined;
  let last: OwnWrite['write'] | undefined;
  for (const r of history) {
    const carries = r.value !== undefined && shows(r.value);
    const current = carries ? (r as OwnWrite['write']) : undefined;
    if (current && !last) write = current;
    last = current;
  }
  return write && { write, latest: last };
}

/**
 * The duplicate id of a catalog event of a call with a request id: the call and its change.
 * A define's names the entry revision it wrote, so that another define under the same request
 * id (a different request run again after its answer was lost) is not taken for a duplicate.
 * An undefine request is its pool's name alone: the same id and pool are the same request.
 */
export function catalogEventId(kind: EventKind, principal: string, requestId: string, host: string, pool: string, revision?: number): string {
  return `catalog-event:${requestMark(principal, requestId)}:${kind}:${host}:${pool}${revision === undefined ? '' : `:${revision}`}`;
}

/** How long an agent answers a retry from its request cache (services/agent/request-cache.ts), and a little more. */
export const AGENT_ANSWERS_KEPT_MS = 16 * 60_000;

/** How far back of its write the search starts: the stream's and the bucket's clocks may be different servers'. */
const CLOCK_SLACK_MS = 60_000;

/**
 * Whether the stream holds an event of `kind` for the pool, published by a coordinator for this
 * caller's request id at or after `since`. Reads only the pool's coordinator subject, and only
 * when its newest message is that recent.
 */
export async function publishedSince(nc: NatsConnection, kind: EventKind, host: string, pool: string, principal: string, requestId: string, since: Date): Promise<boolean> {
  const subject = subjects.coordinatorEvents(host, pool);
  const from = new Date(since.getTime() - CLOCK_SLACK_MS);
  const matches = (data: Uint8Array): boolean => {
    try {
      const e = Event.decode(data);
      return e.kind === kind && e.requestId === requestId && e.principal === principal;
    } catch {
      return false; // not an event: not the call's
    }
  };
  const last = await (await jetstreamManager(nc)).streams.getMessage(EVENT_STREAM, { last_by_subj: subject });
  if (!last || last.time < from) return false;
  if (matches(last.data)) return true;
  const consumer = await jetstream(nc).consumers.get(EVENT_STREAM, { filter_subjects: subject, deliver_policy: DeliverPolicy.StartTime, opt_start_time: from.toISOString() });
  try {
    // the newest one is there, so each read returns at once; it was the last to look at
    for (;;) {
      const m = await consumer.next({ expires: 5_000 });
      if (!m || m.seq >= last.seq) return false;
      if (matches(m.data)) return true;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}
