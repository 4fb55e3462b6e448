// The one place that builds NATS subjects, stream and bucket names.
// Host ids are single safe tokens (checkHostId); pool names may hold any character,
// so they are encoded into one token when they are not already safe.

export const EVENT_STREAM = 'CISTERN_EVENTS';
export const CATALOG_BUCKET = 'cistern-catalog';

const SAFE_TOKEN = /^[A-Za-z0-9_-]+$/;
// An encoded name is a marker and the base64url of its UTF-8 bytes. Subjects use '~' (events
// are stored under those subjects, docs/events.md). KV keys use '=': the JetStream KV client
// refuses '~' in keys (/^[-/=.\w]+$/); base64url and safe tokens hold neither marker.
const SUBJECT_MARK = '~';
const KEY_MARK = '=';

const encoded = (mark: string, name: string): string => `${mark}${Buffer.from(name, 'utf8').toString('base64url')}`;

/** The last token of a host event's subject (cistern.events.<host>._host): no pool's token. */
export const HOST_EVENTS_TOKEN = '_host';

/**
 * A name as one subject token: itself when safe, else '~' + base64url(utf8). A pool named
 * `_host` is encoded too: as itself it would share the subject of its host's own events, and a
 * reader of `cistern.events.*._host` would get that pool's events as host events.
 */
export function nameToken(name: string): string {
  return SAFE_TOKEN.test(name) && name !== HOST_EVENTS_TOKEN ? name : encoded(SUBJECT_MARK, name);
}

/** A name as one KV key token: itself when safe, else '=' + base64url(utf8). */
export function keyToken(name: string): string {
  return SAFE_TOKEN.test(name) ? name : encoded(KEY_MARK, name);
}

/** The name of a subject or key token (either marker). */
export function tokenToName(token: string): string {
  return token.startsWith(SUBJECT_MARK) || token.startsWith(KEY_MARK) ? Buffer.from(token.slice(1), 'base64url').toString('utf8') : token;
}

/** The inbox prefix an agent connects with (scripts/nats-config.mjs lets agent H subscribe only under it). */
export const agentInboxPrefix = (host: string): string => `_INBOX_agent_${host}`;

export const subjects = {
  agentOp: (host: string, op: string) => `cistern.agent.${host}.${op}`,
  agentAll: (host: string) => `cistern.agent.${host}.>`,
  uploadStream: (host: string, id: string) => `cistern.agent.${host}.stream.${id}`,
  /** Download data the agent of `host` publishes (only it may: scripts/nats-config.mjs); acks go to `<subject>.ack`. */
  downloadStream: (host: string, id: string) => `cistern.download.${host}.${id}`,
  /** Cancels the call with this id (CALL_ID_HEADER of its request); core NATS, no reply. */
  agentCancel: (host: string, callId: string) => `cistern.agent.${host}.cancel.${callId}`,
  events: (host: string, pool: string | undefined) => `cistern.events.${host}.${pool ? nameToken(pool) : HOST_EVENTS_TOKEN}`,
  eventsAll: 'cistern.events.>',
  eventsOfHost: (host: string) => `cistern.events.${host}.>`,
  heartbeat: (host: string) => `cistern.heartbeat.${host}`,
  heartbeatAll: 'cistern.heartbeat.*',
  sync: (host: string) => `cistern.sync.${host}`,
  syncAll: 'cistern.sync.*',
  resync: 'cistern.control.resync',
  /** An agent asking for the secrets of one of its catalog pools (autostart); only agent `host` may publish here. */
  poolSecrets: (host: string) => `cistern.secrets.${host}`,
  poolSecretsAll: 'cistern.secrets.*',
  /** Coordinator-made events (pool defined/undefined, host online/offline). */
  coordinatorEvents: (host: string, pool: string | undefined) => `cistern.events.${host}.${pool ? nameToken(pool) : HOST_EVENTS_TOKEN}`,
};

export const catalogKeys = {
  pool: (host: string, pool: string) => `pools.${host}.${keyToken(pool)}`,
  poolsOfHost: (host: string) => `pools.${host}.>`,
  allPools: 'pools.>',
  parsePool(key: string): { host: string; pool: string } | undefined {
    const parts = key.split('.');
    if (parts.length !== 3 || parts[0] !== 'pools') return undefined;
    return { host: parts[1]!, pool: tokenToName(parts[2]!) };
  },
  host: (host: string) => `hosts.${host}`,
  allHosts: 'hosts.*',
  parseHost(key: string): string | undefined {
    const parts = key.split('.');
    return parts.length === 2 && parts[0] === 'hosts' && parts[1] ? parts[1] : undefined;
  },
};
