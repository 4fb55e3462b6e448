// What a volume operation leaves known of a volume, as libvirt's driver keeps it. The agent
// re-reads a volume after every operation (backend.refreshVol, a full header probe), but
// libvirt's refreshVol after a create, clone or resize (virStorageBackendVolRefreshLocal ->
// virStorageBackendUpdateVolInfo) reads sizes, permissions and timestamps only: a qcow2's
// cluster size shows as the request gave it until a full probe reads it from the image
// (pool refresh, wipe, upload: virStorageBackendRefreshVolTargetUpdate).
import type { VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';

/** `live` with the cluster size `known` had (0: not known, not printed). */
export function keepUnprobedFields(live: VolumeDefinition, known: VolumeDefinition): VolumeDefinition {
  const clusterSize = known.target?.clusterSize ?? 0n;
  if (!live.target || live.target.clusterSize === clusterSize) return live;
  return { ...live, target: { ...live.target, clusterSize } };
}
