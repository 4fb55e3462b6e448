// Read-your-writes across coordinators. A call answered from this coordinator's cache sees a
// change made through another coordinator only once this one has read it: its event from the
// stream, its definition from the catalog watch. Usually that is at once, but under load a
// client that creates a volume through one coordinator and uses it through another (a load
// balancer in front of several) may be told NOT_FOUND for what it just made, ALREADY_EXISTS for
// what it just deleted, FAILED_PRECONDITION for a pool it just started. So before answering one
// of those, a call checks whether the stream or the catalog holds something this coordinator has
// not read yet; if so it waits (bounded) until it has, and runs once more on the view that now
// includes every change made before the call failed. Only an answer of this coordinator's own
// is run again: one a host gave is the truth about that host, and the host may have acted on
// the way to it (a refresh that finds its directory gone stops the pool), so a second run
// would answer from what the first one changed. An answer this coordinator gave from its view
// changed nothing, so running it again is the retry its client would make, minus the wrong
// answer.
import { CisternError } from '../../libs/errors/errors.js';
import type { CoordinatorServices } from './context.js';
import { streamBounds } from './event-log.js';

/** How long a call waits for this coordinator to read what the stream and catalog held when it failed. */
export const CATCH_UP_WAIT_MS = 2_000;

/** The answers that may only mean this coordinator has not read a recent change yet. */
const VIEW_DEPENDENT = new Set(['NOT_FOUND', 'ALREADY_EXISTS', 'FAILED_PRECONDITION']);

/** Errors an agent answered with (forward.ts): never run again, whatever this coordinator's view. */
const hostAnswers = new WeakSet<object>();

/** Marks `err` as an agent's answer about its host and returns it (to throw). */
export function hostAnswer(err: unknown): unknown {
  if (typeof err === 'object' && err !== null) hostAnswers.add(err);
  return err;
}

/** How far this coordinator has read the stream and the catalog. */
interface ViewPosition {
  events: bigint;
  catalog: number;
}

function position(svc: CoordinatorServices): ViewPosition {
  return { events: svc.cache.appliedSequence, catalog: svc.catalogWatermark?.value ?? 0 };
}

/**
 * Reads how far the stream and the catalog are now, and waits (bounded) until this
 * coordinator has read that far. False when it could not within the wait.
 */
export async function catchUp(svc: CoordinatorServices, timeoutMs = CATCH_UP_WAIT_MS): Promise<boolean> {
  const [last, revision] = await Promise.all([
    streamBounds(svc.nc).then((b) => b.last),
    svc.catalogWatermark ? svc.catalog.lastPoolRevision() : Promise.resolve(0),
  ]);
  const [events, catalog] = await Promise.all([
    svc.cache.waitForSequence(last, timeoutMs),
    svc.catalogWatermark ? svc.catalogWatermark.waitFor(revision, timeoutMs) : true,
  ]);
  return events && catalog;
}

/**
 * Runs `call`; when it fails with an answer that depends on this coordinator's view, catches
 * up with the stream and the catalog and, if that brought anything the first run had not
 * seen, runs it once more.
 */
export async function withCatchUp<T>(svc: CoordinatorServices, signal: AbortSignal, call: () => Promise<T>): Promise<T> {
  const seen = position(svc);
  try {
    return await call();
  } catch (err) {
    // with the bus down there is nothing to catch up with, and asking would wait out a timeout
    if (!(err instanceof CisternError) || !VIEW_DEPENDENT.has(err.code) || hostAnswers.has(err) || signal.aborted || svc.hosts.busDown) throw err;
    try {
      await catchUp(svc);
    } catch {
      // the bus does not answer: the first answer is the best there is
    }
    const now = position(svc);
    if (signal.aborted || (now.events === seen.events && now.catalog === seen.catalog)) throw err;
    return call();
  }
}
