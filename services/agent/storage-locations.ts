// Where on a host the agent may let qemu (or its own copy) read an image from: inside the
// target of an active file pool (dir, fs, netfs), or a volume of one of its other active
// pools (an LV, a partition, a LUN). A backing store or a clone source anywhere else (/etc/shadow,
// the host's /dev/sda) would hand a client with volume rights the host's files.
import { realpathSync, statSync } from 'node:fs';
import { PermissionDeniedError } from '../../libs/errors/errors.js';
import { printable } from '../../libs/api/names.js';
import type { PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { startedPoolDirectory } from '../../libs/backends/dir/pool-directory.js';
import type { AdmitFile } from '../../libs/backends/image-references.js';
import type { AgentState } from './state.js';
import { FILE_POOL_TYPES } from '../../libs/backends/pool-kinds.js';

function realOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

/**
 * A file pool's target with its links resolved, if it is still the directory the pool started
 * with (pool-directory.ts; a pool whose start was not seen is taken as it is): a target, or a
 * directory above it, swapped for a link to /etc must not make /etc a place to read from.
 */
function startedRoot(pool: PoolDefinition): string | undefined {
  const real = realOrUndefined(pool.target?.path ?? '');
  if (real === undefined) return undefined;
  const started = startedPoolDirectory(pool);
  if (!started) return real;
  try {
    const st = statSync(real);
    return st.dev === started.dev && st.ino === started.ino ? real : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An AdmitFile for this host's pools as they are now: a file (where its descriptor really is)
 * inside the target of an active file pool, or one of the volumes of its other pools, is
 * admitted; anything else is PERMISSION_DENIED.
 */
export function admitInHostPools(state: AgentState): AdmitFile {
  let roots: string[] | undefined;
  let blockVolumes: Set<string> | undefined;
  return (name, real, why) => {
    roots ??= [...state.pools.values()]
      .filter((p) => FILE_POOL_TYPES.has(p.definition.type) && p.definition.target?.path)
      .map((p) => startedRoot(p.definition))
      .filter((r): r is string => r !== undefined);
    if (roots.some((root) => real.startsWith(root === '/' ? '/' : `${root}/`))) return;
    blockVolumes ??= new Set(
      [...state.pools.values()]
        .filter((p) => !FILE_POOL_TYPES.has(p.definition.type))
        .flatMap((p) => [...p.volumes.values()].map((v) => realOrUndefined(v.definition.target?.path ?? '')))
        .filter((r): r is string => r !== undefined),
    );
    if (blockVolumes.has(real)) return;
    // not where it resolves: the agent follows links as root, and /proc/self/fd/N or
    // /proc/PID/cwd would tell the caller what any process has open, or a link in a directory
    // it cannot read where it leads (what the caller named, it knows already)
    throw new PermissionDeniedError(
      `${why} '${printable(name, 200)}' is, with its links followed, in none of the active pools of host '${state.host}'; ` +
        'a backing store or clone source must be a volume of a pool on the same host',
    );
  };
}
