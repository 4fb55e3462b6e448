// Command-line flags and environment for the coordinator.
import { InvalidArgumentError } from '../../libs/errors/errors.js';
import { isLogLevel, type LogLevel } from '../../libs/log/logger.js';
import { EVENT_DUPLICATE_WINDOW_SECONDS } from '../../libs/bus/events.js';
import { passwordOnCommandLine } from '../../libs/bus/password-file.js';
import { RELIABILITY_USAGE, reliabilityDefaults, reliabilityFlag, type ReliabilityConfig } from './reliability-config.js';

export interface CoordinatorConfig {
  natsUrl: string;
  listen: string;
  dataDir: string | undefined;
  /** Event stream retention in seconds. */
  eventMaxAgeSeconds: number | undefined;
  logLevel: LogLevel;
  /** How long the start waits for syncs from hosts known to be online. */
  syncWaitMs: number;
  /** How long an upload or download client may be idle (streams.ts CLIENT_IDLE_TIMEOUT_MS). */
  streamIdleMs?: number;
  /** How often the server pings each client connection; one that does not answer within the same time is closed. */
  keepaliveMs?: number;
  /** libvirt's RELAX NG schemas, for requests with validate (undefined: /usr/share/libvirt/schemas). */
  schemaDir: string | undefined;
  /** How long the coordinator waits for an agent's answer (undefined: 1 h). */
  agentTimeoutMs?: number;
  /** How long a graceful stop lets running calls finish before answering them UNAVAILABLE (undefined: 5 s). */
  stopGraceMs?: number;
  /** Security: see docs/security.md. */
  security: SecurityConfig;
  /** Event retention by size and count, retry window. */
  reliability: ReliabilityConfig;
}

export interface SecurityConfig {
  tlsCert?: string;
  tlsKey?: string;
  /** CA of client certificates: mutual TLS. */
  tlsClientCa?: string;
  /** Bearer token file; without it every caller is let in (local stack only). */
  tokensFile?: string;
  /** Allow a plaintext port on a non-loopback address. */
  insecure: boolean;
  /** AES-256 key for secret values at rest (32 bytes, raw or base64/hex text). */
  secretKeyFile?: string;
  natsUser?: string;
  /** Password from a file (preferred) or env NATS_PASSWORD; never from argv, which every local user reads in ps. */
  natsPass?: string;
  natsPassFile?: string;
  maxCallsPerClient?: number;
  maxSessionsPerClient?: number;
  /** TCP connections to the gRPC port (connection-gate.ts). */
  maxConnectionsPerAddress?: number;
  maxConnections?: number;
  connectionIdleMs?: number;
  /** A TLS handshake not finished this long after its connection was accepted is closed (handshake-bound.ts). */
  tlsHandshakeTimeoutMs?: number;
}

