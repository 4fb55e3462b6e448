// Authentication, authorization, per-client limits and audit. Every handler runs through
// CallRunner.run (server.ts): it asks the guard who is calling, whether they may call
// this method and whether the client has room for another call, then reports the outcome
// as one audit line. tokenGuard is the real one; openGuard (no token file) lets everyone
// in and is for a loopback-only local stack.
import type { Metadata } from '@grpc/grpc-js';
import {
  asCisternError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
} from '../../libs/errors/errors.js';
import { bearerToken, roleAllows, type Role, type TokenTable } from './auth/tokens.js';
import type { Logger } from '../../libs/log/logger.js';

/** viewer: reads and events; operator: volume work, refresh; admin: pool definitions and lifecycle, hosts, secrets. */
export type { Role };

export interface MethodSpec {
  name: string;
  role: Role;
  mutating: boolean;
}

const spec = (name: string, role: Role, mutating: boolean): MethodSpec => ({ name, role, mutating });

export const METHODS: Record<string, MethodSpec> = Object.fromEntries(
  [
    spec('ListHosts', 'viewer', false),
    spec('GetHost', 'viewer', false),
    spec('DeleteHost', 'admin', true),
    spec('PingHost', 'viewer', false),
    spec('DefinePool', 'admin', true),
    spec('CreatePool', 'admin', true),
    spec('UndefinePool', 'admin', true),
    spec('BuildPool', 'admin', true),
    spec('StartPool', 'admin', true),
    spec('StopPool', 'admin', true),
    spec('DeletePool', 'admin', true),
    spec('RefreshPool', 'operator', true),
    spec('GetPool', 'viewer', false),
    spec('ListPools', 'viewer', false),
    spec('GetPoolXML', 'viewer', false),
    spec('SetPoolAutostart', 'admin', true),
    spec('FindPoolSources', 'admin', false),
    spec('GetPoolCapabilities', 'viewer', false),
    spec('CreateVolume', 'operator', true),
    spec('CloneVolume', 'operator', true),
    spec('DeleteVolume', 'operator', true),
    spec('WipeVolume', 'operator', true),
    spec('ResizeVolume', 'operator', true),
    spec('GetVolume', 'viewer', false),
    spec('ListVolumes', 'viewer', false),
    spec('GetVolumeXML', 'viewer', false),
    spec('LookupVolume', 'viewer', false),
    spec('UploadVolume', 'operator', true),
    spec('DownloadVolume', 'operator', false),
    spec('WatchEvents', 'viewer', false),
    spec('DefineSecret', 'admin', true),
    spec('SetSecretValue', 'admin', true),
    spec('GetSecret', 'admin', false),
    spec('ListSecrets', 'admin', false),
    spec('UndefineSecret', 'admin', true),
  ].map((m) => [m.name, m]),
);

export interface AuditRecord {
  method: string;
  principal: string;
  resource: string;
  code: string;
  durationMs: number;
  requestId: string;
}

export interface CallGuard {
  /** Who is calling (throw UnauthenticatedError to refuse). */
  authenticate(metadata: Metadata, peer: string): Promise<string> | string;
  /** May `principal` call `method` (throw PermissionDeniedError naming the role needed). */
  authorize(principal: string, method: MethodSpec): Promise<void> | void;
  /**
   * Admits one call of `principal` from `peer` (throw ResourceExhaustedError when the
   * client already has too many calls running); returns the release for when it ends.
   */
  admit?(principal: string, peer: string): () => void;
  /**
   * Admits one open Session stream of `principal` from `peer` (throw ResourceExhaustedError
   * when the client already holds too many open); returns the release for when it ends. A
   * session holds no call slot while no call of it runs, so without this a client could keep
   * any number of them open.
   */
  admitSession?(principal: string, peer: string): () => void;
  /**
   * Admits one call of a service open to everyone (health, reflection) from `peer`, counted per
   * peer address (throw ResourceExhaustedError beyond the limit): such a call carries no token,
   * and grpc-js reads its request message whole, up to 4 MiB, before anything answers it.
   */
  admitOpen?(peer: string): () => void;
  /** Called once per call when it ends. */
  audit(record: AuditRecord, method: MethodSpec): void;
}

const PRINCIPAL = /^[A-Za-z0-9@._:-]{1,128}$/;

/** Default for concurrent calls per client (principal with tokens, peer address without). */
export const DEFAULT_MAX_CALLS_PER_CLIENT = 64;

/**
 * Default for open Session streams per client (same keys). An idle one is cheap, but one that is
 * sent part of a message holds it, up to 4 MiB (message-limit.ts): 256 of them were 1 GiB a
 * client. A cisternctl holds one while it runs, and the calls of all of a client's sessions
 * together are limited by --max-calls-per-client anyway.
 */
export const DEFAULT_MAX_SESSIONS_PER_CLIENT = 32;

/** One structured audit line per mutating call; reads go to debug. */
function auditTo(log: Logger): CallGuard['audit'] {
  return (record, method) => {
    if (method.mutating) log.info('audit', { audit: true, ...record });
    else log.debug('call', { ...record });
  };
}

