// pool-event lines as virsh prints them:
//   event 'lifecycle' for storage pool NAME: Started
//   event 'refresh' for storage pool NAME
// plus Cistern's volume, host and progress events in the same style.
// --timestamp prefixes "YYYY-MM-DD HH:MM:SS.mmm+0000: " (UTC, as virsh).
import { EventKind, type Event } from '../../libs/proto/cistern/v1/storage.js';

export type EventClass = 'lifecycle' | 'refresh' | 'volume' | 'host' | 'progress';

export const EVENT_CLASSES: EventClass[] = ['lifecycle', 'refresh', 'volume', 'host', 'progress'];

const LIFECYCLE: Partial<Record<EventKind, string>> = {
  [EventKind.POOL_DEFINED]: 'Defined',
  [EventKind.POOL_UNDEFINED]: 'Undefined',
  [EventKind.POOL_STARTED]: 'Started',
  [EventKind.POOL_STOPPED]: 'Stopped',
  [EventKind.POOL_CREATED]: 'Created',
  [EventKind.POOL_DELETED]: 'Deleted',
};

const VOLUME: Partial<Record<EventKind, string>> = {
  [EventKind.VOLUME_CREATED]: 'Created',
  [EventKind.VOLUME_DELETED]: 'Deleted',
  [EventKind.VOLUME_RESIZED]: 'Resized',
  [EventKind.VOLUME_WIPED]: 'Wiped',
  [EventKind.VOLUME_UPLOADED]: 'Uploaded',
  [EventKind.VOLUME_CHANGED]: 'Changed',
};

const HOST: Partial<Record<EventKind, string>> = {
  [EventKind.HOST_ONLINE]: 'Online',
  [EventKind.HOST_OFFLINE]: 'Offline',
  [EventKind.HOST_DELETED]: 'Deleted',
};

export function eventClass(kind: EventKind): EventClass | undefined {
  if (LIFECYCLE[kind]) return 'lifecycle';
  if (kind === EventKind.POOL_REFRESHED) return 'refresh';
  if (VOLUME[kind]) return 'volume';
  if (HOST[kind]) return 'host';
  if (kind === EventKind.OPERATION_PROGRESS) return 'progress';
  return undefined;
}

/** The word after the colon in an event's line ('Started', 'Online'); '' for refresh and progress. */
export function eventDetail(kind: EventKind): string {
  return LIFECYCLE[kind] ?? VOLUME[kind] ?? HOST[kind] ?? '';
}

export function kindsOf(cls: EventClass): EventKind[] {
  return (Object.values(EventKind).filter((k) => typeof k === 'number') as EventKind[]).filter(
    (k) => eventClass(k) === cls,
  );
}

/** virsh's vshEventTimestamp format, always UTC. */
export function eventTimestamp(d: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)}+0000`;
}

export function eventLine(ev: Event, poolLabel: string, timestamp: boolean, now: Date = new Date()): string {
  const prefix = timestamp ? `${eventTimestamp(ev.time ?? now)}: ` : '';
  let body: string;
  switch (eventClass(ev.kind)) {
    case 'lifecycle':
      body = `event 'lifecycle' for storage pool ${poolLabel}: ${LIFECYCLE[ev.kind]}`;
      break;
    case 'refresh':
      body = `event 'refresh' for storage pool ${poolLabel}`;
      break;
    case 'volume':
      body = `event 'volume' for storage pool ${poolLabel}: vol ${ev.volume} ${VOLUME[ev.kind]}`;
      break;
    case 'host':
      body = `event 'host' for host ${ev.host}: ${HOST[ev.kind]}`;
      break;
    case 'progress': {
      const p = ev.progress;
      const what = poolLabel ? ` for storage pool ${poolLabel}` : '';
      body = `event 'progress'${what}: ${p?.operation ?? ''} ${p?.done ?? 0n}/${p?.total ?? 0n}`;
      break;
    }
    default:
      body = `event 'unknown' for storage pool ${poolLabel}`;
  }
  return `${prefix}${body}\n`;
}
