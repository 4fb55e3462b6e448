// Connection to the coordinator: address, TLS and token from flags or the
// environment, and a StorageApi over the generated grpc-js client.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { connect as tlsConnect, createSecureContext, type SecureContext } from 'node:tls';
import { CallCredentials, ChannelCredentials, credentials, Metadata, type ClientReadableStream } from '@grpc/grpc-js';
import { StorageServiceClient, type UploadVolumeRequest } from '../libs/proto/cistern/v1/storage.js';
import { StorageSession } from '../libs/api/session-client.js';
import type { SessionCall } from '../libs/api/session-envelope.js';
import { fromGrpcError } from '../libs/errors/grpc-status.js';
import { UNARY_METHODS, type StorageApi } from './api.js';
import { ConnectionBrokenError, UsageError } from './errors.js';

export const DEFAULT_SERVER = '127.0.0.1:50051';

export interface ConnectionOptions {
  server: string;
  ca?: string;
  cert?: string;
  key?: string;
  token?: string;
  /** virsh's -k: seconds without traffic before a ping; absent: no pings (-k 0, or no -k/-K) */
  keepaliveInterval?: number;
  /** virsh's -K: how many intervals an unanswered ping is waited for (at least one) */
  keepaliveCount?: number;
}

/** libvirt's client keepalive defaults, which virsh's -k or -K alone leave for the other. */
const DEFAULT_KEEPALIVE_INTERVAL = 5;
const DEFAULT_KEEPALIVE_COUNT = 5;

/** Flags win over environment variables (CISTERN_SERVER, CISTERN_CA, CISTERN_CERT, CISTERN_KEY, CISTERN_TOKEN); an empty one is neither. */
export function connectionOptions(
  flags: Map<string, string>,
  env: Record<string, string | undefined>,
): ConnectionOptions {
  // an empty flag is not given, as virsh's -c '' still opens LIBVIRT_DEFAULT_URI: `--ca "$UNSET"`
  // must not turn off the TLS that CISTERN_CA asks for, nor --server '' skip CISTERN_SERVER
  const pick = (flag: string, envName: string): string | undefined => {
    const v = flags.get(flag) || env[envName];
    return v === '' ? undefined : v;
  };
  const server = pick('server', 'CISTERN_SERVER') ?? DEFAULT_SERVER;
  checkServerAddress(server);
  const opts: ConnectionOptions = { server };
  const ca = pick('ca', 'CISTERN_CA');
  const cert = pick('cert', 'CISTERN_CERT');
  const key = pick('key', 'CISTERN_KEY');
  const token = pick('token', 'CISTERN_TOKEN');
  if (ca) opts.ca = ca;
  if (cert) opts.cert = cert;
  if (key) opts.key = key;
  if (token) opts.token = token;
  const interval = flags.get('keepalive-interval');
  const count = flags.get('keepalive-count');
  if (interval !== undefined || count !== undefined) {
    const seconds = interval !== undefined ? Number(interval) : DEFAULT_KEEPALIVE_INTERVAL;
    // -k 0 turns keepalive off, as virsh's (virConnectSetKeepAlive is then not called)
    if (seconds > 0) {
      opts.keepaliveInterval = seconds;
      opts.keepaliveCount = count !== undefined ? Number(count) : DEFAULT_KEEPALIVE_COUNT;
    }
  }
  if ((opts.cert && !opts.key) || (!opts.cert && opts.key)) {
    throw new UsageError('--cert and --key must be given together (mutual TLS)');
  }
  if (opts.cert && !opts.ca) throw new UsageError('--cert/--key need --ca (TLS)');
  return opts;
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`cannot read ${what} '${path}': ${(err as Error).message}`);
  }
}

function channelCredentials(opts: ConnectionOptions): ChannelCredentials {
  if (!opts.ca) return credentials.createInsecure();
  const ca = readPem(opts.ca, 'CA certificate');
  const key = opts.key ? readPem(opts.key, 'client key') : null;
  const cert = opts.cert ? readPem(opts.cert, 'client certificate') : null;
  const host = targetHost(target(opts.server));
  if (isIP(host)) {
    // the secure context grpc-js's createSsl makes (it too takes GRPC_SSL_CIPHER_SUITES)
    const ciphers = process.env.GRPC_SSL_CIPHER_SUITES;
    return new IpTlsCredentials(createSecureContext({ ca, ...(key && cert ? { key, cert } : {}), ...(ciphers ? { ciphers } : {}) }), host);
  }
  return credentials.createSsl(ca, key, cert);
}