/** Counts what each client key holds (running calls, open sessions); RESOURCE_EXHAUSTED beyond `max`. */
export class ClientLimiter {
  private readonly running = new Map<string, number>();
  constructor(
    readonly max: number,
    private readonly refusal: (max: number) => string = (max) => `too many concurrent calls from this client (${max} allowed); retry when some finish`,
  ) {}

  admit(key: string): () => void {
    const n = this.running.get(key) ?? 0;
    if (n >= this.max) {
      throw new ResourceExhaustedError(this.refusal(this.max), {
        limit: String(this.max),
      });
    }
    this.running.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.running.get(key) ?? 1) - 1;
      if (left <= 0) this.running.delete(key);
      else this.running.set(key, left);
    };
  }
}

/** The address part of a gRPC peer ("ipv4:127.0.0.1:5555" -> "127.0.0.1"). */
export function peerAddress(peer: string): string {
  const m = /^(?:ipv4:|ipv6:)?\[?([^\]]*?)\]?:\d+$/.exec(peer);
  return m ? m[1]! : peer;
}

export interface GuardOptions {
  maxCallsPerClient?: number;
  maxSessionsPerClient?: number;
}

const openRefusal = (max: number): string => `too many concurrent health or reflection calls from this address (${max} allowed); retry when some finish`;

/** Health and reflection calls, by peer address: no token names their client. */
function openCallLimiter(options: GuardOptions): ClientLimiter {
  return new ClientLimiter(options.maxCallsPerClient ?? DEFAULT_MAX_CALLS_PER_CLIENT, openRefusal);
}

function sessionLimiter(options: GuardOptions): ClientLimiter {
  return new ClientLimiter(
    options.maxSessionsPerClient ?? DEFAULT_MAX_SESSIONS_PER_CLIENT,
    (max) => `too many open Session streams from this client (${max} allowed); close one, or send its calls on a session already open`,
  );
}

/**
 * No authentication (no token file): 'anonymous', or the x-cistern-principal metadata
 * when well-formed (a label for audit lines, not a proof of anything). Only for a
 * loopback port or a trusted network; the coordinator says so in its log.
 */
export function openGuard(log: Logger, options: GuardOptions = {}): CallGuard {
  const limiter = new ClientLimiter(options.maxCallsPerClient ?? DEFAULT_MAX_CALLS_PER_CLIENT);
  const sessions = sessionLimiter(options);
  const openCalls = openCallLimiter(options);
  return {
    authenticate(metadata) {
      const claimed = metadata.get('x-cistern-principal')[0];
      return typeof claimed === 'string' && PRINCIPAL.test(claimed) ? claimed : 'anonymous';
    },
    authorize() {},
    admit: (_principal, peer) => limiter.admit(`peer:${peerAddress(peer)}`),
    admitSession: (_principal, peer) => sessions.admit(`peer:${peerAddress(peer)}`),
    admitOpen: (peer) => openCalls.admit(`peer:${peerAddress(peer)}`),
    audit: auditTo(log),
  };
}

/**
 * Bearer tokens: `authorization: Bearer <token>` names a principal with a role.
 * Missing or unknown token: UNAUTHENTICATED. A role below the method's: PERMISSION_DENIED
 * naming the role needed. Concurrency is limited per principal.
 */
export function tokenGuard(tokens: TokenTable, log: Logger, options: GuardOptions = {}): CallGuard {
  const limiter = new ClientLimiter(options.maxCallsPerClient ?? DEFAULT_MAX_CALLS_PER_CLIENT);
  const sessions = sessionLimiter(options);
  const openCalls = openCallLimiter(options);
  return {
    authenticate(metadata) {
      const values = metadata.get('authorization');
      if (values.length === 0) {
        throw new UnauthenticatedError("no credentials: send the metadata 'authorization: Bearer <token>' (cisternctl --token or CISTERN_TOKEN)");
      }
      if (values.length > 1) throw new UnauthenticatedError("more than one 'authorization' metadata value");
      const token = bearerToken(values[0]);
      if (!token) throw new UnauthenticatedError("the 'authorization' metadata is not 'Bearer <token>'");
      const entry = tokens.lookup(token);
      if (!entry) throw new UnauthenticatedError('the bearer token is not valid');
      return entry.principal;
    },
    authorize(principal, method) {
      const role = tokens.roleOf(principal);
      if (!role) throw new UnauthenticatedError('the bearer token is not valid');
      if (!roleAllows(role, method.role)) {
        throw new PermissionDeniedError(`${method.name} needs role '${method.role}'; principal '${principal}' has role '${role}'`, {
          method: method.name,
          requiredRole: method.role,
          role,
        });
      }
    },
    admit: (principal) => limiter.admit(`principal:${principal}`),
    admitSession: (principal) => sessions.admit(`principal:${principal}`),
    admitOpen: (peer) => openCalls.admit(`peer:${peerAddress(peer)}`),
    audit: auditTo(log),
  };
}

export function errorCodeOf(err: unknown): string {
  return err === undefined ? 'OK' : asCisternError(err).code;
}
