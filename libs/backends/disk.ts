// The disk pool backend: libvirt's storage_backend_disk.c. A disk pool is one block
// device with a partition table; its volumes are the partitions. parted is the real
// mechanism: `parted -s -m -- DEV unit B print free unit chs print` reads the table
// (libvirt reads the same through libparted in libvirt_parthelper), `partx -g -o NR,TYPE`
// the partition type ids, mklabel / mkpart / rm change it. This kernel has no partition
// scanner: after every table change `partx -u` makes the kernel's partitions (and so
// the /dev nodes) match the table, and a create returns only once its node exists.
import { closeSync, constants as fsc, existsSync, openSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { lstat, open, readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  PoolType,
  Tristate,
  VolumeType,
  type BuildFlags,
  type PoolDefinition,
  type SourceDevice,
  type VolumeDefinition,
  type WipeAlgorithm,
} from '../proto/cistern/v1/storage.js';
import {
  CommandFailedError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  UnimplementedError,
} from '../errors/errors.js';
import { checkAbsolutePath, checkObjectName, checkSize, printable } from '../api/names.js';
import type { BackendOperation, CreateVolOptions, PoolContext, PoolRuntime, RefreshResult, StorageBackend } from './backend.js';
import type { CommandRunner } from './runner.js';
import { requireEmptyDevice } from './device-probe.js';
import { fsError } from './fs-errors.js';
import { permsOf, timestampsOf } from './stat-fields.js';
import { blockDeviceSize } from './file-io.js';
import { isUnrecognisedLabel, parsePartedMachine, parsePartxTypes } from './parted-parse.js';
import {
  DISK_VOLUME_FORMATS,
  buildLayout,
  checkPoolFormat,
  checkVolumeFormat,
  kindToCreate,
  layoutSizes,
  mkpartArgv,
  nextPartitionNumber,
  partedLabelOf,
  partitionPath,
  partitionSeparator,
  placePartition,
  rmArgv,
  type DiskLayout,
  type DiskPartition,
} from './partition-plan.js';
import { copyIntoBlock, downloadBlock, uploadBlock, wipeBlock } from './block-data.js';
import { plainTarget } from './volume-target.js';

/** libvirt's pool format enum for disk pools (what capabilities print); 'unknown' builds dos. */
export const DISK_POOL_FORMAT_ENUM = ['unknown', 'dos', 'dvh', 'gpt', 'mac', 'bsd', 'pc98', 'sun', 'lvm2'] as const;

/**
 * Source formats whose bytes are the data: raw files, iso images, and block volumes (a
 * partition's type, an LV's empty format). Anything else goes through qemu-img convert.
 */
const RAW_SOURCE_FORMATS: ReadonlySet<string> = new Set(['raw', 'iso', 'none', 'linux', 'fat16', 'fat32', 'linux-swap', 'linux-lvm', 'linux-raid']);

/** Bytes zeroed at the start and the end of a device before an overwriting build (virStorageBackendZeroPartitionTable). */
export const ZERO_TABLE_BYTES = 1024 * 1024;

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

export interface DiskSource {
  /** the device as the pool names it: what parted and partx are given */
  device: string;
  /** the device node the partitions are named after (nodeDevice + separator + number) */
  nodeDevice: string;
  partSeparator: Tristate;
}

/**
 * The node a device path leads to, as libvirt_parthelper resolves it (virFileResolveLink)
 * for all but device-mapper devices: a pool over /dev/disk/by-id/ata-X has its partitions
 * at /dev/sdb1, not at /dev/disk/by-id/ata-X1 (udev names those ...-part1).
 */
function nodeDeviceOf(device: string): string {
  if (device.startsWith('/dev/mapper/') || /^\/dev\/dm-[0-9]+$/.test(device)) return device;
  try {
    return realpathSync(device);
  } catch {
    return device; // not there (yet): the commands that need it say so
  }
}

/** The pool's one source device (libvirt: exactly one), checked. */
export function diskSource(pool: PoolDefinition): DiskSource {
  const devices = pool.source?.devices ?? [];
  if (devices.length !== 1) {
    throw new InvalidArgumentError('source.device', `a disk pool needs exactly one source device, ${devices.length} given`);
  }
  const device = checkAbsolutePath(devices[0]!.path, 'source.device.path');
  return { device, nodeDevice: nodeDeviceOf(device), partSeparator: devices[0]!.partSeparator ?? Tristate.TRISTATE_ABSENT };
}

/** Whether a partition's node is held open exclusively (mounted, an LVM PV in use, a swap). */
function partitionBusy(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_EXCL | fsc.O_NONBLOCK);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EBUSY';
  }
  closeSync(fd);
  return false;
}

