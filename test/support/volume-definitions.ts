// A file volume's definition as a backend receives it, for backend tests: what the test
// names, the proto's empty values for the rest (no coordinator or agent fills them in).
import { VolumeType, type VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';

/** What a test says beyond name, format and capacity: target options by short names, or any field. */
export type FileVolumeExtra = Partial<VolumeDefinition> & { compat?: string; lazy?: boolean; extendedL2?: boolean; cluster?: bigint; nocow?: boolean; backingPath?: string };

export function fileVolume(name: string, format: string, capacity?: bigint, extra: FileVolumeExtra = {}): VolumeDefinition {
  const { compat, lazy, extendedL2, cluster, nocow, backingPath, ...rest } = extra;
  return {
    type: VolumeType.VOLUME_TYPE_UNSPECIFIED,
    name,
    key: '',
    capacity,
    allocation: undefined,
    sourceDevices: [],
    target: { path: '', format, permissions: undefined, timestamps: undefined, compat: compat ?? '', nocow: nocow ?? false, clusterSize: cluster ?? 0n, lazyRefcounts: lazy ?? false, extendedL2: extendedL2 ?? false, encryption: undefined },
    backingStore: backingPath ? { path: backingPath, format: 'raw', permissions: undefined, timestamps: undefined } : undefined,
    ...rest,
  };
}
