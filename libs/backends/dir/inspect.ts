// Reads a file volume as libvirt's storageBackendProbeTarget does: stat, header probe,
// sizes, permissions, timestamps, backing store.
//
// Inspection uses synchronous fs calls on raw descriptors: for local files each call is
// a few microseconds, while the promise/threadpool path costs several times that per
// call, which dominates a refresh of 10,000 files. refreshPool runs it in batches and
// yields to the event loop between them.
import { closeSync, constants as fsc, existsSync, fstatSync, type BigIntStats, type Dirent } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { VolumeType, type Encryption, type Permissions, type Timestamps, type VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { FailedPreconditionError, NotFoundError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import { probeBuffer, readHeaderSync, type ProbeResult } from '../format-probe.js';
import { qcow2BaseProblem } from '../qcow2-image.js';
import { isProtocol } from '../image-references.js';
import { fsError } from '../fs-errors.js';
import { blockDeviceSize, statSize } from '../file-io.js';
import { permsOf, timestampsOf } from '../stat-fields.js';
import { plainTarget } from '../volume-target.js';
import { openable, openProbeSync, openReadableSync } from '../safe-open.js';

export interface InspectOptions {
  /** Skip (return undefined) what libvirt skips instead of failing. */
  noerror: boolean;
  /** Backing files already probed in this refresh, by path: many overlays share one base. */
  backingCache?: Map<string, BackingInfo | undefined>;
  /** The entry's type as readdir reported it, which saves an lstat for plain files and directories. */
  direntType?: Dirent;
  /**
   * Where to open the volume, when not at `path` (which it is reported as): NAME in the pool
   * directory the pool started with (pool-directory.ts), so that a target swapped for a link
   * since the start is not read through.
   */
  at?: string;
}

/** What a volume's backing store shows of the file it names. */
export interface BackingInfo {
  format: string;
  perms?: Permissions;
  timestamps?: Timestamps;
}

/** A size as the number of bytes readHeaderSync may read: sizes past 2^53 are capped, not rounded. */
function safeNumber(n: bigint): number {
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

const NOT_A_VOLUME = 'is neither a regular file, a block device nor a directory';

/** The format, permissions and timestamps of a backing file; undefined when it cannot be opened. */
export function probeBackingFile(path: string): BackingInfo | undefined {
  let fd = -1;
  try {
    // a header names any path it likes: a character device there is never opened
    const opened = openReadableSync(path);
    fd = opened.fd;
    if (fd < 0) return undefined;
    const st = opened.stat;
    // libvirt reads a backing store's permissions and times from a file or block device only
    // (VIR_STORAGE_VOL_OPEN_DEFAULT): a directory's format is known, the rest is not printed
    if (st.isDirectory()) return { format: 'dir' };
    const size = statSize(st);
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
export function inspectBaseImage(path: string): { size: bigint; probe: ProbeResult; qcow2Problem?: string } | undefined {
  let fd = -1;
  try {
    const opened = openReadableSync(path);
    fd = opened.fd;
    const st = opened.stat;
    if (fd < 0 || !st.isFile()) return undefined;
    const header = readHeaderSync(fd, safeNumber(st.size)); // a shared scratch buffer: use it here only
    const probe = probeBuffer(header, st.size);
    return { size: st.size, probe, qcow2Problem: probe.format === 'qcow2' ? qcow2BaseProblem(header) : undefined };
  } catch {
    return undefined;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/**
 * libvirt's virStorageBackendIsPloopDir: a directory holding both a ploop image (root.hds)
 * and its descriptor is a ploop volume; any other directory is a 'dir' volume.
 */
export function isPloopDirectory(path: string): boolean {
  return existsSync(join(path, 'root.hds')) && existsSync(join(path, 'DiskDescriptor.xml'));
}

/** The encryption a header shows, as the proto has it: which secret unlocks it is not in the image. */
function encryptionOf(probe: ProbeResult): Encryption | undefined {
  if (!probe.encryption) return undefined;
  return { format: probe.encryption, secrets: [], cipher: undefined, ivgen: undefined };
}

/** An opened file volume's header probe and sizes, all read from its descriptor. */
export interface OpenedVolumeProbe {
  probe: ProbeResult;
  /** the file's size, or the block device's */
  size: bigint;
  /** bytes allocated: a file's blocks, a block device's whole size */
  allocation: bigint;
  /** the header's virtual size, else the size */
  capacity: bigint;
  encryption?: Encryption;
}

/**
 * Probes the regular file or block device open as `fd` (`st` its fstat): what a refresh
 * reports of its format and sizes, and what a resize decides by, from the descriptor alone.
 */
export function probeOpenedVolume(fd: number, st: BigIntStats): OpenedVolumeProbe {
  const size = st.isBlockDevice() ? blockDeviceSize(st) : st.size;
  const probe = probeBuffer(readHeaderSync(fd, safeNumber(size)), size);
  return { probe, size, allocation: st.isFile() ? st.blocks * 512n : size, capacity: probe.capacity || size, encryption: encryptionOf(probe) };
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
  const skipType = (st: { isFIFO(): boolean; isSocket(): boolean }): undefined =>
    skip(st.isFIFO() ? 'is a FIFO' : st.isSocket() ? 'is a socket' : NOT_A_VOLUME);
  const at = opts.at ?? path;
  const d = opts.direntType;
  if (d && !d.isSymbolicLink() && (d.isFIFO() || d.isSocket() || d.isCharacterDevice())) return skipType(d);
  let fd = -1;
  let isLink = false;
  let st: BigIntStats;
  try {
    // what the listing showed as a file, directory or block device is opened as it is, not
    // through a link: a name swapped for a link since the listing fails (ELOOP) and takes
    // the careful way below, so no device is opened through a link. (Putting a device node
    // itself in its place takes a device node on the same filesystem: mknod is root's.)
    if (d && !d.isSymbolicLink() && (d.isFile() || d.isDirectory() || d.isBlockDevice())) {
      try {
        fd = openProbeSync(at, fsc.O_NOFOLLOW);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ELOOP') throw err;
      }
    }
    if (fd < 0) {
      // a link, or an entry of unknown type: what it leads to is opened only when it is a
      // file, block device or directory (safe-open.ts)
      let opened = openReadableSync(at, { noFollow: true });
      if (opened.stat.isSymbolicLink()) {
        isLink = true;
        opened = openReadableSync(at);
      }
      if (opened.fd < 0) return skipType(opened.stat);
      fd = opened.fd;
    }
    st = fstatSync(fd, { bigint: true });
  } catch (err) {
    if (fd >= 0) closeSync(fd);
    const code = (err as NodeJS.ErrnoException).code;
    if (opts.noerror && (code === 'ENOENT' || code === 'ELOOP' || code === 'ENXIO' || code === 'EACCES' || code === 'EPERM')) return undefined;
    if (code === 'ENOENT' || (isLink && code === 'ELOOP')) {
      throw new NotFoundError(`no storage volume with matching path '${printable(path, 200)}'${isLink ? ' (dangling link)' : ''}`);
    }
    throw fsError(err, 'open volume', path);
  }
  try {
    if (!openable(st)) return skipType(st);
    if (!st.isDirectory()) return describeOpenedVolume(path, name, fd, st, opts);
    const def = volumeOfStat(path, name, st);
    const target = def.target!;
    // libvirt: a directory is a 'dir' volume, or a ploop image directory; looked into
    // through the directory opened, not its name again
    const opened = `/proc/self/fd/${fd}`;
    if (!isPloopDirectory(opened)) {
      def.type = VolumeType.VOLUME_TYPE_DIR;
      target.format = 'dir';
      return def;
    }
    def.type = VolumeType.VOLUME_TYPE_PLOOP;
    const image = openReadableSync(`${opened}/root.hds`);
    closeSync(fd);
    fd = image.fd;
    const rst = image.stat;
    if (fd < 0 || !rst.isFile()) return skip('is a ploop directory whose root.hds is not a regular file');
    def.allocation = rst.blocks * 512n;
    def.capacity = def.physical = rst.size;
    const probe = probeBuffer(readHeaderSync(fd, safeNumber(rst.size)), rst.size);
    target.format = 'ploop';
    if (probe.capacity) def.capacity = probe.capacity;
    return def;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** What every volume read from a stat starts as: a raw file at `path`, its permissions and timestamps. */
function volumeOfStat(path: string, name: string, st: BigIntStats): VolumeDefinition {
  return {
    type: VolumeType.VOLUME_TYPE_FILE,
    name,
    key: path,
    capacity: 0n,
    allocation: 0n,
    physical: 0n,
    sourceDevices: [],
    target: plainTarget(path, 'raw', permsOf(st), timestampsOf(st)),
    backingStore: undefined,
  };
}

/**
 * The regular file or block device open as `fd` (`st` its fstat), read as a refresh reads the
 * volume at `path`: format, sizes, image options, backing store. The descriptor stays open. A
 * create reads its new file so, through the descriptor it made it with, instead of opening it
 * again by name.
 */
export function describeOpenedVolume(
  path: string,
  name: string,
  fd: number,
  st: BigIntStats = fstatSync(fd, { bigint: true }),
  opts: Pick<InspectOptions, 'backingCache'> = {},
): VolumeDefinition {
  const def = volumeOfStat(path, name, st);
  const target = def.target!;
  const { probe, size, allocation, capacity } = probeOpenedVolume(fd, st);
  def.allocation = allocation;
  def.capacity = capacity;
  def.physical = size;
  target.format = probe.format;
  // libvirt's refresh types a volume by its format: a ploop image file is a 'ploop' volume too
  if (probe.format === 'ploop') def.type = VolumeType.VOLUME_TYPE_PLOOP;
  // libvirt reports a cluster size for qcow2 only (qcow2GetClusterSize); a qed header has one too
  if (probe.clusterSize && probe.format === 'qcow2') target.clusterSize = probe.clusterSize;
  if (probe.compat) target.compat = probe.compat;
  if (probe.lazyRefcounts) target.lazyRefcounts = true;
  if (probe.extendedL2) target.extendedL2 = true;
  target.encryption = encryptionOf(probe);

  if (probe.backingStore) {
    const raw = probe.backingStore.raw;
    // libvirt 9.0 (virStorageIsFile) and qemu take any ':' before the first '/' for a protocol:
    // the name is printed as stored, raw, and no file of that name is opened
    const isNetwork = isProtocol(raw);
    const bpath = isNetwork || isAbsolute(raw) ? raw : relativeBackingPath(path, raw);
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
}

/**
 * Where a relative backing file name leads from the image at `image`, as libvirt 9.0 prints it
 * (virStorageSourceNewFromBackingRelative) and qemu opens it: the image's directory, '/', the
 * name as stored. Its '.' and '..' are left to the kernel, which resolves them after any link
 * before them: path.join would collapse 'sub/..' as text, and with 'sub' a link to a directory
 * elsewhere read another file than the one qemu opens.
 */
export function relativeBackingPath(image: string, raw: string): string {
  const dir = image.slice(0, image.lastIndexOf('/'));
  return `${dir}/${raw}`;
}