/**
 * The coordinator's address as grpc-js takes it. A malformed one (`foo:bar`) would only fail
 * inside grpc-js, as "Failed to parse DNS address", without saying which setting is wrong.
 * grpc-js's own schemes (dns:, unix:, ipv4:, ...) are left to it.
 */
function checkServerAddress(server: string): void {
  const t = target(server);
  if (/^(dns|unix|unix-abstract|ipv4|ipv6|xds):/.test(t) || isIP(t)) return;
  const refuse = (problem: string): never => {
    throw new UsageError(`--server '${server}' (or CISTERN_SERVER): ${problem}; give HOST:PORT, e.g. 127.0.0.1:50051, or [IPv6]:PORT`);
  };
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(t);
  const [host, port] = bracketed ? [bracketed[1]!, bracketed[2]] : t.includes(':') ? [t.slice(0, t.lastIndexOf(':')), t.slice(t.lastIndexOf(':') + 1)] : [t, undefined];
  if (bracketed && isIP(host) !== 6) refuse(`'${host}' in brackets is not an IPv6 address`);
  if (!host) refuse('the host is missing');
  if (/[\s/@]/.test(host)) refuse(`the host '${host}' is not a host name or address`);
  if (port !== undefined && (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)) refuse(`the port '${port}' is not a number from 1 to 65535`);
}

/** Strips a scheme the user may have copied from a URL. */
function target(server: string): string {
  return server.replace(/^(grpcs?|https?):\/\//, '');
}

/** The host of HOST:PORT, [V6]:PORT, or a bare address. */
export function targetHost(t: string): string {
  const bracketed = /^\[([^\]]*)\](?::\d*)?$/.exec(t);
  if (bracketed) return bracketed[1]!;
  if (isIP(t)) return t;
  const colon = t.lastIndexOf(':');
  return colon >= 0 ? t.slice(0, colon) : t;
}

type SecureConnector = ReturnType<ChannelCredentials['_createSecureConnector']>;

/**
 * TLS to a coordinator named by an IP address. grpc-js always gives tls.connect the target
 * host as `servername` (grpc-node#1919), so an IP becomes an SNI server name, which RFC 6066
 * forbids: Node sends it anyway and prints DEP0123 on stderr. This makes the TLS connection the
 * way grpc-js does (its secure context, ALPN h2, the certificate verified, and refused when it
 * is not) but with no servername: Node then sends no SNI and checks the certificate against
 * `host`, the IP, which must be among its IP SANs (scripts/make-certs.sh puts 127.0.0.1 and
 * ::1 there). Names keep grpc-js's own credentials.
 */
class IpTlsCredentials extends ChannelCredentials {
  constructor(private readonly context: SecureContext, private readonly ip: string) {
    super();
  }

  _isSecure(): boolean {
    return true;
  }

  _equals(other: ChannelCredentials): boolean {
    return other === this;
  }

