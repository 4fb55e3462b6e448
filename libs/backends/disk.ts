// The disk pool backend: libvirt's storage_backend_disk.c. A disk pool is one block
// device with a partition table; its volumes are the partitions. parted is the real
// mechanism: `parted -s -m -- DEV unit B print free unit chs print` reads the table
// (libvirt reads the same through libparted in libvirt_parthelper), `partx -g -o NR,TYPE`
// the partition type ids, mklabel / mkpart / rm change it. This kernel has no partition
// scanner: after every table change `partx -u` makes the kernel's partitions (and so
// the /dev nodes) match the table, and a create returns only once its node exists.
//
// This class is the StorageBackend face; each job is a module of ./disk/: paths (the
// source device, stable paths), device (exists, block device, not in use), device-queue
// (one table change at a time), table (read it, find a partition, sync the kernel), pool
// (build, start, check, delete), refresh, create, luks (encrypted partitions), clone,
// delete, data (wipe, upload, download).
import { PoolType, type BuildFlags, type PoolDefinition, type VolumeDefinition, type WipeAlgorithm } from '../proto/cistern/v1/storage.js';
import type { BackendOperation, CreateVolOptions, DeleteVolOptions, PoolContext, PoolRuntime, RefreshResult, StorageBackend } from './backend.js';
import type { CommandRunner } from './runner.js';
import { DISK_VOLUME_FORMATS, type DiskLayout } from './partition-plan.js';
import type { DiskTools } from './disk/tools.js';
import type { DiskSource } from './disk/paths.js';
import { isHeldExclusively } from './device-probe.js';
import { defaultIsBlockDevice } from './disk/device.js';
import { DeviceQueue } from './disk/device-queue.js';
import { partxTypesArgv, printArgv, readLayout } from './disk/table.js';
import { buildTable, hasTable, requireTable, wipeTable } from './disk/pool.js';
import { refreshPartition, refreshTable, tableSizes } from './disk/refresh.js';
import { buildPartition, planPartition } from './disk/create.js';
import { cloneIntoPartition } from './disk/clone.js';
import { deletePartition } from './disk/delete.js';
import { downloadPartition, uploadIntoPartition, wipePartition } from './disk/data.js';

/** libvirt's pool format enum for disk pools (what capabilities print); 'unknown' builds dos. */
export const DISK_POOL_FORMAT_ENUM = ['unknown', 'dos', 'dvh', 'gpt', 'mac', 'bsd', 'pc98', 'sun', 'lvm2'] as const;

export interface DiskBackendOptions {
  parted?: string;
  qemuImg?: string;
  partx?: string;
  scrub?: string;
  /** How long a create waits for the new partition's /dev node (ms). */
  nodeWaitMs?: number;
  /** Checks a path is a block device (tests replace it). */
  isBlockDevice?: (path: string) => boolean;
  /** Whether a partition node is in use (tests replace it). */
  isBusy?: (path: string) => boolean;
}

export class DiskBackend implements StorageBackend {
  readonly type: PoolType = PoolType.POOL_TYPE_DISK;
  readonly refreshAfterDeleteVol = true;
  /**
   * A logical partition adds to the extended partition's allocation (libvirt's disk createVol
   * re-reads the whole table): with an extended partition in the table, the pool is re-read
   * after a create, so the extended one is published with the new partition counted in.
   */
  readonly refreshAfterCreateVol = (_volume: VolumeDefinition, known: Iterable<VolumeDefinition>): boolean => {
    for (const v of known) if (v.target?.format === 'extended') return true;
    return false;
  };

  /**
   * Deleting a logical partition renumbers the logical partitions after it. Which ones those
   * are is the table's chain order, not known here: every other logical partition (one whose
   * extent lies in the extended partition's) is held, a few more than needed at worst.
   */
  readonly volumesMovedByDelete = (volume: VolumeDefinition, known: Iterable<VolumeDefinition>): string[] => {
    const all = [...known];
    const extended = all.find((v) => v.target?.format === 'extended');
    const span = extended ? extentOf(extended) : undefined;
    if (!span) return [];
    const inside = (v: VolumeDefinition): boolean => {
      const e = extentOf(v);
      return e !== undefined && v !== extended && e.start >= span.start && e.end <= span.end;
    };
    if (!inside(volume)) return [];
    return all.filter((v) => v.name !== volume.name && inside(v)).map((v) => v.name);
  };

  readonly operations: ReadonlySet<BackendOperation> = new Set<BackendOperation>([
    'checkPool',
    'buildPool',
    'deletePool',
    'startPool',
    'refreshPool',
    'stopPool',
    'createVol',
    'buildVol',
    'buildVolFrom',
    'deleteVol',
    'wipeVol',
    'uploadVol',
    'downloadVol',
  ]);
  readonly poolFormats: readonly string[] = DISK_POOL_FORMAT_ENUM;
  readonly defaultPoolFormat = 'unknown';
  readonly volumeFormats: readonly string[] = DISK_VOLUME_FORMATS;
  readonly defaultVolumeFormat = 'none';

