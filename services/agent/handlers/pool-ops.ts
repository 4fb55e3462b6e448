// Pool operations: create (transient or persistent start, optional build), build, start,
// stop, delete, refresh; plus sources, capabilities and the catalog flags the agent mirrors.
import type { AgentOpValue } from '../../../libs/bus/agent-rpc.js';
import type { AgentReply, AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import {
  EventKind,
  FindPoolSourcesResponse,
  PoolCapabilities,
  PoolType,
  PoolTypeCapability,
  type BuildFlags,
  type PoolDefinition,
} from '../../../libs/proto/cistern/v1/storage.js';
import { AlreadyExistsError, asCisternError, errorFromWire, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../../libs/errors/errors.js';
import { findBackend } from '../../../libs/backends/registry.js';
import type { PoolContext, RefreshResult, StorageBackend } from '../../../libs/backends/backend.js';
import { poolEvent, volumeEvent, type Actor } from '../events.js';
import { applyRefresh, type PoolEntry, type VolumeEntry } from '../state.js';
import {
  actorOf,
  activePool,
  backendFor,
  checkPoolResource,
  flushEvents,
  poolContext,
  requestPool,
  requestPoolName,
  requireOperation,
  type AgentContext,
} from '../context.js';
import { doneReply, MAX_REPLY_VOLUMES, poolReply } from './reply.js';
import { secretsOf } from '../secrets.js';
import { cleanupWhenStarted } from '../journal.js';
import { undoGrowsWhenStarted } from '../grow-journal.js';
import { journaledBuild } from '../build-journal.js';
import { requireNotDefinedElse, requireStillDefined } from '../undefine.js';
import { claimStorage } from '../storage-claims.js';
import { requireUuidFreeAmongRunning } from '../pool-uuids.js';


export interface StartOptions {
  persistent: boolean;
  autostart: boolean;
  /** a CreatePool of a defined pool (its uuid): AgentState.addPool */
  overDefined?: boolean;
  /** Build the pool first with these flags. */
  build?: BuildFlags;
}

function checkBuildFlags(flags: BuildFlags | undefined): BuildFlags {
  const f = flags ?? { overwrite: false, noOverwrite: false };
  if (f.overwrite && f.noOverwrite) {
    throw new InvalidArgumentError('build_flags', 'overwrite and no_overwrite are mutually exclusive; give at most one');
  }
  return f;
}

/**
 * Makes a pool active: optional build, then checkPool/startPool, then a refresh. A failed
 * start or refresh leaves the pool inactive. Publishes POOL_STARTED and a VOLUME_CHANGED per
 * volume found; a build done here publishes nothing of its own, as libvirt's storagePoolCreate
 * and storagePoolCreateXML build without a CREATED event (only pool-build sends one), so that
 * `pool-event` prints the lines virsh prints for `pool-start --build`. Call inside the pool's lock.
 */
export async function activatePool(ctx: AgentContext, def: PoolDefinition, opts: StartOptions, actor: Actor): Promise<PoolEntry> {
  const backend = backendFor(ctx, def.type);
  // libvirt's storagePoolCreate builds only with a type that has a build (buildPool); for the
  // others (iscsi, iscsi-direct, scsi, mpath) `pool-start --build` just starts the pool
  const buildFlags = opts.build && backend.operations.has('buildPool') ? checkBuildFlags(opts.build) : undefined;
  requireInactiveHere(ctx, def.name);
  await ctx.poolRoots?.require(def);
  const release = await claimStorage(ctx, def);
  try {
    return await startClaimed(ctx, def, opts, actor, backend, buildFlags);
  } finally {
    release();
  }
}

/** FAILED_PRECONDITION when the pool runs on this host (libvirt: "storage pool 'p' is already active"). */
function requireInactiveHere(ctx: AgentContext, pool: string): void {
  if (ctx.state.getPool(pool)) {
    throw new FailedPreconditionError(`storage pool '${pool}' is already active`, { pool });
  }
}

/** activatePool once the pool's storage is claimed for it. */
async function startClaimed(
  ctx: AgentContext,
  def: PoolDefinition,
  opts: StartOptions,
  actor: Actor,
  backend: StorageBackend,
  buildFlags: BuildFlags | undefined,
): Promise<PoolEntry> {
  const pc = poolContext(ctx, def, actor, buildFlags ? { operation: 'build' } : undefined);
  if (buildFlags) await journaledBuild(ctx.builds, backend, pc, buildFlags, actor);
  const alreadyUp = backend.checkPool ? await backend.checkPool(pc) : false;
  if (!alreadyUp && backend.startPool) await backend.startPool(pc);
  // what a create or an allocating grow killed before this agent's start left in this pool (mounted only now)
  if (ctx.journal) await cleanupWhenStarted(ctx.journal, def, backend, ctx.runner, ctx.log);
  if (ctx.grows) await undoGrowsWhenStarted(ctx.grows, def, backend, ctx.runner, ctx.log);
  let scan;
  try {
    scan = await backend.refreshPool(pc);
  } catch (err) {
    if (backend.stopPool) {
      await backend.stopPool(pc).catch((stopErr) => ctx.log.warn('stop after a failed start failed', { pool: def.name, error: stopErr }));
    }
    throw err;
  }
  const entry = ctx.state.addPool(def, opts, scan.runtime);
  const diff = applyRefresh(ctx.state, entry, scan.volumes);
  ctx.state.touchPool(entry);
  ctx.events.publish(poolEvent(EventKind.POOL_STARTED, ctx.host, ctx.state.poolMessage(entry), actor));
  await publishVolumeEvents(ctx, entry, diff.changed, EventKind.VOLUME_CHANGED, actor);
  ctx.log.info('pool started', { pool: def.name, volumes: entry.volumes.size, principal: actor.principal, requestId: actor.requestId });
  return entry;
}

/**
 * The active pool, with the volumes the call changed for the coordinator's cache: after a
 * start every volume (`volumes_complete`), after a refresh those that changed. A refresh that
 * found nothing new sends none: its volumes are in the cache already, and re-sending a pool of
 * 2,000 cost both sides ~10-20 ms of encoding and applying per refresh for nothing.
 */
function activeReply(ctx: AgentContext, entry: PoolEntry, seq: bigint, changed?: VolumeEntry[]): AgentReply {
  const name = entry.definition.name;
  const volumes = changed ?? [...entry.volumes.values()];
  // a big pool's volumes travel as events only: not built just to be dropped
  if (volumes.length > MAX_REPLY_VOLUMES || volumes.length === 0) return poolReply(ctx.state.poolMessage(entry), seq);
  return poolReply(
    ctx.state.poolMessage(entry),
    seq,
    volumes.map((v) => ctx.state.volumeMessage(name, v)),
    changed === undefined,
  );
}

/**
 * The build a CreatePool or StartPool asks for first, if any: `build`, or either overwrite
 * flag alone, as libvirt's storagePoolCreate (`build_flags || WITH_BUILD`).
 */
function requestedBuild(op: { build: boolean; buildFlags?: BuildFlags | undefined }): BuildFlags | undefined {
  const flags = op.buildFlags;
  if (!op.build && !flags?.overwrite && !flags?.noOverwrite) return undefined;
  return flags ?? { overwrite: false, noOverwrite: false };
}

/**
 * What a pool starts as when its check in the pool's turn read the catalog: its flags, and (a
 * StartPool) the definition stored now, newer than the request's copy when a coordinator had
 * not read a redefinition yet.
 */
interface StartAs extends Pick<StartOptions, 'persistent' | 'autostart' | 'overDefined'> {
  definition?: PoolDefinition;
}

/** CreatePool and StartPool: activate under the pool's lock, answer with the active pool. */
function activateAndReply(
  ctx: AgentContext,
  request: AgentRequest,
  def: PoolDefinition,
  lock: 'create' | 'start',
  build: BuildFlags | undefined,
  refuse?: () => void | Promise<void | StartAs>,
): Promise<AgentReply> {
  const actor = actorOf(request);
  return ctx.locks.withPool(
    def.name,
    lock,
    async () => {
      const as = (await refuse?.()) ?? { persistent: request.persistent, autostart: request.autostart };
      const entry = await activatePool(ctx, as.definition ?? def, { persistent: as.persistent, autostart: as.autostart, overDefined: as.overDefined, build }, actor);
      return activeReply(ctx, entry, await flushEvents(ctx));
    },
    actor.signal,
  );
}

export async function createPool(ctx: AgentContext, request: AgentRequest, op: AgentOpValue<'createPool'>): Promise<AgentReply> {
  const def = requestPool(request);
  return activateAndReply(ctx, request, def, 'create', requestedBuild(op), async () => {
    if (ctx.state.getPool(def.name)) {
      throw new AlreadyExistsError(`storage pool '${def.name}' already exists and is active`, { pool: def.name });
    }
    requireUuidFreeAmongRunning(ctx, def);
    // the defined pool itself (same uuid) starts persistent, with its autostart, whatever the
    // coordinator's view said when it sent this (libvirt's storagePoolCreateXML); without a
    // catalog (unit tests) the request's flags stand
    if (!ctx.catalog) return undefined;
    const defined = await requireNotDefinedElse(ctx, def);
    return defined ? { persistent: true, autostart: defined.autostart, overDefined: true } : { persistent: false, autostart: false };
  });
}

export async function startPool(ctx: AgentContext, request: AgentRequest, op: AgentOpValue<'startPool'>): Promise<AgentReply> {
  const def = requestPool(request);
  checkPoolResource(ctx, op.name, def.name, 'name');
  return activateAndReply(ctx, request, def, 'start', requestedBuild(op), async () => {
    // first, as libvirt's storagePoolCreate: a running pool is 'already active', a transient
    // one too (a call with a request id reaches here without the coordinator's check), not
    // 'undefined' for want of a catalog entry it never had
    requireInactiveHere(ctx, def.name);
    // an undefine may have deleted the definition since the coordinator read it (undefine.ts);
    // what is stored now starts, as it is (a redefinition this coordinator had not read yet)
    const stored = await requireStillDefined(ctx, def);
    if (!stored?.definition) return undefined;
    return { definition: stored.definition, persistent: true, autostart: stored.autostart };
  });
}

/** What BuildPool and DeletePool do alike: work on an inactive pool, then say so in an event. */
interface InactivePoolWork {
  lock: 'build' | 'delete';
  operation: 'buildPool' | 'deletePool';
  /** for UNIMPLEMENTED: 'building a pool' */
  what: string;
  /**
   * A type without the operation succeeds doing nothing (the event still goes out), as
   * libvirt's storagePoolBuild calls a backend's buildPool only when it has one.
   */
  noOpWithout?: boolean;
  /** why an active pool is refused: 'is already active' */
  activeRefusal: string;
  event: EventKind;
  /** the log line: 'pool built' */
  done: string;
}

async function onInactivePool(
  ctx: AgentContext,
  request: AgentRequest,
  def: PoolDefinition,
  w: InactivePoolWork,
  work: (backend: StorageBackend, pc: PoolContext) => Promise<void>,
): Promise<AgentReply> {
  // refused before anything runs, on the type the coordinator sent (and again below on the
  // stored one, should a redefinition have changed it)
  const runsOn = (d: PoolDefinition): { backend: StorageBackend; runs: boolean } => {
    const backend = backendFor(ctx, d.type);
    const runs = backend.operations.has(w.operation);
    if (!runs && !w.noOpWithout) requireOperation(backend, w.operation, w.what);
    return { backend, runs };
  };
  runsOn(def);
  const actor = actorOf(request);
  return ctx.locks.withPool(def.name, w.lock, async () => {
    if (ctx.state.getPool(def.name)) {
      throw new FailedPreconditionError(`storage pool '${def.name}' ${w.activeRefusal}`, { pool: def.name });
    }
    // an inactive pool is a defined one: what the catalog holds now is what is built or
    // deleted (a coordinator may not have read a redefinition or an undefine yet), as a start
    const target = (await requireStillDefined(ctx, def))?.definition ?? def;
    const { backend, runs } = runsOn(target);
    if (runs) {
      await ctx.poolRoots?.require(target);
      await work(backend, poolContext(ctx, target, actor, w.lock === 'build' ? { operation: 'build' } : undefined));
    }
    const pool = ctx.state.inactivePoolMessage(target, request);
    ctx.events.publish(poolEvent(w.event, ctx.host, pool, actor));
    ctx.log.info(w.done, { pool: def.name, principal: actor.principal, requestId: actor.requestId });
    return poolReply(pool, await flushEvents(ctx));
  }, actor.signal);
}

export async function buildPool(ctx: AgentContext, request: AgentRequest, op: AgentOpValue<'buildPool'>): Promise<AgentReply> {
  const def = requestPool(request);
  checkPoolResource(ctx, op.name, def.name, 'name');
  const flags = checkBuildFlags(op.flags);
  return onInactivePool(
    ctx,
    request,
    def,
    {
      lock: 'build',
      operation: 'buildPool',
      what: 'building a pool',
      noOpWithout: true,
      activeRefusal: 'is already active',
      event: EventKind.POOL_CREATED,
      done: 'pool built',
    },
    (backend, pc) => journaledBuild(ctx.builds, backend, pc, flags, actorOf(request)),
  );
}

export async function stopPool(ctx: AgentContext, request: AgentRequest, op: AgentOpValue<'stopPool'>): Promise<AgentReply> {
  // a coordinator that knows no such pool asks by name alone (a definition without a type): the
  // retry of a stop whose answer was lost, of a transient pool that went with the stop. The
  // request cache answered it if it had the first reply; here, a pool that is not running is
  // not found, as libvirt says of a transient pool once stopped
  const byName = request.pool !== undefined && request.pool.type === PoolType.POOL_TYPE_UNSPECIFIED;
  const def = byName ? requestPoolName(request) : requestPool(request);
  checkPoolResource(ctx, op.name, def.name, 'name');
  const actor = actorOf(request);
  return ctx.locks.withPool(def.name, 'stop', async () => {
    if (byName && !ctx.state.getPool(def.name)) {
      throw new NotFoundError(`storage pool '${def.name}' not found on host '${ctx.host}'`, { host: ctx.host, pool: def.name });
    }
    const entry = activePool(ctx, def.name);
    const backend = backendFor(ctx, entry.definition.type);
    if (backend.stopPool) await backend.stopPool(poolContext(ctx, entry.definition, actor));
    // a persistent pool keeps what it showed, as libvirt's def after storagePoolDestroy
    ctx.state.stopPool(def.name);
    const pool = ctx.state.inactivePoolMessage(ctx.state.stoppedDefinition(entry), entry);
    ctx.events.publish(poolEvent(EventKind.POOL_STOPPED, ctx.host, pool, actor));
    ctx.log.info('pool stopped', { pool: def.name, principal: actor.principal, requestId: actor.requestId });
    return poolReply(pool, await flushEvents(ctx));
  }, actor.signal);
}

export async function deletePool(ctx: AgentContext, request: AgentRequest, op: AgentOpValue<'deletePool'>): Promise<AgentReply> {
  const def = requestPool(request);
  checkPoolResource(ctx, op.name, def.name, 'name');
  return onInactivePool(
    ctx,
    request,
    def,
    { lock: 'delete', operation: 'deletePool', what: 'deleting a pool', activeRefusal: 'is still active', event: EventKind.POOL_DELETED, done: 'pool deleted' },
    (backend, pc) => backend.deletePool!(pc),
  );
}

/** How many events a scan publishes before it waits for them to be stored. */
export const SCAN_EVENT_BATCH = 1000;

/**
 * One event per volume a scan found new, changed or gone. A pool of 100,000 files must not
 * publish 100,000 events in one turn of the event loop: heartbeats would stop (the host
 * looks offline) and the stream's acks would pile up until nats-server drops the agent as
 * a slow consumer. So they go in batches, each stored before the next is sent.
 *
 * A refresh holds no volume's lock: while it waits for a batch to be stored, a writer may
 * resize, delete or create a volume of a later batch and publish that at once. Such a
 * volume's event is then left out: its writer's is newer, and published after it, the scan's
 * older state would be what a reader applying the stream in order keeps (a resize undone, a
 * deleted volume alive, a new one gone).
 */
async function publishVolumeEvents(ctx: AgentContext, entry: PoolEntry, volumes: readonly VolumeEntry[], kind: EventKind, actor: Actor): Promise<void> {
  const pool = entry.definition.name;
  // a changed volume is still the entry the scan stored; a removed one is still absent
  const current = (v: VolumeEntry): boolean =>
    kind === EventKind.VOLUME_DELETED ? !entry.volumes.has(v.definition.name) : entry.volumes.get(v.definition.name) === v;
  for (let i = 0; i < volumes.length; i++) {
    if (i > 0 && i % SCAN_EVENT_BATCH === 0) await flushEvents(ctx);
    const v = volumes[i]!;
    if (current(v)) ctx.events.publish(volumeEvent(kind, ctx.host, ctx.state.volumeMessage(pool, v), actor));
  }
}

/**
 * A scan of an active pool, and the volumes written while it read. A scan reads the pool over
 * time, beside volume work: a volume a writer held, stored or removed meanwhile has what its
 * writer left, newer than what the scan found, even where it ends as it began (created then
 * deleted, or a failed create that removed the file the scan saw).
 */
export interface PoolScan {
  result: RefreshResult;
  /** Complete once `end` is called. */
  written: ReadonlySet<string>;
  /** Stops collecting `written` (publishScan calls it). */
  end: () => void;
}

/** Scans an active pool beside volume work; hand the scan to publishScan. */
export async function scanPool(ctx: AgentContext, entry: PoolEntry, backend: StorageBackend, pc: PoolContext): Promise<PoolScan> {
  const written = new Set<string>();
  const unwatchState = ctx.state.watchWrites(entry, written);
  const unwatchLocks = ctx.locks.watchWriters(entry.definition.name, written);
  const end = (): void => {
    unwatchState();
    unwatchLocks();
  };
  try {
    return { result: await backend.refreshPool(pc), written, end };
  } catch (err) {
    end();
    throw err;
  }
}

/**
 * Takes a fresh scan into the agent's map and publishes what differs from it:
 * VOLUME_CHANGED for new or changed volumes, VOLUME_DELETED for those gone. A volume a writer
 * stored or removed while the scan read keeps what the writer left.
 */
export async function publishScan(
  ctx: AgentContext,
  entry: PoolEntry,
  scan: PoolScan,
  actor: Actor,
  /** Volumes whose locks the caller itself holds: their scan results are taken, not skipped as busy. */
  ownVolumes: ReadonlySet<string> = new Set(),
): Promise<ReturnType<typeof applyRefresh>> {
  const pool = entry.definition.name;
  // no await between the end and the store: no write can come between them
  scan.end();
  const skip = (v: string): boolean => !ownVolumes.has(v) && (ctx.locks.isVolumeBusy(pool, v) || scan.written.has(v));
  const diff = applyRefresh(ctx.state, entry, scan.result.volumes, skip);
  // another writer that worked while the scan read stored the pool's sizes after its change
  // (read again, or its allocation accounted on what was held): the scan's may be older. The
  // caller's own change was stored before the scan began.
  const othersWrote = [...scan.written].some((v) => !ownVolumes.has(v));
  ctx.state.touchPool(entry, othersWrote ? undefined : scan.result.runtime);
  await publishVolumeEvents(ctx, entry, diff.changed, EventKind.VOLUME_CHANGED, actor);
  await publishVolumeEvents(ctx, entry, diff.removed, EventKind.VOLUME_DELETED, actor);
  return diff;
}

/**
 * Incremental refresh: scans, publishes VOLUME_CHANGED / VOLUME_DELETED for what differs
 * from the agent's map, then POOL_REFRESHED. A failed refresh stops the pool (libvirt); one its
 * caller cancelled (or whose deadline passed) part-way leaves the pool as it was.
 */
export async function refreshPool(ctx: AgentContext, request: AgentRequest, op: AgentOpValue<'refreshPool'>): Promise<AgentReply> {
  const def = requestPool(request);
  checkPoolResource(ctx, op.name, def.name, 'name');
  const actor = actorOf(request);
  return ctx.locks.withPool(def.name, 'refresh', async () => {
    const entry = activePool(ctx, def.name);
    const backend = backendFor(ctx, entry.definition.type);
    const pc = poolContext(ctx, entry.definition, actor);
    let scan;
    try {
      scan = await scanPool(ctx, entry, backend, pc);
    } catch (err) {
      // a scan its caller gave up on (cancel, deadline) was stopped, it did not fail: the pool
      // is as it was, and stopping it (a transient one: removing it) for a client's short
      // timeout or a Ctrl-C is not what a refresh may do. Only a failed read stops the pool.
      if (actor.signal?.aborted) throw err;
      keepRunningUnderWork(ctx, def.name, err);
      if (backend.stopPool) {
        await backend.stopPool(pc).catch((e) => ctx.log.warn('stop after a failed refresh failed', { pool: def.name, error: e }));
      }
      ctx.state.stopPool(def.name);
      ctx.events.publish(poolEvent(EventKind.POOL_STOPPED, ctx.host, ctx.state.inactivePoolMessage(ctx.state.stoppedDefinition(entry), entry), actor));
      await flushEvents(ctx);
      throw err;
    }
    const diff = await publishRefresh(ctx, entry, scan, actor);
    ctx.log.info('pool refreshed', {
      pool: def.name,
      volumes: entry.volumes.size,
      changed: diff.changed.length,
      removed: diff.removed.length,
      requestId: actor.requestId,
    });
    const reply = activeReply(ctx, entry, await flushEvents(ctx), diff.changed);
    // nothing removed, and every changed volume in the reply with the pool's state: the
    // coordinator applies it and answers at once instead of waiting for the events to reach
    // it through the stream (a refresh that found nothing new: the control-overhead path)
    reply.stateComplete = diff.removed.length === 0 && reply.volumes.length === diff.changed.length;
    return reply;
  }, actor.signal);
}

/**
 * Before a failed refresh stops its pool: the stop is refused while volume work runs (a
 * refresh runs beside it; libvirt refuses the refresh itself while its pool has asynchronous
 * jobs), and the refresh fails with its own error, saying why the pool still runs. Otherwise
 * no volume work starts while the pool stops.
 */
function keepRunningUnderWork(ctx: AgentContext, pool: string, failure: unknown): void {
  try {
    ctx.locks.turnIntoStop(pool);
  } catch (busy) {
    const err = asCisternError(failure);
    const why = (busy as Error).message.replace(/; cannot stop it now$/, '').replace(/^storage pool '[^']*' has /, 'it has ');
    throw errorFromWire(err.code, `${err.message}; storage pool '${pool}' was not stopped: ${why}`, err.details);
  }
}

/** A refresh's scan taken in: the volume events publishScan sends, then POOL_REFRESHED. */
async function publishRefresh(ctx: AgentContext, entry: PoolEntry, scan: PoolScan, actor: Actor): Promise<ReturnType<typeof applyRefresh>> {
  const diff = await publishScan(ctx, entry, scan, actor);
  ctx.events.publish(poolEvent(EventKind.POOL_REFRESHED, ctx.host, ctx.state.poolMessage(entry), actor));
  return diff;
}

/**
 * The refresh libvirt runs once an upload's stream has closed, whether the upload succeeded or
 * not (virStorageVolPoolRefreshThread): the whole pool re-read as RefreshPool does it, in the
 * pool's turn, beside volume work (busy volumes are skipped), then POOL_REFRESHED. Call it
 * holding no volume lock of the pool, or that volume's scan is skipped. A failure is logged and
 * changes nothing (libvirt only logs it): it does not change the upload's outcome, and unlike a
 * failed RefreshPool it does not stop the pool.
 * Returns the sequence of the last event stored, 0 when there was nothing to refresh.
 */
export async function refreshAfterUpload(ctx: AgentContext, pool: string, actor: Actor): Promise<bigint> {
  try {
    return await ctx.locks.withPool(pool, 'refresh', async () => {
      const entry = ctx.state.getPool(pool);
      if (!entry) return 0n; // stopped since the upload: nothing to refresh
      const scan = await scanPool(ctx, entry, backendFor(ctx, entry.definition.type), poolContext(ctx, entry.definition, actor));
      const diff = await publishRefresh(ctx, entry, scan, actor);
      ctx.log.info('pool refreshed after an upload', { pool, changed: diff.changed.length, removed: diff.removed.length, requestId: actor.requestId });
      return await flushEvents(ctx);
    });
  } catch (err) {
    ctx.log.warn('refreshing the pool after an upload failed; the upload\'s outcome stands', { pool, error: err, requestId: actor.requestId });
    return 0n;
  }
}

export async function findPoolSources(ctx: AgentContext, request: AgentRequest, op: AgentOpValue<'findPoolSources'>): Promise<AgentReply> {
  const backend = backendFor(ctx, op.type);
  requireOperation(backend, 'findPoolSources', 'finding pool sources');
  const actor = actorOf(request);
  // discovery with CHAP needs the secret the source spec names
  const secrets = secretsOf(actor);
  // a discovery can hang on a portal that never answers: the caller's cancel (or deadline) stops it
  const sources = await backend.findPoolSources!(
    { runner: ctx.runner, ...(actor.signal ? { signal: actor.signal } : {}), ...(secrets ? { secrets } : {}) },
    op.source,
  );
  return { ...doneReply(), result: { $case: 'sources', value: FindPoolSourcesResponse.create({ sources }) } };
}

const ALL_TYPES = Object.values(PoolType).filter(
  (t): t is PoolType => typeof t === 'number' && t !== PoolType.POOL_TYPE_UNSPECIFIED && t >= 0,
);

export function poolCapabilities(lookup: (type: PoolType) => ReturnType<typeof findBackend> = findBackend): PoolCapabilities {
  return PoolCapabilities.create({
    types: ALL_TYPES.map((type) => {
      const b = lookup(type);
      if (!b) return PoolTypeCapability.create({ type, supported: false });
      return PoolTypeCapability.create({
        type,
        supported: true,
        poolFormats: [...b.poolFormats],
        defaultPoolFormat: b.defaultPoolFormat,
        volumeFormats: [...b.volumeFormats],
        defaultVolumeFormat: b.defaultVolumeFormat,
        operations: [...b.operations].sort(),
      });
    }),
  });
}

export async function getPoolCapabilities(_ctx: AgentContext): Promise<AgentReply> {
  return { ...doneReply(), result: { $case: 'capabilities', value: poolCapabilities() } };
}

/**
 * Catalog changes the coordinator made (define / autostart): the agent mirrors
 * the flags of an active pool so its syncs and events say the same. No events: the
 * coordinator publishes POOL_DEFINED / POOL_UNDEFINED itself.
 */
export async function mirrorCatalogFlags(ctx: AgentContext, request: AgentRequest): Promise<AgentReply> {
  const name = request.pool?.name;
  // a definition takes the pool's turn: a transient create of the name that runs now (its
  // catalog check already done) is active when this looks, and the define is refused
  if (name && request.op?.$case === 'definePool') return ctx.locks.withPool(name, 'define', async () => mirrorFlags(ctx, request, name));
  return mirrorFlags(ctx, request, name);
}

function mirrorFlags(ctx: AgentContext, request: AgentRequest, name: string | undefined): AgentReply {
  const entry = name ? ctx.state.getPool(name) : undefined;
  const uuid = request.pool?.uuid;
  if (entry && request.op?.$case === 'definePool' && uuid && entry.definition.uuid && entry.definition.uuid !== uuid) {
    throw new AlreadyExistsError(`storage pool '${name}' is already active on host '${ctx.host}' with uuid ${entry.definition.uuid}`, { host: ctx.host, pool: name! });
  }
  if (name && request.op?.$case === 'definePool') {
    requireUuidFreeAmongRunning(ctx, { name, uuid: uuid ?? '' });
    // a define replaces an inactive pool's definition, and with it what its last run showed
    // (libvirt's virStoragePoolObjAssignDef); the state without it goes to the coordinator
    if (!entry && request.pool && ctx.state.forgetStopped(name)) {
      return poolReply(ctx.state.inactivePoolMessage(request.pool, { persistent: true, autostart: request.autostart }), 0n);
    }
  }
  if (entry) {
    switch (request.op?.$case) {
      case 'definePool':
        entry.persistent = true;
        // libvirt's newDef: the pool stops with this definition, not with its live one
        entry.onStop = 'nothing';
        break;
      case 'setPoolAutostart':
        entry.autostart = request.op.value.autostart;
        break;
      default:
        break;
    }
    ctx.state.touchPool(entry);
    return poolReply(ctx.state.poolMessage(entry), 0n);
  }
  return doneReply();
}