  _createSecureConnector(...[, , callCredentials]: Parameters<ChannelCredentials['_createSecureConnector']>): SecureConnector {
    const { context, ip } = this;
    const calls = callCredentials ?? CallCredentials.createEmpty();
    return {
      connect: (socket) =>
        new Promise((resolve, reject) => {
          const tls = tlsConnect({ socket, secureContext: context, host: ip, ALPNProtocols: ['h2'] }, () => {
            if (!tls.authorized) {
              reject(tls.authorizationError);
              return;
            }
            resolve({ socket: tls, secure: true });
          });
          tls.on('error', reject);
        }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => calls,
      destroy: () => undefined,
    };
  }
}

/** The receive window of the CLI's connection (HTTP/2 flow control), for whole listing pages. */
const LISTING_WINDOW_BYTES = 4 * 1024 * 1024;

/** Node's timers (grpc-js's pings) take at most 2^31-1 ms; a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * virsh's keepalive as gRPC's: a ping after `interval` seconds without traffic, the connection
 * dropped when it is not answered within `count` intervals (libvirt closes it after `count`
 * unanswered pings, one an interval; a count of 0 still waits one interval for the answer).
 */
export function keepaliveChannelOptions(opts: ConnectionOptions): Record<string, number> {
  if (!opts.keepaliveInterval) return {};
  const ms = Math.min(opts.keepaliveInterval * 1000, MAX_TIMER_MS);
  return {
    'grpc.keepalive_time_ms': ms,
    'grpc.keepalive_timeout_ms': Math.min(ms * Math.max(opts.keepaliveCount ?? 1, 1), MAX_TIMER_MS),
  };
}

export function connect(opts: ConnectionOptions): StorageApi {
  const client = new StorageServiceClient(target(opts.server), channelCredentials(opts), {
    ...keepaliveChannelOptions(opts),
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    // HTTP/2's default 64 KiB window makes a 3 MB listing page (10,000 volumes) wait for
    // ~45 window updates; a 4 MiB window lets the server send it at once (measured: 10,000
    // volumes with connect, median 93 -> 59 ms). Uploads are not affected: they send.
    'grpc-node.flow_control_window': LISTING_WINDOW_BYTES,
    // a connection of its own, not one shared from grpc-js's process-wide pool: after a failed
    // connect the session drops this client and opens another (run.ts, Connections), which must
    // dial at once, not inherit the old one's reconnect backoff
    'grpc.use_local_subchannel_pool': 1,
  });
  const metadata = (): Metadata => {
    const md = new Metadata();
    if (opts.token) md.set('authorization', `Bearer ${opts.token}`);
    return md;
  };
  const api: Partial<StorageApi> = {};
  // every unary call goes over one Session stream, opened with the first: a shell or a script
  // of commands pays for one HTTP/2 stream, as virsh keeps one connection (session-client.ts)
  const session = new StorageSession(client, metadata);
  for (const method of UNARY_METHODS) {
    (api as Record<string, unknown>)[method] = (req: unknown) => session.call(method as SessionCall, req as never);
  }
  api.listVolumesBytes = (req) => session.callBytes('listVolumes', req);
  api.uploadVolume = (messages) =>
    new Promise((resolve, reject) => {
      let failed = false;
      const call = client.uploadVolume(metadata(), (err, res) => {
        if (err) {
          failed = true;
          reject(streamError(err));
        } else resolve(res);
      });
      void (async () => {
        try {
          for await (const msg of messages as AsyncIterable<UploadVolumeRequest>) {
            if (failed) return;
            if (!call.write(msg)) await new Promise<void>((r) => call.once('drain', () => r()));
          }
          call.end();
        } catch (err) {
          call.cancel();
          failed = true;
          reject(err);
        }
      })();
    });
  api.downloadVolume = (req) => readStream(client.downloadVolume(req, metadata()));
  api.watchEvents = (req, signal, onPositioned) => {
    const call = client.watchEvents(req, metadata());
    // the initial metadata comes once the server has positioned the stream (x-cistern-start-sequence)
    if (onPositioned) call.once('metadata', (md) => onPositioned(startSequenceOf(md)));
    if (signal) {
      if (signal.aborted) call.cancel();
      else signal.addEventListener('abort', () => call.cancel(), { once: true });
    }
    return readStream(call, true);
  };
  api.close = () => {
    session.close();
    client.close();
  };
  return api as StorageApi;
}

/** x-cistern-start-sequence of a WatchEvents' initial metadata; undefined when absent or not a number. */
export function startSequenceOf(md: Metadata): bigint | undefined {
  const v = md.get('x-cistern-start-sequence')[0];
  return typeof v === 'string' && /^[0-9]{1,20}$/.test(v) ? BigInt(v) : undefined;
}

/**
 * A stream's error as the typed error; UNAVAILABLE that grpc-js made itself because the
 * connection broke once the call was under way is a ConnectionBrokenError. The coordinator's
 * own errors carry its status details in their trailers (libs/errors/grpc-status.ts), grpc-js's
 * do not; a call that never connected sent nothing and keeps its error.
 */
function streamError(err: unknown): Error {
  const e = fromGrpcError(err);
  const trailers = (err as { metadata?: Metadata }).metadata;
  const fromServer = (trailers?.get('grpc-status-details-bin').length ?? 0) > 0;
  if (e.code !== 'UNAVAILABLE' || fromServer || /No connection established/.test(e.message)) return e;
  return new ConnectionBrokenError(e.message);
}

/** Async iteration over a server stream; errors become typed errors; a cancel ends quietly when asked. */
async function* readStream<T>(call: ClientReadableStream<T>, cancelIsEnd = false): AsyncGenerator<T> {
  try {
    for await (const msg of call) yield msg as T;
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (cancelIsEnd && code === 1 /* CANCELLED */) return;
    throw streamError(err);
  } finally {
    call.cancel();
  }
}
