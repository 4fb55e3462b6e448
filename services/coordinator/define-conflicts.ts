// DefinePool's uniqueness rules (one uuid per pool, no two pools of a host on the same
// storage: libvirt's virStoragePoolObjIsDuplicate and SourceFindDuplicate) are checked against
// the cache before the catalog write. Two defines at once (two clients of one coordinator, or
// two coordinators) both passed that check, and both were written: three pools over one
// directory, three with one uuid. Each key is written compare-and-swap, but the rule spans
// keys. So after its write at revision R a define waits until this coordinator's catalog watch
// has delivered R (then every pool entry written before R is in the cache), and if a pool
// defined before it (as it was then: a later change of it, such as its autostart, is read back
// from the bucket's history) breaks the rule, it takes its own write back and fails
// ALREADY_EXISTS: of two racing defines, the one written first stands, whichever coordinator
// wrote it.
import { AlreadyExistsError } from '../../libs/errors/errors.js';
import type { PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import type { CoordinatorServices } from './context.js';
import { sourceConflict } from '../../libs/api/pool-conflicts.js';

/** How long a define waits for the watch to deliver its own write before it skips the check. */
export const WATCH_WAIT_MS = 5_000;

/** What breaks the rule between `def` and `other`, in the words of the check made before the write, or undefined. */
function conflict(host: string, def: PoolDefinition, other: PoolDefinition | undefined): string | undefined {
  if (!other || other.name === def.name) return undefined;
  if (def.uuid && other.uuid === def.uuid) return `pool '${other.name}' on host '${host}' already has uuid ${def.uuid}`;
  const shared = sourceConflict(other, def);
  return shared ? `storage source conflict with pool '${other.name}' on host '${host}': both would use the ${shared}` : undefined;
}

/**
 * Called after `def` was written at `revision`: throws ALREADY_EXISTS, after `undo` took the
 * write back, when a pool written before it on the host conflicts with it.
 */
export async function refuseIfDefinedMeanwhile(
  svc: CoordinatorServices,
  host: string,
  def: PoolDefinition,
  revision: number,
  undo: () => Promise<void>,
): Promise<void> {
  const watermark = svc.catalogWatermark;
  if (!watermark) return;
  if (!(await watermark.waitFor(revision, WATCH_WAIT_MS))) {
    svc.log.warn('the catalog watch did not deliver a define in time; concurrent defines were not checked', { host, pool: def.name, revision });
    return;
  }
  for (const [other, rec] of [...svc.cache.catalogOfHost(host)]) {
    if (other === def.name) continue;
    // the pool as it was when this define was written: a pool-autostart or a redefinition just
    // after moves its entry past `revision`, and the pool defined before still counts
    const then = rec.revision < revision ? rec.value.definition : await definitionBefore(svc, host, other, revision);
    const why = conflict(host, def, then);
    if (!why) continue;
    await undo().catch((err: unknown) => svc.log.warn('could not take back a define that conflicts with one made meanwhile', { host, pool: def.name, err }));
    throw new AlreadyExistsError(why, { host, pool: other });
  }
}

/** The definition `pool` had just before `revision` (Catalog.valueBefore); undefined when none, or unreadable (logged: not checked). */
async function definitionBefore(svc: CoordinatorServices, host: string, pool: string, revision: number): Promise<PoolDefinition | undefined> {
  try {
    return (await svc.catalog.valueBefore(host, pool, revision))?.definition;
  } catch (err) {
    svc.log.warn('could not read what a pool changed since a define was before it; that pool was not checked against the define', { host, pool, revision, err });
    return undefined;
  }
}
