// The dir pool backend: libvirt's storage_backend_fs.c "dir" pool and the local-file
// volume code of storage_util.c, in-process wherever no external program is the real
// mechanism. qemu-img creates, converts and resizes non-raw and LUKS-encrypted images
// (a LUKS volume with its passphrase in a secret file), except the plain
// qcow2 create (no encryption, no preallocation), whose bytes qcow2-image.ts writes
// exactly as qemu-img would; scrub does the multi-pass wipes; everything else (raw
// create, sparse clone, zero wipe, probing, refresh, upload, download) runs here
// without spawning a process.
import { closeSync, constants as fsc, existsSync, fchmodSync, fchownSync, fstatSync, fsync as fsyncFd, ftruncateSync, lstatSync, openSync, unlinkSync } from 'node:fs';
import { promisify } from 'node:util';
import {
  chmod,
  chown,
  copyFile,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readlink,
  realpath,
  rm,
  rmdir,
  stat,
  statfs,
  unlink,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import type { BigIntStats, Dirent } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import {
  PoolType,
  VolumeType,
  WipeAlgorithm,
  type BuildFlags,
  type Encryption,
  type Permissions,
  type PoolDefinition,
  type Timestamps,
  type VolumeDefinition,
} from '../proto/cistern/v1/storage.js';
import {
  AlreadyExistsError,
  CancelledError,
  CommandFailedError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnimplementedError,
} from '../errors/errors.js';
import { MAX_SIZE, checkAbsolutePath, checkObjectName, checkSize, printable } from '../api/names.js';
import type {
  BackendContext,
  BackendOperation,
  CreateVolOptions,
  PoolContext,
  RefreshResult,
  ResizeFlags,
  StorageBackend,
} from './backend.js';
import { runQemuImgCalibrated } from './qemu-img-run.js';
import { KNOWN_FORMATS, probeBuffer, readHeaderSync, type ProbeResult } from './format-probe.js';
import { planQcow2Image, qcow2BaseProblem, writeQcow2Image, writeQcow2ImageSync, type Qcow2Plan } from './qcow2-image.js';
import { CopyCancelledError, copyFileData } from './sparse-copy.js';
import { writeSparse } from './sparse-write.js';
import { commandError, fsError } from './fs-errors.js';
import { IO_CHUNK, MAX_POSITION, blockDeviceSize, checkAborted, readFully, writeFully, zeroFill } from './file-io.js';
import { permsOf, timestampsOf, wantedOwner } from './stat-fields.js';
import {
  RESIZABLE_BY_QEMU,
  divUp,
  qemuDescriptorTarget,
  qemuImgCreateArgv,
  qemuImgResizeArgv,
  qemuImgResizeEncryptedArgv,
  qemuSecretAlias,
} from './qemu-img-argv.js';
import { WIPE_ALGORITHMS, scrubArgv } from './wipe-algorithms.js';

/** libvirt's VIR_STORAGE_DEFAULT_POOL_PERM_MODE and VIR_STORAGE_DEFAULT_VOL_PERM_MODE. */
export const DEFAULT_POOL_MODE = 0o711;
export const DEFAULT_VOL_MODE = 0o600;

/** Formats a dir pool can create (qemu-img's writable drivers; iso is created as raw). */
export const CREATABLE_FORMATS = ['raw', 'dir', 'iso', 'qcow', 'qcow2', 'qed', 'vmdk', 'vpc', 'vdi'] as const;

/** A refresh yields to the event loop after this many milliseconds of work. */
export const REFRESH_SLICE_MS = 10;

/** In-process qcow2 layouts up to this many bytes are written with synchronous calls (one create: ~200 KiB). */
export const QCOW2_SYNC_WRITE_LIMIT = 1024 * 1024;

/** A file with at most this many bytes allocated is deleted with a direct unlink (deleteFileSync). */
export const SYNC_UNLINK_MAX_ALLOCATED = 1024 * 1024;

/** Below this many bytes, preallocation writes zeros in-process; above, one `fallocate`. */
export const INPROCESS_ALLOCATE_LIMIT = 64 * 1024 * 1024;

const BTRFS_SUPER_MAGIC = 0x9123683en;

/** C0, DEL and C1 controls: names the API refuses (libs/api/names.ts), so never listed. */
function hasControlChars(name: string): boolean {
  return /[\x00-\x1f\x7f-\x9f]/.test(name);
}

// ------------------------------------------------------------------ paths

/** The pool's target directory, checked (absolute, normalised, no control characters). */
export function poolTarget(pool: PoolDefinition): string {
  return checkAbsolutePath(pool.target?.path ?? '', 'pool.target.path');
}

/** target + '/' + name, the path libvirt gives a volume of a dir pool; the name is checked. */
export function volumePath(pool: PoolDefinition, name: string, field = 'volume.name'): string {
  checkObjectName(name, field, 'volume name');
  const target = poolTarget(pool);
  return target === '/' ? `/${name}` : `${target}/${name}`;
}

/** A volume opened for writing after writableVolume's check: its descriptor and real path. */
export interface WritableVolume {
  fh: FileHandle;
  /** where the descriptor's file is, as the kernel resolved it at the open */
  path: string;
  stat: BigIntStats;
  /** the open file for a command that writes it: the same inode whatever the path holds by then */
  fdPath: string;
}

/**
 * Opens a volume to write it and checks, on the descriptor, that what was opened is inside the
 * pool. Checking a path and then opening it by name would leave a window in which whoever can
 * write in the pool directory swaps the volume (or a directory on its path) for a link to a file
 * outside the pool, and the agent, as root, would write there. Here the kernel's own record of
 * the opened file (/proc/self/fd) is checked instead, after the open and before anything is
 * written. Links that stay inside the pool are followed, as libvirt follows them. O_NONBLOCK:
 * a FIFO put in the pool fails the open instead of hanging it.
 */
export async function writableVolume(pool: PoolDefinition, name: string, flags: number, what: string): Promise<WritableVolume> {
  const path = volumePath(pool, name);
  let root: string;
  try {
    root = await realpath(poolTarget(pool));
  } catch (err) {
    throw fsError(err, 'resolve pool target', poolTarget(pool));
  }
  let fh: FileHandle;
  try {
    fh = await open(path, flags | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new NotFoundError(`volume '${printable(name)}' not found: '${printable(path, 200)}' does not exist (or is a dangling link)`);
    }
    if (code === 'EISDIR') throw new FailedPreconditionError(`cannot ${what} directory volume '${printable(name)}'`);
    if (code === 'ENXIO') throw new FailedPreconditionError(`cannot ${what} volume '${printable(name)}': it is a FIFO or socket, not a file`);
    throw fsError(err, 'open volume', path);
  }
  try {
    const real = await readlink(`/proc/self/fd/${fh.fd}`);
    if (real.endsWith(' (deleted)')) throw new NotFoundError(`volume '${printable(name)}' was removed while it was being opened`);
    if (!real.startsWith(root === '/' ? '/' : `${root}/`)) {
      throw new PermissionDeniedError(
        `volume path '${printable(path, 200)}' resolves to '${printable(real, 200)}', outside the pool target '${printable(root, 200)}'; refusing to write through a link that leaves the pool`,
      );
    }
    const st = await fh.stat({ bigint: true });
    if (!st.isFile() && !st.isBlockDevice()) {
      throw new FailedPreconditionError(`cannot ${what} volume '${printable(name)}': it is not a regular file or block device`);
    }
    return { fh, path: real, stat: st, fdPath: `/proc/${process.pid}/fd/${fh.fd}` };
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/**
 * The volume's real path for an operation that writes: it must exist and, after
 * resolving symlinks, stay inside the pool target. For reading a volume's state before a
 * write (resize's probe); the writes themselves go through writableVolume's descriptor.
 */
export async function writablePath(pool: PoolDefinition, name: string): Promise<string> {
  const path = volumePath(pool, name);
  let real: string;
  let root: string;
  try {
    root = await realpath(poolTarget(pool));
  } catch (err) {
    throw fsError(err, 'resolve pool target', poolTarget(pool));
  }
  try {
    real = await realpath(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`volume '${printable(name)}' not found: '${printable(path, 200)}' does not exist (or is a dangling link)`);
    }
    throw fsError(err, 'resolve volume path', path);
  }
  if (!real.startsWith(root === '/' ? '/' : `${root}/`)) {
    throw new PermissionDeniedError(
      `volume path '${printable(path, 200)}' resolves to '${printable(real, 200)}', outside the pool target '${printable(root, 200)}'; refusing to write through a link that leaves the pool`,
    );
  }
  return real;
}

const FILE_POOLS: ReadonlySet<PoolType> = new Set([PoolType.POOL_TYPE_DIR, PoolType.POOL_TYPE_FS, PoolType.POOL_TYPE_NETFS]);

/**
 * Where a clone reads its source: target + '/' + name in a filesystem pool; elsewhere the
 * volume's own path (libvirt reads inputvol->target.path): a SCSI LUN named 'unit:0:0:1' or
 * a multipath map 'dm-3' is not a file of that name under the pool's target.
 */
function sourceVolumePath(source: { pool: PoolDefinition; volume: VolumeDefinition }): string {
  if (FILE_POOLS.has(source.pool.type)) return volumePath(source.pool, source.volume.name, 'source.name');
  checkObjectName(source.volume.name, 'source.name', 'volume name');
  return checkAbsolutePath(source.volume.target?.path ?? '', 'source.target.path');
}

function checkBackingPath(path: string): string {
  if (isAbsolute(path)) return checkAbsolutePath(path, 'volume.backing_store.path');
  if (hasControlChars(path) || path.split('/').includes('..') || path.startsWith('-')) {
    throw new InvalidArgumentError(
      'volume.backing_store.path',
      `relative backing path '${printable(path)}' is not allowed: no '..', no control characters, no leading '-'`,
    );
  }
  // qemu reads 'nbd:HOST:PORT', 'http:...' and the like as a protocol, not a file name, and
  // would make the agent connect wherever it names; './NAME' or an absolute path is a file
  if (/^[^/]*:/.test(path)) {
    throw new InvalidArgumentError(
      'volume.backing_store.path',
      `relative backing path '${printable(path)}' has a ':' before its first '/', which qemu reads as a protocol (nbd:, http:, ...); allowed: an absolute path, or './${printable(path)}'`,
    );
  }
  return normalize(path);
}

// ------------------------------------------------------------------ inspection (refresh)
//
// Inspection uses synchronous fs calls on raw descriptors: for local files each call is
// a few microseconds, while the promise/threadpool path costs several times that per
// call, which dominates a refresh of 10,000 files. refreshPool runs it in batches and
// yields to the event loop between them.

interface InspectOptions {
  /** Skip (return undefined) what libvirt skips instead of failing. */
  noerror: boolean;
  backingCache?: Map<string, BackingInfo | undefined>;
  direntType?: Dirent;
}

interface BackingInfo {
  format: string;
  perms?: Permissions;
  timestamps?: Timestamps;
}

const OPEN_PROBE = fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY;

function safeNumber(n: bigint): number {
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

function probeBackingFile(path: string): BackingInfo | undefined {
  let fd = -1;
  try {
    fd = openSync(path, OPEN_PROBE);
    const st = fstatSync(fd, { bigint: true });
    if (st.isDirectory()) return { format: 'dir', perms: permsOf(st), timestamps: timestampsOf(st) };
    const size = st.isBlockDevice() ? blockDeviceSize(st) : st.size;
    return { format: probeBuffer(readHeaderSync(fd, safeNumber(size)), size).format, perms: permsOf(st), timestamps: timestampsOf(st) };
  } catch {
    return undefined;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/**
 * A base image for an in-process qcow2 overlay: a regular file, its size, its header probe
 * and, for qcow2, why qemu-img might not simply open it (qcow2BaseProblem).
 */
function inspectBaseImage(path: string): { size: bigint; probe: ProbeResult; qcow2Problem?: string } | undefined {
  let fd = -1;
  try {
    fd = openSync(path, OPEN_PROBE);
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFile()) return undefined;
    const header = readHeaderSync(fd, safeNumber(st.size)); // a shared scratch buffer: use it here only
    const probe = probeBuffer(header, st.size);
    return { size: st.size, probe, qcow2Problem: probe.format === 'qcow2' ? qcow2BaseProblem(header) : undefined };
  } catch {
    return undefined;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

function encryptionOf(probe: ProbeResult): Encryption | undefined {
  if (!probe.encryption) return undefined;
  return { format: probe.encryption, secrets: [], cipher: undefined, ivgen: undefined };
}

/**
 * Reads one volume as libvirt's storageBackendProbeTarget does: stat, probe the header,
 * sizes, permissions, timestamps, backing store. With `noerror`, returns undefined for
 * what a refresh skips (fifos, sockets, dangling links, unreadable or vanished files,
 * character devices).
 */
export function inspectVolumeSync(path: string, name: string, opts: InspectOptions): VolumeDefinition | undefined {
  const skip = (why: string): undefined => {
    if (opts.noerror) return undefined;
    throw new FailedPreconditionError(`volume path '${printable(path, 200)}' ${why}`);
  };
  let isLink = false;
  const d = opts.direntType;
  if (d && !d.isSymbolicLink() && (d.isFIFO() || d.isSocket())) return skip(d.isFIFO() ? 'is a FIFO' : 'is a socket');
  if (d?.isSymbolicLink()) isLink = true;
  if (!d || (!d.isFile() && !d.isDirectory() && !d.isSymbolicLink())) {
    let lst: BigIntStats;
    try {
      lst = lstatSync(path, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        if (opts.noerror) return undefined;
        throw new NotFoundError(`no storage volume with matching path '${printable(path, 200)}'`);
      }
      throw fsError(err, 'stat', path);
    }
    if (lst.isFIFO()) return skip('is a FIFO');
    if (lst.isSocket()) return skip('is a socket');
    isLink = lst.isSymbolicLink();
  }
  let fd: number;
  try {
    fd = openSync(path, OPEN_PROBE);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (opts.noerror && (code === 'ENOENT' || code === 'ELOOP' || code === 'ENXIO' || code === 'EACCES' || code === 'EPERM')) return undefined;
    if (code === 'ENOENT' || (isLink && code === 'ELOOP')) {
      throw new NotFoundError(`no storage volume with matching path '${printable(path, 200)}'${isLink ? ' (dangling link)' : ''}`);
    }
    throw fsError(err, 'open volume', path);
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    if (st.isFIFO() || st.isSocket()) return skip('is a FIFO or socket');
    const def: VolumeDefinition = {
      type: VolumeType.VOLUME_TYPE_FILE,
      name,
      key: path,
      capacity: 0n,
      allocation: 0n,
      physical: 0n,
      sourceDevices: [],
      target: {
        path,
        format: 'raw',
        permissions: permsOf(st),
        timestamps: timestampsOf(st),
        compat: '',
        nocow: false,
        clusterSize: 0n,
        lazyRefcounts: false,
        extendedL2: false,
        encryption: undefined,
      },
      backingStore: undefined,
    };
    const target = def.target!;
    if (st.isDirectory()) {
      // libvirt: a directory is a 'dir' volume, or a ploop image directory
      if (!existsSync(join(path, 'root.hds')) || !existsSync(join(path, 'DiskDescriptor.xml'))) {
        def.type = VolumeType.VOLUME_TYPE_DIR;
        target.format = 'dir';
        return def;
      }
      def.type = VolumeType.VOLUME_TYPE_PLOOP;
      closeSync(fd);
      fd = -1;
      fd = openSync(join(path, 'root.hds'), OPEN_PROBE);
      const rst = fstatSync(fd, { bigint: true });
      def.allocation = rst.blocks * 512n;
      def.capacity = def.physical = rst.size;
      const probe = probeBuffer(readHeaderSync(fd, safeNumber(rst.size)), rst.size);
      target.format = 'ploop';
      if (probe.capacity) def.capacity = probe.capacity;
      return def;
    }
    let size: bigint;
    if (st.isFile()) {
      size = st.size;
      def.allocation = st.blocks * 512n;
    } else if (st.isBlockDevice()) {
      size = blockDeviceSize(st);
      def.allocation = size;
    } else {
      return skip('is neither a regular file, a block device nor a directory');
    }
    def.capacity = size;
    def.physical = size;

    const probe = probeBuffer(readHeaderSync(fd, safeNumber(size)), size);
    target.format = probe.format;
    if (probe.capacity) def.capacity = probe.capacity;
    // libvirt reports a cluster size for qcow2 only (qcow2GetClusterSize); a qed header has one too
    if (probe.clusterSize && probe.format === 'qcow2') target.clusterSize = probe.clusterSize;
    if (probe.compat) target.compat = probe.compat;
    if (probe.lazyRefcounts) target.lazyRefcounts = true;
    if (probe.extendedL2) target.extendedL2 = true;
    target.encryption = encryptionOf(probe);

    if (probe.backingStore) {
      const raw = probe.backingStore.raw;
      const isNetwork = /^[a-z][a-z0-9+.-]*:/i.test(raw) && !raw.startsWith('/');
      const bpath = isNetwork || isAbsolute(raw) ? raw : join(dirname(path), raw);
      let bformat = probe.backingStore.format;
      let bperms: Permissions | undefined;
      let btimes: Timestamps | undefined;
      if (!isNetwork) {
        const cache = opts.backingCache;
        let info: BackingInfo | undefined;
        if (cache?.has(bpath)) info = cache.get(bpath);
        else {
          info = probeBackingFile(bpath);
          cache?.set(bpath, info);
        }
        // libvirt probes the backing file when the image does not record its format
        if (!bformat) bformat = info?.format ?? 'raw';
        bperms = info?.perms;
        btimes = info?.timestamps;
      }
      def.backingStore = { path: bpath, format: bformat || 'raw', permissions: bperms, timestamps: btimes };
    }
    return def;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** inspectVolumeSync for callers that want a promise. */
export async function inspectVolume(path: string, name: string, opts: InspectOptions): Promise<VolumeDefinition | undefined> {
  return inspectVolumeSync(path, name, opts);
}

// ------------------------------------------------------------------ the backend

export interface DirBackendOptions {
  qemuImg?: string;
  scrub?: string;
  fallocate?: string;
  chattr?: string;
  /** Longest stretch (ms) a refresh runs before yielding to the event loop (default 10). */
  refreshSliceMs?: number;
}

interface ResolvedCreate {
  path: string;
  format: string;
  capacity?: bigint;
  allocation?: bigint;
  mode: number;
  uid: number;
  gid: number;
}

/** fsync(2) in the thread pool (the descriptor stays open). */
const fsyncInPool = promisify(fsyncFd);

/**
 * A new file at r.path: open(O_CREAT|O_EXCL) with the volume's mode, fchmod (+ fchown) and
 * `fill` as direct system calls (a few microseconds each on a local disk, where one
 * thread-pool round trip each costs more), then fsync in the thread pool, close. The fsync
 * waits for a journal commit, which can take long while other large writes are being
 * flushed: it must not hold the agent's event loop (heartbeats). A failure closes and
 * removes the file. For a few KiB of work on a local filesystem only (a hung NFS server
 * must not stall the event loop).
 */
async function createFile(ctx: PoolContext, r: ResolvedCreate, what: string, fill: (fd: number) => void): Promise<void> {
  let fd = -1;
  let created = false;
  try {
    checkAborted(ctx.signal, 'create');
    fd = openSync(r.path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, r.mode);
    created = true;
    fchmodSync(fd, r.mode);
    if (r.uid !== -1 || r.gid !== -1) fchownSync(fd, r.uid, r.gid);
    fill(fd);
    // as libvirt's createRawFile (and qemu-img's flushes): once the create returns, the new
    // file and its size survive a crash of the host
    await fsyncInPool(fd);
    const done = fd;
    fd = -1;
    closeSync(done);
  } catch (err) {
    if (fd >= 0) {
      try {
        closeSync(fd);
      } catch {
        /* closing after a failure */
      }
    }
    if (created) {
      try {
        unlinkSync(r.path);
      } catch {
        /* already gone */
      }
    }
    throw fsError(err, what, r.path);
  }
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

  private readonly qemuImg: string;
  private readonly scrub: string;
  private readonly fallocate: string;
  private readonly chattr: string;
  private readonly sliceMs: number;
  /** Definitions createVol returned (checked): buildVol does not check them again. */
  private readonly planned = new WeakSet<VolumeDefinition>();

  constructor(options: DirBackendOptions = {}) {
    this.qemuImg = options.qemuImg ?? 'qemu-img';
    this.scrub = options.scrub ?? 'scrub';
    this.fallocate = options.fallocate ?? 'fallocate';
    this.chattr = options.chattr ?? 'chattr';
    this.sliceMs = options.refreshSliceMs ?? REFRESH_SLICE_MS;
  }

  // ---------------------------------------------------------------- pools

  async checkPool(ctx: PoolContext): Promise<boolean> {
    const target = poolTarget(ctx.pool);
    try {
      return (await stat(target)).isDirectory();
    } catch {
      return false;
    }
  }

  /**
   * virStorageBackendFileSystemBuild for a dir pool: parents with default permissions,
   * the target with the pool's mode (0711 when new and unset), owner and group; an
   * existing directory only gets its permissions set. overwrite and no_overwrite exclude
   * each other; both ask to format a source device, which a dir pool does not have, so
   * (as in libvirt) they fail -- here before anything is changed.
   */
  async buildPool(ctx: PoolContext, flags: BuildFlags): Promise<void> {
    const target = poolTarget(ctx.pool);
    if (flags?.overwrite && flags?.noOverwrite) {
      throw new InvalidArgumentError('flags', 'overwrite and no_overwrite are mutually exclusive; give at most one');
    }
    if (flags?.overwrite || flags?.noOverwrite) {
      throw new FailedPreconditionError(
        `no source device specified when formatting pool '${printable(ctx.pool.name)}': a dir pool has no source device to format; build it without overwrite/no_overwrite`,
      );
    }
    const perms = ctx.pool.target?.permissions;
    const { uid, gid } = wantedOwner(perms);
    let existing: BigIntStats | undefined;
    try {
      existing = await stat(target, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(err, 'stat pool target', target);
    }
    if (existing && !existing.isDirectory()) {
      throw new AlreadyExistsError(`pool target '${printable(target, 200)}' exists and is not a directory`);
    }
    const mode = perms?.mode ?? (existing ? undefined : DEFAULT_POOL_MODE);
    let created = false;
    try {
      if (!existing) {
        const parent = dirname(target);
        if (parent !== target) await mkdir(parent, { recursive: true, mode: 0o777 });
        await mkdir(target, { mode: mode ?? DEFAULT_POOL_MODE });
        created = true;
      }
      const now = await stat(target, { bigint: true });
      if ((uid !== -1 && BigInt(uid) !== now.uid) || (gid !== -1 && BigInt(gid) !== now.gid)) {
        await chown(target, uid, gid);
      }
      if (mode !== undefined) await chmod(target, mode);
      await this.setCow(ctx, target);
    } catch (err) {
      if (created) await rmdir(target).catch(() => undefined);
      throw fsError(err, 'build pool directory', target);
    }
  }

  /** virFileSetCOW: only btrfs can switch copy-on-write; elsewhere asking for it fails. */
  private async setCow(ctx: PoolContext, target: string): Promise<void> {
    const cow = ctx.pool.features?.cow ?? 0;
    if (cow === 0) return;
    const fs = await statfs(target, { bigint: true });
    if (fs.type !== BTRFS_SUPER_MAGIC) {
      throw new FailedPreconditionError(`unable to control the COW flag on '${printable(target, 200)}': the filesystem is not btrfs`);
    }
    // TRISTATE_YES = 1 (cow on => clear +C), TRISTATE_NO = 2 (cow off => set +C)
    await ctx.runner.run([this.chattr, cow === 1 ? '-C' : '+C', '--', target], { signal: ctx.signal });
  }

  async startPool(ctx: PoolContext): Promise<void> {
    const target = poolTarget(ctx.pool);
    let st;
    try {
      st = await stat(target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new FailedPreconditionError(`pool target directory '${printable(target, 200)}' does not exist; build the pool first`);
      }
      throw fsError(err, 'stat pool target', target);
    }
    if (!st.isDirectory()) throw new FailedPreconditionError(`pool target '${printable(target, 200)}' is not a directory`);
  }

  /** A dir pool has nothing to stop (libvirt has no stopPool for it): succeeds. */
  async stopPool(_ctx: PoolContext): Promise<void> {}

  async deletePool(ctx: PoolContext): Promise<void> {
    const target = poolTarget(ctx.pool);
    try {
      await rmdir(target);
    } catch (err) {
      throw fsError(err, 'remove pool directory', target);
    }
  }

  /**
   * Pool sizes from statvfs as libvirt computes them (f_bfree, not f_bavail), and the target
   * directory's permissions, which libvirt's refresh copies into the live definition.
   */
  async poolRuntime(target: string): Promise<RefreshResult['runtime']> {
    let fs;
    let st;
    try {
      [fs, st] = await Promise.all([statfs(target, { bigint: true }), stat(target, { bigint: true })]);
    } catch (err) {
      throw fsError(err, 'statvfs', target);
    }
    const capacity = fs.bsize * fs.blocks;
    const available = fs.bfree * fs.bsize;
    return { capacity, allocation: capacity - available, available, targetPermissions: permsOf(st) };
  }

  /**
   * Lists the target directory (not recursive) and inspects every entry with synchronous
   * calls, yielding to the event loop every `sliceMs` milliseconds. Skips names with control characters, fifos, sockets, dangling
   * links, vanished or unreadable entries (as libvirt does).
   */
  async refreshPool(ctx: PoolContext): Promise<RefreshResult> {
    const target = poolTarget(ctx.pool);
    let entries: Dirent[];
    try {
      entries = await readdir(target, { withFileTypes: true });
    } catch (err) {
      throw fsError(err, 'read pool directory', target);
    }
    const backingCache = new Map<string, BackingInfo | undefined>();
    const found: VolumeDefinition[] = [];
    let slice = performance.now();
    for (const e of entries) {
      if (hasControlChars(e.name)) continue; // libvirt ignores such names
      const path = target === '/' ? `/${e.name}` : `${target}/${e.name}`;
      try {
        const v = inspectVolumeSync(path, e.name, { noerror: true, backingCache, direntType: e });
        if (v) found.push(v);
      } catch (err) {
        // an entry that changes under us must not fail the whole refresh
        if (!(err instanceof NotFoundError) && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (performance.now() - slice > this.sliceMs) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        checkAborted(ctx.signal, 'refresh');
        slice = performance.now();
      }
    }
    const volumes = found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { runtime: await this.poolRuntime(target), volumes };
  }

  async refreshVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    const path = volumePath(ctx.pool, volume.name);
    const def = await inspectVolume(path, volume.name, { noerror: false });
    if (!def) throw new NotFoundError(`volume '${printable(volume.name)}' not found`);
    return def;
  }

  // ---------------------------------------------------------------- volumes

  /**
   * virStorageBackendVolCreateLocal + the checks libvirt makes before building: fills in
   * type, path and key, refuses what cannot be built; writes nothing.
   */
  async createVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    const path = volumePath(ctx.pool, volume.name);
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
    if (compat && format !== 'qcow2') throw new InvalidArgumentError('volume.target.compat', 'the compatibility option is only available with qcow2');
    if (compat && compat !== '0.10' && compat !== '1.1') {
      throw new InvalidArgumentError('volume.target.compat', `compat '${printable(compat)}' is not supported; allowed: 0.10, 1.1`);
    }
    if (lazy && format !== 'qcow2') throw new InvalidArgumentError('volume.target.lazy_refcounts', 'format features are only available with qcow2');
    if (lazy && compat === '0.10') throw new InvalidArgumentError('volume.target.lazy_refcounts', 'lazy_refcounts is not supported with compat level 0.10; use compat 1.1');
    if (extendedL2 && format !== 'qcow2') throw new InvalidArgumentError('volume.target.extended_l2', 'format features are only available with qcow2');
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
    try {
      await lstat(path);
      throw new AlreadyExistsError(`volume target path '${printable(path, 200)}' already exists`);
    } catch (err) {
      if (err instanceof AlreadyExistsError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(err, 'stat', path);
    }
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
    this.planned.add(planned);
    return planned;
  }

  private resolveCreate(ctx: PoolContext, volume: VolumeDefinition): ResolvedCreate {
    const path = volumePath(ctx.pool, volume.name);
    if (volume.target?.path && normalize(volume.target.path) !== path) {
      throw new InvalidArgumentError('volume.target.path', `path '${printable(volume.target.path, 200)}' is not '${printable(path, 200)}', the only path a dir pool gives volume '${printable(volume.name)}'`);
    }
    const { uid, gid } = wantedOwner(volume.target?.permissions);
    return {
      path,
      format: (volume.target?.format || 'raw').toLowerCase(),
      capacity: volume.capacity,
      allocation: volume.allocation,
      mode: volume.target?.permissions?.mode ?? DEFAULT_VOL_MODE,
      uid,
      gid,
    };
  }

  async buildVol(ctx: PoolContext, volume: VolumeDefinition, options: CreateVolOptions): Promise<void> {
    // a definition createVol returned is checked already (the O_EXCL create still refuses an existing path)
    const checked = this.planned.has(volume) ? volume : await this.createVolChecked(ctx, volume);
    const r = this.resolveCreate(ctx, checked);
    if (r.format === 'dir') return this.createDirVol(r);
    if (r.capacity === undefined && !checked.backingStore?.path) {
      throw new InvalidArgumentError('volume.capacity', 'capacity is required (a size in bytes from 0 to 2^63-1)');
    }
    if ((r.format === 'raw' || r.format === 'iso') && !checked.target?.encryption) {
      if (options.preallocMetadata) throw new InvalidArgumentError('prealloc_metadata', 'metadata preallocation is not supported for raw volumes; it is only available with qcow2');
      let allocation = r.allocation ?? r.capacity!;
      if (options.preallocation === 'falloc' || options.preallocation === 'full') allocation = r.capacity!;
      return this.createRaw(ctx, r, checked, allocation);
    }
    return this.createWithQemuImg(ctx, r, checked, options);
  }

  /** createVol's checks again: buildVol may be called with a definition that skipped them. */
  private async createVolChecked(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    return this.createVol(ctx, volume);
  }

  private async createDirVol(r: ResolvedCreate): Promise<void> {
    try {
      await mkdir(r.path, { mode: r.mode });
    } catch (err) {
      throw fsError(err, 'create directory volume', r.path);
    }
    try {
      await chmod(r.path, r.mode);
      if (r.uid !== -1 || r.gid !== -1) await chown(r.path, r.uid, r.gid);
    } catch (err) {
      await rmdir(r.path).catch(() => undefined);
      throw fsError(err, 'set permissions of', r.path);
    }
  }

  /** Allocates [from, to): zeros in-process for small ranges, one `fallocate` for large ones. */
  private async allocate(ctx: BackendContext, fh: FileHandle, path: string, from: bigint, to: bigint): Promise<void> {
    if (to <= from) return;
    if (to - from > BigInt(INPROCESS_ALLOCATE_LIMIT)) {
      // Node has no fallocate(2); util-linux fallocate is one process and allocates
      // without writing, like libvirt's fallocate(fd, 0, ...). Where the filesystem cannot
      // (EOPNOTSUPP), fall back to writing zeros as libvirt's safezero does.
      try {
        await ctx.runner.run([this.fallocate, '-o', String(from), '-l', String(to - from), '--', path], { signal: ctx.signal, timeoutMs: 0 });
        ctx.progress?.(to - from, to - from);
        return;
      } catch (err) {
        if (!(err instanceof CommandFailedError) || !/not supported/i.test(err.stderr)) throw commandError(err);
      }
    }
    await zeroFill(fh, from, to, ctx);
  }

  /** Allocates [0, end) of a file, holes included, without touching its data (fallocate(1), mode 0). */
  private async fallocateRange(ctx: BackendContext, path: string, end: bigint): Promise<void> {
    try {
      await ctx.runner.run([this.fallocate, '-o', '0', '-l', String(end), '--', path], { signal: ctx.signal, timeoutMs: 0 });
    } catch (err) {
      if (err instanceof CommandFailedError && /not supported/i.test(err.stderr)) {
        throw new UnimplementedError('preallocating this sparse volume is not supported by its filesystem');
      }
      throw commandError(err);
    }
  }

  private async setNocow(ctx: BackendContext, path: string): Promise<void> {
    // libvirt sets FS_NOCOW_FL and ignores failures (only btrfs knows it)
    await ctx.runner.run([this.chattr, '+C', '--', path], { signal: ctx.signal }).catch(() => undefined);
  }

  /**
   * storageBackendCreateRaw: O_CREAT|O_EXCL with the volume's mode, owner and group,
   * ftruncate to the capacity, allocate `allocation` bytes, copy the input (sparse when
   * the new allocation is below the input's capacity). A failure removes the file.
   */
  private async createRaw(
    ctx: PoolContext,
    r: ResolvedCreate,
    volume: VolumeDefinition,
    allocation: bigint,
    input?: { path: string; capacity: bigint; reflink: boolean },
  ): Promise<void> {
    if (!input && allocation === 0n && !volume.target?.nocow && ctx.pool.type !== PoolType.POOL_TYPE_NETFS) {
      return this.createSparseRaw(ctx, r);
    }
    let fh: FileHandle | undefined;
    let created = false;
    try {
      checkAborted(ctx.signal, 'create');
      if (input && (input.reflink || allocation < input.capacity)) {
        // copy-on-write clone first (O(1), keeps holes); only a required reflink may fail
        try {
          await copyFile(input.path, r.path, fsc.COPYFILE_EXCL | fsc.COPYFILE_FICLONE_FORCE);
          created = true;
          fh = await open(r.path, fsc.O_RDWR);
          await fh.chmod(r.mode);
          if (r.uid !== -1 || r.gid !== -1) await fh.chown(r.uid, r.gid);
          await fh.truncate(Number(r.capacity ?? input.capacity));
          ctx.progress?.(input.capacity, input.capacity);
          await fh.close();
          fh = undefined;
          return;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (created || code === 'EEXIST' || input.reflink) {
            if (input.reflink && !created && code !== 'EEXIST') {
              throw new FailedPreconditionError(`failed to clone files from '${printable(input.path, 200)}' by reflink: ${code ?? err}; the filesystem cannot share extents`);
            }
            throw err;
          }
        }
      }
      fh = await open(r.path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, r.mode);
      created = true;
      await fh.chmod(r.mode);
      if (r.uid !== -1 || r.gid !== -1) await fh.chown(r.uid, r.gid);
      if (volume.target?.nocow) await this.setNocow(ctx, r.path);
      const capacity = r.capacity ?? input?.capacity ?? 0n;
      await fh.truncate(Number(capacity));
      let needAlloc = !(input && allocation < input.capacity);
      let pos = 0n;
      if (allocation > 0n && needAlloc && allocation > BigInt(INPROCESS_ALLOCATE_LIMIT)) {
        // before a copy the one fallocate reports no progress: the copy's would start again at 0
        await this.allocate(input ? { ...ctx, progress: undefined } : ctx, fh, r.path, 0n, allocation);
        needAlloc = false;
      }
      if (input) {
        pos = await this.copyData(ctx, input.path, fh, input.capacity, !needAlloc);
      }
      if (needAlloc && allocation > pos) await zeroFill(fh, pos, allocation, ctx, allocation);
      // libvirt 9's createRawFile ends with fsync whatever it wrote: a volume a create
      // returned survives a crash of the host
      await fh.sync();
      // a call cancelled while the data was being synced still leaves nothing behind
      if (input) checkAborted(ctx.signal, 'copy');
      await fh.close();
      fh = undefined;
    } catch (err) {
      await fh?.close().catch(() => undefined);
      if (created) await unlink(r.path).catch(() => undefined);
      throw fsError(err, 'create raw volume', r.path);
    }
  }

  /**
   * createRaw for a sparse raw volume without input on a local filesystem: the same
   * open(O_CREAT|O_EXCL) + fchmod (+ fchown) + ftruncate + fsync + close (createFile: all
   * but the fsync as direct system calls). Not for netfs pools: a hung NFS server must not
   * stall the agent's event loop.
   */
  private createSparseRaw(ctx: PoolContext, r: ResolvedCreate): Promise<void> {
    return createFile(ctx, r, 'create raw volume', (fd) => ftruncateSync(fd, Number(r.capacity ?? 0n)));
  }

  /**
   * Copies `total` bytes of `src` into `dst` (sparse-copy.ts: a worker thread, all-zero
   * 4 KiB blocks skipped with `sparse`, written data flushed while the copy runs).
   */
  private async copyData(ctx: BackendContext, src: string, dst: FileHandle, total: bigint, sparse: boolean): Promise<bigint> {
    try {
      return await copyFileData(src, dst, total, sparse, { signal: ctx.signal, progress: ctx.progress });
    } catch (err) {
      if (err instanceof CopyCancelledError) throw new CancelledError('copy cancelled');
      throw err;
    }
  }

  /**
   * The passphrase in a file of a private temp dir (the caller removes `dir`), for qemu-img's
   * `--object secret,file=`. The value is the one of the secret the volume's encryption names;
   * with `defaultUsage` and no secret named (a volume re-read from disk: the image does not
   * record it), the one of usage `defaultUsage`, the volume's path, as libvirt's
   * storageBackendLoadDefaultSecrets looks it up.
   */
  private async secretFile(ctx: BackendContext, volume: VolumeDefinition, defaultUsage?: string): Promise<{ dir: string; file: string }> {
    const ref = volume.target?.encryption?.secrets[0];
    const value = ref
      ? (ref.uuid && ctx.secrets?.get(ref.uuid)) || (ref.usage && ctx.secrets?.get(ref.usage)) || undefined
      : (defaultUsage && ctx.secrets?.get(defaultUsage)) || undefined;
    if (!value) {
      if (!ref && defaultUsage) {
        throw new FailedPreconditionError(
          `volume '${printable(volume.name)}' is LUKS-encrypted and no passphrase came with the request: its definition names no secret, ` +
            `and no secret of usage type 'volume' for '${printable(defaultUsage, 200)}' was provided ` +
            `(the coordinator sends it when it knows the volume is encrypted: refresh the pool and retry)`,
        );
      }
      throw new FailedPreconditionError(
        `the passphrase secret '${printable(ref?.uuid || ref?.usage || '')}' of volume '${printable(volume.name)}' was not provided`,
      );
    }
    const dir = await mkdtemp(join(tmpdir(), 'cistern-secret-'));
    const file = join(dir, 'secret');
    try {
      await writeFile(file, value, { mode: 0o600 });
    } catch (err) {
      // the caller removes the directory only once it has it
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw fsError(err, 'write the passphrase file', file);
    }
    return { dir, file };
  }

  /**
   * The in-process qcow2 layout for a create that `qemu-img create -f qcow2` would do with
   * the argv qemuImgCreateArgv builds, or undefined where qemu-img stays the mechanism:
   * encryption, preallocation, nocow, netfs pools, and whatever planQcow2Image does not
   * replay. With a backing store, qemu-img opens the backing chain and fails on a format
   * mismatch, a missing base of the base, an encrypted base; so only a regular raw or
   * qcow2 file whose header says the requested format, with no backing file and no
   * encryption of its own, is written here. Capacity as on the argv: ceil(bytes / 1024) K;
   * without one (backing only), the size qemu-img reads from the backing file.
   */
  private qcow2Plan(
    ctx: PoolContext,
    r: ResolvedCreate,
    t: NonNullable<VolumeDefinition['target']>,
    options: CreateVolOptions,
    backing: { path: string; abs: string; format: string } | undefined,
  ): Qcow2Plan | undefined {
    // extended L2 entries (subclusters) are a layout the in-process writer does not replay
    if (r.format !== 'qcow2' || t.encryption || t.nocow || t.extendedL2 || options.preallocMetadata || options.preallocation) return undefined;
    if (ctx.pool.type === PoolType.POOL_TYPE_NETFS) return undefined;
    let capacity = divUp(r.capacity ?? 0n, 1024n) * 1024n;
    if (backing) {
      // qemu would read 'proto:...' as a protocol (nbd:, json:, file: ...)
      if (backing.path.includes(':')) return undefined;
      if (backing.format !== 'raw' && backing.format !== 'qcow2') return undefined;
      const base = inspectBaseImage(backing.abs);
      if (!base || base.probe.format !== backing.format || base.probe.encryption || base.probe.backingStore) return undefined;
      if (base.qcow2Problem !== undefined) return undefined;
      if (capacity === 0n) {
        // bdrv_getlength: raw = the file size in whole sectors (rounded up); qcow2 = header size in whole sectors
        if (base.probe.format === 'raw') capacity = divUp(base.size, 512n) * 512n;
        else if (base.probe.capacity !== undefined) capacity = (base.probe.capacity / 512n) * 512n;
        else return undefined;
      }
    }
    const res = planQcow2Image({
      capacity,
      clusterSize: t.clusterSize > 0n ? Number(t.clusterSize) : undefined,
      compat: t.compat === '1.1' ? '1.1' : '0.10',
      lazyRefcounts: t.lazyRefcounts,
      backingFile: backing?.path,
      backingFormat: backing?.format,
    });
    return res.ok ? res.plan : undefined;
  }

  /**
   * A qcow2 image of a few hundred KiB on a local filesystem: open(O_CREAT|O_EXCL) with the
   * volume's mode, fchmod (+ fchown), one positional write per region as direct system
   * calls, then one fsync and close (createFile). qemu-img flushes between its own rewrites
   * of the header, four times; here the image is written once, complete, so one flush at
   * the end makes it as durable. A failure removes the file.
   */
  private createQcow2Small(ctx: PoolContext, r: ResolvedCreate, plan: Qcow2Plan): Promise<void> {
    return createFile(ctx, r, 'create qcow2 volume', (fd) => writeQcow2ImageSync(fd, plan));
  }

  /** createQcow2Small through the thread pool (writes, fsync, close), for layouts with large L1 tables (MiBs of zeros). */
  private async createQcow2(ctx: PoolContext, r: ResolvedCreate, plan: Qcow2Plan): Promise<void> {
    let fh: FileHandle | undefined;
    let created = false;
    try {
      checkAborted(ctx.signal, 'create');
      fh = await open(r.path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, r.mode);
      created = true;
      await fh.chmod(r.mode);
      if (r.uid !== -1 || r.gid !== -1) await fh.chown(r.uid, r.gid);
      await writeQcow2Image(fh, plan);
      // as createQcow2Small and qemu-img's own flushes: the image survives a host crash
      await fh.sync();
      await fh.close();
      fh = undefined;
    } catch (err) {
      await fh?.close().catch(() => undefined);
      if (created) await unlink(r.path).catch(() => undefined);
      throw fsError(err, 'create qcow2 volume', r.path);
    }
  }

  /**
   * storageBackendCreateQemuImg: reserve the path (O_EXCL), run qemu-img, set permissions;
   * a failure removes the file. A plain qcow2 create (see qcow2Plan) writes the image
   * in-process instead, byte for byte what that qemu-img command would write.
   */
  private async createWithQemuImg(
    ctx: PoolContext,
    r: ResolvedCreate,
    volume: VolumeDefinition,
    options: CreateVolOptions,
    input?: { path: string; format: string },
  ): Promise<void> {
    const t = volume.target!;
    const encrypted = !!t.encryption;
    const qemuFormat = (r.format === 'raw' || r.format === 'iso') && encrypted ? 'luks' : r.format === 'iso' ? 'raw' : r.format;
    const backing = input ? undefined : volume.backingStore?.path ? volume.backingStore : undefined;
    if ((options.preallocMetadata || options.preallocation === 'metadata') && r.format !== 'qcow2') {
      throw new InvalidArgumentError('prealloc_metadata', 'metadata preallocation is only available with qcow2');
    }
    if ((options.preallocMetadata || options.preallocation) && backing) {
      throw new InvalidArgumentError('prealloc_metadata', 'metadata preallocation conflicts with a backing store');
    }
    if (input && encrypted) throw new UnimplementedError('cloning into an encrypted volume is not supported');
    let backingFormat = backing?.format ?? '';
    let backingAbs = '';
    if (backing) {
      const abs = isAbsolute(backing.path) ? backing.path : join(poolTarget(ctx.pool), backing.path);
      backingAbs = abs;
      try {
        const fh = await open(abs, fsc.O_RDONLY | fsc.O_NONBLOCK);
        await fh.close();
      } catch (err) {
        throw new FailedPreconditionError(`inaccessible backing store volume '${printable(backing.path, 200)}': ${(err as NodeJS.ErrnoException).code ?? err}`);
      }
      if (!backingFormat) backingFormat = (await probeBackingFile(abs))?.format ?? 'raw';
    }
    if (!input) {
      const plan = this.qcow2Plan(ctx, r, t, options, backing ? { path: backing.path, abs: backingAbs, format: backingFormat } : undefined);
      if (plan) return plan.bytes <= QCOW2_SYNC_WRITE_LIMIT ? this.createQcow2Small(ctx, r, plan) : this.createQcow2(ctx, r, plan);
    }
    let secret: { dir: string; file: string } | undefined;
    let created = false;
    try {
      if (encrypted) secret = await this.secretFile(ctx, volume);
      checkAborted(ctx.signal, 'create');
      const fh = await open(r.path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, r.mode);
      created = true;
      await fh.close();
      const argv = qemuImgCreateArgv(
        {
          format: qemuFormat,
          path: r.path,
          capacity: r.capacity,
          allocation: r.allocation ?? r.capacity,
          preallocMetadata: options.preallocMetadata,
          preallocation: options.preallocation,
          backingPath: backing?.path,
          backingFormat,
          compat: t.compat || undefined,
          clusterSize: t.clusterSize,
          lazyRefcounts: t.lazyRefcounts,
          extendedL2: t.extendedL2,
          nocow: t.nocow,
          inputPath: input?.path,
          inputFormat: input?.format,
          secret: secret ? { alias: qemuSecretAlias(volume.name), file: secret.file, qcow2: r.format === 'qcow2', cipher: t.encryption?.cipher, ivgen: t.encryption?.ivgen } : undefined,
        },
        this.qemuImg,
      );
      const long = !!input || !!options.preallocation || !!options.preallocMetadata;
      await runQemuImgCalibrated(ctx.runner, argv, { signal: ctx.signal, ...(long ? { timeoutMs: 0 } : {}) });
      await chmod(r.path, r.mode);
      if (r.uid !== -1 || r.gid !== -1) await chown(r.path, r.uid, r.gid);
    } catch (err) {
      if (created) await unlink(r.path).catch(() => undefined);
      throw err instanceof CommandFailedError ? commandError(err) : fsError(err, 'create volume', r.path);
    } finally {
      if (secret) await rm(secret.dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /**
   * Clone (virStorageBackendVolBuildFromLocal): raw to raw is copied in-process (a
   * reflink when possible, else a sparse copy); any other pair goes through
   * `qemu-img convert -f SRC -O DST`. The new capacity is at least the source's.
   */
  async buildVolFrom(
    ctx: PoolContext,
    volume: VolumeDefinition,
    source: { pool: PoolDefinition; volume: VolumeDefinition },
    options: CreateVolOptions,
  ): Promise<void> {
    const srcPath = sourceVolumePath(source);
    const src = await inspectVolume(srcPath, source.volume.name, { noerror: false });
    if (!src) throw new NotFoundError(`source volume '${printable(source.volume.name)}' not found`);
    if (src.type === VolumeType.VOLUME_TYPE_DIR || src.target?.format === 'dir') {
      throw new FailedPreconditionError(`cannot clone directory volume '${printable(source.volume.name)}'`);
    }
    const srcCapacity = src.capacity ?? 0n;
    const requested: VolumeDefinition = {
      ...volume,
      capacity: volume.capacity === undefined || volume.capacity < srcCapacity ? srcCapacity : volume.capacity,
    };
    const checked = await this.createVol(ctx, requested);
    const r = this.resolveCreate(ctx, checked);
    if (r.format === 'dir') throw new InvalidArgumentError('volume.target.format', 'cannot copy from a volume to a directory volume');
    let srcFormat = src.target?.format || 'raw';
    if (srcFormat === 'iso') srcFormat = 'raw';
    const dstRawPlain = (r.format === 'raw' || r.format === 'iso') && !checked.target?.encryption;
    const srcRawPlain = srcFormat === 'raw' && !src.target?.encryption;
    if (dstRawPlain && srcRawPlain) {
      if (options.preallocMetadata) throw new InvalidArgumentError('prealloc_metadata', 'metadata preallocation is not supported for raw volumes');
      const allocation = options.preallocation === 'falloc' || options.preallocation === 'full' ? r.capacity! : (r.allocation ?? r.capacity!);
      return this.createRaw(ctx, r, checked, allocation, { path: srcPath, capacity: srcCapacity, reflink: !!options.reflink });
    }
    if (options.reflink) throw new InvalidArgumentError('reflink', 'reflink clones are only possible between raw volumes');
    if (src.target?.encryption) throw new UnimplementedError('cloning an encrypted volume is not supported');
    return this.createWithQemuImg(ctx, r, checked, options, { path: srcPath, format: srcFormat });
  }

  /** Unlinks the file (or the link itself), removes an empty directory volume; a vanished volume is fine. */
  async deleteVol(ctx: PoolContext, volume: VolumeDefinition): Promise<void> {
    const path = volumePath(ctx.pool, volume.name);
    if (ctx.pool.type !== PoolType.POOL_TYPE_NETFS && this.deleteFileSync(path)) return;
    let st;
    try {
      st = await lstat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw fsError(err, 'stat', path);
    }
    try {
      if (st.isDirectory()) {
        const ploop = await stat(join(path, 'root.hds')).then(() => true, () => false);
        if (ploop) await rm(path, { recursive: true });
        else await rmdir(path);
      } else {
        await unlink(path);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw fsError(err, st.isDirectory() ? 'remove directory' : 'unlink file', path);
    }
  }

  /**
   * deleteVol of a small file on a local filesystem as two direct system calls (lstat,
   * unlink: a few microseconds each) rather than two thread-pool round trips; true when it
   * is done. unlink frees the file's blocks before it returns, which for a large allocated
   * file takes long enough to stop the agent's heartbeats: those, directories (and ploop
   * ones) take the general path, as do netfs pools (a hung NFS server must not stall the
   * agent's event loop).
   */
  private deleteFileSync(path: string): boolean {
    let st;
    try {
      st = lstatSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
      throw fsError(err, 'stat', path);
    }
    if (st.isDirectory() || st.blocks * 512 > SYNC_UNLINK_MAX_ALLOCATED) return false;
    try {
      unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
      throw fsError(err, 'unlink file', path);
    }
    return true;
  }

  /**
   * storageVolResize's checks + virStorageBackendVolResizeLocal: delta adds to (or with
   * shrink subtracts from) the current capacity; never below the allocation; shrinking
   * needs the shrink flag; allocate only for unencrypted raw and only if the pool has the
   * space. Raw files are truncated (and allocated) in-process; other formats, and LUKS-encrypted
   * raw or qcow2 volumes (resizeEncrypted), use qemu-img resize.
   */
  async resizeVol(ctx: PoolContext, volume: VolumeDefinition, capacity: bigint, flags: ResizeFlags): Promise<void> {
    const path = await writablePath(ctx.pool, volume.name);
    checkSize(capacity, 'capacity');
    const cur = await inspectVolume(path, volume.name, { noerror: false });
    if (!cur) throw new NotFoundError(`volume '${printable(volume.name)}' not found`);
    const format = cur.target?.format ?? 'raw';
    if (cur.type === VolumeType.VOLUME_TYPE_DIR) throw new FailedPreconditionError(`cannot resize directory volume '${printable(volume.name)}'`);
    const curCap = cur.capacity ?? 0n;
    const curAlloc = cur.allocation ?? 0n;
    let abs: bigint;
    if (flags.delta) abs = flags.shrink ? curCap - (capacity < curCap ? capacity : curCap) : curCap + capacity;
    else abs = capacity;
    if (abs > MAX_SIZE) throw new InvalidArgumentError('capacity', `the new capacity ${abs} is out of range; allowed: up to ${MAX_SIZE} bytes`);
    if (abs < curAlloc) {
      throw new InvalidArgumentError('capacity', `can't shrink capacity (${abs}) below the existing allocation (${curAlloc})`);
    }
    if (abs < curCap && !flags.shrink) {
      throw new InvalidArgumentError('capacity', `can't shrink capacity (${abs}) below the current capacity (${curCap}) unless the shrink flag is given`);
    }
    const encrypted = !!cur.target?.encryption;
    if (flags.allocate) {
      if (format !== 'raw' || encrypted) {
        throw new InvalidArgumentError('allocate', `preallocate is only supported for an unencrypted raw volume, not ${encrypted ? 'an encrypted ' : ''}${format}`);
      }
      const delta = abs - curAlloc;
      const { available } = await this.poolRuntime(poolTarget(ctx.pool));
      if (delta > available) {
        throw new ResourceExhaustedError(`not enough space left in storage pool: allocating ${delta} bytes, ${available} available`);
      }
    }
    if (format === 'raw' && !encrypted) {
      const { fh, stat: opened, fdPath } = await writableVolume(ctx.pool, volume.name, fsc.O_RDWR, 'resize');
      const size = opened.size;
      try {
        if (abs > size && flags.allocate) {
          // allocate first and set the size last: a failed or cancelled allocation puts the old
          // size back, so the volume is never left at a capacity the call reported as not done
          try {
            // libvirt allocates the whole file (virFileAllocate(fd, 0, capacity)): a sparse
            // volume's holes get their blocks too (fallocate never writes over data)
            if (opened.isFile() && opened.blocks * 512n < size) await this.fallocateRange(ctx, fdPath, abs);
            else await this.allocate(ctx, fh, fdPath, size, abs);
            await fh.truncate(Number(abs));
            await fh.sync();
          } catch (err) {
            await fh.truncate(Number(size)).catch(() => undefined);
            throw err;
          }
        } else {
          await fh.truncate(Number(abs));
        }
      } catch (err) {
        throw fsError(err, 'resize', path);
      } finally {
        await fh.close().catch(() => undefined);
      }
      return;
    }
    if (format === 'ploop') throw new UnimplementedError('resizing ploop volumes needs the ploop tools, which are not supported');
    if (encrypted) {
      // libvirt: "resize of qcow2 encrypted image is not supported" (the legacy AES encryption)
      if (cur.target?.encryption?.format !== 'luks' || (format !== 'raw' && format !== 'qcow2')) {
        throw new InvalidArgumentError(
          'volume',
          `resize of ${format} images with '${cur.target?.encryption?.format ?? ''}' encryption is not supported; only LUKS-encrypted raw and qcow2 volumes can be resized`,
        );
      }
      return this.resizeEncrypted(ctx, volume, format, abs, abs < curCap);
    }
    if (!RESIZABLE_BY_QEMU.has(format)) {
      // qemu-img says which formats it cannot resize ('does not support resize')
      try {
        await ctx.runner.run(qemuImgResizeArgv(path, abs, abs < curCap, this.qemuImg), { signal: ctx.signal });
      } catch (err) {
        throw commandError(err);
      }
      return;
    }
    // qemu-img opens the file this agent opened and checked, not whatever the path holds by
    // then; without its backing chain, which it does not need to resize and could not find
    // next to a /proc path
    const { fh, fdPath } = await writableVolume(ctx.pool, volume.name, fsc.O_RDWR, 'resize');
    try {
      await ctx.runner.run(qemuImgResizeArgv(qemuDescriptorTarget(format, fdPath), abs, abs < curCap, this.qemuImg), { signal: ctx.signal });
    } catch (err) {
      throw commandError(err);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /**
   * storageBackendResizeQemuImg for a LUKS-encrypted raw or qcow2 volume: qemu-img unlocks the
   * image with the passphrase (a secret file, removed afterwards whatever happens) and resizes
   * its payload. It opens the file this agent opened and checked (writableVolume), not
   * whatever the path holds by then. The passphrase is the secret the volume's definition
   * names, else the one whose usage is the volume's path (libvirt's default secret).
   */
  private async resizeEncrypted(ctx: PoolContext, volume: VolumeDefinition, format: 'raw' | 'qcow2', capacity: bigint, shrink: boolean): Promise<void> {
    const defaultUsage = volumePath(ctx.pool, volume.name);
    let secret: { dir: string; file: string } | undefined;
    let fh: FileHandle | undefined;
    try {
      secret = await this.secretFile(ctx, volume, defaultUsage);
      checkAborted(ctx.signal, 'resize');
      const opened = await writableVolume(ctx.pool, volume.name, fsc.O_RDWR, 'resize');
      fh = opened.fh;
      const argv = qemuImgResizeEncryptedArgv(
        { format, path: opened.fdPath, capacity, shrink, secret: { alias: qemuSecretAlias(volume.name), file: secret.file } },
        this.qemuImg,
      );
      try {
        await ctx.runner.run(argv, { signal: ctx.signal });
      } catch (err) {
        if (err instanceof CommandFailedError && /Invalid password, cannot unlock any keyslot/.test(err.stderr)) {
          throw new FailedPreconditionError(
            `the passphrase given for volume '${printable(volume.name)}' does not unlock it (qemu-img: invalid password, cannot unlock any keyslot); ` +
              `set the volume's passphrase as the value of its secret`,
            err.details,
          );
        }
        throw commandError(err);
      }
    } finally {
      await fh?.close().catch(() => undefined);
      if (secret) await rm(secret.dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /**
   * zero: writes zeros over the whole file in-process (a real overwrite, not a
   * truncate); the other algorithms run `scrub -f -p ALG -- PATH` as libvirt does;
   * trim is not supported for files.
   */
  async wipeVol(ctx: PoolContext, volume: VolumeDefinition, algorithm: WipeAlgorithm): Promise<void> {
    if (algorithm === WipeAlgorithm.WIPE_ALGORITHM_TRIM) throw new UnimplementedError("wipe algorithm 'trim' is not supported for file volumes");
    const alg = WIPE_ALGORITHMS[algorithm];
    if (!alg) {
      throw new InvalidArgumentError('algorithm', `unsupported wipe algorithm ${algorithm}; allowed: ${Object.values(WIPE_ALGORITHMS).join(', ')}`);
    }
    const vol = await writableVolume(ctx.pool, volume.name, fsc.O_WRONLY, 'wipe');
    const { fh, path, stat: st } = vol;
    try {
      if (alg !== 'zero') {
        // scrub opens the file this agent opened and checked, not whatever the path holds by then
        try {
          await ctx.runner.run(scrubArgv(alg, vol.fdPath, this.scrub), { signal: ctx.signal, timeoutMs: 0 });
        } catch (err) {
          throw commandError(err);
        }
        return;
      }
      try {
        if (st.isFile() && st.blocks * 512n < st.size) {
          // libvirt (storageBackendVolZeroSparseFileLocal): a sparse file is zeroed by cutting it
          // to nothing and back to its size: its data is gone, and it stays sparse
          ctx.progress?.(0n, st.size);
          await fh.truncate(0);
          await fh.truncate(Number(st.size));
          ctx.progress?.(st.size, st.size);
        } else {
          const size = st.isBlockDevice() ? blockDeviceSize(st) : st.size;
          await zeroFill(fh, 0n, size, ctx, size);
        }
        await fh.datasync();
      } catch (err) {
        throw fsError(err, 'wipe', path);
      }
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /**
   * Writes the stream at `offset`, at most `length` bytes (0 = all of it); returns bytes
   * written. As libvirt (virStorageBackendVolUploadLocal), a file is written where it is told,
   * past its end too (it grows), whatever its format; a block device cannot grow, so nothing
   * is written past its end.
   */
  async uploadVol(
    ctx: PoolContext,
    volume: VolumeDefinition,
    offset: bigint,
    length: bigint,
    data: AsyncIterable<Buffer>,
    options: { sparse?: boolean } = {},
  ): Promise<bigint> {
    checkSize(offset, 'offset');
    checkSize(length, 'length');
    // a sparse upload reads back what the file holds where the source has zeros
    const flags = options.sparse ? fsc.O_RDWR : fsc.O_WRONLY;
    const { fh, path, stat: opened } = await writableVolume(ctx.pool, volume.name, flags, 'upload into');
    const deviceEnd = opened.isBlockDevice() ? blockDeviceSize(opened) : undefined;
    // --sparse: blocks of zeros the file already holds are not written (a block device is
    // written in full); past its end at the start it holds only zeros
    const sparse = options.sparse === true && opened.isFile();
    const zerosFrom = Number(opened.size);
    const put = sparse
      ? (buf: Buffer, at: number) => writeSparse(fh, buf, at, zerosFrom)
      : (buf: Buffer, at: number) => writeFully(fh, buf, 0, buf.length, at);
    let written = 0n;
    try {
      if (deviceEnd !== undefined && offset > deviceEnd) {
        throw new InvalidArgumentError('offset', `offset ${offset} is past the end of the device (${deviceEnd} bytes)`);
      }
      for await (const chunk of data) {
        checkAborted(ctx.signal, 'upload');
        const over = length > 0n && written + BigInt(chunk.length) > length;
        const buf = over ? chunk.subarray(0, Number(length - written)) : chunk;
        const end = offset + written + BigInt(buf.length);
        if (end > MAX_POSITION) throw new InvalidArgumentError('offset', `the upload would pass ${MAX_POSITION} bytes, the largest offset written to exactly`);
        if (deviceEnd !== undefined && end > deviceEnd) {
          throw new InvalidArgumentError('length', `the stream is longer than the device: ${deviceEnd - offset} bytes fit from offset ${offset}`);
        }
        await put(buf, Number(offset + written));
        written += BigInt(buf.length);
        if (over) throw new InvalidArgumentError('length', `the stream carries more than the announced ${length} bytes; ${written} were written`);
        ctx.progress?.(written, length);
      }
      // zeros left out at the end still count: the file reaches at least the upload's end
      if (sparse && written > 0n && (await fh.stat({ bigint: true })).size < offset + written) await fh.truncate(Number(offset + written));
      await fh.datasync();
      return written;
    } catch (err) {
      throw fsError(err, 'upload to', path);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /** Reads `length` bytes (0 = to the end) from `offset` in 1 MiB Buffers. */
  async *downloadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint): AsyncIterable<Buffer> {
    checkSize(offset, 'offset');
    checkSize(length, 'length');
    const path = volumePath(ctx.pool, volume.name);
    let fh: FileHandle;
    try {
      fh = await open(path, fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`volume '${printable(volume.name)}' not found: '${printable(path, 200)}' does not exist`);
      throw fsError(err, 'open', path);
    }
    try {
      const st = await fh.stat({ bigint: true });
      if (st.isDirectory()) throw new FailedPreconditionError(`cannot download directory volume '${printable(volume.name)}'`);
      const size = st.isBlockDevice() ? blockDeviceSize(st) : st.size;
      // from the end on (or past it) there is nothing to read: an empty download, as libvirt's
      const end = length > 0n && offset + length < size ? offset + length : size;
      let pos = offset;
      while (pos < end) {
        checkAborted(ctx.signal, 'download');
        const want = Number(end - pos < BigInt(IO_CHUNK) ? end - pos : BigInt(IO_CHUNK));
        const buf = Buffer.allocUnsafe(want);
        const n = await readFully(fh, buf, want, Number(pos));
        if (n === 0) break;
        pos += BigInt(n);
        ctx.progress?.(pos - offset, end - offset);
        yield n === want ? buf : buf.subarray(0, n);
      }
    } finally {
      await fh.close().catch(() => undefined);
    }
  }
}

export const dirBackend = new DirBackend();