/**
 * The partitions the kernel has of a block device (sysfs: the children of its
 * /sys/dev/block/MAJ:MIN directory that have a 'partition' file), as /dev nodes. A path
 * that is not a block device (the tests' image files) has none.
 */
function kernelPartitions(device: string): string[] {
  let st;
  try {
    st = statSync(device);
  } catch {
    return [];
  }
  if (!st.isBlockDevice()) return [];
  const major = Math.floor(st.rdev / 256) & 0xfff;
  const minor = (st.rdev & 0xff) | ((Math.floor(st.rdev / 4096) & 0xfff00));
  const dir = `/sys/dev/block/${major}:${minor}`;
  try {
    return readdirSync(dir)
      .filter((e) => existsSync(join(dir, e, 'partition')))
      .sort()
      .map((e) => `/dev/${e}`);
  } catch {
    return [];
  }
}

function defaultIsBlockDevice(path: string): boolean {
  try {
    return statSync(path).isBlockDevice();
  } catch {
    return false;
  }
}

/**
 * virStorageBackendStablePath: with the pool target /dev (or none) the node itself;
 * otherwise the entry of the target directory (e.g. /dev/disk/by-path) that resolves to
 * the node, falling back to the node.
 */
export async function stablePath(target: string | undefined, devpath: string): Promise<string> {
  if (!target || target === '/dev' || target === '/dev/') return devpath;
  let entries: string[];
  try {
    entries = await readdir(target);
  } catch {
    return devpath;
  }
  for (const e of entries.sort()) {
    const candidate = join(target, e);
    try {
      if ((await realpath(candidate)) === devpath) return candidate;
    } catch {
      // dangling link: not ours
    }
  }
  return devpath;
}

export class DiskBackend implements StorageBackend {
  readonly type: PoolType = PoolType.POOL_TYPE_DISK;
  readonly refreshAfterDeleteVol = true;

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

  private readonly parted: string;
  private readonly qemuImg: string;
  private readonly partx: string;
  private readonly scrub: string;
  private readonly nodeWaitMs: number;
  private readonly isBlockDevice: (path: string) => boolean;
  private readonly isBusy: (path: string) => boolean;
  /** Table changes of one device run one at a time. */
  private readonly deviceQueues = new Map<string, Promise<unknown>>();

  constructor(options: DiskBackendOptions = {}) {
    this.parted = options.parted ?? 'parted';
    this.qemuImg = options.qemuImg ?? 'qemu-img';
    this.partx = options.partx ?? 'partx';
    this.scrub = options.scrub ?? 'scrub';
    this.nodeWaitMs = options.nodeWaitMs ?? 2000;
    this.isBlockDevice = options.isBlockDevice ?? defaultIsBlockDevice;
    this.isBusy = options.isBusy ?? partitionBusy;
  }

  // ------------------------------------------------------------ helpers

  private requireDevice(device: string): void {
    if (!existsSync(device)) throw new FailedPreconditionError(`device path '${printable(device, 200)}' doesn't exist`, { device });
    if (!this.isBlockDevice(device)) throw new FailedPreconditionError(`device path '${printable(device, 200)}' is not a block device`, { device });
  }

