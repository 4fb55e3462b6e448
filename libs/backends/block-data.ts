// The data path of block-device volumes (partitions, LVs): wipe, upload and
// download, in-process on the device node (libvirt's storageBackendVolWipeLocal,
// virStorageBackendVolUploadLocal / DownloadLocal). Multi-pass wipes run scrub as
// libvirt does; zero wipes write zeros here.
import { constants as fsc, read, type BigIntStats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { WipeAlgorithm } from '../proto/cistern/v1/storage.js';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  UnimplementedError,
  asCisternError,
} from '../errors/errors.js';
import { checkSize, printable } from '../api/names.js';
import type { BackendContext } from './backend.js';
import { fsError, namingFile } from './fs-errors.js';
import { blockDeviceSize, checkAborted, readRange, writeFully } from './file-io.js';
import { runScrub, scrubArgv, WIPE_ALGORITHMS } from './wipe-algorithms.js';
import { alignedBuffer } from './sparse-copy.js';

export const BLOCK_IO_CHUNK = 1024 * 1024;
const ZERO = Buffer.alloc(BLOCK_IO_CHUNK);

/**
 * Source formats whose bytes are the data: raw files, iso images, and block volumes (a
 * partition's type, an LV's or a LUN's empty format, which callers read as raw). A clone
 * into a block volume copies these byte for byte, as libvirt copies a block or raw input
 * volume (storageBackendCreateBlockFrom); anything else goes through qemu-img convert.
 */
const RAW_SOURCE_FORMATS: ReadonlySet<string> = new Set(['raw', 'iso', 'none', 'linux', 'fat16', 'fat32', 'linux-swap', 'linux-lvm', 'linux-raid']);

/** Whether a clone source of `format` is copied as it is (true) or converted by qemu-img. */
export function holdsRawData(format: string): boolean {
  return RAW_SOURCE_FORMATS.has(format);
}

/**
 * Checks that a device opened by name is still the volume's (LUN volumes: its name may have
 * come to lead to another disk since the refresh that listed it); throws when it is not.
 */
export type DeviceIdentity = (opened: BigIntStats, path: string) => Promise<void>;

/**
 * Opens a volume's data: a block device (size from sysfs) or, where a backend's
 * volumes are plain files standing in for devices, a regular file (its size). `identity`
 * checks the opened device before anything is read or written.
 */
