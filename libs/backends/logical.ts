// The logical (LVM) pool backend: libvirt 9's storage_backend_logical.c. A pool is a
// volume group, its volumes are the VG's logical volumes. pvcreate / vgcreate / vgchange
// / lvcreate / lvremove / lvs / vgs / pvs are the real mechanism and run through the
// command runner with libvirt's command lines; clearing device headers, wiping, cloning,
// uploads and downloads run in-process on the block devices.
//
// Tests point LVM at a configuration of their own through the runner's environment
// (LVM_SYSTEM_DIR); the backend passes that environment through untouched.
//
// This class is the StorageBackend face; each job is a module of ./logical/: paths (VG,
// target, LV paths, source devices), lvm (running LVM, its errors, udev settle), sources
// (the VG's PVs, find-storage-pool-sources), build, pool (check, start, stop, delete),
// refresh, create (createVol's checks and lvcreate), luks (encrypted LVs), clone, delete, tags (the tag a create
// puts on its LV, so an undo removes only that LV), data (wipe, upload, download).
import { PoolType, type BuildFlags, type PoolDefinition, type PoolSource, type VolumeDefinition, type WipeAlgorithm } from '../proto/cistern/v1/storage.js';
import { InvalidArgumentError } from '../errors/errors.js';
import type { BackendContext, BackendOperation, BuildPoolOptions, CreateVolOptions, DeleteVolOptions, PoolContext, RefreshResult, StorageBackend } from './backend.js';
import type { LogicalTools } from './logical/tools.js';
import { findVolumeGroups } from './logical/sources.js';
import { buildVolumeGroup, cleanupInterruptedBuild } from './logical/build.js';
import { activateVolumeGroup, deactivateVolumeGroup, isPoolActive, removeVolumeGroup } from './logical/pool.js';
import { refreshLv, refreshVolumeGroup } from './logical/refresh.js';
import { createLv, planLv } from './logical/create.js';
import { cloneIntoLv } from './logical/clone.js';
import { deleteLv } from './logical/delete.js';
import { createTag } from './logical/tags.js';
import { downloadLv, uploadIntoLv, wipeLv } from './logical/data.js';

export { lvcreateArgv } from './logical/create.js';
export type { LogicalVolumeDefinition } from './logical/refresh.js';

export interface LogicalBackendOptions {
  /**
   * Accept regular files as source devices, and as the node of an LV to format LUKS (unit
   * tests only; LVM itself refuses them, and a host's LV node is a block device).
   */
  allowRegularFiles?: boolean;
  qemuImg?: string;
  scrub?: string;
  /** `udevadm` to settle before a refresh and before lvremove (libvirt's virWaitForDevices); null: do not wait. */
  udevadm?: string | null;
  /** How long `udevadm settle` waits for udev's queue at most, in seconds (default 30). */
  udevSettleTimeoutSec?: number;
}

const DEFAULT_UDEV_SETTLE_TIMEOUT_SEC = 30;

