// The dir pool backend: libvirt's storage_backend_fs.c "dir" pool and the local-file
// volume code of storage_util.c, in-process wherever no external program is the real
// mechanism. qemu-img creates, converts and resizes non-raw and LUKS-encrypted images
// (a LUKS volume with its passphrase in a secret file), except the plain
// qcow2 create (no encryption, no preallocation), whose bytes qcow2-image.ts writes
// exactly as qemu-img would; scrub does the multi-pass wipes; everything else (raw
// create, sparse clone, zero wipe, probing, refresh, upload, download) runs here
// without spawning a process.
//
// This class is the StorageBackend face; each job is a module of ./dir/: paths (and the
// checks that keep writes in the pool), pool (build, start, delete), refresh and inspect,
// volume-plan (createVol's checks), create-raw, create-qcow2 and create-image (buildVol),
// clone (buildVolFrom), delete, resize, data (wipe, upload, download).
import { forgetPoolDirectory, rememberPoolDirectory } from './dir/pool-directory.js';
import { PoolType, type BuildFlags, type PoolDefinition, type VolumeDefinition, type WipeAlgorithm } from '../proto/cistern/v1/storage.js';
import { InvalidArgumentError } from '../errors/errors.js';
import type { AllocatingGrow, BackendOperation, BuiltVolume, CreateVolOptions, DeleteVolOptions, GrowUndo, PoolContext, RefreshResult, ResizeFlags, StorageBackend } from './backend.js';
import { KNOWN_FORMATS } from './format-probe.js';
import type { DirTools } from './dir/tools.js';
import { buildPoolDirectory, isPoolDirectory, removePoolDirectory, requirePoolDirectory } from './dir/pool.js';
import { poolTarget } from './dir/paths.js';
import { REFRESH_SLICE_MS, refreshPoolDirectory, refreshVolume } from './dir/refresh.js';
import { planVolume, rawAllocation, resolveCreate } from './dir/volume-plan.js';
import { createDirectoryVolume, createRaw } from './dir/create-raw.js';
import { createWithQemuImg } from './dir/create-image.js';
import { cloneVolume } from './dir/clone.js';
import { deleteVolume } from './dir/delete.js';
import { resizeVolume } from './dir/resize.js';
import { undoInterruptedGrow } from './dir/grow-undo.js';
import { downloadVolume, uploadVolume, wipeVolume } from './dir/data.js';

export interface DirBackendOptions extends Partial<DirTools> {
  /** Longest stretch (ms) a refresh runs before yielding to the event loop (default 10). */
  refreshSliceMs?: number;
}

export class DirBackend implements StorageBackend {
  readonly type: PoolType = PoolType.POOL_TYPE_DIR;
  readonly operations: ReadonlySet<BackendOperation> = new Set<BackendOperation>([
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
  ]);
  readonly poolFormats: readonly string[] = [];
  readonly defaultPoolFormat = '';
  readonly volumeFormats: readonly string[] = KNOWN_FORMATS;
  readonly defaultVolumeFormat = 'raw';

  private readonly tools: DirTools;
  private readonly sliceMs: number;
  /** Definitions createVol returned (checked): buildVol does not check them again. */
  private readonly planned = new WeakSet<VolumeDefinition>();

  constructor(options: DirBackendOptions = {}) {
    this.tools = {
      qemuImg: options.qemuImg ?? 'qemu-img',
      scrub: options.scrub ?? 'scrub',
      fallocate: options.fallocate ?? 'fallocate',
      chattr: options.chattr ?? 'chattr',
    };
    this.sliceMs = options.refreshSliceMs ?? REFRESH_SLICE_MS;
  }

  // ---------------------------------------------------------------- pools

  async checkPool(ctx: PoolContext): Promise<boolean> {
    const up = await isPoolDirectory(ctx);
    // a restarted agent finds its running pools up: what its deletes go through (dir/pool-directory.ts)
    if (up) await rememberPoolDirectory(ctx.pool, true);
    return up;
  }

  /**
   * Parents with default permissions, the target with the pool's mode (0711 when new and
   * unset), owner and group; an existing directory only gets its permissions set.
   */
  buildPool(ctx: PoolContext, flags: BuildFlags): Promise<void> {
    return buildPoolDirectory(ctx, flags, this.tools.chattr);
  }