export const USAGE = `usage: cistern-coordinator [--nats URL] [--listen HOST:PORT] [--data DIR]
                          [--event-max-age DURATION] [--sync-wait-ms N] [--stream-idle-ms N]
                          [--keepalive-ms N]
                          [--log-level debug|info|warn|error]
  -h, --help            this text
  --nats URL[,URL...]   NATS server, or a cluster's servers (env NATS_URL, default nats://127.0.0.1:4222)
  --listen HOST:PORT    gRPC address (env CISTERN_LISTEN, default 127.0.0.1:50051)
  --data DIR            local scratch directory, nothing in it matters (env CISTERN_DATA)
  --event-max-age DUR   event log retention: seconds, or 15m 12h 7d, from 2m to 106751d
                        (env CISTERN_EVENT_MAX_AGE, default 7d)
  --sync-wait-ms N      at start, wait up to N ms for the full sync of every host known to be
                        online before serving (0 to 3600000, default 3000; 0 = serve at once)
  --stream-idle-ms N    an upload that sends no data, or a download whose client takes none, for
                        N ms ends with DEADLINE_EXCEEDED (1000 to 55000, default 55000: under the
                        agents' 60 s)
  --keepalive-ms N      ping each client connection every N ms; one that does not answer within N ms
                        (its host vanished, a NAT dropped it) is closed and its calls end, freeing
                        their per-client slots (1000 to 3600000, default 30000)
  --agent-timeout-ms N  how long a call waits for its agent's answer; then DEADLINE_EXCEEDED
                        naming the operation, which may still complete (1000 to 86400000,
                        env CISTERN_AGENT_TIMEOUT_MS, default 3600000)
  --stop-grace-ms N     on SIGTERM or SIGINT, how long the calls still running may finish before
                        they are answered UNAVAILABLE (0 to 600000, env CISTERN_STOP_GRACE_MS,
                        default 5000)
  --log-level LEVEL     default info (env CISTERN_LOG_LEVEL)
  --schema-dir DIR      libvirt's RELAX NG schemas (storagepool.rng, storagevol.rng), checked by
                        xmllint for requests with validate (env CISTERN_SCHEMA_DIR,
                        default /usr/share/libvirt/schemas, from Debian's libvirt0)
security (docs/security.md):
  --tls-cert FILE       server certificate, PEM (env CISTERN_TLS_CERT)
  --tls-key FILE        its private key, PEM (env CISTERN_TLS_KEY)
  --tls-client-ca FILE  require client certificates from this CA (mutual TLS; env CISTERN_TLS_CLIENT_CA)
  --tokens FILE         bearer tokens and roles, JSON (env CISTERN_TOKENS_FILE); without it
                        every caller is admitted: for a loopback-only local stack
  --insecure            allow --listen on a non-loopback address without TLS
  --secret-key-file F   32-byte key encrypting secret values at rest (env CISTERN_SECRET_KEY_FILE)
  --nats-user USER      NATS user (env NATS_USER)
  --nats-pass-file F    file holding the NATS password (env NATS_PASSWORD_FILE, or NATS_PASSWORD)
  --max-calls-per-client N  concurrent calls one client may have running, and health or
                        reflection calls one address may (default 64)
  --max-sessions-per-client N  Session streams one client may hold open (default 32)
  --max-connections-per-address N  TCP connections one source address may hold open to the
                        gRPC port, calls or not; beyond it closed at once (default 256)
  --max-connections N   TCP connections all addresses together may hold open (default 1024)
  --connection-idle-ms N  a connection with no call open for N ms is closed, also one that
                        never sends a call (1000 to 86400000, default 300000)
  --tls-handshake-timeout-ms N  a connection that has not finished its TLS handshake N ms
                        after it was accepted is closed (1000 to 120000, default 10000)
${RELIABILITY_USAGE}`;

/** '7d', '12h', '15m', '30s' or plain seconds. */
export function parseDuration(value: string, field: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(field, `'${value}' is not a duration; use seconds or a number with s, m, h or d`);
  const n = Number(m[1]);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  if (n <= 0) throw new InvalidArgumentError(field, 'duration must be positive');
  return n * unit;
}

/** The longest max age NATS takes: 2^63-1 ns, in whole days (a longer one is "invalid JSON"). */
const EVENT_MAX_AGE_DAYS = 106_751;

/**
 * The event stream's retention by age. nats-server refuses a stream that keeps its events for
 * less than its duplicate window ("duplicates window can not be larger then max age"), or
 * longer than 2^63-1 ns: refused here, naming the flag, rather than by the stream's set-up,
 * which the coordinator would retry at every start without ever serving.
 */
function parseEventMaxAge(value: string, field: string): number {
  const seconds = parseDuration(value, field);
  if (seconds < EVENT_DUPLICATE_WINDOW_SECONDS || seconds > EVENT_MAX_AGE_DAYS * 86_400) {
    throw new InvalidArgumentError(
      field,
      `'${value}' is out of range; allowed: from ${EVENT_DUPLICATE_WINDOW_SECONDS / 60}m (the stream's duplicate window) to ${EVENT_MAX_AGE_DAYS}d`,
    );
  }
  return seconds;
}

