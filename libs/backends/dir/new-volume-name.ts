// Where a new volume's name is made: in the pool directory the pool started with, opened and
// checked (pool-directory.ts), as `/proc/self/fd/N/NAME`. By the target path, a target (or a
// directory above it) swapped for a link since the pool started, by someone who can write in
// its parent, would move root's new file elsewhere: a clone's content into /etc/cron.d. A
// directory that is not the started one is FAILED_PRECONDITION, and nothing is created.
import { basename } from 'node:path';
import { openPoolDirectory, openPoolDirectoryDirect } from './pool-directory.js';
import { volumePath } from './paths.js';
import type { ResolvedCreate } from './volume-plan.js';

/**
 * Runs `make` with `at()`, the path to make the volume's name at (and reach it by while
 * `make` runs), the pool directory held open meanwhile. `direct`: open the directory with
 * direct system calls (a local filesystem), else through the thread pool (netfs). Without a
 * pool (or a path that is not NAME in its target), or when there is no directory to open (the
 * create then fails on its own), `at()` is r.path, read at each use.
 */
export async function inStartedPoolDirectory<T>(r: ResolvedCreate, direct: boolean, make: (at: () => string) => Promise<T> | T): Promise<T> {
  const byName = (): string => r.path;
  const name = basename(r.path);
  if (!r.pool || volumePath(r.pool, name) !== r.path) return make(byName);
  const dir = direct ? await openPoolDirectoryDirect(r.pool) : await openPoolDirectory(r.pool);
  if (!dir) return make(byName);
  const inDir = dir.pathOf(name);
  try {
    return await make(() => inDir);
  } finally {
    await dir.close();
  }
}
