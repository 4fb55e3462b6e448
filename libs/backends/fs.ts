// The fs pool backend: libvirt's storage_backend_fs.c "fs" pool. A filesystem on a local
// block device, mounted on the pool target; once mounted it is a dir pool, so every volume
// operation and the refresh are the dir backend's (composed, not copied). Build creates the
// target directory and, with overwrite / no_overwrite, runs mkfs for the pool's format
// (no_overwrite first probes the device with blkid and refuses anything it finds).
// MountedDirBackend is the part fs and netfs share: mount on start, recognise an existing
// mount from /proc/self/mountinfo, unmount on stop.
import { lstat, readdir, readFile, rmdir, stat } from 'node:fs/promises';
import { forgetPoolDirectory, rememberPoolDirectory } from './dir/pool-directory.js';
import { PoolType, type BuildFlags, type PoolDefinition, type VolumeDefinition, type WipeAlgorithm } from '../proto/cistern/v1/storage.js';
import { FailedPreconditionError, InvalidArgumentError } from '../errors/errors.js';
import { checkAbsolutePath, printable } from '../api/names.js';
import { FS_POOL_FORMATS } from '../xml/formats.js';
import type {
  AllocatingGrow,
  BackendOperation,
  BuiltVolume,
  CreateVolOptions,
  DeleteVolOptions,
  GrowUndo,
  PoolContext,
  RefreshResult,
  ResizeFlags,
  StorageBackend,
} from './backend.js';
import { DirBackend, type DirBackendOptions } from './dir.js';
import { hostRoots } from './host-roots.js';
import { poolTarget } from './dir/paths.js';
import { untilFlushed } from './dir/new-file.js';
import { requirePoolDirectory } from './dir/pool.js';
import { isHeldExclusively, requireEmptyDevice } from './device-probe.js';
import {
  describeDevice,
  entryMatches,
  mountOptionString,
  mountsAt,
  mountStateAt,
  mountedElsewhere,
  procMountTable,
  readLoopBackings,
  readMountTable,
  runMount,
  runUnmount,
  targetCandidates,
  type MountInfoEntry,
  type MountSource,
  type MountSpec,
  type MountTableSource,
} from './mount.js';
import { refuseConflictingBuildFlags } from './build-flags.js';
import { openFsSourceForFormat } from './fs-source.js';
import { defaultMkfsSearchPath, hasMkfsHelper } from './mkfs-helpers.js';
import { mkfsError } from './mkfs-failure.js';
import { forgetPoolMount, poolMountAmong, rememberPoolMount } from './pool-mounts.js';

export interface MountedBackendOptions extends DirBackendOptions {
  mount?: string;
  umount?: string;
  /** Where the mount table is read from (default /proc/self/mountinfo). */
  mountTable?: MountTableSource;
  /** sysfs root, for the backing files of loop devices (default: $CISTERN_SYSFS_ROOT or /sys). */
  sysfsRoot?: string;
  /** The dir backend doing the volume work (default: a new one with these options). */
  dir?: DirBackend;
}

/** How a pool mounts, worked out from its definition (checked) and the host. */
export interface ResolvedMount {
  spec: MountSpec;
  /** How the source shows in the mount table. */
  source: MountSource;
  /** A local device that does not exist: start fails naming it. */
  missingDevice?: string;
  /** A local device may not be mounted anywhere else at the same time. */
  exclusive: boolean;
}

const NO_FLAGS: BuildFlags = { overwrite: false, noOverwrite: false };

/** A build's format step, checked (prepareFormat), and what it holds open until the build is over. */
export interface PreparedFormat {
  run(): Promise<void>;
  close(): void;
}

/**
 * A dir pool on a mount point. Subclasses say what is mounted (resolveMount) and what a
 * build with overwrite / no_overwrite does to the source (prepareFormat).
 */
