// Autostart at boot (docs/bus.md, item 7): the agent lists its host's catalog entries and
// starts those marked autostart, without needing a coordinator. Each start publishes
// POOL_STARTED (and the volumes found) like a StartPool would. The one thing the agent
// cannot find alone is a CHAP secret (agents cannot read the secrets bucket): such a pool
// asks a coordinator for it, and when none answers it waits for one (`retryable`).
import type { Catalog } from '../../libs/bus/catalog.js';
import { asCisternError } from '../../libs/errors/errors.js';
import { systemActor, type Actor } from './events.js';
import { needsSecret, type PoolSecretSource } from './pool-secrets.js';
import { withSecrets } from './secrets.js';
import { checkPoolDefinition, flushEvents, type AgentContext } from './context.js';
import { activatePool } from './handlers/pool-ops.js';

export interface AutostartResult {
  started: string[];
  failed: { pool: string; code: string; message: string }[];
  /** Pools that need a secret and found no coordinator to give it: start them when one appears. */
  retryable: string[];
}

/** Catalog source: the real Catalog or a fake listing entries. */
export type CatalogLister = Pick<Catalog, 'list'>;

/**
 * Starts the host's autostart pools (all of them, or those named in `only`). `secretsFor`
 * fetches a pool's CHAP secret from a coordinator; without it such a pool fails to log in.
 */
export async function autostartPools(
  ctx: AgentContext,
  catalog: CatalogLister,
  secretsFor?: PoolSecretSource,
  only?: ReadonlySet<string>,
): Promise<AutostartResult> {
  const result: AutostartResult = { started: [], failed: [], retryable: [] };
  const entries = await catalog.list(ctx.host);
  await Promise.all(
    entries
      .filter((e) => e.value.autostart && e.value.definition && (!only || only.has(e.pool)))
      .map(async (e) => {
        const def = e.value.definition!;
        try {
          // the agent's checks of a request's definition: the catalog is no safer a source
          checkPoolDefinition(def);
          if (def.name !== e.pool) throw new Error(`catalog key names pool '${e.pool}' but its definition says '${def.name}'`);
          await ctx.locks.withPool(def.name, 'start', async () => {
            if (ctx.state.getPool(def.name)) return; // already active (started by a request meanwhile)
            let actor: Actor = systemActor;
            if (secretsFor && needsSecret(def)) {
              const secrets = await secretsFor(def).catch((err: unknown) => {
                if (asCisternError(err).code === 'UNAVAILABLE') result.retryable.push(e.pool);
                throw err;
              });
              actor = withSecrets({ ...systemActor }, { secrets: secrets ?? [] });
            }
            await activatePool(ctx, def, { persistent: e.value.persistent, autostart: true }, actor);
          });
          result.started.push(def.name);
        } catch (err) {
          const ce = asCisternError(err);
          result.failed.push({ pool: e.pool, code: ce.code, message: ce.message });
          ctx.log.error('autostart of a pool failed', { pool: e.pool, code: ce.code, error: ce.message });
        }
      }),
  );
  await flushEvents(ctx);
  ctx.log.info('autostart done', { started: result.started, failed: result.failed.length });
  return result;
}
