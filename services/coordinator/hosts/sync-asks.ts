// When to ask a host for its full sync. Asking is expensive for both sides (a host of
// 2,000 volumes sends ~660 KB), so a host is never asked while its sync is on the way
// (chunks arrived recently or are queued for the intake) or while an earlier ask is recent;
// asks for the same host back off exponentially with jitter, up to MAX_SYNC_ASK_BACKOFF_MS.
import type { Logger } from '../../../libs/log/logger.js';
import { silenceLimitMs, type HostEntry } from './entry.js';

/** Longest wait between two asks for the same host's full sync. */
export const MAX_SYNC_ASK_BACKOFF_MS = 60_000;

export interface SyncAskOptions {
  log: Logger;
  now: () => number;
  /** In [0, 1): the jitter of the backoff. */
  random: () => number;
  /** Sends a host-addressed ResyncRequest. */
  askSync?: (host: string) => void;
  /** The sync intake holds chunks of this host that are not applied yet. */
  syncPending?: (host: string) => boolean;
}

/** The host's sync came (or it went away): the next ask starts the backoff again. */
export function clearSyncAsks(entry: HostEntry): void {
  entry.syncAsks = 0;
  entry.nextSyncAskAt = undefined;
}

export class SyncAsks {
  /** local clock of the last sync chunk that arrived, per host id (known or not) */
  private readonly lastChunkAt = new Map<string, number>();
  /** local clock of the last fleet-wide ResyncRequest */
  private fleetAskedAt: number | undefined;
  /** local clock of the last sync chunk from any host */
  private anyChunkAt: number | undefined;

  constructor(private readonly options: SyncAskOptions) {}

  /** A chunk of the host's full sync arrived: its sync is on the way. */
  chunkArrived(id: string, now: number): void {
    this.lastChunkAt.set(id, now);
    this.anyChunkAt = now;
  }

  /** Local clock of the host's last sync chunk, if one came (and was not applied and forgotten). */
  lastChunk(id: string): number | undefined {
    return this.lastChunkAt.get(id);
  }

  /** A full sync of the host was applied: its chunks no longer say one is on the way, unless more are queued. */
  syncApplied(id: string): void {
    if (!this.options.syncPending?.(id)) this.lastChunkAt.delete(id);
  }

  forgetHost(id: string): void {
    this.lastChunkAt.delete(id);
  }

  /** The host's full sync is on the way: chunks queued for the intake, or arriving recently. */
  inFlight(id: string, intervalMs: number, now: number): boolean {
    if (this.options.syncPending?.(id)) return true;
    const at = this.lastChunkAt.get(id);
    return at !== undefined && now - at <= silenceLimitMs({ intervalMs });
  }

  /** How long after an ask (the `asks`-th since the last sync) the host is not asked again. */
  private backoffMs(entry: HostEntry, asks: number): number {
    const base = silenceLimitMs(entry);
    const step = Math.min(MAX_SYNC_ASK_BACKOFF_MS, base * 2 ** Math.max(0, asks - 1));
    return Math.min(MAX_SYNC_ASK_BACKOFF_MS, Math.round(step * (1 + 0.5 * this.options.random())));
  }

  private noteAsk(entry: HostEntry, now: number): void {
    entry.syncAsks++;
    entry.nextSyncAskAt = now + this.backoffMs(entry, entry.syncAsks);
  }

  /** A full sync is expected without asking (agent start, fleet-wide ask): no ask before one backoff step. */
  defer(entry: HostEntry, from: number): void {
    const at = from + this.backoffMs(entry, 1);
    if (entry.nextSyncAskAt === undefined || entry.nextSyncAskAt < at) entry.nextSyncAskAt = at;
  }

  /** defer() from the last fleet-wide ask, whose answer from this host may still come. */
  deferForFleetAsk(entry: HostEntry): void {
    if (this.fleetAskedAt !== undefined) this.defer(entry, this.fleetAskedAt);
  }

  /** A fleet-wide ResyncRequest went out: every host alive now counts one ask. */
  fleetAsked(entries: Iterable<HostEntry>): void {
    const now = this.options.now();
    this.fleetAskedAt = now;
    for (const entry of entries) if (entry.online || entry.returningSince !== undefined) this.noteAsk(entry, now);
  }

  /**
   * The answers to the last fleet-wide ask are still streaming in (a chunk from some host
   * within three intervals, for at most MAX_SYNC_ASK_BACKOFF_MS): a host's answer may be
   * queued behind the others' anywhere on the way.
   */
  private fleetAnswering(entry: HostEntry, now: number): boolean {
    const asked = this.fleetAskedAt;
    if (asked === undefined || now - asked > MAX_SYNC_ASK_BACKOFF_MS) return false;
    if ((entry.askedByNameAt ?? -Infinity) > asked) return false;
    return this.anyChunkAt !== undefined && this.anyChunkAt >= asked && now - this.anyChunkAt <= silenceLimitMs(entry);
  }

  /** Asks the host for its full sync unless one is on the way or was asked for recently; `again`: say so in the log. */
  maybeAsk(id: string, entry: HostEntry, now: number, again = false): boolean {
    if (entry.nextSyncAskAt !== undefined && now < entry.nextSyncAskAt) return false;
    if (this.inFlight(id, entry.intervalMs, now) || this.fleetAnswering(entry, now)) {
      // the sync is on its way: look again one step later
      entry.nextSyncAskAt = now + entry.intervalMs;
      return false;
    }
    this.noteAsk(entry, now);
    entry.askedByNameAt = now;
    if (again) this.options.log.warn('no full sync from a host that heartbeats; asking again', { host: id, asks: entry.syncAsks, nextAskInMs: entry.nextSyncAskAt! - now });
    this.options.askSync?.(id);
    return true;
  }
}
