// What every handler works with: the host's state, locks, event sink, backends, logger,
// plus the checks they share (pool known and active, backend op supported, names).
import type { NatsConnection } from '@nats-io/transport-node';
import type { AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import { PoolType, poolTypeToJSON, type PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import type { BackendOperation, PoolContext, StorageBackend } from '../../libs/backends/backend.js';
import type { CommandRunner } from '../../libs/backends/runner.js';
import { getBackend } from '../../libs/backends/registry.js';
import { AbortedError, FailedPreconditionError, InvalidArgumentError, UnimplementedError } from '../../libs/errors/errors.js';
import { checkAbsolutePath, checkObjectName, printable } from '../../libs/api/names.js';
import { parsePoolName, parseVolumeName } from '../../libs/api/resource-names.js';
import { isSupportedPoolType, poolTypeToString } from '../../libs/xml/formats.js';
import { AgentState, type PoolEntry } from './state.js';
import { LockTable } from './locks.js';
import { progressEvent, throttledProgress, type Actor, type EventSink } from './events.js';
import type { Logger } from '../../libs/log/logger.js';
import { secretsOf, withSecrets } from './secrets.js';
import type { CreateJournal } from './journal.js';
import type { BuildJournal } from './build-journal.js';
import type { GrowJournal } from './grow-journal.js';
import type { CatalogReader } from './undefine.js';
import type { PoolRoots } from './pool-roots.js';
import type { ResizeIntents } from './resize-intents.js';
import type { UploadRequests } from './upload-requests.js';

export interface AgentContext {
  host: string;
  state: AgentState;
  locks: LockTable;
  events: EventSink;
  runner: CommandRunner;
  log: Logger;
  /** Absent in unit tests that do not stream. */
  nc?: NatsConnection;
  /** Backend lookup (the registry; a fake in unit tests). */
  backend?: (type: PoolType) => StorageBackend;
  /** Asks for a full sync soon (after an event could not be stored). */
  requestSync?: (reason: string) => void;
  /** In-flight creates and clones under the agent's root (absent in unit tests). */
  journal?: CreateJournal;
  /** In-flight builds of pool types that clean up after an interrupted one (absent in unit tests). */
  builds?: BuildJournal;
  /** Allocating grows under way, for the next start to undo what a kill leaves (absent in unit tests). */
  grows?: GrowJournal;
  /** How long an upload's answer waits for the pool refresh after it (default: half the stream idle timeout). */
  uploadRefreshWaitMs?: number;
  /** This process's boot id, as its heartbeats carry it (absent in unit tests). */
  bootId?: bigint;
  /** The pool catalog, read where a pool's turn must agree with it (undefine.ts; absent in unit tests). */
  catalog?: CatalogReader;
  /** Absolute capacities of resizes by delta that carry a request id (resize-intents.ts). */
  resizeIntents?: ResizeIntents;
  /** Where dir, fs and netfs pools may be (--pool-roots); absent: anywhere, as libvirt. */
  poolRoots?: PoolRoots;
  /** Uploads that carry a request id, for their retries (upload-requests.ts; absent in unit tests). */
  uploads?: UploadRequests;
}

const requestSignals = new WeakMap<AgentRequest, AbortSignal>();

/** Ties the caller's cancel signal to a request: handlers see it through actorOf(request).signal. */
export function attachSignal(request: AgentRequest, signal: AbortSignal): void {
  requestSignals.set(request, signal);
}

export function backendFor(ctx: AgentContext, type: PoolType): StorageBackend {
  return (ctx.backend ?? getBackend)(type);
}

/** UNIMPLEMENTED before anything runs when the pool type lacks `op`. */
export function requireOperation(backend: StorageBackend, op: BackendOperation, what: string): void {
  if (!backend.operations.has(op)) {
    const reason = backend.unsupportedReasons?.[op];
    throw new UnimplementedError(
      `${what} is not supported by storage pool type ${poolTypeName(backend.type)}${reason ? `: ${reason}` : ''}`,
      { operation: op },
    );
  }
}

/** The type as pool XML and virsh spell it: 'iscsi-direct', not the enum's 'iscsi_direct'. */
export function poolTypeName(type: PoolType): string {
  if (isSupportedPoolType(type)) return poolTypeToString(type);
  return poolTypeToJSON(type).replace(/^POOL_TYPE_/, '').toLowerCase();
}

export function actorOf(request: AgentRequest): Actor {
  const signal = requestSignals.get(request);
  return withSecrets({ principal: request.principal, requestId: request.requestId, ...(signal ? { signal } : {}) }, request);
}

/** The pool the request names, by its definition's name alone (checked): for a request that may carry no more. */
export function requestPoolName(request: AgentRequest): PoolDefinition {
  const def = request.pool;
  if (!def || !def.name) throw new InvalidArgumentError('pool', 'the request carries no pool definition');
  checkObjectName(def.name, 'pool.name', 'pool name');
  return def;
}

/** The pool definition of the request, with its name checked. */
export function requestPool(request: AgentRequest): PoolDefinition {
  const def = request.pool ?? (request.op?.$case === 'createPool' ? request.op.value.definition : undefined);
  if (!def || !def.name) throw new InvalidArgumentError('pool', 'the request carries no pool definition');
  return checkPoolDefinition(def);
}

/**
 * What the agent requires of any pool definition it works on, whoever gave it: a coordinator's
 * request, or the catalog read at autostart (plain KV: an entry written by hand never went
 * through a coordinator's checks). Its name, a type, a target path absolute and normalised.
 */
export function checkPoolDefinition(def: PoolDefinition): PoolDefinition {
  checkObjectName(def.name, 'pool.name', 'pool name');
  if (def.type === PoolType.POOL_TYPE_UNSPECIFIED) {
    throw new InvalidArgumentError('pool.type', `pool '${printable(def.name)}' has no type`);
  }
  if (def.target?.path) {
    const normal = checkAbsolutePath(def.target.path, 'pool.target.path');
    if (normal !== def.target.path) {
      throw new InvalidArgumentError('pool.target.path', `path '${printable(def.target.path)}' is not normalised; give '${printable(normal)}'`);
    }
  }
  return def;
}

/** Checks a resource name `hosts/{host}/pools/{pool}` names this host and the request's pool. */
export function checkPoolResource(ctx: AgentContext, value: string, pool: string, field: string): void {
  if (!value) return;
  const ref = parsePoolName(value, field);
  checkSameTarget(ctx, ref.host, ref.pool, pool, field);
}

/** Parses `hosts/{host}/pools/{pool}/volumes/{volume}` and checks host and pool; returns the volume. */
export function volumeOfResource(ctx: AgentContext, value: string, pool: string, field: string): string {
  const ref = parseVolumeName(value, field);
  checkSameTarget(ctx, ref.host, ref.pool, pool, field);
  return ref.volume;
}

function checkSameTarget(ctx: AgentContext, host: string, pool: string, expected: string, field: string): void {
  if (host !== ctx.host) {
    throw new InvalidArgumentError(field, `names host '${host}' but was sent to host '${ctx.host}'`);
  }
  if (pool !== expected) {
    throw new InvalidArgumentError(field, `names pool '${printable(pool)}' but the request is for pool '${printable(expected)}'`);
  }
}

/** The active pool `name`, or FAILED_PRECONDITION "storage pool 'x' is not active" as libvirt says. */
export function activePool(ctx: AgentContext, name: string): PoolEntry {
  const entry = ctx.state.getPool(name);
  if (!entry) throw new FailedPreconditionError(`storage pool '${name}' is not active`, { pool: name });
  return entry;
}


/** Work on a volume whose create or clone (`op`) has not ended: it is retried, not given up on. */
export function volumeBeingAllocated(pool: string, name: string, op: string): AbortedError {
  return new AbortedError(`storage volume '${name}' is still being allocated (${op} in progress); try again once it ends`, { pool, volume: name, operation: op });
}

/** The backend context for one pool operation, with progress published as events. */
export function poolContext(
  ctx: AgentContext,
  pool: PoolDefinition,
  actor: Actor,
  progress?: { operation: string; volume?: string },
): PoolContext {
  const pc: PoolContext = { pool, runner: ctx.runner };
  if (actor.signal) pc.signal = actor.signal;
  const secrets = secretsOf(actor);
  if (secrets) pc.secrets = secrets;
  if (progress) {
    pc.progress = throttledProgress((done, total) =>
      ctx.events.publish(progressEvent(ctx.host, { pool: pool.name, volume: progress.volume }, progress.operation, done, total, actor)),
    );
  }
  return pc;
}

/**
 * Flushes events. An event that could not be stored leaves the op done: the full sync asked
 * for here carries it (LostEvents), and the coordinators publish the state it changed from it.
 */
export async function flushEvents(ctx: AgentContext): Promise<bigint> {
  try {
    return await ctx.events.flush();
  } catch (err) {
    ctx.log.warn('events not stored; a full sync follows', { error: err });
    ctx.requestSync?.('event publish failed');
    return 0n;
  }
}

