// The interface every pool type implements: libvirt's storage backend callbacks
// (storage_backend.h). A backend declares what it supports; the agent answers
// UNIMPLEMENTED for the rest before anything runs.
import type {
  BuildFlags,
  Extent,
  Permissions,
  PoolDefinition,
  PoolSource,
  PoolType,
  SourceDevice,
  VolumeDefinition,
  WipeAlgorithm,
} from '../proto/cistern/v1/storage.js';
import type { CommandRunner } from './runner.js';
import type { AdmitFile, ImageChain } from './image-references.js';

/** Every operation a backend may implement, each a method of StorageBackend of the same name. */
export const BACKEND_OPERATIONS = [
  'checkPool',
  'buildPool',
  'startPool',
  'refreshPool',
  'stopPool',
  'deletePool',
  'createVol',
  'buildVol',
  'buildVolFrom',
  'deleteVol',
  'resizeVol',
  'wipeVol',
  'uploadVol',
  'downloadVol',
  'findPoolSources',
] as const;

export type BackendOperation = (typeof BACKEND_OPERATIONS)[number];

/** Reports bytes done of total for long work (build, wipe, clone, upload, download). */
export type ProgressFn = (done: bigint, total: bigint) => void;

export interface BackendContext {
  runner: CommandRunner;
  /** Aborted when the caller cancels: stop the work and remove what a create left. */
  signal?: AbortSignal;
  progress?: ProgressFn;
  /** Secret values needed by this operation only (uuid or usage -> value). */
  secrets?: ReadonlyMap<string, Buffer>;
}

export interface PoolContext extends BackendContext {
  pool: PoolDefinition;
}

export interface BuildPoolOptions {
  /** One per build, recorded in the agent's build journal before the build writes anything (create-id.ts format). */
  buildId?: string;
}

/** Pool sizes and runtime data found by a refresh. */
export interface PoolRuntime {
  capacity: bigint;
  allocation: bigint;
  available: bigint;
  /** Per source device free extents (disk pools). */
  devices?: SourceDevice[];
  /** The target directory's mode, owner and group (filesystem pools), as libvirt's refresh reads them. */
  targetPermissions?: Permissions;
}

export interface RefreshResult {
  runtime: PoolRuntime;
  /** Every volume of the pool, live: key, path, sizes, format, permissions, timestamps. */
  volumes: VolumeDefinition[];
}

export interface CreateVolOptions {
  /** VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA: qcow2 only; metadata (allocation < capacity) or falloc. */
  preallocMetadata: boolean;
  /** Explicit qemu-img preallocation mode (metadata | falloc | full); raw: falloc/full allocate the capacity. */
  preallocation?: 'metadata' | 'falloc' | 'full';
  /** VIR_STORAGE_VOL_CREATE_REFLINK: clone by sharing extents; fails where the filesystem cannot. */
  reflink?: boolean;
  /**
   * Identifies this create or clone (create-id.ts; the agent's create journal records it). A
   * backend that can mark what it makes (logical: an LVM tag on the LV) marks it with this, so
   * that undoing a failed or interrupted create removes only what this create made, never a
   * same-named volume someone else made in between. Absent: the backend makes one up.
   */
  createId?: string;
  /**
   * Called once the new volume's file (or directory) exists, right after its exclusive
   * create, with what tells it from any other file that takes its name later (file backends).
   * The agent's create journal records it, so that undoing the create after the agent's death
   * removes that file and not one made under the name since (shared storage: another host).
   */
  onFileMade?: (file: NewFileIdentity) => void;
  /**
   * Called once the new partition is in the table (disk pools), with the bytes it covers: its
   * number is no identity (a dos disk renumbers its logical partitions when one before them
   * goes, and a number removed by hand is the next one parted gives). The agent's create
   * journal records it, so that undoing the create after the agent's death removes that
   * partition and not one holding its number since.
   */
  onPartitionMade?: (extent: PartitionExtent) => void;
  /**
   * A clone's source and its backing chain as the agent opened and checked them
   * (image-references.ts, openImageChain): a file backend reads them through these
   * descriptors, never by name again. Absent: the backend opens the chain itself, unchecked.
   */
  sourceImage?: ImageChain;
  /** The same for a new volume's backing store and its chain. */
  backingImage?: ImageChain;
}

