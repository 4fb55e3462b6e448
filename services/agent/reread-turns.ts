// GetVolume refresh reads a volume beside other readers (a download), so two re-reads of one
// volume may run at once (two vol-info, two coordinators). Each stores what it read: the one
// that finishes last would win, and a slow read begun before the volume grew again would put
// the older size back. Re-reads of one volume therefore take turns, each reading only once the
// one before it has stored its result: the state left is the latest read.
import type { PoolEntry } from './state.js';

/** Per running pool (a restarted pool is a new entry), the tail of each volume's re-reads. */
const tails = new WeakMap<PoolEntry, Map<string, Promise<void>>>();

/** Runs `fn` once the re-reads of `volume` begun before it have ended. */
export async function inRereadTurn<T>(pool: PoolEntry, volume: string, fn: () => Promise<T>): Promise<T> {
  let queue = tails.get(pool);
  if (!queue) {
    queue = new Map();
    tails.set(pool, queue);
  }
  const previous = queue.get(volume) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((r) => (done = r));
  queue.set(volume, mine);
  await previous;
  try {
    return await fn();
  } finally {
    if (queue.get(volume) === mine) queue.delete(volume);
    done();
  }
}