export abstract class MountedDirBackend implements StorageBackend {
  abstract readonly type: PoolType;
  abstract readonly poolFormats: readonly string[];
  readonly defaultPoolFormat: string = 'auto';
  readonly operations: ReadonlySet<BackendOperation>;
  readonly volumeFormats: readonly string[];
  readonly defaultVolumeFormat: string;

  protected readonly dir: DirBackend;
  protected readonly mountTable: MountTableSource;
  protected readonly sysfsRoot: string;
  protected readonly mountCmd: string;
  protected readonly umountCmd: string;

  constructor(options: MountedBackendOptions = {}, extraOperations: readonly BackendOperation[] = []) {
    this.dir = options.dir ?? new DirBackend(options);
    this.mountTable = options.mountTable ?? procMountTable;
    this.sysfsRoot = hostRoots(options).sysfs;
    this.mountCmd = options.mount ?? 'mount';
    this.umountCmd = options.umount ?? 'umount';
    this.operations = new Set<BackendOperation>([...this.dir.operations, ...extraOperations]);
    this.volumeFormats = this.dir.volumeFormats;
    this.defaultVolumeFormat = this.dir.defaultVolumeFormat;
  }

  /**
   * Checks the definition and works out the mount. `purpose` 'look' (check, stop): nothing is
   * handed to mount(8), so a source that could not be mounted (by now a directory, a FIFO) is
   * no reason to refuse: the pool's mount is judged in the table, never by opening the source.
   */
  protected abstract resolveMount(pool: PoolDefinition, purpose?: 'mount' | 'look'): Promise<ResolvedMount>;

  /**
   * Checks a build with overwrite / no_overwrite before anything is written and returns
   * the step that formats the source (run after the target directory exists) and what to
   * release when the build is over, whether or not that step ran.
   */
  protected abstract prepareFormat(ctx: PoolContext, flags: BuildFlags): Promise<PreparedFormat>;

  /** The pool's format, '' meaning the default; refuses one outside the type's list. */
  protected poolFormat(pool: PoolDefinition): string {
    const format = pool.source?.format || this.defaultPoolFormat;
    if (!this.poolFormats.includes(format)) {
      throw new InvalidArgumentError(
        'source.format',
        `unknown pool format '${printable(format)}' for pool '${printable(pool.name)}'; allowed: ${this.poolFormats.join(', ')}`,
      );
    }
    return format;
  }

  /**
   * The mount table, as far as it concerns `source`: an image file shows there as the loop
   * device mount(8) attached for it, so the loop devices' backing files are read too.
   */
  protected async mountTableFor(source: MountSource): Promise<MountInfoEntry[]> {
    const entries = await readMountTable(this.mountTable);
    if (source.kind === 'device' && source.file) await readLoopBackings(entries, this.sysfsRoot);
    return entries;
  }

  /**
   * libvirt's FileSystemIsMounted: the pool's own source on its target; or, on top there, the
   * mount the pool's start made (pool-mounts.ts: a restarted agent's record), whatever its
   * source name leads to by now.
   */
  async checkPool(ctx: PoolContext): Promise<boolean> {
    const plan = await this.resolveMount(ctx.pool, 'look');
    const entries = await this.mountTableFor(plan.source);
    const candidates = await targetCandidates(plan.spec.target);
    const here = mountsAt(entries, candidates);
    const own = poolMountAmong(ctx.pool, here);
    // a remembered mount that is gone is no longer the pool's (a later one may take its id)
    if (!own) forgetPoolMount(ctx.pool);
    const state = mountStateAt(entries, candidates, plan.source);
    const up = own !== undefined && own === here.at(-1) ? own : state.state === 'mounted' ? state.entry : undefined;
    if (!up) return false;
    // a restarted agent finds its running pools up: what its deletes go through (dir/pool-directory.ts)
    // and what its stop unmounts (pool-mounts.ts)
    await rememberPoolDirectory(ctx.pool, true);
    // the mount judged the pool's just now, on top: what a stop takes, not one it covers
    rememberPoolMount(ctx.pool, up);
    return true;
  }