/** A whole number from `min` to `max`, or refused naming `field`, the value and the range. */
function parseWhole(value: string, field: string, min: number, max: number, unit = ''): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new InvalidArgumentError(field, `'${value}' is not allowed; a whole number${unit} from ${min} to ${max}`);
  }
  return n;
}

const parseMs = (value: string, field: string, min: number, max: number): number => parseWhole(value, field, min, max, ' of milliseconds');

/**
 * How long a call waits for its agent: at least a second (a ping's own wait), at most a day;
 * past it the call is DEADLINE_EXCEEDED while the agent may still be at work (agent-rpc.ts).
 */
const AGENT_TIMEOUT_RANGE = [1000, 86_400_000] as const;
/** A graceful stop's grace: 0 answers the running calls at once; main.ts's forced exit waits for it. */
const STOP_GRACE_RANGE = [0, 600_000] as const;

/**
 * HOST:PORT with a port grpc-js can bind (0: the system picks a free one). Checked here, before
 * the coordinator connects to NATS: a port such as 99999 used to fail only once it had applied
 * its event retention to the shared stream and asked every agent for a full sync, and then in
 * grpc-js's words ("options.port should be >= 0 and < 65536"), naming no flag.
 */
function checkListen(listen: string, field: string): void {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(listen);
  if (!m) throw new InvalidArgumentError(field, `'${listen}' is not HOST:PORT`);
  if (Number(m[2]) > 65_535) throw new InvalidArgumentError(field, `'${listen}' is not HOST:PORT with a port from 0 to 65535`);
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): CoordinatorConfig | 'help' {
  const config: CoordinatorConfig = {
    natsUrl: env.NATS_URL || 'nats://127.0.0.1:4222',
    listen: env.CISTERN_LISTEN || '127.0.0.1:50051',
    dataDir: env.CISTERN_DATA || undefined,
    eventMaxAgeSeconds: env.CISTERN_EVENT_MAX_AGE ? parseEventMaxAge(env.CISTERN_EVENT_MAX_AGE, 'CISTERN_EVENT_MAX_AGE') : undefined,
    logLevel: 'info',
    syncWaitMs: 3000,
    schemaDir: env.CISTERN_SCHEMA_DIR || undefined,
    agentTimeoutMs: env.CISTERN_AGENT_TIMEOUT_MS ? parseMs(env.CISTERN_AGENT_TIMEOUT_MS, 'CISTERN_AGENT_TIMEOUT_MS', ...AGENT_TIMEOUT_RANGE) : undefined,
    stopGraceMs: env.CISTERN_STOP_GRACE_MS ? parseMs(env.CISTERN_STOP_GRACE_MS, 'CISTERN_STOP_GRACE_MS', ...STOP_GRACE_RANGE) : undefined,
    reliability: reliabilityDefaults(env, parseDuration),
    security: {
      tlsCert: env.CISTERN_TLS_CERT || undefined,
      tlsKey: env.CISTERN_TLS_KEY || undefined,
      tlsClientCa: env.CISTERN_TLS_CLIENT_CA || undefined,
      tokensFile: env.CISTERN_TOKENS_FILE || undefined,
      insecure: false,
      secretKeyFile: env.CISTERN_SECRET_KEY_FILE || undefined,
      natsUser: env.NATS_USER || undefined,
      natsPass: env.NATS_PASSWORD || undefined,
      natsPassFile: env.NATS_PASSWORD_FILE || undefined,
    },
  };
  const sec = config.security;
  let listenFrom = env.CISTERN_LISTEN ? 'CISTERN_LISTEN' : '--listen';
  const level = env.CISTERN_LOG_LEVEL;
  if (level) {
    if (!isLogLevel(level)) throw new InvalidArgumentError('CISTERN_LOG_LEVEL', `'${level}' is not one of debug, info, warn, error`);
    config.logLevel = level;
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (arg.startsWith('--') && eq > 0) return arg.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new InvalidArgumentError(flag, 'needs a value');
      return v;
    };
    switch (flag) {
      case '-h':
      case '--help':
        return 'help';
      case '--nats':
        config.natsUrl = value();
        break;
      case '--listen':
        config.listen = value();
        listenFrom = '--listen';
        break;
      case '--data':
        config.dataDir = value();
        break;
      case '--event-max-age':
        config.eventMaxAgeSeconds = parseEventMaxAge(value(), '--event-max-age');
        break;
      case '--stream-idle-ms':
        // under the agents' 60 s idle timeout
        config.streamIdleMs = parseMs(value(), flag, 1000, 55_000);
        break;
      case '--keepalive-ms':
        config.keepaliveMs = parseMs(value(), flag, 1000, 3_600_000);
        break;
      case '--agent-timeout-ms':
        config.agentTimeoutMs = parseMs(value(), flag, ...AGENT_TIMEOUT_RANGE);
        break;
      case '--stop-grace-ms':
        config.stopGraceMs = parseMs(value(), flag, ...STOP_GRACE_RANGE);
        break;
      case '--sync-wait-ms':
        // an hour is far past any fleet's full sync; more would only hold the coordinator's start
        config.syncWaitMs = parseMs(value(), flag, 0, 3_600_000);
        break;
      case '--schema-dir': {
        const v = value();
        if (!v.startsWith('/')) throw new InvalidArgumentError('--schema-dir', `'${v}' is not an absolute path`);
        config.schemaDir = v;
        break;
      }
      case '--tls-cert':
        sec.tlsCert = value();
        break;
      case '--tls-key':
        sec.tlsKey = value();
        break;
      case '--tls-client-ca':
        sec.tlsClientCa = value();
        break;
      case '--tokens':
        sec.tokensFile = value();
        break;
      case '--insecure':
        sec.insecure = true;
        break;
      case '--secret-key-file':
        sec.secretKeyFile = value();
        break;
      case '--nats-user':
        sec.natsUser = value();
        break;
      case '--nats-pass':
        throw passwordOnCommandLine();
      case '--nats-pass-file':
        sec.natsPassFile = value();
        break;
      case '--max-calls-per-client':
        sec.maxCallsPerClient = parseWhole(value(), flag, 1, 100_000);
        break;
      case '--max-sessions-per-client':
        sec.maxSessionsPerClient = parseWhole(value(), flag, 1, 100_000);
        break;
      case '--max-connections-per-address':
        sec.maxConnectionsPerAddress = parseWhole(value(), flag, 1, 100_000);
        break;
      case '--max-connections':
        sec.maxConnections = parseWhole(value(), flag, 1, 100_000);
        break;
      case '--connection-idle-ms':
        sec.connectionIdleMs = parseMs(value(), flag, 1000, 86_400_000);
        break;
      case '--tls-handshake-timeout-ms':
        // above 120 s Node's own handshake timeout would end it first
        sec.tlsHandshakeTimeoutMs = parseMs(value(), flag, 1000, 120_000);
        break;
      case '--log-level': {
        const v = value();
        if (!isLogLevel(v)) throw new InvalidArgumentError('--log-level', `'${v}' is not one of debug, info, warn, error`);
        config.logLevel = v;
        break;
      }
      default:
        if (reliabilityFlag(flag, value, config.reliability, parseDuration)) break;
        throw new InvalidArgumentError(flag, `unknown option\n${USAGE}`);
    }
  }
  if (config.schemaDir !== undefined && !config.schemaDir.startsWith('/')) {
    throw new InvalidArgumentError('CISTERN_SCHEMA_DIR', `'${config.schemaDir}' is not an absolute path`);
  }
  checkListen(config.listen, listenFrom);
  return config;
}
