// Per pool type: which source elements it uses, its pool formats and volume formats, as
// libvirt's poolTypeInfo table (src/conf/storage_conf.c) defines them.
import { InvalidArgumentError } from '../errors/errors.js';
import { PoolType, VolumeType } from '../proto/cistern/v1/storage.js';

/** The pool types Cistern supports, in libvirt's order. */
export const SUPPORTED_POOL_TYPES: readonly string[] = ['dir', 'fs', 'netfs', 'logical', 'disk', 'iscsi', 'iscsi-direct', 'scsi', 'mpath'];
/** Types libvirt knows that are outside Cistern's scope. */
export const OUT_OF_SCOPE_POOL_TYPES: readonly string[] = ['rbd', 'sheepdog', 'gluster', 'zfs', 'vstorage'];
/** Every pool type libvirt knows, in libvirt's enum order (pool-capabilities lists them all). */
export const LIBVIRT_POOL_TYPES: readonly string[] = [...SUPPORTED_POOL_TYPES, ...OUT_OF_SCOPE_POOL_TYPES];

const TYPE_BY_NAME: Record<string, PoolType> = {
  dir: PoolType.POOL_TYPE_DIR,
  fs: PoolType.POOL_TYPE_FS,
  netfs: PoolType.POOL_TYPE_NETFS,
  logical: PoolType.POOL_TYPE_LOGICAL,
  disk: PoolType.POOL_TYPE_DISK,
  iscsi: PoolType.POOL_TYPE_ISCSI,
  'iscsi-direct': PoolType.POOL_TYPE_ISCSI_DIRECT,
  scsi: PoolType.POOL_TYPE_SCSI,
  mpath: PoolType.POOL_TYPE_MPATH,
};
const NAME_BY_TYPE = new Map<PoolType, string>(Object.entries(TYPE_BY_NAME).map(([k, v]) => [v, k]));