  async buildPool(ctx: PoolContext, flags: BuildFlags): Promise<void> {
    refuseConflictingBuildFlags(flags);
    const format = flags?.overwrite || flags?.noOverwrite ? await this.prepareFormat(ctx, flags) : undefined;
    try {
      const target = poolTarget(ctx.pool);
      const existed = format ? await lstat(target).then(() => true, () => false) : true;
      await this.dir.buildPool(ctx, NO_FLAGS);
      try {
        await format?.run();
      } catch (err) {
        // a build that formats nothing changes nothing: the directory it made goes again
        // (libvirt 9.0 leaves it); rmdir takes only an empty directory, never a link's target
        if (!existed) await rmdir(target).catch(() => undefined);
        throw err;
      }
    } finally {
      format?.close();
    }
  }

  /**
   * Mounts the source on the target. Already mounted there: nothing to do. Something
   * else on the target, a missing device, or (fs) the device mounted elsewhere:
   * FAILED_PRECONDITION and nothing is mounted.
   */
  async startPool(ctx: PoolContext): Promise<void> {
    const plan = await this.resolveMount(ctx.pool);
    const target = plan.spec.target;
    const entries = await this.mountTableFor(plan.source);
    const candidates = await targetCandidates(target);
    const state = mountStateAt(entries, candidates, plan.source);
    if (state.state === 'mounted') {
      rememberPoolMount(ctx.pool, state.entry);
      return rememberPoolDirectory(ctx.pool);
    }
    if (state.state === 'other') {
      throw new FailedPreconditionError(
        `pool target '${printable(target, 200)}' already has '${printable(state.entry.source, 200)}' (${printable(state.entry.fsType)}) mounted on it, not the pool's source '${printable(plan.spec.source, 200)}'; unmount it first`,
        { target, mounted: state.entry.source },
      );
    }
    if (plan.missingDevice !== undefined) {
      throw new FailedPreconditionError(
        `source device '${printable(plan.missingDevice, 200)}' of pool '${printable(ctx.pool.name)}' does not exist`,
        { device: plan.missingDevice },
      );
    }
    if (plan.exclusive) {
      const elsewhere = mountedElsewhere(entries, candidates, plan.source);
      if (elsewhere.length > 0) {
        throw new FailedPreconditionError(
          `source device '${printable(plan.spec.source, 200)}' of pool '${printable(ctx.pool.name)}' is already mounted on '${printable(elsewhere[0]!.mountPoint, 200)}'; unmount it there first`,
          { device: plan.spec.source, mountPoint: elsewhere[0]!.mountPoint },
        );
      }
    }
    await requirePoolDirectory(target);
    await runMount(ctx.runner, plan.spec, { mount: this.mountCmd, signal: ctx.signal });
    if (plan.source.kind === 'device') rememberPoolMount(ctx.pool, await this.requireMountedSource(ctx, plan, candidates));
    else {
      // a network source's text is the definition's own: what is on the target now is this mount
      const now = mountStateAt(await this.mountTableFor(plan.source), candidates, plan.source);
      if (now.state === 'mounted') rememberPoolMount(ctx.pool, now.entry);
    }
    // the mounted file system's root, not the directory under it, is what deletes go through
    await rememberPoolDirectory(ctx.pool);
  }

