// Where on a host the agent may let qemu (or its own copy) read an image from: inside the
// target of an active file pool (dir, fs, netfs), or a volume of one of its other active
// pools (an LV, a partition, a LUN). A backing store or a clone source anywhere else (/etc/shadow,
// the host's /dev/sda) would hand a client with volume rights the host's files.
import { realpathSync } from 'node:fs';
import { PermissionDeniedError } from '../../libs/errors/errors.js';
import { printable } from '../../libs/api/names.js';
import { PoolType } from '../../libs/proto/cistern/v1/storage.js';
import type { AdmitFile } from '../../libs/backends/image-references.js';
import type { AgentState } from './state.js';

export const FILE_POOL_TYPES: ReadonlySet<PoolType> = new Set([PoolType.POOL_TYPE_DIR, PoolType.POOL_TYPE_FS, PoolType.POOL_TYPE_NETFS]);

function realOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

/**
 * An AdmitFile for this host's pools as they are now: returns the real path of a file inside
 * them, throws PERMISSION_DENIED for one outside. A path that does not resolve (missing, a
 * dangling link) is returned as given: opening it fails where it would have failed anyway.
 */
export function admitInHostPools(state: AgentState): AdmitFile {
  let roots: string[] | undefined;
  let blockVolumes: Set<string> | undefined;
  return (path, why) => {
    const real = realOrUndefined(path);
    if (real === undefined) return path;
    roots ??= [...state.pools.values()]
      .filter((p) => FILE_POOL_TYPES.has(p.definition.type) && p.definition.target?.path)
      .map((p) => realOrUndefined(p.definition.target!.path))
      .filter((r): r is string => r !== undefined);
    if (roots.some((root) => real.startsWith(root === '/' ? '/' : `${root}/`))) return real;
    blockVolumes ??= new Set(
      [...state.pools.values()]
        .filter((p) => !FILE_POOL_TYPES.has(p.definition.type))
        .flatMap((p) => [...p.volumes.values()].map((v) => realOrUndefined(v.definition.target?.path ?? '')))
        .filter((r): r is string => r !== undefined),
    );
    if (blockVolumes.has(real)) return real;
    throw new PermissionDeniedError(
      `${why} '${printable(path, 200)}' resolves to '${printable(real, 200)}', which is in none of the active pools of host '${state.host}'; ` +
        'a backing store or clone source must be a volume of a pool on the same host',
    );
  };
}