function show(v: string): string {
  const s = String(v).replace(/[\x00-\x1f\x7f]/g, '?');
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

/** 'dir' -> PoolType.POOL_TYPE_DIR. Anything else, including rbd/gluster/..., is INVALID_ARGUMENT. */
export function poolTypeFromString(name: string, field = 'pool/@type'): PoolType {
  const t = Object.prototype.hasOwnProperty.call(TYPE_BY_NAME, name) ? TYPE_BY_NAME[name] : undefined;
  if (t === undefined) {
    throw new InvalidArgumentError(field, `unsupported pool type '${show(name)}'; supported: ${SUPPORTED_POOL_TYPES.join(', ')}`);
  }
  return t;
}

/** PoolType.POOL_TYPE_DIR -> 'dir'. UNSPECIFIED or unknown values are INVALID_ARGUMENT. */
export function poolTypeToString(type: PoolType, field = 'type'): string {
  const n = NAME_BY_TYPE.get(type);
  if (n === undefined) {
    throw new InvalidArgumentError(field, `unsupported pool type ${PoolType[type] ?? String(type)}; supported: ${SUPPORTED_POOL_TYPES.join(', ')}`);
  }
  return n;
}

/** Is this a pool type Cistern supports? */
export function isSupportedPoolType(type: PoolType): boolean {
  return NAME_BY_TYPE.has(type);
}

// Source element flags (libvirt's VIR_STORAGE_POOL_SOURCE_*)
export const SOURCE_HOST = 1 << 0;
export const SOURCE_DEVICE = 1 << 1;
export const SOURCE_DIR = 1 << 2;
export const SOURCE_ADAPTER = 1 << 3;
export const SOURCE_NAME = 1 << 4;
export const SOURCE_INITIATOR_IQN = 1 << 5;
export const SOURCE_NETWORK = 1 << 6;

/** libvirt's virStorageFileFormat names (index 0 'none' is not accepted as a volume format). */
export const FILE_FORMATS_ENUM: readonly string[] = [
  'none', 'raw', 'dir', 'bochs', 'cloop', 'dmg', 'iso', 'vpc', 'vdi', 'fat', 'vhd', 'ploop', 'cow', 'qcow', 'qcow2', 'qed', 'vmdk',
];
export const DISK_VOLUME_FORMATS: readonly string[] = ['none', 'linux', 'fat16', 'fat32', 'linux-swap', 'linux-lvm', 'linux-raid', 'extended'];
export const FS_POOL_FORMATS: readonly string[] = ['auto', 'ext2', 'ext3', 'ext4', 'ufs', 'iso9660', 'udf', 'gfs', 'gfs2', 'vfat', 'hfs+', 'xfs', 'ocfs2', 'vmfs'];
export const NETFS_POOL_FORMATS: readonly string[] = ['auto', 'nfs', 'glusterfs', 'cifs'];
export const DISK_POOL_FORMATS: readonly string[] = ['unknown', 'dos', 'dvh', 'gpt', 'mac', 'bsd', 'pc98', 'sun', 'lvm2'];
export const LOGICAL_POOL_FORMATS: readonly string[] = ['unknown', 'lvm2'];

export interface PoolTypeInfo {
  readonly type: PoolType;
  readonly name: string;
  /** SOURCE_* flags: which source elements the type uses (and prints). */
  readonly flags: number;
  /** Pool (source) formats in libvirt's enum order; empty when the type has none. */
  readonly poolFormats: readonly string[];
  readonly defaultPoolFormat: string;
  /** libvirt's enum for the volume format, in order (what pool-capabilities prints). */
  readonly volumeFormatEnum: readonly string[];
  /** Volume formats accepted in <target><format type=''/>; empty when the type prints none. */
  readonly volumeFormats: readonly string[];
  readonly defaultVolumeFormat: string;
  /** The <volume type=''> of this pool's volumes. */
  readonly volumeType: VolumeType;
  /** Has a <target> (iscsi-direct has none). */
  readonly hasTarget: boolean;
}

const FILE_VOLUME_FORMATS = FILE_FORMATS_ENUM.slice(1);

function info(p: Omit<PoolTypeInfo, 'volumeFormats'>): PoolTypeInfo {
  const volumeFormats = p.volumeFormatEnum === FILE_FORMATS_ENUM ? FILE_VOLUME_FORMATS : p.volumeFormatEnum;
  return { ...p, volumeFormats };
}

const INFOS: readonly PoolTypeInfo[] = [
  info({ type: PoolType.POOL_TYPE_DIR, name: 'dir', flags: 0, poolFormats: [], defaultPoolFormat: '', volumeFormatEnum: FILE_FORMATS_ENUM, defaultVolumeFormat: 'raw', volumeType: VolumeType.VOLUME_TYPE_FILE, hasTarget: true }),
  info({ type: PoolType.POOL_TYPE_FS, name: 'fs', flags: SOURCE_DEVICE, poolFormats: FS_POOL_FORMATS, defaultPoolFormat: 'auto', volumeFormatEnum: FILE_FORMATS_ENUM, defaultVolumeFormat: 'raw', volumeType: VolumeType.VOLUME_TYPE_FILE, hasTarget: true }),
  info({ type: PoolType.POOL_TYPE_NETFS, name: 'netfs', flags: SOURCE_HOST | SOURCE_DIR, poolFormats: NETFS_POOL_FORMATS, defaultPoolFormat: 'auto', volumeFormatEnum: FILE_FORMATS_ENUM, defaultVolumeFormat: 'raw', volumeType: VolumeType.VOLUME_TYPE_FILE, hasTarget: true }),
  info({ type: PoolType.POOL_TYPE_LOGICAL, name: 'logical', flags: SOURCE_NAME | SOURCE_DEVICE, poolFormats: LOGICAL_POOL_FORMATS, defaultPoolFormat: 'lvm2', volumeFormatEnum: [], defaultVolumeFormat: '', volumeType: VolumeType.VOLUME_TYPE_BLOCK, hasTarget: true }),
  info({ type: PoolType.POOL_TYPE_DISK, name: 'disk', flags: SOURCE_DEVICE, poolFormats: DISK_POOL_FORMATS, defaultPoolFormat: 'unknown', volumeFormatEnum: DISK_VOLUME_FORMATS, defaultVolumeFormat: 'none', volumeType: VolumeType.VOLUME_TYPE_BLOCK, hasTarget: true }),
  info({ type: PoolType.POOL_TYPE_ISCSI, name: 'iscsi', flags: SOURCE_HOST | SOURCE_DEVICE | SOURCE_INITIATOR_IQN, poolFormats: [], defaultPoolFormat: '', volumeFormatEnum: [], defaultVolumeFormat: '', volumeType: VolumeType.VOLUME_TYPE_BLOCK, hasTarget: true }),
  info({ type: PoolType.POOL_TYPE_ISCSI_DIRECT, name: 'iscsi-direct', flags: SOURCE_HOST | SOURCE_DEVICE | SOURCE_NETWORK | SOURCE_INITIATOR_IQN, poolFormats: [], defaultPoolFormat: '', volumeFormatEnum: [], defaultVolumeFormat: '', volumeType: VolumeType.VOLUME_TYPE_NETWORK, hasTarget: false }),
  info({ type: PoolType.POOL_TYPE_SCSI, name: 'scsi', flags: SOURCE_ADAPTER, poolFormats: [], defaultPoolFormat: '', volumeFormatEnum: [], defaultVolumeFormat: '', volumeType: VolumeType.VOLUME_TYPE_BLOCK, hasTarget: true }),
  info({ type: PoolType.POOL_TYPE_MPATH, name: 'mpath', flags: 0, poolFormats: [], defaultPoolFormat: '', volumeFormatEnum: [], defaultVolumeFormat: '', volumeType: VolumeType.VOLUME_TYPE_BLOCK, hasTarget: true }),
];
const INFO_BY_TYPE = new Map<PoolType, PoolTypeInfo>(INFOS.map((i) => [i.type, i]));

/** The table row for a supported pool type (INVALID_ARGUMENT for anything else). */
export function poolTypeInfo(type: PoolType, field = 'type'): PoolTypeInfo {
  const i = INFO_BY_TYPE.get(type);
  if (!i) poolTypeToString(type, field); // throws the standard message
  return i!;
}

/** All supported types' table rows, in libvirt's order. */
export function allPoolTypeInfos(): readonly PoolTypeInfo[] {
  return INFOS;
}

/** Pool (source) formats allowed for a type; [] when the type takes none. */
export function poolFormatsFor(type: PoolType): readonly string[] {
  return poolTypeInfo(type).poolFormats;
}

/** Default pool format ('' when the type has none). */
export function defaultPoolFormatFor(type: PoolType): string {
  return poolTypeInfo(type).defaultPoolFormat;
}

/** Volume formats allowed in a pool of this type; [] when volumes of the type carry no format. */
export function volumeFormatsFor(type: PoolType): readonly string[] {
  return poolTypeInfo(type).volumeFormats;
}

/** Default volume format ('' when the type has none). */
export function defaultVolumeFormatFor(type: PoolType): string {
  return poolTypeInfo(type).defaultVolumeFormat;
}

/** Pools whose volumes are files under the pool's target directory. */
export function isDirLikePool(type: PoolType): boolean {
  return type === PoolType.POOL_TYPE_DIR || type === PoolType.POOL_TYPE_FS || type === PoolType.POOL_TYPE_NETFS;
}

const VOLUME_TYPE_NAMES: readonly string[] = ['file', 'block', 'dir', 'network', 'netdir', 'ploop'];

/** VolumeType -> 'file', 'block', ... */
export function volumeTypeToString(t: VolumeType): string {
  const n = VOLUME_TYPE_NAMES[t - 1];
  if (n === undefined) throw new InvalidArgumentError('type', `unknown volume type ${String(t)}; allowed: ${VOLUME_TYPE_NAMES.join(', ')}`);
  return n;
}

/** 'file' -> VolumeType.VOLUME_TYPE_FILE ... */
export function volumeTypeFromString(name: string, field = 'volume/@type'): VolumeType {
  const i = VOLUME_TYPE_NAMES.indexOf(name);
  if (i === -1) throw new InvalidArgumentError(field, `unknown volume type '${show(name)}'; allowed: ${VOLUME_TYPE_NAMES.join(', ')}`);
  return (i + 1) as VolumeType;
}

/** The volume type a pool gives a volume of this format (dir pools: 'dir' format is a directory, 'ploop' a ploop dir). */
export function volumeTypeFor(type: PoolType, format: string): VolumeType {
  const i = poolTypeInfo(type);
  if (isDirLikePool(type)) {
    if (format === 'dir') return VolumeType.VOLUME_TYPE_DIR;
    if (format === 'ploop') return VolumeType.VOLUME_TYPE_PLOOP;
  }
  return i.volumeType;
}