  /**
   * mount(8) resolves the source name again, after the checks above: an image file (or a
   * /dev/disk/by-* name) swapped for a link to another disk in between would be mounted as
   * the pool, whose volumes operators read, write and delete. So what is on the target now
   * must be the device or file checked (by device number, or the loop device's backing
   * inode); anything else this mount put there is unmounted again, and the start fails.
   * A network export has no local name to swap: netfs is not checked so.
   */
  private async requireMountedSource(ctx: PoolContext, plan: ResolvedMount, candidates: string[]): Promise<MountInfoEntry> {
    const now = mountStateAt(await this.mountTableFor(plan.source), candidates, plan.source);
    if (now.state === 'mounted') return now.entry;
    const target = plan.spec.target;
    if (now.state === 'other') {
      await runUnmount(ctx.runner, target, { umount: this.umountCmd, signal: ctx.signal });
      throw new FailedPreconditionError(
        `source '${printable(plan.spec.source, 200)}' of pool '${printable(ctx.pool.name)}' changed while it was mounted: ` +
          `mount put '${printable(now.entry.source, 200)}' on '${printable(target, 200)}', not the device or file checked before (the name was replaced, by a link?); ` +
          'unmounted it again, nothing is mounted',
        { device: plan.spec.source, mounted: now.entry.source },
      );
    }
    // the target was replaced (by a link) and mount followed it: the source, mounted nowhere
    // before (startPool refused that), is now mounted where the link led; that mount is undone
    const landed = mountedElsewhere(await this.mountTableFor(plan.source), candidates, plan.source);
    for (const entry of landed.reverse()) await runUnmount(ctx.runner, entry.mountPoint, { umount: this.umountCmd, signal: ctx.signal });
    throw new FailedPreconditionError(
      `pool target '${printable(target, 200)}' changed while pool '${printable(ctx.pool.name)}' was mounted: mount put the source ` +
        (landed.length > 0 ? `on '${printable(landed[0]!.mountPoint, 200)}' (unmounted again)` : 'elsewhere') +
        ' (the directory was replaced, by a link?); nothing is mounted',
      { target },
    );
  }

  /**
   * Unmounts the pool's filesystem from the target: the mount its start made (pool-mounts.ts),
   * whatever its source name leads to by now (an image moved aside or replaced, a by-id link
   * repointed); else, as libvirt, the pool's source found on the target. Nothing of the pool
   * mounted (or something else): nothing to do. An image file's loop device goes with the
   * unmount when mount(8) attached it (autoclear); one the administrator attached stays.
   * Another filesystem mounted over the pool's: FAILED_PRECONDITION, nothing unmounted (umount
   * would take the top one, as libvirt 9.0 does, and the pool's would stay mounted under a
   * pool shown stopped).
   */
  async stopPool(ctx: PoolContext): Promise<void> {
    const plan = await this.resolveMount(ctx.pool, 'look');
    const entries = await this.mountTableFor(plan.source);
    const candidates = await targetCandidates(plan.spec.target);
    const here = mountsAt(entries, candidates);
    const top = here.at(-1);
    const own = poolMountAmong(ctx.pool, here) ?? here.filter((e) => entryMatches(e, plan.source)).at(-1);
    if (own && top && own !== top) {
      throw new FailedPreconditionError(
        `pool target '${printable(plan.spec.target, 200)}' has '${printable(top.source, 200)}' (${printable(top.fsType)}) mounted over ` +
          `the filesystem ('${printable(own.source, 200)}', source '${printable(plan.spec.source, 200)}') of pool '${printable(ctx.pool.name)}'; unmount that first, then stop the pool`,
        { target: plan.spec.target, mounted: top.source },
      );
    }
    if (own) {
      // a create's new file still being flushed keeps the filesystem busy
      await untilFlushed(poolTarget(ctx.pool));
      // the top mount, checked just above to be the pool's own
      await runUnmount(ctx.runner, plan.spec.target, { umount: this.umountCmd, signal: ctx.signal });
    }
    // only once the stop went through: a refused one (busy, covered) leaves the pool active,
    // and what its volume operations go through must stay the directory it started with, not
    // whatever is mounted over the target next (dir/pool-directory.ts)
    forgetPoolDirectory(ctx.pool);
    forgetPoolMount(ctx.pool);
  }

