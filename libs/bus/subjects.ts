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

/** The pool token of a host event's subject (cistern.events.<host>._host.<origin>): no pool's token. */
export const HOST_EVENTS_TOKEN = '_host';

/**
 * Who published an event, the last token of its subject: `a` an agent, `c` a coordinator. The
 * NATS user of agent H may publish only cistern.events.H.*.a (scripts/nats-config.mjs), so an
 * event under `.c` is a coordinator's, and readers refuse the kinds only coordinators make
 * when they come under `.a` (services/coordinator/event-log.ts). A subject of four tokens,
 * cistern.events.<host>.<pool>, is from a version before the origin token ('legacy').
 */
export type EventOrigin = 'agent' | 'coordinator';
const ORIGIN_TOKEN: Record<EventOrigin, string> = { agent: 'a', coordinator: 'c' };

export interface EventSubject {
  host: string;
  /** the pool's token, or HOST_EVENTS_TOKEN */
  poolToken: string;
  origin: EventOrigin | 'legacy';
}

/** The parts of an event's subject; undefined when it is none (another prefix, count of tokens or origin). */
export function parseEventSubject(subject: string): EventSubject | undefined {
  const parts = subject.split('.');
  if (parts[0] !== 'cistern' || parts[1] !== 'events' || !parts[2] || !parts[3]) return undefined;
  if (parts.length === 4) return { host: parts[2], poolToken: parts[3], origin: 'legacy' };
  if (parts.length !== 5) return undefined;
  const origin = (Object.keys(ORIGIN_TOKEN) as EventOrigin[]).find((o) => ORIGIN_TOKEN[o] === parts[4]);
  return origin ? { host: parts[2], poolToken: parts[3], origin } : undefined;
}

/** Where `origin` publishes an event of `host` and `pool` (none: a host event). */
export const eventSubject = (origin: EventOrigin, host: string, pool: string | undefined): string =>
  `cistern.events.${host}.${pool ? nameToken(pool) : HOST_EVENTS_TOKEN}.${ORIGIN_TOKEN[origin]}`;

/**
 * A name as one subject token: itself when safe, else '~' + base64url(utf8). A pool named
 * `_host` is encoded too: as itself it would share the subject of its host's own events, and a
 * reader of `cistern.events.*._host.*` would get that pool's events as host events.
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
  /** Agent H's events of `pool` (none: a host event), the only ones it may publish (scripts/nats-config.mjs). */
  agentEvents: (host: string, pool: string | undefined) => eventSubject('agent', host, pool),
  eventsAll: 'cistern.events.>',
  /** Every event of the host, both origins and the four-token subjects of older versions. */
  eventsOfHost: (host: string) => `cistern.events.${host}.>`,
  /**
   * The events of one pool, of one host or of every host ('*'), both origins: one subject, as
   * a consumer of nats-server 2.9 takes. Not the four-token subjects of older versions.
   */
  eventsOfPool: (host: string, pool: string) => `cistern.events.${host}.${nameToken(pool)}.*`,
  /** The four-token subjects of versions before the origin token (docs/events.md, "Older streams"). */
  legacyEvents: 'cistern.events.*.*',
  heartbeat: (host: string) => `cistern.heartbeat.${host}`,
  heartbeatAll: 'cistern.heartbeat.*',
  sync: (host: string) => `cistern.sync.${host}`,
  /** What sync(host) puts before the host's token (delivered-subject.ts, tokenAfter). */
  syncPrefix: 'cistern.sync',
  syncAll: 'cistern.sync.*',
  resync: 'cistern.control.resync',
  /** An agent asking for the secrets of one of its catalog pools (autostart); only agent `host` may publish here. */
  poolSecrets: (host: string) => `cistern.secrets.${host}`,
  /** What poolSecrets(host) puts before the host's token. */
  poolSecretsPrefix: 'cistern.secrets',
  poolSecretsAll: 'cistern.secrets.*',
  /** Coordinator-made events (pool defined/undefined, host online/offline/deleted, reconcile events): no agent may publish here. */
  coordinatorEvents: (host: string, pool: string | undefined) => eventSubject('coordinator', host, pool),
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