/** The bytes a partition covers on its disk: first byte, and the byte after its last. */
export interface PartitionExtent {
  start: bigint;
  end: bigint;
  /**
   * The identifier of the partition table the partition was made in (disk/table-id.ts): the
   * undo of its create acts on no disk whose table has another. Absent: not known.
   */
  table?: string;
}

/** A new file's inode number and birth time (statx btime in ns; 0 where the filesystem keeps none). */
export interface NewFileIdentity {
  ino: bigint;
  birthtimeNs: bigint;
}

export interface DeleteVolOptions {
  /**
   * Remove the volume only if the create with this id made it (CreateVolOptions.createId): the
   * undo of an interrupted create after an agent restart. A backend that marks what it makes
   * removes only a volume with that mark; the others cannot tell, and the journal's check
   * that nothing was at the volume's path before the create is what protects there.
   */
  createdBy?: string;
  /**
   * The device and inode of the pool directory the create wrote in (file pools whose start this
   * agent saw; the journal records it): the undo refuses any other directory in its place, such
   * as the target swapped for a link to /etc while the agent was down, whose same-named file it
   * would otherwise unlink.
   */
  poolDirectory?: { dev: number; ino: number };
  /**
   * Remove the file only if it is this one (CreateVolOptions.onFileMade): a file that took the
   * name since the interrupted create (deleted and made again, by another host on shared
   * storage or by hand) stays. File backends.
   */
  onlyFile?: NewFileIdentity;
  /**
   * Remove only the partition covering exactly these bytes, whatever its number is by now (the
   * undo of an interrupted create: CreateVolOptions.onPartitionMade, or the extent it planned):
   * none there is NOT_FOUND, and any other partition stays. Disk pools.
   */
  onlyExtent?: PartitionExtent;
}

export interface ResizeFlags {
  allocate: boolean;
  delta: boolean;
  shrink: boolean;
  /**
   * Admits each file of the volume's backing chain, which qemu-img opens to grow an overlay
   * (image-references.ts, openImageChain): the agent's is its host's pools. Absent: every
   * file, unchecked (the backend driven directly).
   */
  admitBacking?: AdmitFile;
  /**
   * Told right before a grow allocates past the file's end (the size set last): the agent
   * records it (services/agent/grow-journal.ts), so that its next start gives back the blocks
   * a kill in between left past the end (undoInterruptedGrow). File backends.
   */
  onAllocatingPastEnd?: (grow: AllocatingGrow) => void;
}

/** An allocating grow under way: the file it allocates for, its size before, the size it goes to. */
export interface AllocatingGrow {
  file: NewFileIdentity;
  size: bigint;
  capacity: bigint;
}

/** What the undo of an interrupted allocating grow found (StorageBackend.undoInterruptedGrow). */
export type GrowUndo = 'released' | 'finished' | 'not-found';

/**
 * What a build can tell beyond having made the volume. A backend that returns nothing has
 * made the volume whole and durable, and the agent re-reads it (refreshVol).
 */
export interface BuiltVolume {
  /** The new volume as refreshVol would read it, read through the descriptor that made it. */
  volume?: VolumeDefinition;
  /**
   * Settles once the volume would survive a crash of the host (its fsync): the build returns
   * before, so that the agent announces the volume while the disk flushes. Rejects, with the
   * volume removed, when it cannot be made durable. Always handled: a rejection never goes
   * unobserved while the agent is still busy announcing the volume.
   */
  durable?: Promise<void>;
}

export interface StorageBackend {
  readonly type: PoolType;
  /** The operations this backend implements (libvirt: the non-NULL callbacks). */
  readonly operations: ReadonlySet<BackendOperation>;
  readonly poolFormats: readonly string[];
  readonly defaultPoolFormat: string;
  readonly volumeFormats: readonly string[];
  readonly defaultVolumeFormat: string;
  /**
   * Deleting a volume can rename or remove others: the pool is then re-read and what changed
   * is published. true: after every delete (deleting a dos logical partition renumbers the
   * ones after it). A function: after deleting `volume` when it says so, given the pool's
   * other volumes as last known (lvremove of an LVM origin removes its snapshots too).
   */
  readonly refreshAfterDeleteVol?: boolean | ((volume: VolumeDefinition, known: Iterable<VolumeDefinition>) => boolean);
  /**
   * Creating (or cloning into) a volume can change others: the pool is then re-read and what
   * changed is published, as for refreshAfterDeleteVol. A function: after creating `volume`
   * when it says so, given the pool's other volumes as last known (a new dos logical
   * partition adds to its extended partition's allocation; libvirt's disk createVol re-reads
   * the table).
   */
  readonly refreshAfterCreateVol?: boolean | ((volume: VolumeDefinition, known: Iterable<VolumeDefinition>) => boolean);
  /**
   * The other volumes whose name or device node deleting `volume` may change (deleting a dos
   * logical partition renumbers the logical partitions after it), of the pool's volumes as
   * last known. The agent holds their locks through the delete and its re-read, so that no
   * operation resolves one of them to a node that then changes under it.
   */
  readonly volumesMovedByDelete?: (volume: VolumeDefinition, known: Iterable<VolumeDefinition>) => string[];
  /** Why an operation this type lacks cannot exist (e.g. LUNs are made on the array): told to the user. */
  readonly unsupportedReasons?: Readonly<Partial<Record<BackendOperation, string>>>;