  /**
   * Removes the (unmounted, empty) target directory, as for a dir pool. A filesystem still
   * mounted on the target (the pool's, left by an operator, or another) is named: rmdir's
   * EBUSY alone says nothing of what holds the directory or what to do.
   */
  async deletePool(ctx: PoolContext): Promise<void> {
    const target = poolTarget(ctx.pool);
    // the top mount, the one umount would take first
    const mounted = mountsAt(await readMountTable(this.mountTable), await targetCandidates(target)).at(-1);
    if (mounted) {
      throw new FailedPreconditionError(
        `cannot delete pool '${printable(ctx.pool.name)}': its target '${printable(target, 200)}' still has '${printable(mounted.source, 200)}' (${printable(mounted.fsType)}) mounted on it; ` +
          `unmount it first (umount '${printable(target, 200)}'), then delete the pool`,
        { target, mounted: mounted.source },
      );
    }
    forgetPoolDirectory(ctx.pool);
    forgetPoolMount(ctx.pool);
    return this.dir.deletePool(ctx);
  }

  // ---------------------------------------------------------------- the dir pool on the mount

  refreshPool(ctx: PoolContext): Promise<RefreshResult> {
    return this.dir.refreshPool(ctx);
  }

  refreshVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    return this.dir.refreshVol(ctx, volume);
  }

  createVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    return this.dir.createVol(ctx, volume);
  }

  buildVol(ctx: PoolContext, volume: VolumeDefinition, options: CreateVolOptions): Promise<BuiltVolume | void> {
    return this.dir.buildVol(ctx, volume, options);
  }

  buildVolFrom(
    ctx: PoolContext,
    volume: VolumeDefinition,
    source: { pool: PoolDefinition; volume: VolumeDefinition },
    options: CreateVolOptions,
  ): Promise<void> {
    return this.dir.buildVolFrom(ctx, volume, source, options);
  }

  deleteVol(ctx: PoolContext, volume: VolumeDefinition, options?: DeleteVolOptions): Promise<void> {
    return this.dir.deleteVol(ctx, volume, options);
  }

  resizeVol(ctx: PoolContext, volume: VolumeDefinition, capacity: bigint, flags: ResizeFlags): Promise<void> {
    return this.dir.resizeVol(ctx, volume, capacity, flags);
  }

  /** The dir backend's grows are this pool's: what one killed mid-way left is given back the same way, once the pool is mounted. */
  undoInterruptedGrow(ctx: PoolContext, volume: string, grow: AllocatingGrow, inDirectory?: { dev: number; ino: number }): Promise<GrowUndo> {
    return this.dir.undoInterruptedGrow(ctx, volume, grow, inDirectory);
  }

  wipeVol(ctx: PoolContext, volume: VolumeDefinition, algorithm: WipeAlgorithm): Promise<void> {
    return this.dir.wipeVol(ctx, volume, algorithm);
  }

  uploadVol(
    ctx: PoolContext,
    volume: VolumeDefinition,
    offset: bigint,
    length: bigint,
    data: AsyncIterable<Buffer>,
    options?: { sparse?: boolean },
  ): Promise<bigint> {
    return this.dir.uploadVol(ctx, volume, offset, length, data, options);
  }

  downloadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint): AsyncIterable<Buffer> {
    return this.dir.downloadVol(ctx, volume, offset, length);
  }
}

// ------------------------------------------------------------------ fs

/** Kernel / mkfs names where libvirt's format name is not one. */
const FS_TYPE_NAMES: Record<string, string> = { 'hfs+': 'hfsplus' };

/** The filesystem type name given to mount -t and mkfs -t. */
export function fsTypeName(format: string): string {
  return FS_TYPE_NAMES[format] ?? format;
}

/**
 * libvirt's virStorageBackendExecuteMKFS: mkfs -t FMT with the flag that makes each
 * tool overwrite what is there (ext2/3/4 -F, xfs -f, vfat -I).
 */
export function mkfsArgv(format: string, device: string, mkfs = 'mkfs'): string[] {
  const force = format === 'xfs' ? ['-f'] : format === 'ext2' || format === 'ext3' || format === 'ext4' ? ['-F'] : format === 'vfat' ? ['-I'] : [];
  return [mkfs, '-t', fsTypeName(format), ...force, '--', device];
}

