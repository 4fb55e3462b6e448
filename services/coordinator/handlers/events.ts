// WatchEvents: replays from after_sequence (or the whole retained log), then follows live.
// A call that has caught up with the stream follows the coordinator's one shared tail
// (event-tail.ts: each event decoded and encoded once for every watcher); a replay, or a
// watcher that fell too far behind the tail, reads with its own consumer until it catches up
// (event-watch.ts). Filters: hosts, pools, kinds. Initial metadata `x-cistern-start-sequence`
// is sent once the call is positioned: a client that waits for it misses nothing that happens
// afterwards.
import { Metadata, type ServerWritableStream } from '@grpc/grpc-js';
import { InvalidArgumentError, OutOfRangeError, ResourceExhaustedError } from '../../../libs/errors/errors.js';
import { checkObjectName } from '../../../libs/api/names.js';
import { parseHostName, parsePoolName } from '../../../libs/api/resource-names.js';
import { subjects } from '../../../libs/bus/subjects.js';
import { EventKind, type Event, type WatchEventsRequest } from '../../../libs/proto/cistern/v1/storage.js';
import type { CallContext, CoordinatorServices } from '../context.js';
import { natsEventSource, type EventSource } from '../event-log.js';
import { sharedEventTail, type EventHeader } from '../event-tail.js';
import { WatchSession } from '../event-watch.js';

export interface EventFilter {
  hosts: Set<string>;
  /** pool short names on any host */
  pools: Set<string>;
  /** host \0 pool */
  hostPools: Set<string>;
  kinds: Set<EventKind>;
}

/** The kinds a filter may hold, as a refusal lists them: `POOL_DEFINED (1) ...`. */
const EVENT_KINDS_ALLOWED = Object.entries(EventKind)
  .filter(([name, value]) => typeof value === 'number' && value > 0 && name !== 'UNRECOGNIZED')
  .map(([name, value]) => `${name} (${value})`)
  .join(' ');

/**
 * The most entries one filter field (hosts, pools, kinds) may have. A watch keeps its filter,
 * and grpc-js its decoded request, for as long as it is open: within the 4 MiB message limit,
 * a million two-character pool names held about 51 MB per watch, 64 watches a viewer. 10,000
 * names a pool or host of a large fleet each; a client that needs more watches without it.
 */
export const MAX_FILTER_ENTRIES = 10_000;

function checkFilterSize(field: string, entries: number): void {
  if (entries <= MAX_FILTER_ENTRIES) return;
  throw new ResourceExhaustedError(
    `${field}: ${entries} entries; a WatchEvents filter field holds at most ${MAX_FILTER_ENTRIES} (each watch keeps its filter while open); leave the field empty to watch all, or split the watch`,
    { field, limit: String(MAX_FILTER_ENTRIES) },
  );
}

export function parseEventFilter(req: Pick<WatchEventsRequest, 'hosts' | 'pools' | 'kinds'>): EventFilter {
  checkFilterSize('hosts', req.hosts.length);
  checkFilterSize('pools', req.pools.length);
  checkFilterSize('kinds', req.kinds.length);
  const filter: EventFilter = { hosts: new Set(), pools: new Set(), hostPools: new Set(), kinds: new Set() };
  req.hosts.forEach((h, i) => filter.hosts.add(parseHostName(h, `hosts[${i}]`)));
  req.pools.forEach((p, i) => {
    if (p.startsWith('hosts/')) {
      const ref = parsePoolName(p, `pools[${i}]`);
      filter.hostPools.add(`${ref.host}\u0000${ref.pool}`);
    } else {
      checkObjectName(p, `pools[${i}]`, 'pool name');
      filter.pools.add(p);
    }
  });
  req.kinds.forEach((k, i) => {
    if (!(k in EventKind) || k === EventKind.UNRECOGNIZED || k === EventKind.EVENT_KIND_UNSPECIFIED) {
      throw new InvalidArgumentError(`kinds[${i}]`, `event kind ${k} is not known; allowed: ${EVENT_KINDS_ALLOWED}`);
    }
    filter.kinds.add(k);
  });
  return filter;
}

export function matches(filter: EventFilter, e: EventHeader): boolean {
  if (filter.hosts.size > 0 && !filter.hosts.has(e.host)) return false;
  if (filter.kinds.size > 0 && !filter.kinds.has(e.kind)) return false;
  if (filter.pools.size > 0 || filter.hostPools.size > 0) {
    if (!e.pool) return false;
    if (!filter.pools.has(e.pool) && !filter.hostPools.has(`${e.host}\u0000${e.pool}`)) return false;
  }
  return true;
}