  private readonly tools: DiskTools;
  /** Table changes of one device run one at a time. */
  private readonly queue = new DeviceQueue();

  constructor(options: DiskBackendOptions = {}) {
    this.tools = {
      parted: options.parted ?? 'parted',
      qemuImg: options.qemuImg ?? 'qemu-img',
      partx: options.partx ?? 'partx',
      scrub: options.scrub ?? 'scrub',
      nodeWaitMs: options.nodeWaitMs ?? 2000,
      isBlockDevice: options.isBlockDevice ?? defaultIsBlockDevice,
      isBusy: options.isBusy ?? isHeldExclusively,
    };
  }

  // ------------------------------------------------------------ the table

  /** The `parted -m` print the backend reads the table with. */
  printArgv(device: string): string[] {
    return printArgv(this.tools.parted, device);
  }

  partxTypesArgv(device: string): string[] {
    return partxTypesArgv(this.tools.partx, device);
  }

  /** Reads the table; a device without one is FAILED_PRECONDITION (build the pool). */
  readLayout(runner: CommandRunner, source: DiskSource, signal?: AbortSignal): Promise<DiskLayout> {
    return readLayout(this.tools, runner, source, signal);
  }

  // ------------------------------------------------------------ pools

  /**
   * Writes a new, empty partition table of the pool's format. Without overwrite the
   * device must hold nothing blkid recognises (libvirt 9 treats no flag like
   * no_overwrite); with overwrite the first and last MiB are zeroed first.
   */
  buildPool(ctx: PoolContext, flags: BuildFlags): Promise<void> {
    return buildTable(ctx, this.tools, this.queue, flags);
  }

  /** The device exists and carries a table of the pool's format. */
  startPool(ctx: PoolContext): Promise<void> {
    return requireTable(ctx, this.tools);
  }

  /** virStorageBackendDiskCheckPool: active when the device is there with a table of the pool's format. */
  checkPool(ctx: PoolContext): Promise<boolean> {
    return hasTable(ctx, this.tools);
  }

  /** The partition table is wiped (first and last MiB); refused while the disk or a partition is in use. */
  deletePool(ctx: PoolContext): Promise<void> {
    return wipeTable(ctx, this.tools, this.queue);
  }

  /** Nothing to undo: the partitions stay. */
  async stopPool(_ctx: PoolContext): Promise<void> {}

  refreshPool(ctx: PoolContext): Promise<RefreshResult> {
    return refreshTable(ctx, this.tools);
  }

  /** Pool sizes and free extents without listing volumes (the agent's hook after a volume op). */
  poolSizes(ctx: PoolContext): Promise<PoolRuntime> {
    return tableSizes(ctx, this.tools);
  }

  refreshVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    return refreshPartition(ctx, this.tools, volume);
  }

  // ------------------------------------------------------------ volumes

  /** Checks the request against the table as it is now (next partition's name, a free extent). Writes nothing. */
  createVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    return planPartition(ctx, this.tools, volume);
  }

  /** Creates the partition planned by createVol: mkpart, kernel sync, node check, LUKS format when encrypted; undone on failure. */
  async buildVol(ctx: PoolContext, volume: VolumeDefinition, options: CreateVolOptions): Promise<void> {
    await buildPartition(ctx, this.tools, this.queue, volume, options.onPartitionMade);
  }

  /** A new partition filled from the source (raw copied, other formats converted); a failed copy removes it. */
  buildVolFrom(
    ctx: PoolContext,
    volume: VolumeDefinition,
    src: { pool: PoolDefinition; volume: VolumeDefinition },
    options: CreateVolOptions,
  ): Promise<void> {
    return cloneIntoPartition(ctx, this.tools, this.queue, volume, src, options);
  }

  /**
   * Removes exactly the named partition (its number from the table); refused while in use.
   * The undo of an interrupted create (options.onlyExtent) removes the partition covering the
   * bytes that create made, whatever its number is by now, and nothing else.
   */
  deleteVol(ctx: PoolContext, volume: VolumeDefinition, options: DeleteVolOptions = {}): Promise<void> {
    return deletePartition(ctx, this.tools, this.queue, volume, options.onlyExtent);
  }

  wipeVol(ctx: PoolContext, volume: VolumeDefinition, algorithm: WipeAlgorithm): Promise<void> {
    return wipePartition(ctx, this.tools, volume, algorithm);
  }

  uploadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint, data: AsyncIterable<Buffer>): Promise<bigint> {
    return uploadIntoPartition(ctx, this.tools, volume, offset, length, data);
  }

  downloadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint): AsyncIterable<Buffer> {
    return downloadPartition(ctx, this.tools, volume, offset, length);
  }
}

export const diskBackend = new DiskBackend();

/** A partition's one extent on its disk, from its definition (the disk backend's refresh sets it). */
function extentOf(v: VolumeDefinition): { start: bigint; end: bigint } | undefined {
  const e = v.sourceDevices[0]?.extents[0];
  return e ? { start: e.start, end: e.end } : undefined;
}