/**
 * A block device held exclusively (an LVM PV of an active VG, swap, a device-mapper or
 * md member, a partition of it mounted) is not formatted: mkfs would refuse with an
 * internal-looking failure ("apparently in use by the system"), or, for tools that do not
 * check, write over what holds it. An exclusive open fails with EBUSY exactly then.
 */
function requireUnheld(device: string, fd: number): void {
  // other failures to open it: mkfs reports them itself
  if (!isHeldExclusively(`/proc/self/fd/${fd}`)) return;
  throw new FailedPreconditionError(
    `source device '${printable(device, 200)}' is in use (held by LVM, swap, a mounted partition or a guest); release it before formatting`,
    { device },
  );
}

export interface FsBackendOptions extends MountedBackendOptions {
  mkfs?: string;
  /** Where mkfs finds its mkfs.TYPE helpers (default: /sbin/fs.d, /sbin/fs, /sbin, then PATH, as util-linux). */
  mkfsSearchPath?: readonly string[];
}

const MKFS_TIMEOUT_MS = 30 * 60_000;

/**
 * An fs pool's source is a block device, or an image file that mount attaches a loop device
 * to. A directory would be bind-mounted by a 'bind' option, and blkid and mkfs would open a
 * FIFO (and hang) or a character device (mkfs ran on /dev/null). A missing source is left to
 * the callers, which say so in their own words.
 */
async function requireDeviceOrImage(device: string, pool: PoolDefinition): Promise<void> {
  let st;
  try {
    st = await stat(device);
  } catch {
    return;
  }
  if (st.isBlockDevice() || st.isFile()) return;
  const what = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device' : st.isSocket() ? 'a socket' : 'not a file';
  throw new FailedPreconditionError(
    `source device '${printable(device, 200)}' of pool '${printable(pool.name)}' is ${what}; an fs pool's source is a block device or a filesystem image file`,
    { device },
  );
}

/** The loop device (/dev/loopN) whose backing file is the file `file` names (device and inode), if any. */
async function loopDeviceBackedBy(file: { dev: bigint; ino: bigint }, sysfsRoot: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = (await readdir(`${sysfsRoot}/block`)).filter((n) => /^loop[0-9]+$/.test(n));
  } catch {
    return undefined;
  }
  for (const name of names) {
    let backing: string;
    try {
      backing = (await readFile(`${sysfsRoot}/block/${name}/loop/backing_file`, 'utf8')).trim();
    } catch {
      continue; // not attached
    }
    const st = await stat(backing, { bigint: true }).catch(() => undefined);
    if (st && st.dev === file.dev && st.ino === file.ino) return `/dev/${name}`;
  }
  return undefined;
}

export class FsBackend extends MountedDirBackend {
  override readonly type: PoolType = PoolType.POOL_TYPE_FS;
  override readonly poolFormats: readonly string[] = FS_POOL_FORMATS;
  private readonly mkfs: string;
  private readonly mkfsSearchPath: readonly string[];

  constructor(options: FsBackendOptions = {}) {
    super(options);
    this.mkfs = options.mkfs ?? 'mkfs';
    this.mkfsSearchPath = options.mkfsSearchPath ?? defaultMkfsSearchPath();
  }

  /** The pool formats (not auto) whose mkfs helper this host has. */
  private makeableFormats(): string[] {
    return this.poolFormats.filter((f) => f !== 'auto' && hasMkfsHelper(fsTypeName(f), this.mkfsSearchPath));
  }

  /** The formats mkfs can make here, for a refusal: 'ext4, xfs' or that there are none. */
  private makeableList(): string {
    const formats = this.makeableFormats();
    return formats.length > 0 ? formats.join(', ') : 'none (no mkfs.TYPE helper is installed)';
  }