  async startPool(ctx: PoolContext): Promise<void> {
    // async: a bad target is a rejection, as from every other method, not a throw
    await requirePoolDirectory(poolTarget(ctx.pool));
    await rememberPoolDirectory(ctx.pool);
  }

  /** A dir pool has nothing to stop (libvirt has no stopPool for it): forgets the directory it started with. */
  async stopPool(ctx: PoolContext): Promise<void> {
    forgetPoolDirectory(ctx.pool);
  }

  deletePool(ctx: PoolContext): Promise<void> {
    forgetPoolDirectory(ctx.pool);
    return removePoolDirectory(ctx);
  }

  refreshPool(ctx: PoolContext): Promise<RefreshResult> {
    return refreshPoolDirectory(ctx, this.sliceMs);
  }

  async refreshVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    return refreshVolume(ctx, volume);
  }

  // ---------------------------------------------------------------- volumes

  /** Fills in type, path and key, refuses what cannot be built; writes nothing. */
  async createVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    const planned = await planVolume(ctx, volume);
    this.planned.add(planned);
    return planned;
  }

  /** A directory, a raw file in-process, anything else through qemu-img (or its in-process qcow2). */
  async buildVol(ctx: PoolContext, volume: VolumeDefinition, options: CreateVolOptions): Promise<BuiltVolume | void> {
    // a definition createVol returned is checked already (the O_EXCL create still refuses an
    // existing path); any other is checked now
    const checked = this.planned.has(volume) ? volume : await this.createVol(ctx, volume);
    const r = resolveCreate(ctx, checked, options);
    if (r.format === 'dir') return createDirectoryVolume(r);
    if (r.capacity === undefined && !checked.backingStore?.path) {
      throw new InvalidArgumentError('volume.capacity', 'capacity is required (a size in bytes from 0 to 2^63-1)');
    }
    // only raw is written in-process: libvirt makes an iso (like every other format) with
    // `qemu-img create -f raw`, which ignores the allocation, so the file is sparse
    if (r.format === 'raw' && !checked.target?.encryption) {
      return createRaw(ctx, r, checked, rawAllocation(r, options), this.tools);
    }
    return createWithQemuImg(ctx, r, checked, options, this.tools.qemuImg);
  }

  buildVolFrom(
    ctx: PoolContext,
    volume: VolumeDefinition,
    source: { pool: PoolDefinition; volume: VolumeDefinition },
    options: CreateVolOptions,
  ): Promise<void> {
    return cloneVolume(ctx, volume, source, options, this.tools);
  }

  /** Unlinks the file (or the link itself), removes an empty directory volume; a vanished volume is fine. */
  /** `poolDirectory`: only through that directory; `onlyFile`: only that file (the undo of an interrupted create). */
  deleteVol(ctx: PoolContext, volume: VolumeDefinition, options?: DeleteVolOptions): Promise<void> {
    return deleteVolume(ctx, volume, options?.poolDirectory, options?.onlyFile);
  }

  resizeVol(ctx: PoolContext, volume: VolumeDefinition, capacity: bigint, flags: ResizeFlags): Promise<void> {
    return resizeVolume(ctx, volume, capacity, flags, this.tools);
  }

  /** The blocks a grow the agent's death interrupted allocated past the file's end given back (dir/grow-undo.ts). */
  undoInterruptedGrow(ctx: PoolContext, volume: string, grow: AllocatingGrow, inDirectory?: { dev: number; ino: number }): Promise<GrowUndo> {
    return undoInterruptedGrow(ctx, volume, grow, inDirectory);
  }

  /** zero: zeros written over the whole file in-process; the other algorithms: scrub; trim: unsupported. */
  wipeVol(ctx: PoolContext, volume: VolumeDefinition, algorithm: WipeAlgorithm): Promise<void> {
    return wipeVolume(ctx, volume, algorithm, this.tools);
  }

  uploadVol(
    ctx: PoolContext,
    volume: VolumeDefinition,
    offset: bigint,
    length: bigint,
    data: AsyncIterable<Buffer>,
    options: { sparse?: boolean } = {},
  ): Promise<bigint> {
    return uploadVolume(ctx, volume, offset, length, data, options);
  }

  downloadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint): AsyncIterable<Buffer> {
    return downloadVolume(ctx, volume, offset, length);
  }
}

export const dirBackend = new DirBackend();
