// At agent start, before autostart: the pools that were running when the agent stopped
// (running-pools.ts) and are still up stay running, as libvirtd's
// storagePoolUpdateStateCallback keeps them over a daemon restart: the backend's checkPool
// says whether the pool is up (a dir that exists, a file system still mounted, a volume group
// still there, a session still logged in), and a refresh reads its volumes again. Nothing is
// started or mounted here, and no event is published: nothing happened to the pool; the full
// sync that follows carries it, and the coordinator's reconcile publishes what changed while
// the agent was away. A pool that is not up any more stays inactive (autostart may start it).
import type { PoolContext, StorageBackend } from '../../libs/backends/backend.js';
import { asCisternError } from '../../libs/errors/errors.js';
import type { CatalogPool } from '../../libs/proto/cistern/agent/v1/agent.js';
import type { PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import type { CatalogLister } from './autostart.js';
import { backendFor, checkPoolDefinition, poolContext, type AgentContext } from './context.js';
import { systemActor } from './events.js';
import { cleanupWhenStarted } from './journal.js';
import { undoGrowsWhenStarted } from './grow-journal.js';
import type { RunningPoolRecord } from './running-pools.js';
import { applyRefresh } from './state.js';
import { holdRestoredStorage } from './storage-claims.js';
import { adoptPoolMount } from '../../libs/backends/pool-mounts.js';

export interface RestoreResult {
  restored: string[];
  /** Recorded as running, found down (or failing its check or refresh): inactive now. */
  down: { pool: string; reason: string }[];
}

export async function restoreRunningPools(
  ctx: AgentContext,
  records: readonly RunningPoolRecord[],
  catalog: CatalogLister,
  /** Called once per record when it is decided (restored or down). */
  settled: (pool: string) => void = () => undefined,
): Promise<RestoreResult> {
  const result: RestoreResult = { restored: [], down: [] };
  if (records.length === 0) return result;
  // what each uses, held from now, before anything is awaited: the agent serves requests after
  // 30 s even while a restore still reads, and a start then must meet these pools' storage
  // (storage-claims.ts); once one is active its state entry holds it
  const held = new Map(records.map((r) => [r, holdRestoredStorage(ctx, r.definition)]));
  let catalogEntries;
  try {
    // persistent and autostart as the catalog says now: it may have changed meanwhile
    catalogEntries = new Map((await catalog.list(ctx.host)).map((e) => [e.pool, e.value]));
  } catch (err) {
    for (const hold of held.values()) void hold.then((release) => release());
    throw err;
  }
  const entries = catalogEntries;
  await Promise.all(
    records.map(async (record) => {
      const def = record.definition;
      try {
        // the agent's checks of a request's definition: a file on disk is no safer a source
        checkPoolDefinition(def);
        const backend = backendFor(ctx, def.type);
        await ctx.locks.withPool(def.name, 'start', async () => {
          if (ctx.state.getPool(def.name)) return;
          // pool roots given since it started: it is not taken back outside them
          await ctx.poolRoots?.require(def);
          const pc = poolContext(ctx, def, systemActor);
          // the mount its start made: its check finds it there even when the source name changed
          if (record.mount) adoptPoolMount(def, record.mount);
          await held.get(record);
          await restoreHeld(ctx, def, backend, pc, entries);
        });
        if (ctx.state.getPool(def.name)) result.restored.push(def.name);
      } catch (err) {
        const reason = asCisternError(err).message;
        result.down.push({ pool: def.name, reason });
        ctx.log.warn('a pool running before the agent stopped is not up; it is inactive now', { pool: def.name, reason });
      } finally {
        (await held.get(record)!)();
        settled(def.name);
      }
    }),
  );
  ctx.log.info('running pools restored', { restored: result.restored, down: result.down.length });
  return result;
}

/** Takes one pool back, its storage held: still up, its leftovers cleaned, its volumes read. */
async function restoreHeld(
  ctx: AgentContext,
  def: PoolDefinition,
  backend: StorageBackend,
  pc: PoolContext,
  catalogEntries: Map<string, CatalogPool>,
): Promise<void> {
  // libvirt: a backend without checkPool cannot tell, so its pools are inactive
  if (!backend.checkPool || !(await backend.checkPool(pc))) throw new Error('not up any more');
  if (ctx.journal) await cleanupWhenStarted(ctx.journal, def, backend, ctx.runner, ctx.log);
  // an fs or netfs pool's allocating grows a kill interrupted: its directory is there now
  if (ctx.grows) await undoGrowsWhenStarted(ctx.grows, def, backend, ctx.runner, ctx.log);
  let scan;
  try {
    scan = await backend.refreshPool(pc);
  } catch (err) {
    // as libvirt's storagePoolRefreshFailCleanup: a pool reported inactive is not left up
    if (backend.stopPool) await backend.stopPool(pc).catch((stopErr) => ctx.log.warn('stop after a failed refresh failed', { pool: def.name, error: stopErr }));
    throw err;
  }
  const listed = catalogEntries.get(def.name);
  const entry = ctx.state.addPool(def, { persistent: listed !== undefined, autostart: listed?.autostart ?? false }, scan.runtime);
  applyRefresh(ctx.state, entry, scan.volumes);
  ctx.state.touchPool(entry);
}
