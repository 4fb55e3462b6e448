// No two pools of a host active on the same storage (libvirt's "storage source conflict",
// libs/api/pool-conflicts.ts). The coordinator checks it against its cache before it sends a
// start, but two starts sent at once (two transient CreatePool calls over one directory, a
// transient pool created while a pool on the same storage is defined and started) both passed
// that check and both ran: three pools over one directory, each locking its volumes on its
// own. The agent has the last word: a pool's storage is claimed, synchronously, when its start
// begins, against the host's active pools and the starts still running.
import { AlreadyExistsError } from '../../libs/errors/errors.js';
import type { PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { sourceConflict } from '../../libs/api/pool-conflicts.js';
import type { AgentContext } from './context.js';
import type { AgentState } from './state.js';
import { storageIdentities } from './storage-identity.js';

/** The definitions of the pools whose start is running, per agent (keyed by its state). */
const startingOf = new WeakMap<AgentState, Map<string, PoolDefinition>>();

/**
 * Claims the storage of `def` for its start: ALREADY_EXISTS naming the active or starting
 * pool that uses it. Returns the release, for when the start has ended (the pool is then
 * active, and its entry in the state holds the claim, or the start failed).
 *
 * By the paths as written first, synchronously (what two starts at once must not both pass);
 * then by what the paths are on this host (storage-identity.ts), against the active pools and
 * the starts claimed before this one: of two starts at once over one directory through two
 * names, the later one is refused.
 */
export async function claimStorage(ctx: AgentContext, def: PoolDefinition): Promise<() => void> {
  const release = claimByPath(ctx, def);
  try {
    const earlier = [...ctx.state.pools.values()].map((e) => e.definition);
    for (const [name, other] of startingOf.get(ctx.state) ?? []) {
      if (name === def.name) break; // the starts claimed after this one are theirs to check
      earlier.push(other);
    }
    await refuseSameStorage(ctx, def, earlier);
  } catch (err) {
    release();
    throw err;
  }
  return release;
}

async function refuseSameStorage(ctx: AgentContext, def: PoolDefinition, others: PoolDefinition[]): Promise<void> {
  const mine = await storageIdentities(def);
  if (mine.length === 0) return;
  for (const other of others) {
    if (other.name === def.name) continue;
    for (const theirs of await storageIdentities(other)) {
      const same = mine.find((m) => m.key === theirs.key);
      if (!same) continue;
      const named = same.path === theirs.path ? '' : ` (named '${same.path}' here)`;
      throw new AlreadyExistsError(`storage source conflict with pool '${other.name}' on host '${ctx.host}': both would use the ${theirs.what} '${theirs.path}'${named}`, {
        host: ctx.host,
        pool: other.name,
      });
    }
  }
}

function claimByPath(ctx: AgentContext, def: PoolDefinition): () => void {
  let starting = startingOf.get(ctx.state);
  if (!starting) startingOf.set(ctx.state, (starting = new Map()));
  const others = [...[...ctx.state.pools.values()].map((e) => e.definition), ...starting.values()];
  for (const other of others) {
    if (other.name === def.name) continue;
    const shared = sourceConflict(other, def);
    if (shared) {
      throw new AlreadyExistsError(`storage source conflict with pool '${other.name}' on host '${ctx.host}': both would use the ${shared}`, {
        host: ctx.host,
        pool: other.name,
      });
    }
  }
  const mine = starting;
  mine.set(def.name, def);
  return () => {
    if (mine.get(def.name) === def) mine.delete(def.name);
  };
}
