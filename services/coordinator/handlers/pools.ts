// Pool lifecycle: catalog writes (define, undefine, autostart) here; runtime work
// (create, build, start, stop, delete, refresh, sources, capabilities) on the agent.
import { createHash } from 'node:crypto';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from '../../../libs/errors/errors.js';
import { CatalogPool, type AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { UnreadableCatalogEntryError, type CatalogEntry, type CatalogRevision } from '../../../libs/bus/catalog.js';
import {
  EventKind,
  PoolState,
  type BuildFlags,
  type BuildPoolRequest,
  type CreatePoolRequest,
  type DefinePoolRequest,
  type DeletePoolRequest,
  type FindPoolSourcesRequest,
  type FindPoolSourcesResponse,
  type GetPoolCapabilitiesRequest,
  type GetPoolRequest,
  type GetPoolXMLRequest,
  type ListPoolsRequest,
  type ListPoolsResponse,
  type Pool,
  type PoolCapabilities,
  PoolDefinition,
  type RefreshPoolRequest,
  type SetPoolAutostartRequest,
  type StartPoolRequest,
  type StopPoolRequest,
  type UndefinePoolRequest,
  type UndefinePoolResponse,
  type XMLDocument,
} from '../../../libs/proto/cistern/v1/storage.js';
import { poolName, type PoolRef } from '../../../libs/api/resource-names.js';
import { compare, sameDefinition } from '../cache.js';
import { AGENT_ANSWERS_KEPT_MS, ownWrite, publishedSince, requestMark } from '../catalog-retries.js';
import { DEFAULT_REQUEST_TTL_SECONDS } from '../request-results.js';
import { inactiveDefinition, isActiveState, pendingDefinition, pendingLastRun, poolView, poolViews, undefinedPoolView, type Freshness } from '../catalog-view.js';
import type { CallContext, CoordinatorServices } from '../context.js';
import { publishPoolEvent } from '../coordinator-events.js';
import { sourceConflict } from '../../../libs/api/pool-conflicts.js';
import { withCatalogUnmoved } from '../define-conflicts.js';
import { forward, forwardToPool } from '../forward.js';
import { requireActive, requireBackend, requireInactive, resolvePool, type ResolvedPool } from '../lookup.js';
import { decodePageToken, encodePageToken, firstAfter, itemBytes, MAX_PAGE_BYTES, pageSize } from '../pagination.js';
import { SchemaValidator } from '../schema-validator.js';
import { checkPoolType, checkPoolTypes, checkRequestId, poolDefinitionAsGiven, poolDefinitionFrom, definitionErrorsUnderRequest, requireHost, requirePoolName, sourceErrorsUnderRequest, storedDefinitionErrors, validateAgainstSchema, xmlErrorsUnder } from '../validate.js';
import { loadXml, requireXml } from '../xml.js';
import { readXml } from '../xml-reader.js';
import { encodedPool } from '../pool-list-encoding.js';
import { requireUuidFree } from '../pool-uuids.js';

/**
 * A call with a request id may be the retry of one that did its work but whose answer was
 * lost (a coordinator killed before storing it, a dropped connection): the cache already shows
 * the new state, and its precondition would refuse the retry. Such calls go to the agent,
 * whose request cache answers a retry with the first call's reply (as CreateVolume does).
 */
function unlessRetry<T>(ctx: CallContext, precondition: (p: T) => T, value: T): T {
  return ctx.requestId ? value : precondition(value);
}

function checkBuildFlags(flags: BuildFlags | undefined, field: string): void {
  if (flags?.overwrite && flags.noOverwrite) {
    throw new InvalidArgumentError(field, 'overwrite and no_overwrite exclude each other; give at most one');
  }
}

/** The pool as clients see it now, or (a transient pool that just stopped) the agent's last word. */
function currentView(svc: CoordinatorServices, host: string, pool: string, fallback?: Pool): Pool {
  const view = poolView(svc.cache, host, pool, svc.hosts.freshness(host));
  if (view) return view;
  if (fallback) return { ...fallback, name: poolName(host, pool), host, persistent: false, autostart: false };
  throw new NotFoundError(`storage pool '${pool}' not found on host '${host}'`, { host, pool });
}

/**
 * The agent keeps a running pool's catalog flags (persistent, autostart) for the pool state of
 * its events and syncs, and the catalog is written here, without it: tell it, so that the next
 * event of a pool marked autostart, or defined while it runs, says so. The catalog stays the
 * truth (reads merge it), so an agent that cannot be told now (its host went offline meanwhile)
 * only leaves the old flags in that pool's events until it starts the pool again: logged, not
 * failed, as the catalog write has been made.
 */
async function tellAgentCatalogFlags(
  svc: CoordinatorServices,
  ctx: CallContext,
  host: string,
  pool: string,
  value: CatalogPool,
  op: NonNullable<AgentRequest['op']>,
  opts: { always?: boolean; onRefused?: () => Promise<void> } = {},
): Promise<void> {
  if ((!opts.always && !svc.cache.runtimePool(host, pool)) || !svc.hosts.isOnline(host)) return;
  try {
    await forward(svc, ctx, host, { pool: value.definition, persistent: value.persistent, autostart: value.autostart, op });
  } catch (err) {
    if (err instanceof AlreadyExistsError && opts.onRefused) {
      await opts.onRefused();
      throw err;
    }
    ctx.log.warn('the agent was not told the catalog flags of its running pool; its events keep the old ones until the pool restarts', { host, pool, err });
  }
}

/** libvirt's virStoragePoolObjSourceFindDuplicate: no two pools of a host on the same storage. */
function requireNoSourceConflict(svc: CoordinatorServices, host: string, def: PoolDefinition): void {
  const checked = new Set<string>();
  const check = (other: PoolDefinition | undefined): void => {
    if (!other || checked.has(other.name)) return;
    checked.add(other.name);
    const shared = sourceConflict(other, def);
    if (shared) {
      throw new AlreadyExistsError(`storage source conflict with pool '${other.name}' on host '${host}': both would use the ${shared}`, { host, pool: other.name });
    }
  };
  for (const [, rec] of svc.cache.catalogOfHost(host)) check(rec.value.definition);
  for (const name of svc.cache.poolsOfHost(host)) check(svc.cache.runtimePool(host, name)?.pool.definition);
}

/**
 * A define that carries a request id and no uuid gets one derived from the caller, the request
 * id, the host and the pool's name, not a random one: a coordinator that dies between its
 * catalog write and storing the answer leaves nothing to tell the retry it was done, and the
 * retry, with the uuid made up again, would find its own pool under another uuid and be refused
 * ALREADY_EXISTS. With the same uuid it is the redefinition of that pool, which changes nothing.
 */
function uuidOfRequest(def: PoolDefinition, req: DefinePoolRequest, ctx: CallContext, host: string): PoolDefinition {
  if (!ctx.requestId || poolDefinitionAsGiven(def, req).uuid) return def;
  const h = createHash('sha256').update(`DefinePool\u0000${ctx.principal}\u0000${ctx.requestId}\u0000${host}\u0000${def.name}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x40; // version 4: a uuid like the others
  h[8] = (h[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const hex = h.subarray(0, 16).toString('hex');
  return { ...def, uuid: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}` };
}

/** The pool's catalog entry; an entry Cistern did not write as its error, which names its revision. */
async function catalogEntryOrUnreadable(svc: CoordinatorServices, host: string, pool: string): Promise<CatalogEntry | UnreadableCatalogEntryError | undefined> {
  try {
    return await svc.catalog.get(host, pool);
  } catch (err) {
    if (err instanceof UnreadableCatalogEntryError) return err;
    throw err;
  }
}

/**
 * The pool as this call's own earlier attempt left it, when the catalog shows that attempt's
 * write: the retry of a define whose coordinator died before storing the answer. It changes
 * nothing: writing again told the agent of a running pool of a new definition (its stop then
 * forgot the run), and undid a redefinition made since. While the entry still is that write, the
 * retry sees the call's POOL_DEFINED in the stream (published now if the dead coordinator had
 * not; catalog-retries.ts) and tells the agent of a running pool that does not run it as a
 * persistent pool yet, which the first call may not have got to. Once the entry changed, the
 * change's own event stands after the define's: nothing is published, and the answer is the
 * pool as it is (or, undefined since or another pool of the name defined since, as that write
 * defined it).
 */
async function ownEarlierDefine(svc: CoordinatorServices, ctx: CallContext, req: DefinePoolRequest, host: string, def: PoolDefinition, definedBy: string): Promise<Pool | undefined> {
  const name = def.name;
  const found = ownWrite(await svc.catalog.history(host, name), (v) => v.definedBy === definedBy && !!v.definition && sameDefinition(v.definition, def));
  if (!found) return undefined;
  const { write, latest } = found;
  ctx.log.info('pool define retried: the define this request made is in the catalog; nothing is written', { host, pool: name, uuid: def.uuid, revision: write.revision, changedSince: !latest });
  if (!latest) {
    // the same pool as it is now; undefined since, or another pool under the name: as the write defined it
    const now = poolView(svc.cache, host, name, svc.hosts.freshness(host));
    return now && now.definition?.uuid === def.uuid ? now : undefinedPoolView(host, name, write.value);
  }
  svc.cache.applyCatalog(host, name, latest.value, latest.revision);
  const run = svc.cache.runtimePool(host, name)?.pool;
  if (run && (!run.persistent || !run.definition || !sameDefinition(run.definition, def))) {
    await tellAgentCatalogFlags(svc, ctx, host, name, latest.value, { $case: 'definePool', value: { ...req, host, definition: def, xml: '' } });
  }
  const view = currentView(svc, host, name);
  await publishPoolEvent(svc, ctx, EventKind.POOL_DEFINED, host, name, view, { revision: write.revision, retryOfWriteAt: write.written });
  return view;
}

export async function definePool(svc: CoordinatorServices, ctx: CallContext, req: DefinePoolRequest): Promise<Pool> {
  const host = requireHost(req.host);
  checkRequestId(req.requestId);
  await validateAgainstSchema(svc.schemas ?? new SchemaValidator(), req, 'storagepool', ctx.signal);
  const def = uuidOfRequest(await poolDefinitionFrom(req.definition, req.xml, ctx.signal), req, ctx, host);
  const entry = svc.hosts.requireKnown(host);
  requireBackend(entry, def.type);
  const name = def.name;
  const definedBy = ctx.requestId ? requestMark(ctx.principal, ctx.requestId) : '';
  const own = definedBy ? await ownEarlierDefine(svc, ctx, req, host, def, definedBy) : undefined;
  if (own) return own;
  // checked and written as one: the write is made only over the catalog the checks read, so
  // nothing written has to be taken back (define-conflicts.ts)
  const { revision, value, takeBack } = await withCatalogUnmoved(svc, host, name, async (bucket) => {
    requireUuidFree(svc.cache, host, def);
    requireNoSourceConflict(svc, host, def);
    const running = svc.cache.runtimePool(host, name);
    if (running && running.pool.definition?.uuid && running.pool.definition.uuid !== def.uuid) {
      throw new AlreadyExistsError(`pool '${name}' is already active on host '${host}' with uuid ${running.pool.definition.uuid}`, { host, pool: name });
    }
    const existing = await catalogEntryOrUnreadable(svc, host, name);
    if (existing instanceof UnreadableCatalogEntryError) {
      // an entry Cistern did not write (catalog-entries.ts) is no pool: the define replaces it
      const value = CatalogPool.create({ definition: def, autostart: false, persistent: true, definedBy });
      const revision = await svc.catalog.updateIfUnmoved(host, name, value, existing.entry.revision, bucket);
      return revision === undefined ? undefined : { revision, value, takeBack: () => svc.catalog.delete(host, name, revision) };
    }
    if (existing) {
      if (existing.value.definition?.uuid !== def.uuid) {
        throw new AlreadyExistsError(
          `pool '${name}' already exists on host '${host}' with uuid ${existing.value.definition?.uuid}; to change it, define it again with that uuid`,
          { host, pool: name },
        );
      }
      const value = CatalogPool.create({ definition: def, autostart: existing.value.autostart, autostartBy: existing.value.autostartBy, persistent: true, definedBy });
      // over the stored bytes: the entry's fields a newer coordinator wrote stay (catalog-fields.ts)
      const revision = await svc.catalog.updateIfUnmoved(host, name, value, existing.revision, bucket, existing.data);
      // taken back (the host refused it, below) as it was stored, those fields included
      return revision === undefined ? undefined : { revision, value, takeBack: async () => void (await svc.catalog.update(host, name, existing.value, revision, existing.data)) };
    }
    const value = CatalogPool.create({ definition: def, autostart: false, persistent: true, definedBy });
    const revision = await svc.catalog.createIfUnmoved(host, name, value, bucket);
    return revision === undefined ? undefined : { revision, value, takeBack: () => svc.catalog.delete(host, name, revision) };
  });
  // the host decides, under the pool's lock, whether a transient pool of this name and
  // another uuid runs (a CreatePool this coordinator's view did not show yet): then the
  // definition is taken back and refused, as libvirt lets one of the two through
  await tellAgentCatalogFlags(svc, ctx, host, name, value, { $case: 'definePool', value: { ...req, host, definition: def, xml: '' } }, { always: true, onRefused: takeBack });
  svc.cache.applyCatalog(host, name, value, revision);
  const view = currentView(svc, host, name);
  await publishPoolEvent(svc, ctx, EventKind.POOL_DEFINED, host, name, view, { revision });
  ctx.log.info('pool defined', { host, pool: name, uuid: def.uuid });
  return view;
}

export async function createPool(svc: CoordinatorServices, ctx: CallContext, req: CreatePoolRequest): Promise<Pool> {
  const host = requireHost(req.host);
  checkRequestId(req.requestId);
  checkBuildFlags(req.buildFlags, 'build_flags');
  const def = await poolDefinitionFrom(req.definition, req.xml, ctx.signal);
  const entry = svc.hosts.requireKnown(host);
  requireBackend(entry, def.type);
  // libvirt's storagePoolCreateXML: the definition of a defined pool (its name and uuid)
  // starts that pool with the definition given, which is live until it stops; the stored one
  // stays (pending) and the pool stays persistent, autostart included. Another uuid: refused.
  const defined = svc.cache.catalogEntry(host, def.name)?.value;
  if (defined && defined.definition?.uuid !== def.uuid) {
    throw new AlreadyExistsError(`pool '${def.name}' already exists on host '${host}' with uuid ${defined.definition?.uuid}`, { host, pool: def.name });
  }
  if (svc.cache.runtimePool(host, def.name) && !ctx.requestId) {
    throw new AlreadyExistsError(`pool '${def.name}' is already active on host '${host}'`, { host, pool: def.name });
  }
  requireUuidFree(svc.cache, host, def);
  requireNoSourceConflict(svc, host, def);
  const reply = await definitionErrorsUnderRequest('pool', req, forward(svc, ctx, host, {
    pool: def,
    persistent: !!defined,
    autostart: defined?.autostart ?? false,
    // the operation as the client asked it (the pool to run, its uuid made up or not, is
    // `pool`): a retry after the first call's coordinator died before storing the answer was
    // refused by the agent's request cache as 'a different createPool request'
    op: { $case: 'createPool', value: { ...req, host, definition: poolDefinitionAsGiven(def, req), xml: '' } },
  }));
  return currentView(svc, host, def.name, reply.result?.$case === 'pool' ? reply.result.value : undefined);
}

/**
 * An UndefinePool with a request id of a pool the catalog does not have: the retry of an undefine
 * whose answer was lost (its coordinator died between deleting the entry and storing the answer).
 * The agent was asked before the deletion and its request cache has the first reply, so it is
 * asked again, by the pool's name alone and without a catalog revision: a call that is no such
 * retry gets there what the coordinator says without a request id (NOT_FOUND, or
 * FAILED_PRECONDITION for a running transient pool).
 */
async function undefineUnknownPool(svc: CoordinatorServices, ctx: CallContext, ref: PoolRef, req: UndefinePoolRequest): Promise<UndefinePoolResponse> {
  await forward(svc, ctx, ref.host, {
    pool: PoolDefinition.fromPartial({ name: ref.pool }),
    persistent: true,
    autostart: false,
    op: { $case: 'undefinePool', value: req },
  });
  // the agent answered the first call's reply: the dead coordinator may not have published its
  // POOL_UNDEFINED, and nothing else ever will. It is published unless the stream has it since
  // the first call can have run (the agent keeps answers AGENT_ANSWERS_KEPT_MS), under the
  // call's duplicate id (catalog-retries.ts)
  const history = await svc.catalog.history(ref.host, ref.pool).catch((): CatalogRevision[] => []);
  const removed = history.at(-1)?.value ? undefined : [...history].reverse().find((r) => r.value)?.value;
  const last = poolView(svc.cache, ref.host, ref.pool) ?? undefinedPoolView(ref.host, ref.pool, removed ?? CatalogPool.create({ definition: PoolDefinition.fromPartial({ name: ref.pool }) }));
  await publishPoolEvent(svc, ctx, EventKind.POOL_UNDEFINED, ref.host, ref.pool, last, { retryOfWriteAt: new Date(Date.now() - AGENT_ANSWERS_KEPT_MS) });
  ctx.log.info('pool undefine retried: answered by the agent', { host: ref.host, pool: ref.pool });
  return {};
}

/** Whether this caller's request id already undefined the pool, within the request id's retry window (its POOL_UNDEFINED is in the stream). */
async function undefinedBefore(svc: CoordinatorServices, ctx: CallContext, ref: PoolRef): Promise<boolean> {
  const window = svc.results?.ttlMs ?? DEFAULT_REQUEST_TTL_SECONDS * 1000;
  return publishedSince(svc.nc, EventKind.POOL_UNDEFINED, ref.host, ref.pool, ctx.principal, ctx.requestId, new Date(Date.now() - window));
}

export async function undefinePool(svc: CoordinatorServices, ctx: CallContext, req: UndefinePoolRequest): Promise<UndefinePoolResponse> {
  const ref = requirePoolName(req.name);
  checkRequestId(req.requestId);
  svc.hosts.requireKnown(ref.host);
  const existing = await catalogEntryOrUnreadable(svc, ref.host, ref.pool);
  if (existing instanceof UnreadableCatalogEntryError) {
    // no pool to hold or announce (no reader counts it as one): only the entry goes
    await svc.catalog.delete(ref.host, ref.pool, existing.entry.revision);
    ctx.log.info('unreadable catalog entry removed', { host: ref.host, pool: ref.pool, key: existing.entry.key, revision: existing.entry.revision });
    return {};
  }
  if (!existing) {
    if (ctx.requestId && svc.hosts.isOnline(ref.host)) return undefineUnknownPool(svc, ctx, ref, req);
    if (svc.cache.runtimePool(ref.host, ref.pool)) {
      throw new FailedPreconditionError(`cannot undefine transient storage pool '${ref.pool}'; stop it instead`, { host: ref.host, pool: ref.pool });
    }
    throw new NotFoundError(`storage pool '${ref.pool}' not found on host '${ref.host}'`, { host: ref.host, pool: ref.pool });
  }
  // the retry of an undefine whose answer was lost, the pool defined again since: its
  // POOL_UNDEFINED in the stream says it was done, and the new definition is not this call's to
  // remove (running it again deleted it). Without that event (its coordinator died before
  // publishing it) the retry cannot be told from a new call (docs/events.md)
  if (ctx.requestId && (await undefinedBefore(svc, ctx, ref))) {
    ctx.log.info('pool undefine retried: this request undefined the pool before it was defined again; nothing is removed', { host: ref.host, pool: ref.pool });
    return {};
  }
  // libvirt's storagePoolUndefine: an active pool keeps its definition until it is stopped
  // (a host that is gone cannot stop it: its definitions can still be removed)
  if (svc.cache.runtimePool(ref.host, ref.pool) && svc.hosts.isOnline(ref.host)) {
    throw new FailedPreconditionError(`storage pool '${ref.pool}' on host '${ref.host}' is still active; stop it first (StopPool, pool-destroy)`, { host: ref.host, pool: ref.pool });
  }
  // The agent answers in the pool's turn, after a start queued before this call (a pool that
  // became active refuses), and then holds the turn until the entry below is deleted, so that
  // a start from another client cannot run in between (services/agent/undefine.ts). A host
  // that is offline cannot start the pool: its definition is removed without asking.
  if (svc.hosts.isOnline(ref.host)) {
    await forward(svc, ctx, ref.host, {
      pool: existing.value.definition,
      persistent: true,
      autostart: existing.value.autostart,
      catalogRevision: BigInt(existing.revision),
      op: { $case: 'undefinePool', value: req },
    });
  }
  await svc.catalog.delete(ref.host, ref.pool, existing.revision);
  svc.cache.applyCatalog(ref.host, ref.pool, undefined, existing.revision + 1);
  const after = poolView(svc.cache, ref.host, ref.pool) ?? undefinedPoolView(ref.host, ref.pool, existing.value);
  await publishPoolEvent(svc, ctx, EventKind.POOL_UNDEFINED, ref.host, ref.pool, after);
  ctx.log.info('pool undefined', { host: ref.host, pool: ref.pool });
  return {};
}

export async function buildPool(svc: CoordinatorServices, ctx: CallContext, req: BuildPoolRequest): Promise<Pool> {
  const ref = requirePoolName(req.name);
  checkRequestId(req.requestId);
  checkBuildFlags(req.flags, 'flags');
  const p = unlessRetry(ctx, requireInactive, resolvePool(svc, ref));
  const reply = await storedDefinitionErrors(forwardToPool(svc, ctx, p, { $case: 'buildPool', value: req }));
  return currentView(svc, ref.host, ref.pool, reply.result?.$case === 'pool' ? reply.result.value : undefined);
}

export async function startPool(svc: CoordinatorServices, ctx: CallContext, req: StartPoolRequest): Promise<Pool> {
  const ref = requirePoolName(req.name);
  checkRequestId(req.requestId);
  checkBuildFlags(req.buildFlags, 'build_flags');
  const p = unlessRetry(ctx, requireInactive, resolvePool(svc, ref));
  const cat = svc.cache.catalogEntry(ref.host, ref.pool);
  await storedDefinitionErrors(forward(svc, ctx, ref.host, {
    pool: cat?.value.definition ?? p.definition,
    persistent: true,
    autostart: cat?.value.autostart ?? false,
    op: { $case: 'startPool', value: req },
  }));
  return currentView(svc, ref.host, ref.pool);
}

/**
 * A StopPool with a request id of a pool this coordinator does not know: the retry of a stop of a
 * transient pool, gone with that stop (libvirt removes it), whose answer was lost (its coordinator
 * died before storing it, or this one started since). Only the agent's request cache has the
 * first reply, so the agent is asked, by the pool's name alone (a definition without a type); a
 * pool not running there is NOT_FOUND, as the coordinator would have said.
 */
async function stopUnknownPool(svc: CoordinatorServices, ctx: CallContext, ref: PoolRef, req: StopPoolRequest): Promise<Pool> {
  const reply = await forward(svc, ctx, ref.host, {
    pool: PoolDefinition.fromPartial({ name: ref.pool }),
    persistent: false,
    autostart: false,
    op: { $case: 'stopPool', value: req },
  });
  const last = reply.result?.$case === 'pool' ? reply.result.value : undefined;
  return currentView(svc, ref.host, ref.pool, last && { ...last, state: PoolState.POOL_STATE_INACTIVE, volumeCount: 0 });
}

export async function stopPool(svc: CoordinatorServices, ctx: CallContext, req: StopPoolRequest): Promise<Pool> {
  const ref = requirePoolName(req.name);
  checkRequestId(req.requestId);
  let found: ResolvedPool;
  try {
    found = resolvePool(svc, ref);
  } catch (err) {
    if (ctx.requestId && err instanceof NotFoundError) return stopUnknownPool(svc, ctx, ref, req);
    throw err;
  }
  const p = unlessRetry(ctx, requireActive, found);
  const reply = await forwardToPool(svc, ctx, p, { $case: 'stopPool', value: req });
  const last = reply.result?.$case === 'pool' ? reply.result.value : { ...p.pool, state: PoolState.POOL_STATE_INACTIVE };
  return currentView(svc, ref.host, ref.pool, { ...last, state: PoolState.POOL_STATE_INACTIVE, volumeCount: 0 });
}

export async function deletePool(svc: CoordinatorServices, ctx: CallContext, req: DeletePoolRequest): Promise<Pool> {
  const ref = requirePoolName(req.name);
  checkRequestId(req.requestId);
  const p = resolvePool(svc, ref);
  if (p.active && !ctx.requestId) throw new FailedPreconditionError(`storage pool '${ref.pool}' is still active; stop it first`, { host: ref.host, pool: ref.pool });
  await storedDefinitionErrors(forwardToPool(svc, ctx, p, { $case: 'deletePool', value: req }));
  return currentView(svc, ref.host, ref.pool, p.pool);
}

export async function refreshPool(svc: CoordinatorServices, ctx: CallContext, req: RefreshPoolRequest): Promise<Pool> {
  const ref = requirePoolName(req.name);
  checkRequestId(req.requestId);
  const p = requireActive(resolvePool(svc, ref));
  await storedDefinitionErrors(forwardToPool(svc, ctx, p, { $case: 'refreshPool', value: req }));
  return currentView(svc, ref.host, ref.pool);
}

export async function getPool(svc: CoordinatorServices, _ctx: CallContext, req: GetPoolRequest): Promise<Pool> {
  const ref = requirePoolName(req.name);
  const p = resolvePool(svc, ref);
  // the held view: its encoded bytes are kept (server.ts serializes GetPool with serializePool)
  return poolViews(svc.cache).get(svc.cache, ref.host, ref.pool, p.freshness) ?? p.pool;
}

/** The filters of a ListPools call, normalised, as its page tokens' kind. */
function poolListingKind(host: string | undefined, req: ListPoolsRequest): string {
  const flag = (v: boolean | undefined): string => (v === undefined ? '' : v ? '1' : '0');
  const types = [...new Set(req.types)].sort((a, b) => a - b).join(',');
  return `pools:${host ?? ''}:${flag(req.active)}${flag(req.persistent)}${flag(req.autostart)}:${types}`;
}

const comparePoolKeys = (a: readonly [string, string], b: readonly [string, string]): number => compare(a[0], b[0]) || compare(a[1], b[1]);

/**
 * One page of the fleet's pools in (host, name) order. Per call the work is the page (plus
 * the pools a filter skips): the sorted keys are the cache's, the start is a binary search,
 * and each pool is its held view, whose encoded bytes are kept (pool-list-encoding.ts).
 */
export async function listPools(svc: CoordinatorServices, _ctx: CallContext, req: ListPoolsRequest): Promise<ListPoolsResponse> {
  const host = req.host ? requireHost(req.host) : undefined;
  checkPoolTypes(req.types);
  const size = pageSize(req.pageSize);
  // a token belongs to the listing that gave it: the same filters, or INVALID_ARGUMENT
  const kind = poolListingKind(host, req);
  const after = decodePageToken(req.pageToken, kind, 2);
  if (host) svc.hosts.requireKnown(host);
  const views = poolViews(svc.cache);
  views.sweep(svc.cache);
  const keys = svc.cache.poolKeys();
  let i = after ? firstAfter(keys, [after[0]!, after[1]!] as const, comparePoolKeys) : 0;
  if (host && !after) i = firstAfter(keys, [host, ''] as const, comparePoolKeys); // pool names are never empty
  const types = req.types.length > 0 ? new Set(req.types) : undefined;
  const pools: Pool[] = [];
  let next = '';
  let last: readonly [string, string] | undefined;
  let freshnessHost: string | undefined;
  let freshness: Freshness = 'current';
  let bytes = 0;
  for (; i < keys.length; i++) {
    const key = keys[i]!;
    const [h, name] = key;
    if (host && h !== host) {
      if (h > host) break;
      continue;
    }
    if (h !== freshnessHost) {
      freshnessHost = h;
      freshness = svc.hosts.freshness(h);
    }
    const view = views.get(svc.cache, h, name, freshness);
    if (!view) continue;
    if (req.active !== undefined && isActiveState(view.state) !== req.active) continue;
    if (req.persistent !== undefined && view.persistent !== req.persistent) continue;
    if (req.autostart !== undefined && view.autostart !== req.autostart) continue;
    if (types && !types.has(view.definition?.type ?? 0)) continue;
    bytes += itemBytes(encodedPool(view).length);
    if (pools.length === size || (bytes > MAX_PAGE_BYTES && pools.length > 0)) {
      next = encodePageToken(kind, [last![0], last![1]]);
      break;
    }
    pools.push(view);
    last = key;
  }
  return { pools, nextPageToken: next };
}

export async function getPoolXml(svc: CoordinatorServices, _ctx: CallContext, req: GetPoolXMLRequest): Promise<XMLDocument> {
  const p = resolvePool(svc, requirePoolName(req.name));
  const lib = await requireXml('GetPoolXML');
  // storagePoolGetXMLDesc: --inactive prints the pending new definition (newDef, sizes 0)
  // when there is one, else the pool's own, which for a running pool is the live document and
  // for a stopped one keeps what its last run showed (the view has it: lastRun)
  const pending = req.inactive && p.active ? pendingDefinition(svc.cache, p.ref.host, p.ref.pool) : undefined;
  if (pending) {
    // a stored definition a CreatePool ran over keeps what its last run showed (ADD_LIVE)
    const kept = pendingLastRun(svc.cache, p.ref.host, p.ref.pool, pending);
    return { xml: lib.formatPoolXml(pending, kept ? runtimeOf(kept) : undefined) };
  }
  const definition = p.active ? p.definition : (inactiveDefinition(svc.cache, p.ref.host, p.ref.pool) ?? p.definition);
  return {
    xml: lib.formatPoolXml(definition, runtimeOf(p.pool)),
  };
}

/** What the live document prints of a pool's state: sizes, free extents, target permissions. */
function runtimeOf(pool: Pool) {
  return {
    capacity: pool.capacity,
    allocation: pool.allocation,
    available: pool.available,
    devices: pool.runtimeDevices,
    targetPermissions: pool.targetPermissions,
  };
}

export async function setPoolAutostart(svc: CoordinatorServices, ctx: CallContext, req: SetPoolAutostartRequest): Promise<Pool> {
  const ref = requirePoolName(req.name);
  resolvePool(svc, ref);
  if (!svc.cache.catalogEntry(ref.host, ref.pool)) {
    throw new FailedPreconditionError(`cannot set autostart for transient storage pool '${ref.pool}'; define it first`, { host: ref.host, pool: ref.pool });
  }
  const autostartBy = ctx.requestId ? requestMark(ctx.principal, ctx.requestId) : '';
  // the retry of a call whose answer was lost (its coordinator died before storing it) finds
  // its write in the catalog and changes nothing: running it again undid a change made since
  // (another client's autostart off). While the entry still is that write, the agent of a
  // running pool is told again (the first call may not have got to it; the same flag twice is
  // no change); SetPoolAutostart publishes no event (catalog-retries.ts)
  const own = autostartBy ? ownWrite(await svc.catalog.history(ref.host, ref.pool), (v) => v.autostartBy === autostartBy && v.autostart === req.autostart) : undefined;
  if (own) {
    ctx.log.info('pool autostart retried: the change this request made is in the catalog; nothing is written', { host: ref.host, pool: ref.pool, changedSince: !own.latest });
    if (own.latest) {
      svc.cache.applyCatalog(ref.host, ref.pool, own.latest.value, own.latest.revision);
      await tellAgentCatalogFlags(svc, ctx, ref.host, ref.pool, own.latest.value, { $case: 'setPoolAutostart', value: req });
    }
    return currentView(svc, ref.host, ref.pool);
  }
  const entry = await svc.catalog.modify(ref.host, ref.pool, (v) => ({ ...v, autostart: req.autostart, autostartBy }));
  svc.cache.applyCatalog(ref.host, ref.pool, entry.value, entry.revision);
  await tellAgentCatalogFlags(svc, ctx, ref.host, ref.pool, entry.value, { $case: 'setPoolAutostart', value: req });
  ctx.log.info('pool autostart set', { host: ref.host, pool: ref.pool, autostart: req.autostart });
  return currentView(svc, ref.host, ref.pool);
}

export async function findPoolSources(svc: CoordinatorServices, ctx: CallContext, req: FindPoolSourcesRequest): Promise<FindPoolSourcesResponse> {
  const host = requireHost(req.host);
  checkPoolType(req.type, 'type');
  if (req.sourceXml && req.source) throw new InvalidArgumentError('source_xml', 'give either source or source_xml, not both');
  let source = req.source;
  if (req.sourceXml) {
    source = await xmlErrorsUnder('source_xml', () => readXml('source', [req.sourceXml], ctx.signal));
  }
  const entry = svc.hosts.requireKnown(host);
  requireBackend(entry, req.type);
  const reply = await sourceErrorsUnderRequest(req, forward(svc, ctx, host, { op: { $case: 'findPoolSources', value: { ...req, host, source, sourceXml: '' } } }));
  const found = reply.result?.$case === 'sources' ? reply.result.value : { sources: [], xml: '' };
  if (!found.xml) {
    const lib = await loadXml();
    if (lib) found.xml = lib.formatPoolSourcesXml(found.sources);
  }
  return found;
}

/**
 * Each host's capabilities as its agent last gave them. They change only with the agent (its
 * version, its backends), so the agent is asked once per start of it (boot id), and while the
 * host is offline the last answer is served, as every other read is, from the cache. The answer
 * lives in the host's entry, so it goes when the host is deleted.
 */
export async function getPoolCapabilities(svc: CoordinatorServices, ctx: CallContext, req: GetPoolCapabilitiesRequest): Promise<PoolCapabilities> {
  const host = requireHost(req.host);
  const entry = svc.hosts.requireKnown(host);
  const known = entry.poolCapabilities;
  if (known && (known.bootId === entry.bootId || !entry.online)) return known.caps;
  const reply = await forward(svc, ctx, host, { op: { $case: 'getPoolCapabilities', value: { host } } });
  const caps = reply.result?.$case === 'capabilities' ? reply.result.value : { types: [], xml: '' };
  if (!caps.xml && caps.types.length > 0) {
    const lib = await loadXml();
    if (lib) caps.xml = lib.formatPoolCapabilitiesXml(caps.types);
  }
  entry.poolCapabilities = { bootId: entry.bootId, caps };
  return caps;
}
