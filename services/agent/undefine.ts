// UndefinePool against StartPool, possibly sent by two coordinators at once. The catalog
// entry lives in KV, the pool's turn on the agent: without a meeting point an undefine could
// delete the entry while a start was running, and both calls succeeded, leaving a running
// pool with no definition (libvirt refuses: "storage pool is starting up" / "is still
// active"). So:
// - the coordinator asks the agent before it deletes the entry (undefinePool): in the pool's
//   turn, after any start queued before it, the agent says FAILED_PRECONDITION when the pool
//   is active, and otherwise answers and keeps the pool's turn until the entry has moved from
//   the revision the coordinator is deleting (at most UNDEFINE_HOLD_MS: a coordinator that dies
//   in between does not block the pool for longer);
// - a start the coordinator sends reads the entry again in the pool's turn, and refuses when
//   it is gone (NOT_FOUND) or is another pool's now (ABORTED).
import type { AgentReply, AgentRequest, CatalogPool } from '../../libs/proto/cistern/agent/v1/agent.js';
import type { PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { AbortedError, AlreadyExistsError, FailedPreconditionError, NotFoundError, UnavailableError } from '../../libs/errors/errors.js';
import { UnreadableCatalogEntryError } from '../../libs/bus/catalog-entries.js';
import { actorOf, checkPoolResource, requestPool, requestPoolName, type AgentContext } from './context.js';
import { doneReply } from './handlers/reply.js';

/** Longest time an undefine keeps the pool's turn waiting for its catalog deletion. */
export const UNDEFINE_HOLD_MS = 5_000;
/** How often the entry is read while the turn is kept. */
const HOLD_POLL_MS = 20;

/** The catalog as the agent reads it: one pool's current entry (its own keys only). */
export interface CatalogReader {
  get(host: string, pool: string): Promise<{ value: CatalogPool; revision: number } | undefined>;
}

type UndefineOp = Extract<NonNullable<AgentRequest['op']>, { $case: 'undefinePool' }>['value'];

export async function undefinePool(ctx: AgentContext, request: AgentRequest, op: UndefineOp): Promise<AgentReply> {
  const revision = Number(request.catalogRevision);
  // (a name is all such a request carries of the pool)
  const def = revision === 0 ? requestPoolName(request) : requestPool(request);
  checkPoolResource(ctx, op.name, def.name, 'name');
  // no revision: the coordinator found no entry, and asks only because the call may be the retry
  // of an undefine whose answer was lost (its coordinator died between deleting the entry and
  // storing the answer). A retry is answered from the request cache before this runs; anything
  // else gets what the coordinator would have said.
  if (revision === 0) throw undefinedPoolRefusal(ctx, def.name);
  return new Promise<AgentReply>((answer, refuse) => {
    ctx.locks
      .withPool(def.name, 'undefine', async () => {
        if (ctx.state.getPool(def.name)) {
          refuse(
            new FailedPreconditionError(`storage pool '${def.name}' on host '${ctx.host}' is still active; stop it first (StopPool, pool-destroy)`, {
              host: ctx.host,
              pool: def.name,
            }),
          );
          return;
        }
        // the pool goes, and with it what its last run showed (StoppedPool)
        ctx.state.forgetStopped(def.name);
        answer(doneReply());
        if (revision > 0 && ctx.catalog) await holdUntilMoved(ctx, ctx.catalog, def.name, revision);
      }, actorOf(request).signal)
      .catch(refuse);
  });
}

/** An undefine of a pool the catalog does not have: a running one is transient (libvirt refuses), else there is none. */
function undefinedPoolRefusal(ctx: AgentContext, pool: string): Error {
  if (ctx.state.getPool(pool)) {
    return new FailedPreconditionError(`cannot undefine transient storage pool '${pool}'; stop it instead`, { host: ctx.host, pool });
  }
  return new NotFoundError(`storage pool '${pool}' not found on host '${ctx.host}'`, { host: ctx.host, pool });
}

/** Keeps the caller's pool turn until the pool's entry is no longer at `revision` (deleted, or changed). */
async function holdUntilMoved(ctx: AgentContext, catalog: CatalogReader, pool: string, revision: number): Promise<void> {
  const until = Date.now() + UNDEFINE_HOLD_MS;
  try {
    while (Date.now() < until) {
      const entry = await catalog.get(ctx.host, pool);
      if (entry?.revision !== revision) return;
      await new Promise((resolve) => setTimeout(resolve, HOLD_POLL_MS));
    }
    ctx.log.warn('an undefine was answered but its catalog entry did not change; the pool takes other work again', { pool, revision });
  } catch (err) {
    ctx.log.warn('the catalog could not be read while an undefine held the pool; the pool takes other work again', { pool, error: err });
  }
}

/**
 * A CreatePool may not take the name of a pool defined with another uuid: a DefinePool of that
 * name may have been written since the coordinator looked (libvirt adds both to one list under
 * one lock, and one of the two fails). The definition of the defined pool itself (its uuid)
 * starts it, as libvirt's storagePoolCreateXML does: its catalog entry is returned, whose flags
 * the running pool keeps. Read under the pool's lock, as requireStillDefined.
 */
export async function requireNotDefinedElse(ctx: AgentContext, def: PoolDefinition): Promise<CatalogPool | undefined> {
  if (!ctx.catalog) return undefined;
  const entry = await catalogEntry(ctx, ctx.catalog, def, 'is not defined with another uuid');
  if (!entry) return undefined;
  const uuid = entry.value.definition?.uuid;
  if (!def.uuid || uuid !== def.uuid) {
    throw new AlreadyExistsError(`storage pool '${def.name}' already exists on host '${ctx.host}' with uuid ${uuid}`, {
      host: ctx.host,
      pool: def.name,
    });
  }
  return entry.value;
}

/**
 * For a start a coordinator sent, in the pool's turn: the pool must still be defined, as the
 * same pool (uuid). NOT_FOUND when an undefine deleted it meanwhile, ABORTED when it was
 * undefined and defined again with another uuid. Returns the entry read: what the pool starts
 * with. Without a catalog (unit tests) nothing is checked.
 */
export async function requireStillDefined(ctx: AgentContext, def: PoolDefinition): Promise<CatalogPool | undefined> {
  if (!ctx.catalog) return undefined;
  const entry = await catalogEntry(ctx, ctx.catalog, def, 'is still defined');
  if (!entry) {
    throw new NotFoundError(`storage pool '${def.name}' not found on host '${ctx.host}': it was undefined`, { host: ctx.host, pool: def.name });
  }
  const uuid = entry.value.definition?.uuid;
  if (def.uuid && uuid && uuid !== def.uuid) {
    throw new AbortedError(`storage pool '${def.name}' on host '${ctx.host}' was defined again (uuid ${uuid}) while this start was sent; retry`, {
      host: ctx.host,
      pool: def.name,
    });
  }
  return entry.value;
}

/** The pool's catalog entry, read for a check; UNAVAILABLE (retry) when the catalog does not answer. */
async function catalogEntry(ctx: AgentContext, catalog: NonNullable<AgentContext['catalog']>, def: PoolDefinition, checking: string) {
  try {
    return await catalog.get(ctx.host, def.name);
  } catch (err) {
    if (err instanceof UnreadableCatalogEntryError) throw err; // not a matter of time: as it is
    throw new UnavailableError(`the catalog could not be read to check that storage pool '${def.name}' ${checking} (${(err as Error)?.message}); retry`, {
      host: ctx.host,
      pool: def.name,
    });
  }
}
