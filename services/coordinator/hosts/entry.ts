// What the coordinator knows of one host (HostEntry), and the timing every part of the host
// registry shares: a host is gone after MISSED_HEARTBEATS of its heartbeat intervals.
import type { Host, PoolCapabilities } from '../../../libs/proto/cistern/v1/storage.js';

export const MISSED_HEARTBEATS = 3;
export const DEFAULT_INTERVAL_MS = 2000;

export interface HostEntry {
  host: Host;
  /** 0 = not known yet (the host was seen only through a full sync) */
  bootId: bigint;
  intervalMs: number;
  /** local clock of the last sign of life: heartbeat or sync chunk (or of the start, for hosts loaded from the store) */
  lastHeartbeatAt: number;
  online: boolean;
  /** a full sync arrived since this coordinator started */
  synced: boolean;
  /** loaded from its catalog record when this coordinator started: the stream may hold its events from before */
  fromRecord?: boolean;
  /** heartbeats are back, the full sync that makes it online is awaited (local clock since when) */
  returningSince?: number;
  /** full syncs asked of this host (addressed or fleet-wide) since its last one arrived: the backoff step */
  syncAsks: number;
  /** local clock before which this host is not asked for a full sync (again) */
  nextSyncAskAt?: number;
  /** local clock of the last ResyncRequest naming this host */
  askedByNameAt?: number;
  /** local clock since when it is offline (marked, or loaded so) */
  offlineSince?: number;
  /** local clock and id of its last full sync applied */
  syncedAt?: number;
  syncId?: string;
  /** the boot before this one, and when it was last heard: heard again soon, it is a second agent */
  previousBoot?: { id: bigint; at: number };
  /**
   * more than one agent heartbeats with this host id: each one's boot id, when it was last heard
   * and its own heartbeat interval (the agents may have been started with different ones)
   */
  conflict?: Map<bigint, { at: number; intervalMs: number }>;
  /** its agent's last answer to GetPoolCapabilities, and the boot that gave it (they change only with the agent) */
  poolCapabilities?: { bootId: bigint; caps: PoolCapabilities };
}

/** How long without a sign of life makes the host gone: MISSED_HEARTBEATS of its intervals. */
export function silenceLimitMs(entry: Pick<HostEntry, 'intervalMs'>): number {
  return MISSED_HEARTBEATS * entry.intervalMs;
}
