// DefinePool's uniqueness rules (one uuid per pool, no two pools of a host on the same
// storage: libvirt's virStoragePoolObjIsDuplicate and SourceFindDuplicate) span keys, and each
// key is written compare-and-swap on its own revision: two defines at once (two clients of one
// coordinator, or two coordinators) both passed the check against the cache, and both were
// written (three pools over one directory). A define then wrote first and took its write back
// once its watch showed an earlier conflicting pool; in between another coordinator saw the
// entry, and a StartPool through it started the pool whose definition was then deleted (review
// h112). So a define now writes nothing it may have to take back: it checks the rules against
// this coordinator's cache once the cache holds the bucket up to revision R, and writes only if
// nothing at all was written to the bucket after R (Catalog.createIfUnmoved/updateIfUnmoved);
// when something was, it reads and checks again. Of two racing defines the one written first
// stands, whichever coordinator wrote it, and the other is refused as a later define is.
import { AbortedError, UnavailableError } from '../../libs/errors/errors.js';
import type { CoordinatorServices } from './context.js';

/** How long a define waits for this coordinator's catalog watch to reach the bucket's newest pool entry. */
export const WATCH_WAIT_MS = 5_000;
/**
 * How long a define keeps checking again over a bucket that moved before its write, before it
 * gives up (ABORTED). A time, not a count: of N defines at once each round lets one write, so
 * the last needs N rounds (two coordinators defining twenty pools at once went past ten), and
 * unrelated writes (host records of a fleet coming up) move the bucket as well.
 */
export const DEFINE_BUDGET_MS = 10_000;
/** The longest pause between two rounds; each pause is random up to a bound that doubles from 1 ms, so racing defines spread out. */
const MAX_BACKOFF_MS = 50;

/**
 * Runs `attempt` with the bucket revision R its cache reads are at (every pool entry up to R is
 * in the cache), until it returns a result: undefined means its write found the bucket moved
 * past R. UNAVAILABLE when the watch does not catch up within WATCH_WAIT_MS, ABORTED when the
 * bucket kept moving for `budgetMs`; either way nothing was written.
 */
export async function withCatalogUnmoved<T>(
  svc: CoordinatorServices,
  host: string,
  pool: string,
  attempt: (bucketRevision: number) => Promise<T | undefined>,
  budgetMs = DEFINE_BUDGET_MS,
): Promise<T> {
  const giveUpAt = Date.now() + budgetMs;
  for (let n = 1; ; n++) {
    // the bucket's revision first: a pool entry written after it is then at most the newest
    // read next, which the cache waits for; the write expects the bucket still at it
    const bucket = await svc.catalog.bucketRevision();
    const pools = await svc.catalog.lastPoolRevision();
    if (svc.catalogWatermark && !(await svc.catalogWatermark.waitFor(pools, WATCH_WAIT_MS))) {
      throw new UnavailableError(
        `this coordinator's view of the catalog did not reach its revision ${pools} within ${WATCH_WAIT_MS / 1000} s, so pool '${pool}' on host '${host}' could not be checked against the pools defined before it; nothing was defined; retry`,
        { host, pool },
      );
    }
    const done = await attempt(bucket);
    if (done !== undefined) return done;
    if (Date.now() >= giveUpAt) {
      throw new AbortedError(
        `the catalog kept changing while pool '${pool}' on host '${host}' was being defined (${n} attempts in ${Math.round(budgetMs / 1000)} s); nothing was defined; retry`,
        { host, pool },
      );
    }
    svc.log.debug('the catalog moved between a define\'s check and its write; checking again', { host, pool, bucket, attempt: n });
    const bound = Math.min(MAX_BACKOFF_MS, 2 ** Math.min(n - 1, 6));
    await new Promise((r) => setTimeout(r, Math.random() * bound));
  }
}
