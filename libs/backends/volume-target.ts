// A volume's target as a backend first sees it: where it is, its format, its owner and times,
// and nothing a probe of an image header would add. One place to spell it out, so a field
// added to VolumeTarget (as extended_l2 was) is given its empty value once, not per backend.
import type { Permissions, Timestamps, VolumeTarget } from '../proto/cistern/v1/storage.js';

export function plainTarget(path: string, format: string, permissions?: Permissions, timestamps?: Timestamps): VolumeTarget {
  return {
    path,
    format,
    permissions,
    timestamps,
    compat: '',
    nocow: false,
    clusterSize: 0n,
    lazyRefcounts: false,
    extendedL2: false,
    encryption: undefined,
  };
}
