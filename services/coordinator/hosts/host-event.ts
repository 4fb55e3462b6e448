// The HOST_ONLINE / HOST_OFFLINE event of a host, as every coordinator publishes it: its
// request id names the change (boot, sync) so that the stream keeps one copy of it.
import { type EventKind, type Event } from '../../../libs/proto/cistern/v1/storage.js';
import type { HostEntry } from './entry.js';

export function hostEvent(kind: EventKind, entry: HostEntry, requestId: string, time: Date): Event {
  return {
    sequence: 0n,
    kind,
    host: entry.host.hostId,
    pool: '',
    volume: '',
    time,
    principal: 'coordinator',
    poolState: undefined,
    volumeState: undefined,
    hostState: entry.host,
    progress: undefined,
    requestId,
  };
}
