// Coordinator flags for the event log retention and idempotent retries.
import { InvalidArgumentError } from '../../libs/errors/errors.js';

export interface ReliabilityConfig {
  /** Event log retention by size, bytes (default 1 GiB). */
  eventMaxBytes: number | undefined;
  /** Event log retention by count (default unlimited). */
  eventMaxEvents: number | undefined;
  /** How long responses of calls with a request id are kept for retries, seconds (default 24 h). */
  requestTtlSeconds: number | undefined;
  /** Bytes the stored responses of calls with a request id may take; the oldest go first (default 1 GiB). */
  requestStoreMaxBytes: number | undefined;
}

export const RELIABILITY_USAGE = `events and retries (docs/events.md):
  --event-max-bytes N   event log retention by size: bytes, or with K M G T (env CISTERN_EVENT_MAX_BYTES; default 1G)
  --event-max-events N  event log retention by count (env CISTERN_EVENT_MAX_EVENTS; default unlimited)
  --request-ttl DUR     how long a call's response answers retries with its request id:
                        seconds, or 15m 12h 7d, up to 106751d (env CISTERN_REQUEST_TTL, default 24h)
  --request-store-max-bytes N  room for those responses: bytes, or with K M G T; when full the
                        oldest go first, which shortens the retry window (env
                        CISTERN_REQUEST_STORE_MAX_BYTES; default 1G)`;

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

function parseBytes(value: string, field: string): number {
  const m = /^(\d+)\s*([KMGT]?)(i?B)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError(field, `'${value}' is not a size; use bytes or a number with K, M, G or T`);
  const n = Number(m[1]) * UNITS[m[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(n) || n < 1024) throw new InvalidArgumentError(field, 'must be at least 1024 bytes');
  return n;
}

/** The longest max age NATS takes: 2^63-1 ns, in whole days (a longer one is "invalid JSON"). */
const MAX_TTL_DAYS = 106_751;

/**
 * How long responses answer retries: the requests bucket's max age, which nats-server refuses
 * past 2^63-1 ns. Refused here, naming the flag, rather than by the bucket's set-up, which the
 * coordinator would retry at every start without ever serving.
 */
function parseTtl(value: string, field: string, parseDuration: (v: string, f: string) => number): number {
  const seconds = parseDuration(value, field);
  if (seconds > MAX_TTL_DAYS * 86_400) throw new InvalidArgumentError(field, `'${value}' is out of range; allowed: from 1s to ${MAX_TTL_DAYS}d`);
  return seconds;
}

function parseCount(value: string, field: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(field, `'${value}' must be a whole number of at least 1`);
  return n;
}

export function reliabilityDefaults(env: NodeJS.ProcessEnv, parseDuration: (v: string, f: string) => number): ReliabilityConfig {
  return {
    eventMaxBytes: env.CISTERN_EVENT_MAX_BYTES ? parseBytes(env.CISTERN_EVENT_MAX_BYTES, 'CISTERN_EVENT_MAX_BYTES') : undefined,
    eventMaxEvents: env.CISTERN_EVENT_MAX_EVENTS ? parseCount(env.CISTERN_EVENT_MAX_EVENTS, 'CISTERN_EVENT_MAX_EVENTS') : undefined,
    requestTtlSeconds: env.CISTERN_REQUEST_TTL ? parseTtl(env.CISTERN_REQUEST_TTL, 'CISTERN_REQUEST_TTL', parseDuration) : undefined,
    requestStoreMaxBytes: env.CISTERN_REQUEST_STORE_MAX_BYTES ? parseBytes(env.CISTERN_REQUEST_STORE_MAX_BYTES, 'CISTERN_REQUEST_STORE_MAX_BYTES') : undefined,
  };
}

/** Takes one of this module's flags; false when `flag` is not one of them. */
export function reliabilityFlag(
  flag: string,
  value: () => string,
  config: ReliabilityConfig,
  parseDuration: (v: string, f: string) => number,
): boolean {
  switch (flag) {
    case '--event-max-bytes':
      config.eventMaxBytes = parseBytes(value(), flag);
      return true;
    case '--event-max-events':
      config.eventMaxEvents = parseCount(value(), flag);
      return true;
    case '--request-ttl':
      config.requestTtlSeconds = parseTtl(value(), flag, parseDuration);
      return true;
    case '--request-store-max-bytes':
      config.requestStoreMaxBytes = parseBytes(value(), flag);
      return true;
    default:
      return false;
  }
}