  /**
   * Refuses to rewrite or wipe the table of a disk that is in use: the device itself held
   * (a PV, a filesystem on the whole disk) or any partition the kernel has of it (mounted,
   * swap, LVM). libvirt zeroes and relabels regardless; parted then writes the new label
   * and only fails at telling the kernel, so the table of a disk in use was gone and the
   * caller saw an internal error. Checked before anything is written.
   */
  private requireNotInUse(device: string, action: string): void {
    const busy = [device, ...kernelPartitions(device)].filter((p) => this.isBusy(p));
    if (busy.length === 0) return;
    const own = busy.filter((p) => p !== device);
    throw new FailedPreconditionError(
      own.length > 0
        ? `cannot ${action} '${printable(device, 200)}': its partition${own.length > 1 ? 's' : ''} ${own.map((p) => printable(p, 200)).join(', ')} ${own.length > 1 ? 'are' : 'is'} in use (mounted, or held by LVM, swap or a guest); release ${own.length > 1 ? 'them' : 'it'} first`
        : `cannot ${action} '${printable(device, 200)}': the device is in use (mounted, or held by LVM, swap or a guest); release it first`,
      { device, busy: busy.join(',') },
    );
  }

  private async exclusive<T>(device: string, work: () => Promise<T>): Promise<T> {
    const before = this.deviceQueues.get(device) ?? Promise.resolve();
    const run = before.then(work, work);
    const tail = run.catch(() => undefined);
    this.deviceQueues.set(device, tail);
    try {
      return await run;
    } finally {
      if (this.deviceQueues.get(device) === tail) this.deviceQueues.delete(device);
    }
  }

  /** The `parted -m` print the backend reads the table with. */
  printArgv(device: string): string[] {
    return [this.parted, '-s', '-m', '--', device, 'unit', 'B', 'print', 'free', 'unit', 'chs', 'print'];
  }

  partxTypesArgv(device: string): string[] {
    return [this.partx, '-g', '-o', 'NR,TYPE', '--', device];
  }

  /** Reads the table; a device without one is FAILED_PRECONDITION (build the pool). */
  async readLayout(runner: CommandRunner, source: DiskSource, signal?: AbortSignal): Promise<DiskLayout> {
    const [printed, typed] = await Promise.all([
      runner.run(this.printArgv(source.device), { okExitCodes: [0, 1], signal }),
      runner.run(this.partxTypesArgv(source.device), { okExitCodes: [0, 1], signal }),
    ]);
    if (printed.exitCode !== 0) {
      const text = `${printed.stderr}\n${printed.stdout}`;
      if (isUnrecognisedLabel(text)) {
        throw new FailedPreconditionError(
          `device '${printable(source.device, 200)}' has no partition table parted recognises (unrecognised disk label); build the pool to write one`,
          { device: source.device },
        );
      }
      throw new CommandFailedError(this.printArgv(source.device), printed.exitCode, printed.stderr || printed.stdout);
    }
    const table = parsePartedMachine(printed.stdout);
    const types = typed.exitCode === 0 ? parsePartxTypes(typed.stdout) : new Map<number, string>();
    return buildLayout(table, types, { device: source.nodeDevice, partSeparator: source.partSeparator });
  }

  /** After a table change: the kernel's partitions follow the table (no partition scanner here). */
  private async syncKernel(ctx: PoolContext, source: DiskSource, layout: DiskLayout): Promise<void> {
    // partx -u with no partitions at all fails ("range <1:0>"); parted has removed them (BLKPG) then
    if (layout.partitions.length === 0) return;
    await ctx.runner.run([this.partx, '-u', '--', source.device], { signal: ctx.signal });
  }