export class LogicalBackend implements StorageBackend {
  readonly type: PoolType = PoolType.POOL_TYPE_LOGICAL;
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
    'wipeVol',
    'uploadVol',
    'downloadVol',
    'findPoolSources',
  ]);
  readonly poolFormats: readonly string[] = ['unknown', 'lvm2'];
  readonly defaultPoolFormat = 'lvm2';
  /**
   * `lvremove -f` of an origin removes its snapshots with it (as libvirt's), and a thin
   * snapshot loses its origin: after deleting a volume that another names as its backing
   * store, the pool is re-read so their removal (or change) is published too.
   */
  readonly refreshAfterDeleteVol = (volume: VolumeDefinition, known: Iterable<VolumeDefinition>): boolean => {
    const path = volume.target?.path;
    if (!path) return true; // cannot tell which volumes it backs: re-read
    for (const v of known) if (v.name !== volume.name && v.backingStore?.path === path) return true;
    return false;
  };
  readonly volumeFormats: readonly string[] = [];
  readonly defaultVolumeFormat = '';

  private readonly allowRegularFiles: boolean;
  private readonly tools: LogicalTools;

  constructor(options: LogicalBackendOptions = {}) {
    this.allowRegularFiles = options.allowRegularFiles ?? false;
    const timeout = options.udevSettleTimeoutSec ?? DEFAULT_UDEV_SETTLE_TIMEOUT_SEC;
    if (!Number.isInteger(timeout) || timeout < 0) {
      throw new InvalidArgumentError('udevSettleTimeoutSec', `must be a whole number of seconds, 0 or more; got ${timeout}`);
    }
    this.tools = {
      qemuImg: options.qemuImg ?? 'qemu-img',
      scrub: options.scrub ?? 'scrub',
      udevadm: options.udevadm === undefined ? 'udevadm' : options.udevadm,
      udevSettleTimeoutSec: timeout,
    };
  }

  // ---------------------------------------------------------------- pools

  /** Active when the VG is there with the pool's devices and none of its LVs is inactive. */
  checkPool(ctx: PoolContext): Promise<boolean> {
    return isPoolActive(ctx);
  }

  /** Devices checked, cleared and made PVs, then vgcreate; a failure pvremoves what it made. */
  buildPool(ctx: PoolContext, flags: BuildFlags, options?: BuildPoolOptions): Promise<void> {
    return buildVolumeGroup(ctx, flags, this.allowRegularFiles, options?.buildId);
  }

  /** The VG carrying the build's tag, then the pool's devices left PVs of no VG. */
  cleanupInterruptedBuild(ctx: PoolContext, buildId: string): Promise<void> {
    return cleanupInterruptedBuild(ctx, buildId);
  }

  /** Checks the VG is there (with the pool's devices), then `vgchange -aly VG`. */
  startPool(ctx: PoolContext): Promise<void> {
    return activateVolumeGroup(ctx);
  }

  /** `vgchange -aln VG` (fails while an LV is open, e.g. mounted). */
  stopPool(ctx: PoolContext): Promise<void> {
    return deactivateVolumeGroup(ctx);
  }

  /** `vgremove -f VG`, then `pvremove DEV` for each device (failures there are ignored, as libvirt). */
  deletePool(ctx: PoolContext): Promise<void> {
    return removeVolumeGroup(ctx);
  }

  /** udev settled, then lvs (every LV, inactive ones with their state) and vgs (sizes). */
  refreshPool(ctx: PoolContext): Promise<RefreshResult> {
    return refreshVolumeGroup(ctx, this.tools);
  }

  refreshVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    return refreshLv(ctx, volume);
  }

  /** vgscan + pvs: one source per VG with its PVs (PVs in no VG are not listed). */
  findPoolSources(ctx: BackendContext): Promise<PoolSource[]> {
    return findVolumeGroups(ctx);
  }

  // ---------------------------------------------------------------- volumes

  /** Checks the request (LV name, capacity, backing origin); fills in type, path. Nothing runs. */
  createVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    return planLv(ctx, volume);
  }

  /**
   * lvcreate with libvirt's arguments and the create's tag, the LUKS format of an encrypted
   * LV, then the node's mode and owner; a failure removes the LV carrying the tag.
   */
  async buildVol(ctx: PoolContext, volume: VolumeDefinition, options: CreateVolOptions): Promise<void> {
    await createLv(ctx, volume, options, this.tools, this.allowRegularFiles);
  }

  /** An LV at least the source's size, then the data copied or converted in; a failure removes it. */
  buildVolFrom(
    ctx: PoolContext,
    volume: VolumeDefinition,
    source: { pool: PoolDefinition; volume: VolumeDefinition },
    options: CreateVolOptions,
  ): Promise<void> {
    return cloneIntoLv(ctx, volume, source, options, this.tools);
  }

  /**
   * lvremove (after udev settles), deactivating first if it must; an LV already gone is fine.
   * `createdBy`: only the LV that create tagged (an LV without the tag is left, and that is fine).
   */
  async deleteVol(ctx: PoolContext, volume: VolumeDefinition, options?: DeleteVolOptions): Promise<void> {
    return deleteLv(ctx, volume, this.tools, options?.createdBy === undefined ? undefined : createTag(options.createdBy));
  }

  /** zero in-process, the other algorithms with scrub; sparse LVs are refused. */
  wipeVol(ctx: PoolContext, volume: VolumeDefinition, algorithm: WipeAlgorithm): Promise<void> {
    return wipeLv(ctx, volume, algorithm, this.tools.scrub);
  }

  uploadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint, data: AsyncIterable<Buffer>): Promise<bigint> {
    return uploadIntoLv(ctx, volume, offset, length, data);
  }

  downloadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint): AsyncIterable<Buffer> {
    return downloadLv(ctx, volume, offset, length);
  }
}

export const logicalBackend = new LogicalBackend();