/**
 * One subject when the filter allows (nats-server 2.9 takes a single filter subject): the host's
 * events, or the pool's of both origins (subjects.eventsOfPool).
 */
export function narrowSubject(filter: EventFilter): string | undefined {
  const poolCount = filter.pools.size + filter.hostPools.size;
  if (poolCount === 0) return filter.hosts.size === 1 ? subjects.eventsOfHost([...filter.hosts][0]!) : undefined;
  if (poolCount !== 1) return undefined;
  let host: string;
  let pool: string;
  if (filter.hostPools.size === 1) {
    [host, pool] = [...filter.hostPools][0]!.split('\u0000') as [string, string];
    if (filter.hosts.size > 0 && !filter.hosts.has(host)) return undefined;
  } else {
    pool = [...filter.pools][0]!;
    host = filter.hosts.size === 1 ? [...filter.hosts][0]! : filter.hosts.size === 0 ? '*' : '';
    if (!host) return undefined;
  }
  return subjects.eventsOfPool(host, pool);
}

/**
 * The subject a call reads on with its own consumer from `start`: narrowSubject's, but every
 * event (the filter applied here) when a pool's subject would miss events an older version
 * stored from `start` on under four tokens, which a host's subject takes and a pool's cannot
 * (docs/events.md, "Older streams"). A call from the stream's end has none to miss.
 */
export async function replaySubject(source: Pick<EventSource, 'lastSequence'>, filter: EventFilter, start: bigint, last: bigint): Promise<string | undefined> {
  const subject = narrowSubject(filter);
  // a host's subject ends with '>', which takes four tokens as well as five
  if (subject === undefined || subject.endsWith('.>') || start > last) return subject;
  return (await source.lastSequence(subjects.legacyEvents)) >= start ? undefined : subject;
}

export async function watchEvents(
  svc: CoordinatorServices,
  ctx: CallContext,
  call: ServerWritableStream<WatchEventsRequest, Event>,
): Promise<void> {
  const req = call.request;
  const filter = parseEventFilter(req);
  if (req.fromStart && req.afterSequence > 0n) {
    throw new InvalidArgumentError('from_start', 'give either from_start or after_sequence, not both');
  }
  // a watch already open rides out a disconnect (it resumes after its last sequence); a new one
  // cannot even be positioned, and its client had better try another coordinator
  svc.hosts.requireBus('events cannot be watched now');
  // a replay that has not caught up with the shared tail reads on its own consumer: its restarts are logged too
  const source = natsEventSource(svc.nc, svc.log, 'watcher');
  const bounds = await source.bounds();
  let start: bigint;
  if (req.fromStart) start = bounds.first;
  else if (req.afterSequence > 0n) {
    start = req.afterSequence + 1n;
    if (start < bounds.first) {
      throw new OutOfRangeError(
        `events after sequence ${req.afterSequence} are no longer retained; the oldest available sequence is ${bounds.first}`,
        { oldestSequence: String(bounds.first) },
      );
    }
    // a sequence the stream never reached comes from another stream (recreated, another
    // NATS): waiting for it would skip every event up to it in silence
    if (req.afterSequence > bounds.last) {
      throw new OutOfRangeError(
        `after_sequence ${req.afterSequence} is beyond the newest event, ${bounds.last}; the cursor is from another event stream: read the current state and watch from ${bounds.last}`,
        { newestSequence: String(bounds.last) },
      );
    }
  } else start = bounds.last + 1n;
  const tail = sharedEventTail(svc.nc, svc.log);
  tail.acquire();
  try {
    await tail.open(bounds.last + 1n);
    const session = new WatchSession({
      tail,
      source,
      accept: (e) => matches(filter, e),
      subject: await replaySubject(source, filter, start, bounds.last),
      sink: {
        // bytes: serializeEventResponse passes them through
        write: (bytes) => call.write(bytes as unknown as Event),
        onDrain: (cb) => call.once('drain', cb),
      },
      signal: ctx.signal,
      onFellBehind: (cursor, tailLast) =>
        ctx.log.info('watcher fell behind the shared event tail; continuing on its own consumer', { cursor: String(cursor), tail: String(tailLast), peer: ctx.peer }),
    });
    const md = new Metadata();
    md.set('x-cistern-start-sequence', String(start));
    call.sendMetadata(md);
    await session.run(start);
  } finally {
    tail.release();
  }
}