  private async waitForNode(path: string, present: boolean): Promise<boolean> {
    const deadline = Date.now() + this.nodeWaitMs;
    for (;;) {
      if (existsSync(path) === present) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async volumeOf(pool: PoolDefinition, source: DiskSource, layout: DiskLayout, p: DiskPartition): Promise<VolumeDefinition> {
    const path = await stablePath(pool.target?.path, p.path);
    let allocation = p.size;
    if (p.kind === 'extended') {
      allocation = 0n;
      for (const q of layout.partitions) if (q.kind === 'logical') allocation += q.size;
    }
    let permissions;
    let timestamps;
    try {
      const st = await lstat(p.path, { bigint: true });
      permissions = permsOf(st);
      timestamps = timestampsOf(st);
    } catch {
      // node not (yet) there: sizes and extents still come from the table
    }
    return {
      type: VolumeType.VOLUME_TYPE_BLOCK,
      name: p.name,
      key: path,
      capacity: p.size,
      allocation,
      physical: undefined,
      sourceDevices: [{ path: source.device, extents: [{ start: p.start, end: p.end }] }],
      target: plainTarget(path, p.format, permissions, timestamps),
      backingStore: undefined,
    };
  }

  private runtimeOf(source: DiskSource, layout: DiskLayout): PoolRuntime {
    const device: SourceDevice = {
      path: source.device,
      partSeparator: source.partSeparator,
      freeExtents: layout.free.map((f) => ({ start: f.start, end: f.end })),
    };
    return { ...layoutSizes(layout), devices: [device] };
  }

  private findPartition(layout: DiskLayout, name: string): DiskPartition {
    const p = layout.partitions.find((q) => q.name === name);
    if (!p) throw new NotFoundError(`no partition '${printable(name)}' on '${printable(layout.device, 200)}'`, { volume: name });
    return p;
  }

  // ------------------------------------------------------------ pools

  /**
   * Writes a new, empty partition table of the pool's format. Without overwrite the
   * device must hold nothing blkid recognises (libvirt 9 treats no flag like
   * no_overwrite); with overwrite the first and last MiB are zeroed first.
   */
  async buildPool(ctx: PoolContext, flags: BuildFlags): Promise<void> {
    if (flags?.overwrite && flags?.noOverwrite) {
      throw new InvalidArgumentError('flags', 'overwrite and no_overwrite are mutually exclusive; give at most one');
    }
    const source = diskSource(ctx.pool);
    const format = checkPoolFormat(ctx.pool.source?.format);
    this.requireDevice(source.device);
    await this.exclusive(source.device, async () => {
      this.requireNotInUse(source.device, 'write a new partition table on');
      if (!flags?.overwrite) await requireEmptyDevice(ctx.runner, source.device, ctx.signal);
      else await this.zeroTable(source.device);
      await ctx.runner.run([this.parted, '-s', source.device, 'mklabel', partedLabelOf(format)], { signal: ctx.signal });
      const layout = await this.readLayout(ctx.runner, source, ctx.signal);
      await this.syncKernel(ctx, source, layout);
    });
  }

  private async zeroTable(device: string): Promise<void> {
    let fh;
    try {
      fh = await open(device, 'r+');
      const st = await fh.stat({ bigint: true });
      const size = st.isBlockDevice() ? blockDeviceSize(st) : st.size;
      const n = BigInt(ZERO_TABLE_BYTES) < size ? BigInt(ZERO_TABLE_BYTES) : size;
      const zero = Buffer.alloc(Number(n));
      await fh.write(zero, 0, zero.length, 0);
      if (size > n) await fh.write(zero, 0, zero.length, Number(size - n));
      await fh.datasync();
    } catch (err) {
      throw fsError(err, 'clear the partition table of', device);
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  /** The device exists and carries a table of the pool's format. */
  async startPool(ctx: PoolContext): Promise<void> {
    const source = diskSource(ctx.pool);
    const format = checkPoolFormat(ctx.pool.source?.format);
    this.requireDevice(source.device);
    const layout = await this.readLayout(ctx.runner, source, ctx.signal);
    if (layout.label !== partedLabelOf(format)) {
      throw new FailedPreconditionError(
        `device '${printable(source.device, 200)}' has a '${layout.format}' partition table but the pool's format is '${format}'; build the pool with overwrite to replace it, or define the pool with format '${layout.format}'`,
        { device: source.device, found: layout.format, expected: format },
      );
    }
  }

  /** virStorageBackendDiskCheckPool: active when the device is there with a table of the pool's format. */
  async checkPool(ctx: PoolContext): Promise<boolean> {
    const source = diskSource(ctx.pool);
    if (!existsSync(source.device)) return false;
    try {
      await this.startPool(ctx);
      return true;
    } catch (err) {
      if (err instanceof FailedPreconditionError || err instanceof NotFoundError) return false;
      throw err;
    }
  }

  /**
   * virStorageBackendDiskDeletePool: the partition table is wiped (its first and last MiB);
   * the kernel is told to drop the partitions it still shows. Refused while the disk or
   * one of its partitions is in use.
   */
  async deletePool(ctx: PoolContext): Promise<void> {
    const source = diskSource(ctx.pool);
    this.requireDevice(source.device);
    await this.exclusive(source.device, async () => {
      this.requireNotInUse(source.device, 'wipe the partition table of');
      await this.zeroTable(source.device);
      await ctx.runner.run([this.partx, '-d', '--', source.device], { okExitCodes: [0, 1], signal: ctx.signal }).catch(() => undefined);
    });
  }

  /** Nothing to undo: the partitions stay. */
  async stopPool(_ctx: PoolContext): Promise<void> {}

  async refreshPool(ctx: PoolContext): Promise<RefreshResult> {
    const source = diskSource(ctx.pool);
    this.requireDevice(source.device);
    const layout = await this.readLayout(ctx.runner, source, ctx.signal);
    const volumes = await Promise.all(layout.partitions.map((p) => this.volumeOf(ctx.pool, source, layout, p)));
    return { runtime: this.runtimeOf(source, layout), volumes };
  }

  /** Pool sizes and free extents without listing volumes (the agent's hook after a volume op). */
  async poolSizes(ctx: PoolContext): Promise<PoolRuntime> {
    const source = diskSource(ctx.pool);
    return this.runtimeOf(source, await this.readLayout(ctx.runner, source, ctx.signal));
  }

  async refreshVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    const source = diskSource(ctx.pool);
    const layout = await this.readLayout(ctx.runner, source, ctx.signal);
    return this.volumeOf(ctx.pool, source, layout, this.findPartition(layout, volume.name));
  }

  // ------------------------------------------------------------ volumes

  /**
   * Checks the request against the table as it is now: the name must be the next
   * partition's name, the type known, a free extent large enough. Writes nothing.
   */
  async createVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    const source = diskSource(ctx.pool);
    checkObjectName(volume.name, 'name', 'volume name');
    const format = checkVolumeFormat(volume.target?.format);
    if (volume.target?.encryption) throw new UnimplementedError('a disk pool does not support encrypted volumes');
    const capacity = checkSize(volume.capacity ?? 0n, 'capacity');
    if (capacity === 0n) throw new InvalidArgumentError('capacity', 'a partition needs a capacity above 0 bytes');
    this.requireDevice(source.device);
    const layout = await this.readLayout(ctx.runner, source, ctx.signal);
    const plan = this.plan(layout, source, volume.name, format, capacity);
    const path = await stablePath(ctx.pool.target?.path, plan.path);
    return {
      ...volume,
      type: VolumeType.VOLUME_TYPE_BLOCK,
      key: path,
      capacity,
      allocation: capacity,
      sourceDevices: [{ path: source.device, extents: [{ start: plan.placement.start, end: plan.placement.end + 1n }] }],
      target: { ...(volume.target ?? { compat: '', nocow: false, clusterSize: 0n, lazyRefcounts: false }), path, format, timestamps: undefined },
    } as VolumeDefinition;
  }

  private plan(layout: DiskLayout, source: DiskSource, name: string, format: ReturnType<typeof checkVolumeFormat>, capacity: bigint) {
    const kind = kindToCreate(layout, format);
    const number = nextPartitionNumber(layout, kind);
    const path = partitionPath(source.nodeDevice, partitionSeparator(source.nodeDevice, source.partSeparator), number);
    const expected = path.slice(path.lastIndexOf('/') + 1);
    if (name !== expected) {
      throw new InvalidArgumentError('name', `invalid partition name '${printable(name)}', expected '${expected}': a disk pool names a new partition after its device node`, {
        expected,
      });
    }
    const placement = placePartition(layout, kind, capacity);
    return { kind, number, path, expected, placement };
  }

  /** Creates the partition planned by createVol: mkpart, kernel sync, node check; undone on failure. */
  async buildVol(ctx: PoolContext, volume: VolumeDefinition, _options: CreateVolOptions): Promise<void> {
    await this.createPartition(ctx, volume);
  }

  private async createPartition(ctx: PoolContext, volume: VolumeDefinition): Promise<DiskPartition> {
    const source = diskSource(ctx.pool);
    const format = checkVolumeFormat(volume.target?.format);
    const capacity = checkSize(volume.capacity ?? 0n, 'capacity');
    return this.exclusive(source.device, async () => {
      // re-plan against the table as it is now (another create may have run since)
      const before = await this.readLayout(ctx.runner, source, ctx.signal);
      const plan = this.plan(before, source, volume.name, format, capacity);
      // a mkpart that fails or is cancelled may still have written the table: what it left is
      // looked for below and removed like any other failed create
      let mkpartFailure: unknown;
      await ctx.runner.run(mkpartArgv(this.parted, before, plan.kind, format, plan.placement), { signal: ctx.signal }).catch((err: unknown) => {
        mkpartFailure = err;
      });
      let created: DiskPartition | undefined;
      try {
        const after = await this.readLayout(ctx.runner, source, mkpartFailure === undefined ? ctx.signal : undefined);
        created = after.partitions.find((p) => !before.partitions.some((q) => q.number === p.number && q.start === p.start));
        if (mkpartFailure !== undefined) throw mkpartFailure;
        if (!created) throw new InternalError(`parted reported success but no new partition appeared on '${printable(source.device, 200)}'`);
        if (created.number !== plan.number) {
          throw new InternalError(`parted created partition ${created.number} ('${created.name}'), not the expected '${plan.expected}'`);
        }
        await this.syncKernel(ctx, source, after);
        if (!(await this.waitForNode(created.path, true))) {
          throw new InternalError(`partition ${created.number} was created but its device node '${created.path}' did not appear`);
        }
        return created;
      } catch (err) {
        if (created) {
          // a failed create leaves nothing behind
          await ctx.runner.run(rmArgv(this.parted, source.device, created)).catch(() => undefined);
          const now = await this.readLayout(ctx.runner, source).catch(() => undefined);
          if (now) await this.syncKernel(ctx, source, now).catch(() => undefined);
        }
        throw err;
      }
    });
  }

  /**
   * Creates the partition, then fills it from the source volume: raw data (files, other
   * partitions, LVs) copied in-process, any other format (qcow2 ...) converted to raw by
   * `qemu-img convert`, as libvirt's storageBackendCreateQemuImg does for a block volume.
   * The partition must hold the source's virtual size; a failed copy removes it again.
   */
  async buildVolFrom(
    ctx: PoolContext,
    volume: VolumeDefinition,
    src: { pool: PoolDefinition; volume: VolumeDefinition },
    _options: CreateVolOptions,
  ): Promise<void> {
    const srcPath = src.volume.target?.path || src.volume.key;
    if (!srcPath) throw new InvalidArgumentError('source', 'the source volume has no path');
    if (src.volume.target?.encryption) throw new UnimplementedError('cloning an encrypted volume into a partition is not supported');
    const srcFormat = src.volume.target?.format || 'raw';
    if (src.volume.type === VolumeType.VOLUME_TYPE_DIR || srcFormat === 'dir') {
      throw new FailedPreconditionError(`cannot clone directory volume '${printable(src.volume.name)}' into a partition`);
    }
    if (srcFormat === 'extended') throw new UnimplementedError(`cannot clone extended partition '${printable(srcPath, 200)}'`);
    if (!/^[a-z0-9][a-z0-9+._-]*$/.test(srcFormat)) {
      throw new InvalidArgumentError('source.target.format', `the source volume's format '${printable(srcFormat)}' is not a format name qemu-img knows`);
    }
    const raw = RAW_SOURCE_FORMATS.has(srcFormat);
    const st = await stat(srcPath, { bigint: true }).catch((err) => {
      throw fsError(err, 'stat', srcPath);
    });
    // raw data is copied byte for byte; an image holds its virtual size (the capacity)
    const length = raw && !st.isBlockDevice() ? st.size : (src.volume.capacity ?? 0n);
    if ((volume.capacity ?? 0n) < length) {
      throw new InvalidArgumentError('capacity', `the partition (${volume.capacity ?? 0n} bytes) is smaller than the source volume (${length} bytes)`);
    }
    const created = await this.createPartition(ctx, volume);
    try {
      if (raw) await copyIntoBlock(ctx, srcPath, created.path, length);
      else await ctx.runner.run([this.qemuImg, 'convert', '-f', srcFormat, '-O', 'raw', '--', srcPath, created.path], { signal: ctx.signal, timeoutMs: 0 });
    } catch (err) {
      await this.deleteVol({ ...ctx, signal: undefined }, { ...volume, name: created.name }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Removes exactly the named partition: its number is the one in the table, never
   * parsed out of the name (libvirt 9.0 runs `parted rm p1` for /dev/loop0p1). An
   * extended partition that still holds logical partitions is refused.
   */
  async deleteVol(ctx: PoolContext, volume: VolumeDefinition): Promise<void> {
    const source = diskSource(ctx.pool);
    await this.exclusive(source.device, async () => {
      const layout = await this.readLayout(ctx.runner, source, ctx.signal);
      const p = this.findPartition(layout, volume.name);
      if (p.kind === 'extended') {
        const logicals = layout.partitions.filter((q) => q.kind === 'logical').map((q) => q.name);
        if (logicals.length) {
          throw new FailedPreconditionError(`extended partition '${p.name}' still holds logical partitions ${logicals.join(', ')}; delete them first`);
        }
      }
      // parted writes the new table even when the kernel cannot take it (a partition in use):
      // the delete would fail yet have happened, and deleting a logical partition renumbers
      // the ones after it. Refused first, with nothing changed.
      const moved = p.kind === 'logical' ? layout.partitions.filter((q) => q.kind === 'logical' && q.number > p.number) : [];
      const busy = [p, ...moved].filter((q) => this.isBusy(q.path)).map((q) => q.name);
      if (busy.length) {
        throw new FailedPreconditionError(
          busy[0] === p.name
            ? `partition '${p.name}' is in use (mounted, or held by LVM, swap or a guest); release it first`
            : `deleting '${p.name}' renumbers the logical partitions after it, and ${busy.join(', ')} ${busy.length > 1 ? 'are' : 'is'} in use; release ${busy.length > 1 ? 'them' : 'it'} first`,
        );
      }
      await ctx.runner.run(rmArgv(this.parted, source.device, p), { signal: ctx.signal });
      const after = await this.readLayout(ctx.runner, source, ctx.signal);
      await this.syncKernel(ctx, source, after);
      const stillThere = after.partitions.some((q) => q.path === p.path);
      if (!stillThere && !(await this.waitForNode(p.path, false))) {
        throw new InternalError(`partition ${p.number} was removed from the table but its device node '${p.path}' remains`);
      }
    });
  }

  private async dataPath(ctx: PoolContext, volume: VolumeDefinition, what: string): Promise<string> {
    const source = diskSource(ctx.pool);
    const layout = await this.readLayout(ctx.runner, source, ctx.signal);
    const p = this.findPartition(layout, volume.name);
    if (p.kind === 'extended') throw new UnimplementedError(`cannot ${what} extended partition '${p.path}'`);
    return p.path;
  }

  async wipeVol(ctx: PoolContext, volume: VolumeDefinition, algorithm: WipeAlgorithm): Promise<void> {
    await wipeBlock(ctx, await this.dataPath(ctx, volume, 'wipe'), algorithm, this.scrub);
  }

  async uploadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint, data: AsyncIterable<Buffer>): Promise<bigint> {
    return uploadBlock(ctx, await this.dataPath(ctx, volume, 'upload to'), offset, length, data);
  }

  async *downloadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint): AsyncIterable<Buffer> {
    yield* downloadBlock(ctx, await this.dataPath(ctx, volume, 'download from'), offset, length);
  }
}

export const diskBackend = new DiskBackend();
