// What a new dir volume will be, decided before anything is written: createVol's checks
// (virStorageBackendVolCreateLocal and the checks libvirt makes before building) and the
// path, mode and owner a build creates it with.
import { lstatSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { normalize } from 'node:path';
import { VolumeType, type PoolDefinition, type VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { AlreadyExistsError, InvalidArgumentError } from '../../errors/errors.js';
import { checkSize, printable } from '../../api/names.js';
import type { CreateVolOptions, NewFileIdentity, PoolContext } from '../backend.js';
import { KNOWN_FORMATS } from '../format-probe.js';
import { fsError } from '../fs-errors.js';
import { DEFAULT_VOL_MODE, wantedOwner } from '../stat-fields.js';
import { checkBackingPath, newVolumePath } from './paths.js';
import { onLocalFilesystem } from '../pool-kinds.js';

/** Formats a dir pool can create (qemu-img's writable drivers; iso is created as raw). */
export const CREATABLE_FORMATS = ['raw', 'dir', 'iso', 'qcow', 'qcow2', 'qed', 'vmdk', 'vpc', 'vdi'] as const;

/** A checked volume reduced to what creating its file takes. */
export interface ResolvedCreate {
  /** the volume's name in its pool */
  name: string;
  path: string;
  /** the pool the name is made in (new-volume-name.ts: in the directory it started with) */
  pool?: PoolDefinition;
  format: string;
  capacity?: bigint;
  allocation?: bigint;
  mode: number;
  uid: number;
  gid: number;
  /** CreateVolOptions.onFileMade: told the new file's identity once it exists (new-file.ts, noteMadeFile) */
  onFileMade?: (file: NewFileIdentity) => void;
}

/**
 * The definition a build creates, checked and filled in (type, path, key, compat implied by
 * features); refuses what cannot be built and writes nothing.
 */
export async function planVolume(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
  const path = newVolumePath(ctx.pool, volume.name);
  const t = volume.target;
  const format = (t?.format || 'raw').toLowerCase();
  if (!(KNOWN_FORMATS as readonly string[]).includes(format)) {
    throw new InvalidArgumentError('volume.target.format', `unknown volume format '${printable(format)}'; allowed: ${CREATABLE_FORMATS.join(', ')}`);
  }
  if (!(CREATABLE_FORMATS as readonly string[]).includes(format)) {
    throw new InvalidArgumentError(
      'volume.target.format',
      `volume format '${format}' cannot be created in a dir pool (${format === 'ploop' ? 'libvirt makes ploop images with the ploop tools, which are not supported' : 'qemu-img only reads it'}); allowed: ${CREATABLE_FORMATS.join(', ')}`,
    );
  }
  if (volume.capacity !== undefined) checkSize(volume.capacity, 'volume.capacity');
  // an allocation above the capacity is allowed, as in libvirt: a raw file grows to the
  // allocation (createRawFile: ftruncate to the capacity, then fallocate the allocation);
  // other formats use it only to choose the preallocation
  if (volume.allocation !== undefined) checkSize(volume.allocation, 'volume.allocation');
  let compat = t?.compat ?? '';
  const lazy = t?.lazyRefcounts ?? false;
  const extendedL2 = t?.extendedL2 ?? false;
  // the features first: a definition's normalization gives either one compat 1.1, which the
  // client did not set
  if (lazy && format !== 'qcow2') throw new InvalidArgumentError('volume.target.lazy_refcounts', `format features are only available with qcow2, not ${format}`);
  if (extendedL2 && format !== 'qcow2') throw new InvalidArgumentError('volume.target.extended_l2', `format features are only available with qcow2, not ${format}`);
  if (compat && format !== 'qcow2') throw new InvalidArgumentError('volume.target.compat', `the compatibility option is only available with qcow2, not ${format}`);
  if (compat && compat !== '0.10' && compat !== '1.1') {
    throw new InvalidArgumentError('volume.target.compat', `compat '${printable(compat)}' is not supported; allowed: 0.10, 1.1`);
  }
  if (lazy && compat === '0.10') throw new InvalidArgumentError('volume.target.lazy_refcounts', 'lazy_refcounts is not supported with compat level 0.10; use compat 1.1');
  if (extendedL2 && compat === '0.10') throw new InvalidArgumentError('volume.target.extended_l2', 'extended_l2 is not supported with compat level 0.10; use compat 1.1');
  if ((lazy || extendedL2) && !compat) compat = '1.1'; // libvirt: <features> imply compat 1.1
  const cluster = t?.clusterSize ?? 0n;
  if (cluster > 0n) {
    const [lo, hi] = format === 'qcow2' ? [512n, 2n * 1024n * 1024n] : format === 'qed' ? [4096n, 64n * 1024n * 1024n] : [0n, 0n];
    if (hi === 0n) throw new InvalidArgumentError('volume.target.cluster_size', `cluster size is only available with qcow2 and qed, not ${format}`);
    if (cluster < lo || cluster > hi || (cluster & (cluster - 1n)) !== 0n) {
      throw new InvalidArgumentError('volume.target.cluster_size', `cluster size ${cluster} is invalid; allowed: a power of two from ${lo} to ${hi} bytes`);
    }
  }
  const enc = t?.encryption;
  if (enc) {
    const ef = enc.format || 'default';
    if (ef !== 'luks') {
      throw new InvalidArgumentError('volume.target.encryption.format', `creating '${printable(ef)}' encrypted volumes is not supported; allowed: luks`);
    }
    if (format !== 'raw' && format !== 'qcow2') {
      throw new InvalidArgumentError('volume.target.encryption', `volume encryption is not supported with format ${format}; allowed with raw and qcow2`);
    }
    if (enc.secrets.length !== 1) {
      throw new InvalidArgumentError('volume.target.encryption.secrets', `a single <secret type='passphrase'> is expected, got ${enc.secrets.length}`);
    }
  }
  const backing = volume.backingStore;
  if (backing?.path) {
    if (format === 'raw' || format === 'iso' || format === 'dir') {
      throw new InvalidArgumentError('volume.backing_store', `cannot set a backing store for a ${format} volume; use qcow2, qcow, qed or vmdk`);
    }
    checkBackingPath(backing.path);
    if (backing.format && !(KNOWN_FORMATS as readonly string[]).includes(backing.format)) {
      throw new InvalidArgumentError('volume.backing_store.format', `unknown backing format '${printable(backing.format)}'; allowed: ${KNOWN_FORMATS.join(', ')}`);
    }
  }
  const mode = t?.permissions?.mode;
  if (mode !== undefined && (mode < 0 || mode > 0o7777)) {
    throw new InvalidArgumentError('volume.target.permissions.mode', `mode ${mode.toString(8)} is out of range; allowed: 0000 to 7777 (octal)`);
  }
  let exists: boolean;
  try {
    // a thread-pool round trip costs more than the lstat itself on a local disk: ~0.2 ms of a
    // create; and a missing path (the usual case) answered as undefined, not as a thrown ENOENT
    // whose Error and stack cost ~10 us more than the system call
    exists = onLocalFilesystem(ctx.pool.type) ? lstatSync(path, { throwIfNoEntry: false }) !== undefined : await pathExists(path);
  } catch (err) {
    throw fsError(err, 'stat', path);
  }
  if (exists) throw new AlreadyExistsError(`volume target path '${printable(path, 200)}' already exists`);
  const planned: VolumeDefinition = {
    ...volume,
    type: format === 'dir' ? VolumeType.VOLUME_TYPE_DIR : VolumeType.VOLUME_TYPE_FILE,
    key: path,
    sourceDevices: [],
    target: {
      path,
      format,
      permissions: t?.permissions,
      timestamps: undefined,
      compat,
      nocow: t?.nocow ?? false,
      clusterSize: cluster,
      lazyRefcounts: lazy,
      extendedL2,
      encryption: enc,
    },
    backingStore: backing?.path ? { path: backing.path, format: backing.format, permissions: backing.permissions, timestamps: undefined } : undefined,
  };
  return planned;
}

/** The path, format, sizes, mode and owner of a checked volume's new file; a target path other than the one the pool gives is refused. */
export function resolveCreate(ctx: PoolContext, volume: VolumeDefinition, options?: Pick<CreateVolOptions, 'onFileMade'>): ResolvedCreate {
  const path = newVolumePath(ctx.pool, volume.name);
  if (volume.target?.path && normalize(volume.target.path) !== path) {
    throw new InvalidArgumentError('volume.target.path', `path '${printable(volume.target.path, 200)}' is not '${printable(path, 200)}', the only path a dir pool gives volume '${printable(volume.name)}'`);
  }
  const { uid, gid } = wantedOwner(volume.target?.permissions);
  return {
    name: volume.name,
    path,
    pool: ctx.pool,
    format: (volume.target?.format || 'raw').toLowerCase(),
    capacity: volume.capacity,
    allocation: volume.allocation,
    mode: volume.target?.permissions?.mode ?? DEFAULT_VOL_MODE,
    uid,
    gid,
    ...(options?.onFileMade ? { onFileMade: options.onFileMade } : {}),
  };
}

/**
 * How many bytes of a raw volume to allocate: the whole capacity for falloc or full
 * preallocation, else the allocation asked for (the capacity when none was).
 */
export function rawAllocation(r: ResolvedCreate, options: CreateVolOptions): bigint {
  if (options.preallocMetadata) throw new InvalidArgumentError('prealloc_metadata', 'metadata preallocation is not supported for raw volumes; it is only available with qcow2');
  if (options.preallocation === 'falloc' || options.preallocation === 'full') return r.capacity!;
  return r.allocation ?? r.capacity!;
}

/** Whether `path` names anything (a dangling link too); errors other than ENOENT are thrown. */
async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
