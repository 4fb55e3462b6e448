// The gRPC server: StorageService (every call, a Session's too, through CallRunner.run, the
// auth/audit seam), health checking and server reflection.
import {
  Server,
  ServerCredentials,
  type Metadata,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { CisternError, InternalError, UnavailableError } from '../../libs/errors/errors.js';
import { toGrpcError } from '../../libs/errors/grpc-status.js';
import type { StorageServiceServer } from '../../libs/proto/cistern/v1/storage.js';
import { errorCodeOf, METHODS, type CallGuard } from './call-guard.js';
import type { CallContext, CoordinatorServices } from './context.js';
import * as events from './handlers/events.js';
import * as streams from './handlers/streams.js';
import { checkRequestId } from './validate.js';
import { addReflection } from './reflection.js';
import { refuseMalformed } from './strict-decode.js';
import { withCatchUp } from './catch-up.js';
import { Sessions } from './session.js';
import { admitBeforeRead } from './admit-before-read.js';
import { MAX_REQUEST_MESSAGE } from './message-limit.js';
import { ServiceHealth } from './service-health.js';
import {
  ConnectionGate,
  DEFAULT_CONNECTION_IDLE_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  listeningServers,
} from './connection-gate.js';
import { boundTlsHandshakes, DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS } from './handshake-bound.js';
import type { SessionCall } from '../../libs/api/session-envelope.js';
import { SERVED_SERVICE, UNARY_HANDLERS, type Handler } from './unary-methods.js';

export const SERVICE_NAME = 'cistern.v1.StorageService';

/** What a call names: for audit lines. */
function resourceOf(req: unknown): string {
  const r = (req ?? {}) as Record<string, unknown>;
  for (const k of ['name', 'parent']) if (typeof r[k] === 'string' && r[k]) return r[k] as string;
  // DefinePool / CreatePool name the host and carry the pool in the definition
  const host = typeof r.host === 'string' ? r.host.replace(/^hosts\//, '') : '';
  const pool = (r.definition as { name?: unknown } | undefined)?.name;
  if (host && typeof pool === 'string' && pool) return `hosts/${host}/pools/${pool}`;
  return host ? `hosts/${host}` : '';
}

/** What run needs of a call: a gRPC call, or one call of a Session (session.ts). */
export interface CallLike {
  metadata: Metadata;
  getPeer(): string;
  /**
   * 'cancelled' aborts the call's signal: with `reason` when that is a Cistern error (a Session
   * call whose own deadline passed: DEADLINE_EXCEEDED), else as a client's cancel.
   */
  on(event: 'cancelled', cb: (reason?: unknown) => void): unknown;
  removeListener(event: 'cancelled', cb: (reason?: unknown) => void): unknown;
  cancelled?: boolean;
}

export class CallRunner {
  /** The server-streaming calls running now (WatchEvents, DownloadVolume): a shutdown ends them. */
  private readonly openStreams = new Set<AbortController>();
  /** The calls running now that answer once (unary, Session calls, uploads): a shutdown past its grace answers them. */
  private readonly openCalls = new Set<(why: CisternError) => void>();
  /**
   * Calls admitted on their metadata before their request was read (admitCall), by the
   * metadata object grpc-js hands the handler: run takes each over, but not its slot, which the
   * interceptor gives back once the answer has been delivered (admit-before-read.ts). A client
   * cannot name an entry: the keys are objects, not anything it sends.
   */
  private readonly admitted = new WeakMap<Metadata, { principal: string }>();

  constructor(
    private readonly svc: CoordinatorServices,
    private readonly guard: CallGuard,
  ) {}

  /**
   * Ends every open server stream with `why`. A watcher never ends by itself: without this a
   * graceful shutdown waits out its grace and then cuts the streams, which clients see as
   * CANCELLED, a code that by gRPC convention means they cancelled, so they would not retry.
   */
  endStreams(why: CisternError): void {
    for (const abort of this.openStreams) abort.abort(why);
  }

  /**
   * Answers every call still running with `why`, once a graceful shutdown's grace is over.
   * Without this the forced shutdown resets their streams, which clients see as CANCELLED
   * 'Call cancelled': by gRPC convention their own cancel, so they would not retry. A unary
   * call's work is not cancelled: as when the coordinator is killed, the agent finishes it and
   * a retry with the same request id (through another coordinator) gets its result. An upload
   * cannot go on without its client's data: its work is stopped.
   */
  endCalls(why: CisternError): void {
    for (const end of this.openCalls) end(why);
  }

  /** Authenticates, authorizes, runs, audits. The one path every RPC takes. */
  async run<T>(
    method: string,
    call: CallLike,
    request: unknown,
    body: (ctx: CallContext) => Promise<T>,
    kind: 'call' | 'upload' | 'stream' = 'call',
  ): Promise<T> {
    const spec = METHODS[method];
    if (!spec) throw new InternalError(`method ${method} has no access rule`);
    const started = performance.now();
    const abort = new AbortController();
    // grpc-js also emits 'cancelled' when a stream closes after its answer was sent: by then
    // nothing listens to the signal, and abort() would only build a DOMException per call
    // (grpc-js gives the string 'cancelled' as reason: a plain abort, CANCELLED downstream)
    const onCancelled = (reason?: unknown): void => abort.abort(reason instanceof CisternError ? reason : undefined);
    call.on('cancelled', onCancelled);
    if (kind === 'stream') this.openStreams.add(abort);
    let endCall: ((why: CisternError) => void) | undefined;
    const ended =
      kind === 'stream'
        ? undefined
        : new Promise<never>((_, reject) => {
            endCall = (why) => {
              // its answer is sent now: the forced shutdown that follows must not cancel its work
              call.removeListener('cancelled', onCancelled);
              if (kind === 'upload') abort.abort(why);
              reject(why);
            };
            this.openCalls.add(endCall);
          });
    // answered by a shutdown while still being authenticated: that is not an unhandled rejection
    ended?.catch(() => undefined);
    const requestId = typeof (request as { requestId?: unknown })?.requestId === 'string' ? ((request as { requestId: string }).requestId) : '';
    let principal = 'unknown';
    let ctx: CallContext | undefined;
    let failure: unknown;
    let release: (() => void) | undefined;
    const early = this.admitted.get(call.metadata);
    this.admitted.delete(call.metadata);
    try {
      if (early) {
        // its slot stays taken after the handler ends, until the client has its answer
        principal = early.principal;
      } else {
        principal = await this.guard.authenticate(call.metadata, call.getPeer());
        await this.guard.authorize(principal, spec);
        release = this.guard.admit?.(principal, call.getPeer());
      }
      refuseMalformed(request);
      checkRequestId(requestId);
      ctx = {
        method,
        principal,
        metadata: call.metadata,
        peer: call.getPeer(),
        signal: abort.signal,
        log: this.svc.log.child({ method }),
        requestId,
      };
      const working = body(ctx);
      // the work of a call answered by a shutdown goes on alone: its outcome goes nowhere
      if (ended) working.catch(() => undefined);
      const result = ended ? await Promise.race([working, ended]) : await working;
      // a stream the server ended (endStreams) fails with the server's reason, however it wound down
      if (kind === 'stream' && abort.signal.reason instanceof CisternError) throw abort.signal.reason;
      return result;
    } catch (thrown) {
      failure = kind === 'stream' && abort.signal.reason instanceof CisternError ? abort.signal.reason : thrown;
      // the status a client gets is cut to fit its trailer limit; the whole failure stays here
      if (errorCodeOf(failure) === 'INTERNAL') (ctx?.log ?? this.svc.log).error('call failed', { method, requestId, error: failure });
      throw failure;
    } finally {
      this.openStreams.delete(abort);
      if (endCall) this.openCalls.delete(endCall);
      call.removeListener('cancelled', onCancelled);
      release?.();
      this.guard.audit(
        {
          method,
          principal,
          resource: ctx?.resource ?? resourceOf(request),
          code: errorCodeOf(failure),
          durationMs: Math.round((performance.now() - started) * 1000) / 1000,
          requestId: ctx?.requestId ?? requestId,
        },
        spec,
      );
    }
  }

  /**
   * A StorageService call on its metadata, before its request is read (admit-before-read.ts):
   * authenticated, authorized and given one of its client's call slots, or refused and audited
   * (without a resource: the request is not read). Returns the slot's release, for when the
   * call's stream is over; run takes the admission over, so the call is not counted twice.
   */
  async admitCall(method: string, metadata: Metadata, peer: string): Promise<() => void> {
    const spec = METHODS[method];
    if (!spec) return () => undefined; // run refuses it
    const started = performance.now();
    let principal = 'unknown';
    try {
      principal = await this.guard.authenticate(metadata, peer);
      await this.guard.authorize(principal, spec);
      const release = this.guard.admit?.(principal, peer) ?? (() => undefined);
      this.admitted.set(metadata, { principal });
      return release;
    } catch (err) {
      const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
      this.guard.audit({ method, principal, resource: '', code: errorCodeOf(err), durationMs, requestId: '' }, spec);
      throw err;
    }
  }

  /**
   * A health or reflection call on its metadata, before its request is read (admit-before-read.ts):
   * these need no token, so they are counted per peer address. Returns the slot's release.
   */
  admitOpenCall(peer: string): () => void {
    return this.guard.admitOpen?.(peer) ?? (() => undefined);
  }

  /**
   * A Session stream as it opens: its token authenticated (UNAUTHENTICATED ends it before any
   * message is read, so a client without one is answered nothing) and its room among the
   * client's open sessions taken. Returns the release for when the stream ends. Each call on it
   * is still authenticated, authorized and limited as a unary call.
   */
  async openSession(call: Pick<CallLike, 'metadata' | 'getPeer'>): Promise<() => void> {
    const principal = await this.guard.authenticate(call.metadata, call.getPeer());
    return this.guard.admitSession?.(principal, call.getPeer()) ?? (() => undefined);
  }

  /**
   * One unary call, from a unary RPC or a Session's message: read-your-writes catch-up, the
   * answer of an earlier call with the same request id, then the handler, all through run.
   */
  unaryCall<Req, Res>(method: string, handler: Handler<Req, Res>, call: CallLike, request: Req): Promise<Res> {
    // an answer that may only mean a change made through another coordinator has not been
    // read here yet is given once this coordinator has caught up (catch-up.ts)
    const attempt = (ctx: CallContext): Promise<Res> => withCatchUp(this.svc, ctx.signal, () => handler(this.svc, ctx, request));
    // a retry with the request id of an earlier call gets that call's response (request-results.ts)
    const body = (ctx: CallContext): Promise<Res> =>
      this.svc.results
        ? this.svc.results.once(method, ctx.principal, ctx.requestId, request, () => attempt(ctx), ctx.signal)
        : attempt(ctx);
    return this.run(method, call, request, body);
  }

  unary<Req, Res>(method: string, handler: Handler<Req, Res>) {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      this.unaryCall(method, handler, call, call.request).then(
        (res) => callback(null, res),
        (err) => callback(toGrpcError(err)),
      );
    };
  }

  serverStream<Req, Res>(method: string, handler: (svc: CoordinatorServices, ctx: CallContext, call: ServerWritableStream<Req, Res>) => Promise<void>) {
    return (call: ServerWritableStream<Req, Res>): void => {
      this.run(method, call, call.request, (ctx) => handler(this.svc, ctx, call), 'stream').then(
        () => {
          if (!call.cancelled) call.end();
        },
        (err) => {
          if (!call.cancelled) call.emit('error', toGrpcError(err));
        },
      );
    };
  }

  clientStream<Req, Res>(method: string, handler: (svc: CoordinatorServices, ctx: CallContext, call: ServerReadableStream<Req, Res>) => Promise<Res>) {
    return (call: ServerReadableStream<Req, Res>, callback: sendUnaryData<Res>): void => {
      this.run(method, call, undefined, (ctx) => handler(this.svc, ctx, call), 'upload').then(
        (res) => callback(null, res),
        (err) => callback(toGrpcError(err)),
      );
    };
  }
}

export function storageService(runner: CallRunner, sessions: Sessions): StorageServiceServer {
  const unary = Object.fromEntries(
    Object.entries(UNARY_HANDLERS).map(([key, [method, handler]]) => [key, runner.unary(method, handler as Handler<unknown, unknown>)]),
  ) as unknown as Pick<StorageServiceServer, SessionCall>;
  return {
    ...unary,
    uploadVolume: runner.clientStream('UploadVolume', streams.uploadVolume),
    downloadVolume: runner.serverStream('DownloadVolume', streams.downloadVolume),
    watchEvents: runner.serverStream('WatchEvents', events.watchEvents),
    // answers are written as envelope bytes (SERVED_SERVICE.session serializes nothing)
    session: sessions.handler() as unknown as StorageServiceServer['session'],
  };
}

/** How often the server pings a client connection, and how long it waits for the answer. */
export const DEFAULT_KEEPALIVE_MS = 30_000;

/** How long a graceful stop lets the calls still running finish (--stop-grace-ms). */
export const DEFAULT_STOP_GRACE_MS = 5000;

/** How long the answers a shutdown gives its last calls have to reach their clients before the connections are cut. */
const ANSWER_FLUSH_MS = 1000;

export interface GrpcServer {
  server: Server;
  health: ServiceHealth;
  port: number;
  stop(graceMs?: number): Promise<void>;
}

export interface GrpcServerOptions {
  keepaliveMs?: number;
  /** Connections one source address may hold open (connection-gate.ts). */
  maxConnectionsPerAddress?: number;
  /** Connections all addresses together may hold open. */
  maxConnections?: number;
  /** A connection with no call open this long is closed. */
  connectionIdleMs?: number;
  /** A TLS handshake not finished this long after its connection was accepted is closed (handshake-bound.ts). */
  tlsHandshakeTimeoutMs?: number;
}

export async function startGrpcServer(
  svc: CoordinatorServices,
  guard: CallGuard,
  listen: string,
  credentials: ServerCredentials = ServerCredentials.createInsecure(),
  {
    keepaliveMs = DEFAULT_KEEPALIVE_MS,
    maxConnectionsPerAddress = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
    maxConnections = DEFAULT_MAX_CONNECTIONS,
    connectionIdleMs = DEFAULT_CONNECTION_IDLE_MS,
    tlsHandshakeTimeoutMs = DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
  }: GrpcServerOptions = {},
): Promise<GrpcServer> {
  const runner = new CallRunner(svc, guard);
  const server = new Server({
    // who calls, and whether they may, is decided before a request is read
    interceptors: [admitBeforeRead(runner)],
    // what each open session and admitted call may hold unread (message-limit.ts)
    'grpc.max_receive_message_length': MAX_REQUEST_MESSAGE,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    // without pings a peer gone without a FIN or RST (its host vanished, a NAT or VPN dropped
    // it) is never noticed: its WatchEvents never end, and each holds one of its client's
    // concurrent-call slots, 64 of them a whole address's (call-guard.ts)
    'grpc.keepalive_time_ms': keepaliveMs,
    'grpc.keepalive_timeout_ms': keepaliveMs,
    // a connection with no call open (from its start: one that sends nothing, half the HTTP/2
    // preface, or opens no stream) is closed after this; grpc-js's default is never, and it
    // turns Node's socket timeout off. A client connects again when it next calls.
    'grpc.max_connection_idle_ms': connectionIdleMs,
  });
  const sessions = new Sessions(runner);
  server.addService(SERVED_SERVICE, storageService(runner, sessions));
  const healthService = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE_NAME]: 'NOT_SERVING' });
  healthService.addToServer(server);
  const health = new ServiceHealth(healthService, SERVICE_NAME);
  addReflection(server);
  const port = await new Promise<number>((resolvePort, reject) =>
    server.bindAsync(listen, credentials, (err, p) => (err ? reject(err) : resolvePort(p))),
  );
  // before the first connection is accepted: bindAsync listens, but its callback runs before
  // the event loop gets to the listening socket
  const gate = new ConnectionGate({ maxPerAddress: maxConnectionsPerAddress, maxTotal: maxConnections }, svc.log);
  for (const listening of listeningServers(server)) {
    gate.attach(listening);
    boundTlsHandshakes(listening, tlsHandshakeTimeoutMs);
  }
  return {
    server,
    health,
    port,
    stop: (graceMs = DEFAULT_STOP_GRACE_MS) =>
      new Promise<void>((resolveStop) => {
        health.stop();
        // an open session or stream would hold a graceful shutdown until the client hangs up
        sessions.close();
        runner.endStreams(new UnavailableError('this coordinator is shutting down; call again (another coordinator, or this one once restarted); a watcher resumes after the last sequence it received'));
        let force: NodeJS.Timeout | undefined;
        const timer = setTimeout(() => {
          // the calls still running are answered, so that their clients retry (CallRunner.endCalls);
          // their answers get a moment to leave before the connections are cut
          runner.endCalls(new UnavailableError('this coordinator is shutting down and did not answer this call in time; call again with the same request_id (another coordinator, or this one once restarted): work the agent finished is not done twice'));
          force = setTimeout(() => {
            server.forceShutdown();
            resolveStop();
          }, ANSWER_FLUSH_MS);
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          clearTimeout(force);
          resolveStop();
        });
      }),
  };
}