async function openBlock(path: string, flags: number, identity?: DeviceIdentity): Promise<{ fh: FileHandle; size: bigint }> {
  let fh: FileHandle;
  // to write: O_EXCL, which on a block device fails with EBUSY while it is mounted or held
  // (LVM, RAID, swap, another O_EXCL opener): a wipe or upload must not write under a mounted
  // filesystem (a delete already refuses such a partition). Without O_CREAT a regular file
  // ignores the flag.
  const writing = (flags & (fsc.O_WRONLY | fsc.O_RDWR)) !== 0;
  try {
    fh = await open(path, flags | fsc.O_NOCTTY | (writing ? fsc.O_EXCL : 0));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EBUSY') {
      throw new FailedPreconditionError(`cannot write to '${printable(path, 200)}': it is in use (mounted, or held by LVM, RAID or swap)`, { path });
    }
    throw fsError(err, 'open', path);
  }
  try {
    const st = await fh.stat({ bigint: true });
    await identity?.(st, path);
    if (st.isBlockDevice()) return { fh, size: blockDeviceSize(st) };
    if (st.isFile()) return { fh, size: st.size };
    throw new FailedPreconditionError(`'${printable(path, 200)}' is not a block device`);
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/** Opens `path` read-only for `identity` to check, and closes it (before a tool that opens the name itself). */
export async function checkIdentity(path: string, identity: DeviceIdentity): Promise<void> {
  const { fh } = await openBlock(path, fsc.O_RDONLY | fsc.O_NONBLOCK, identity);
  await fh.close().catch(() => undefined);
}

/** zero: writes zeros over the whole device; nnsa ... random: `scrub -f -p ALG -- PATH`; trim: not supported (libvirt). */
export async function wipeBlock(ctx: BackendContext, path: string, algorithm: WipeAlgorithm, scrub = 'scrub', identity?: DeviceIdentity): Promise<void> {
  if (algorithm === WipeAlgorithm.WIPE_ALGORITHM_TRIM) throw new UnimplementedError("wipe algorithm 'trim' is not supported");
  if (algorithm !== WipeAlgorithm.WIPE_ALGORITHM_ZERO) {
    const alg = WIPE_ALGORITHMS[algorithm];
    if (!alg) throw new InvalidArgumentError('algorithm', `unsupported wipe algorithm ${algorithm}; allowed: ${Object.values(WIPE_ALGORITHMS).join(', ')}`);
    // opened as the zero wipe opens it (refused while in use), and its size, for the
    // progress scrub's passes are reported in. scrub gets that descriptor, still open: the
    // device checked (a LUN's name may lead elsewhere by then), and held exclusively for the
    // minutes scrub runs, so that it cannot be mounted under the wipe meanwhile
    const opened = await openBlock(path, fsc.O_WRONLY, identity);
    const fdPath = `/proc/${process.pid}/fd/${opened.fh.fd}`;
    try {
      await runScrub(ctx, scrubArgv(alg, fdPath, scrub), alg, opened.size);
    } catch (err) {
      throw namingFile(asCisternError(err), fdPath, path);
    } finally {
      await opened.fh.close().catch(() => undefined);
    }
    return;
  }
  const { fh, size } = await openBlock(path, fsc.O_WRONLY, identity);
  try {
    let pos = 0n;
    while (pos < size) {
      checkAborted(ctx.signal, 'wipe');
      const n = Number(size - pos < BigInt(BLOCK_IO_CHUNK) ? size - pos : BigInt(BLOCK_IO_CHUNK));
      await writeFully(fh, ZERO, 0, n, Number(pos));
      pos += BigInt(n);
      ctx.progress?.(pos, size);
    }
    await fh.datasync();
  } catch (err) {
    throw fsError(err, 'wipe', path);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Writes the stream at `offset` (at most `length` bytes, 0 = all), never past the end of the device. */
export async function uploadBlock(
  ctx: BackendContext,
  path: string,
  offset: bigint,
  length: bigint,
  data: AsyncIterable<Buffer>,
  identity?: DeviceIdentity,
): Promise<bigint> {
  checkSize(offset, 'offset');
  checkSize(length, 'length');
  const { fh, size } = await openBlock(path, fsc.O_WRONLY, identity);
  let written = 0n;
  try {
    if (offset > size) throw new InvalidArgumentError('offset', `offset ${offset} is past the end of the volume (${size} bytes)`);
    if (length > 0n && offset + length > size) {
      throw new InvalidArgumentError('length', `${length} bytes at offset ${offset} do not fit in the volume (${size} bytes)`);
    }
    for await (const chunk of data) {
      checkAborted(ctx.signal, 'upload');
      let buf = chunk;
      let over = false;
      if (length > 0n && written + BigInt(buf.length) > length) {
        buf = buf.subarray(0, Number(length - written));
        over = true;
      }
      if (offset + written + BigInt(buf.length) > size) {
        throw new InvalidArgumentError('length', `the stream is longer than the volume: ${size - offset} bytes fit from offset ${offset}`);
      }
      await writeFully(fh, buf, 0, buf.length, Number(offset + written));
      written += BigInt(buf.length);
      ctx.progress?.(written, length);
      if (over) throw new InvalidArgumentError('length', `the stream carries more than the announced ${length} bytes; ${written} were written`);
    }
    await fh.datasync();
    return written;
  } catch (err) {
    throw fsError(err, 'upload to', path);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Reads `length` bytes (0 = to the end) from `offset` in 1 MiB Buffers. */
export async function* downloadBlock(ctx: BackendContext, path: string, offset: bigint, length: bigint, identity?: DeviceIdentity): AsyncIterable<Buffer> {
  checkSize(offset, 'offset');
  checkSize(length, 'length');
  const { fh, size } = await openBlock(path, fsc.O_RDONLY | fsc.O_NONBLOCK, identity);
  try {
    // a device cannot be read from past its end (libvirt's lseek fails with EINVAL there): an
    // offset beyond it is a mistake to report, not an empty download; its very end gives nothing
    if (offset > size) throw new InvalidArgumentError('offset', `offset ${offset} is past the end of the volume (${size} bytes)`);
    yield* readRange(ctx, fh, offset, length, size);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * Copies `length` bytes of `source` (a file or device, open as `source.fd`: the descriptor a
 * clone's check opened, read by no name again) to the start of the block device `path`.
 * The descriptor stays open: it is the caller's.
 */
export async function copyIntoBlock(ctx: BackendContext, source: { fd: number; name: string }, path: string, length: bigint): Promise<void> {
  const { fh, size } = await openBlock(path, fsc.O_WRONLY);
  try {
    if (length > size) throw new InvalidArgumentError('capacity', `the source has ${length} bytes; the volume only ${size}`);
    // page-aligned: reads into a Buffer.allocUnsafe 16 bytes past a cache line run several
    // times slower here (sparse-copy.ts alignedBuffer)
    const buf = alignedBuffer(BLOCK_IO_CHUNK);
    let pos = 0n;
    while (pos < length) {
      checkAborted(ctx.signal, 'copy');
      const want = Number(length - pos < BigInt(BLOCK_IO_CHUNK) ? length - pos : BigInt(BLOCK_IO_CHUNK));
      const bytesRead = await readAt(source.fd, buf, want, pos).catch((err: unknown) => {
        throw fsError(err, 'read', source.name);
      });
      if (bytesRead === 0) break;
      await writeFully(fh, buf, 0, bytesRead, Number(pos));
      pos += BigInt(bytesRead);
      ctx.progress?.(pos, length);
    }
    await fh.datasync();
  } catch (err) {
    throw fsError(err, 'copy into', path);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** pread on a raw descriptor, through the thread pool (a device read may be slow). */
function readAt(fd: number, buf: Buffer, length: number, position: bigint): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}
