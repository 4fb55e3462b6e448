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
import { storageIdentities, type StorageIdentity } from './storage-identity.js';

/** The definitions of the pools whose start is running, per agent (keyed by its state). */
const startingOf = new WeakMap<AgentState, Map<string, PoolDefinition>>();

/**
 * What each pool's start found its storage to be (by the definition it started with, the one
 * its state entry holds). An active pool uses what it started with (a dir pool's operations
 * refuse a target swapped since: libs/backends/dir/pool-directory.ts), so a later start is
 * compared with that and reads only its own paths: reading every active pool's again cost each
 * start a stat per pool (a 1,000-pool autostart 8 s instead of 0.25 s), and a pool on a dead NFS
 * server would hang every start on the host. Empty results are not kept (a directory a start
 * is still building has none yet).
 */
const identitiesOf = new WeakMap<PoolDefinition, Promise<StorageIdentity[]>>();

/** `fresh`: read now (a start's own paths); else what its start read, or read once now. */
function identities(def: PoolDefinition, fresh: boolean): Promise<StorageIdentity[]> {
  const known = fresh ? undefined : identitiesOf.get(def);
  if (known) return known;
  const reading = storageIdentities(def);
  identitiesOf.set(def, reading);
  // a start still reading is waited for, not read again; an empty result is not kept
  void reading.then((found) => {
    if (found.length === 0 && identitiesOf.get(def) === reading) identitiesOf.delete(def);
  });
  return reading;
}

/**
 * Holds the storage of a pool found running at the agent's start while restore.ts takes it
 * back, and notes what it uses, as a start does its own: later starts then compare with it
 * without reading its paths again. Held from before its check, not only once it is active: a
 * restore can outlast the agent's wait for it, and the starts it then serves (requests, the
 * autostart) must not pass over this pool's storage because it is neither active nor a start.
 * Refuses nothing itself: the pool runs already (libvirt does not check a pool it finds
 * running either). Returns the release, for when the restore of the pool has ended.
 */
export async function holdRestoredStorage(ctx: AgentContext, def: PoolDefinition): Promise<() => void> {
  const release = register(ctx, def);
  await identities(def, true);
  return release;
}

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
  // read now, and kept for the starts after this one
  const mine = await identities(def, true);
  if (mine.length === 0) return;
  for (const other of others) {
    if (other.name === def.name) continue;
    for (const theirs of await identities(other, false)) {
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
  const starting = startingOf.get(ctx.state) ?? new Map<string, PoolDefinition>();
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
  return register(ctx, def);
}

/** Counts `def` among the starts under way until the release is called. */
function register(ctx: AgentContext, def: PoolDefinition): () => void {
  let mine = startingOf.get(ctx.state);
  if (!mine) startingOf.set(ctx.state, (mine = new Map()));
  const starting = mine;
  starting.set(def.name, def);
  return () => {
    if (starting.get(def.name) === def) starting.delete(def.name);
  };
}
