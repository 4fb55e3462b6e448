// Why a host is not online, in an operator's words (Host.offline_reason, host-list --details):
// an UNAVAILABLE call names it, and so must the listing an operator looks at first.
import type { HostEntry } from './entry.js';
import { MISSED_HEARTBEATS } from './entry.js';

/** Two agents heartbeat with one host id: its calls fail until one of them stops. */
export function conflictReason(bootIds: Iterable<bigint>): string {
  return `two agents heartbeat with its host id (boot ids ${[...bootIds].join(' and ')}); stop one of them`;
}

/** '' while the host is online. */
export function offlineReason(entry: HostEntry): string {
  if (entry.online) return '';
  if (entry.conflict) return conflictReason(entry.conflict.keys());
  // heartbeats are back; it serves again once the full sync it was asked for is applied
  if (entry.returningSince !== undefined) return 'its agent heartbeats again; waiting for its full sync';
  const seen = entry.host.lastSeen?.toISOString();
  if (!seen) return 'never heard from';
  return `no heartbeat since ${seen} (${MISSED_HEARTBEATS} missed, one every ${formatInterval(entry.intervalMs)})`;
}

function formatInterval(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