  /** Is the pool already active on the host (mounted, VG active, session logged in)? */
  checkPool?(ctx: PoolContext): Promise<boolean>;
  buildPool?(ctx: PoolContext, flags: BuildFlags, options?: BuildPoolOptions): Promise<void>;
  /**
   * Removes what a build with this id left when the agent died during it (the agent's build
   * journal: services/agent/build-journal.ts), and only that: where the backend marks what
   * it makes with the id. Resolves when nothing of it is left. Absent: a killed build leaves
   * nothing a retry cannot overwrite.
   */
  cleanupInterruptedBuild?(ctx: PoolContext, buildId: string): Promise<void>;
  startPool?(ctx: PoolContext): Promise<void>;
  refreshPool(ctx: PoolContext): Promise<RefreshResult>;
  stopPool?(ctx: PoolContext): Promise<void>;
  deletePool?(ctx: PoolContext): Promise<void>;

  /**
   * Fills in what the pool decides (target path, key, type) and checks the request;
   * nothing is written yet. Returns the definition buildVol will create.
   */
  createVol?(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition>;
  /** Creates the volume; what it returns, if anything, saves the agent a re-read or a wait (BuiltVolume). */
  buildVol?(ctx: PoolContext, volume: VolumeDefinition, options: CreateVolOptions): Promise<BuiltVolume | void>;
  buildVolFrom?(
    ctx: PoolContext,
    volume: VolumeDefinition,
    source: { pool: PoolDefinition; volume: VolumeDefinition },
    options: CreateVolOptions,
  ): Promise<void>;
  deleteVol?(ctx: PoolContext, volume: VolumeDefinition, options?: DeleteVolOptions): Promise<void>;
  resizeVol?(ctx: PoolContext, volume: VolumeDefinition, capacity: bigint, flags: ResizeFlags): Promise<void>;
  /**
   * After the agent's death interrupted an allocating grow (ResizeFlags.onAllocatingPastEnd):
   * the volume goes back to its size before, which gives back the blocks allocated past it;
   * 'finished': the grow had set its new size, kept; 'not-found': the name no longer holds
   * that file, or a size that grow left (changed since), untouched. `inDirectory`: the pool
   * directory the grow wrote in; any other is refused (throws, the entry waits).
   */
  undoInterruptedGrow?(ctx: PoolContext, volume: string, grow: AllocatingGrow, inDirectory?: { dev: number; ino: number }): Promise<GrowUndo>;
  wipeVol?(ctx: PoolContext, volume: VolumeDefinition, algorithm: WipeAlgorithm): Promise<void>;
  /**
   * Writes `length` bytes (0 = all the stream gives) at `offset`; returns bytes taken from the
   * stream. `sparse`: blocks of zeros are left unwritten where the volume already reads as
   * zeros (past its end, a hole); elsewhere they are written (file volumes).
   */
  uploadVol?(
    ctx: PoolContext,
    volume: VolumeDefinition,
    offset: bigint,
    length: bigint,
    data: AsyncIterable<Buffer>,
    options?: { sparse?: boolean },
  ): Promise<bigint>;
  downloadVol?(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint): AsyncIterable<Buffer>;
  /** Re-reads one volume (after create, resize, upload) without a whole-pool refresh. */
  refreshVol?(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition>;
  findPoolSources?(ctx: BackendContext, hint: PoolSource | undefined): Promise<PoolSource[]>;
}

export type { Extent };