  /** The one source device (libvirt: exactly one), checked. */
  sourceDevice(pool: PoolDefinition): string {
    const devices = pool.source?.devices ?? [];
    if (devices.length !== 1) {
      throw new InvalidArgumentError(
        'source.devices',
        `pool '${printable(pool.name)}' needs exactly one source device (<device path='/dev/...'/>), it has ${devices.length}`,
      );
    }
    return checkAbsolutePath(devices[0]!.path, 'source.devices[0].path');
  }

  protected override async resolveMount(pool: PoolDefinition, purpose: 'mount' | 'look' = 'mount'): Promise<ResolvedMount> {
    const device = this.sourceDevice(pool);
    if (purpose === 'mount') await requireDeviceOrImage(device, pool);
    const format = this.poolFormat(pool);
    const target = poolTarget(pool);
    const described = await describeDevice(device);
    return {
      spec: {
        fsType: format === 'auto' ? undefined : fsTypeName(format),
        source: device,
        target,
        options: mountOptionString([], pool.mountOptions ?? []),
      },
      source: described ?? { kind: 'device', path: device },
      missingDevice: described ? undefined : device,
      exclusive: true,
    };
  }

  /**
   * virStorageBackendMakeFileSystem: the device must exist, not be mounted nor otherwise
   * held; with no_overwrite it must hold nothing blkid recognises. The pool needs a real format.
   * Every check, blkid and mkfs act on the source opened once (fs-source.ts), never on its name again.
   */
  protected override async prepareFormat(ctx: PoolContext, flags: BuildFlags): Promise<PreparedFormat> {
    const pool = ctx.pool;
    const device = this.sourceDevice(pool);
    const format = this.poolFormat(pool);
    poolTarget(pool);
    if (format === 'auto') {
      throw new InvalidArgumentError(
        'source.format',
        `pool '${printable(pool.name)}' has format 'auto': mkfs needs a filesystem type; set one of ${this.makeableList()}`,
      );
    }
    const helper = `mkfs.${fsTypeName(format)}`;
    if (!hasMkfsHelper(fsTypeName(format), this.mkfsSearchPath)) {
      throw new FailedPreconditionError(
        `cannot format pool '${printable(pool.name)}' as '${format}' (source.format): this host has no ${helper} for mkfs to run; ` +
          `formats mkfs can make on this host: ${this.makeableList()}; install the ${helper} tool or choose one of those`,
        { field: 'source.format', format, helper },
      );
    }
    const source = openFsSourceForFormat(device, pool);
    try {
      const described = source.described;
      const entries = await this.mountTableFor(described);
      const mounted = mountedElsewhere(entries, [], described);
      if (mounted.length > 0) {
        throw new FailedPreconditionError(
          `source device '${printable(device, 200)}' is mounted on '${printable(mounted[0]!.mountPoint, 200)}'; stop the pool (unmount it) before formatting`,
          { device, mountPoint: mounted[0]!.mountPoint },
        );
      }
      if (described.major !== undefined) requireUnheld(device, source.fd);
      if (described.file) {
        // an image file behind a loop device is in use through it (swap on it, a mount made
        // elsewhere, a guest), which the checks of the file itself do not see
        const loop = await loopDeviceBackedBy(described.file, this.sysfsRoot);
        if (loop) {
          throw new FailedPreconditionError(
            `source image '${printable(device, 200)}' backs ${loop}, which may be in use (swap, a mount, a guest); detach it (losetup -d ${loop}) before formatting`,
            { device, loop },
          );
        }
      }
      if (flags.noOverwrite) await requireEmptyDevice(ctx.runner, device, ctx.signal, source.fd, fsTypeName(format));
    } catch (err) {
      source.close();
      throw err;
    }
    return {
      run: async () => {
        try {
          await ctx.runner.run(mkfsArgv(format, '/dev/fd/3', this.mkfs), { signal: ctx.signal, timeoutMs: MKFS_TIMEOUT_MS, fds: [source.fd] });
        } catch (err) {
          throw mkfsError(err, '/dev/fd/3', device, format, pool.name);
        }
      },
      close: source.close,
    };
  }
}

export const fsBackend = new FsBackend();
