// Volume data work on an existing block device (SAN LUNs: scsi, iscsi, mpath pools):
// wipe, upload and download in-process, like libvirt's storage_util.c
// virStorageBackendVolWipeLocal / virStorageBackendVolUploadLocal / DownloadLocal for
// block volumes. A LUN cannot grow: writes stop at the end of the device.
//   zero    zeros over the whole device, then fdatasync (in-process)
//   trim    `blkdiscard -- DEV` (the device must support discard)
//   others  `scrub -f -p ALG -- DEV`, as libvirt runs scrub
import { constants as fsc, readFileSync, type BigIntStats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { WipeAlgorithm } from '../proto/cistern/v1/storage.js';
import {
  CancelledError,
  CisternError,
  CommandFailedError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnimplementedError,
  asCisternError,
} from '../errors/errors.js';
import { checkSize, printable } from '../api/names.js';
import type { BackendContext } from './backend.js';

export const BLOCK_IO_CHUNK = 1024 * 1024;
const ZERO = Buffer.alloc(BLOCK_IO_CHUNK);

/** scrub's name for each wipe algorithm (zero and trim are done without scrub). */
export const SCRUB_PATTERNS: Readonly<Record<number, string>> = {
  [WipeAlgorithm.WIPE_ALGORITHM_NNSA]: 'nnsa',
  [WipeAlgorithm.WIPE_ALGORITHM_DOD]: 'dod',
  [WipeAlgorithm.WIPE_ALGORITHM_BSI]: 'bsi',
  [WipeAlgorithm.WIPE_ALGORITHM_GUTMANN]: 'gutmann',
  [WipeAlgorithm.WIPE_ALGORITHM_SCHNEIER]: 'schneier',
  [WipeAlgorithm.WIPE_ALGORITHM_PFITZNER7]: 'pfitzner7',
  [WipeAlgorithm.WIPE_ALGORITHM_PFITZNER33]: 'pfitzner33',
  [WipeAlgorithm.WIPE_ALGORITHM_RANDOM]: 'random',
};

export interface BlockIoOptions {
  scrub?: string;
  blkdiscard?: string;
  /** Where to read a block device's size (default '/sys'); /sys/dev/block/MAJ:MIN/size. */
  sysfsRoot?: string;
}

function ioError(err: unknown, action: string, path: string): CisternError {
  if (err instanceof CisternError) return err;
  const e = err as NodeJS.ErrnoException;
  const what = `cannot ${action} '${printable(path, 200)}'`;
  switch (e?.code) {
    case 'ENOENT':
    case 'ENXIO':
      return new NotFoundError(`${what}: the device does not exist (${e.code})`);
    case 'EACCES':
    case 'EPERM':
      return new PermissionDeniedError(`${what}: permission denied`);
    case 'ENOSPC':
      return new ResourceExhaustedError(`${what}: wrote past the end of the device`);
    case 'EBUSY':
    case 'EROFS':
    case 'EISDIR':
      return new FailedPreconditionError(`${what}: ${e.code}: ${e.message}`);
  }
  const c = asCisternError(err);
  c.message = `${what}: ${c.message}`;
  return c;
}

function checkAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new CancelledError(`${what} cancelled`);
}

/** Size in bytes of a block device (sysfs) or a regular file (stat). */
export function blockDeviceBytes(st: BigIntStats, sysfsRoot = '/sys'): bigint {
  if (!st.isBlockDevice()) return st.size;
  const major = (st.rdev >> 8n) & 0xfffn;
  const minor = (st.rdev & 0xffn) | ((st.rdev >> 12n) & 0xfff00n);
  try {
    return BigInt(readFileSync(`${sysfsRoot}/dev/block/${major}:${minor}/size`, 'utf8').trim()) * 512n;
  } catch {
    return 0n;
  }
}

async function openDevice(path: string, flags: number, action: string): Promise<{ fh: FileHandle; size: bigint }> {
  let fh: FileHandle;
  try {
    fh = await open(path, flags | fsc.O_NOCTTY);
  } catch (err) {
    throw ioError(err, action, path);
  }
  try {
    const st = await fh.stat({ bigint: true });
    if (!st.isBlockDevice() && !st.isFile()) {
      throw new FailedPreconditionError(`cannot ${action} '${printable(path, 200)}': not a block device`);
    }
    return { fh, size: blockDeviceBytes(st) };
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw ioError(err, action, path);
  }
}

async function writeFully(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesWritten } = await fh.write(buf, done, length - done, position + done);
    if (bytesWritten === 0) throw Object.assign(new Error('short write'), { code: 'ENOSPC' });
    done += bytesWritten;
  }
}

/** Wipes a block device with the algorithm (see the header). */
export async function wipeBlockDevice(
  ctx: BackendContext,
  path: string,
  algorithm: WipeAlgorithm,
  options: BlockIoOptions = {},
): Promise<void> {
  if (algorithm === WipeAlgorithm.WIPE_ALGORITHM_TRIM) {
    await runTool(ctx, [options.blkdiscard ?? 'blkdiscard', '--', path], 'trim (discard)');
    return;
  }
  const pattern = SCRUB_PATTERNS[algorithm];
  if (algorithm !== WipeAlgorithm.WIPE_ALGORITHM_ZERO) {
    if (!pattern) {
      throw new InvalidArgumentError('algorithm', `unsupported wipe algorithm ${algorithm}; allowed: zero, trim, ${Object.values(SCRUB_PATTERNS).join(', ')}`);
    }
    await runTool(ctx, [options.scrub ?? 'scrub', '-f', '-p', pattern, '--', path], `wipe (${pattern})`);
    return;
  }
  const { fh, size } = await openDevice(path, fsc.O_WRONLY, 'wipe');
  try {
    let pos = 0n;
    while (pos < size) {
      checkAborted(ctx.signal, 'wipe');
      const n = Number(size - pos < BigInt(BLOCK_IO_CHUNK) ? size - pos : BigInt(BLOCK_IO_CHUNK));
      await writeFully(fh, ZERO, n, Number(pos));
      pos += BigInt(n);
      ctx.progress?.(pos, size);
    }
    await fh.datasync();
  } catch (err) {
    throw ioError(err, 'wipe', path);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function runTool(ctx: BackendContext, argv: string[], what: string): Promise<void> {
  try {
    await ctx.runner.run(argv, { signal: ctx.signal, timeoutMs: 0 });
  } catch (err) {
    if (err instanceof CommandFailedError && /not supported|Operation not supported|BLKDISCARD/i.test(err.stderr)) {
      throw new UnimplementedError(`${what} is not supported by the device: ${err.stderr.trim()}`);
    }
    throw asCisternError(err);
  }
}

/**
 * Writes the stream at `offset`, at most `length` bytes (0 = all of it); returns bytes
 * written. Data past the end of the device is refused (INVALID_ARGUMENT), after
 * writing what fits, as a LUN cannot grow.
 */
export async function uploadToBlockDevice(
  ctx: BackendContext,
  path: string,
  offset: bigint,
  length: bigint,
  data: AsyncIterable<Buffer>,
): Promise<bigint> {
  checkSize(offset, 'offset');
  checkSize(length, 'length');
  const { fh, size } = await openDevice(path, fsc.O_WRONLY, 'upload to');
  let written = 0n;
  try {
    if (offset > size) throw new InvalidArgumentError('offset', `offset ${offset} is past the end of the device (${size} bytes)`);
    if (length > 0n && offset + length > size) {
      throw new InvalidArgumentError('length', `offset ${offset} + length ${length} passes the end of the device (${size} bytes); a LUN cannot grow`);
    }
    for await (const chunk of data) {
      checkAborted(ctx.signal, 'upload');
      let buf = chunk;
      let over: InvalidArgumentError | undefined;
      if (length > 0n && written + BigInt(buf.length) > length) {
        buf = buf.subarray(0, Number(length - written));
        over = new InvalidArgumentError('length', `the stream carries more than the announced ${length} bytes`);
      }
      if (offset + written + BigInt(buf.length) > size) {
        buf = buf.subarray(0, Number(size - offset - written));
        over = new InvalidArgumentError('length', `the stream passes the end of the device (${size} bytes); a LUN cannot grow`);
      }
      await writeFully(fh, buf, buf.length, Number(offset + written));
      written += BigInt(buf.length);
      ctx.progress?.(written, length > 0n ? length : size - offset);
      if (over) {
        over.message += `; ${written} bytes were written`;
        throw over;
      }
    }
    await fh.datasync();
    return written;
  } catch (err) {
    throw ioError(err, 'upload to', path);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Reads `length` bytes (0 = to the end) from `offset`, in 1 MiB buffers. */
export async function* downloadFromBlockDevice(
  ctx: BackendContext,
  path: string,
  offset: bigint,
  length: bigint,
): AsyncIterable<Buffer> {
  checkSize(offset, 'offset');
  checkSize(length, 'length');
  const { fh, size } = await openDevice(path, fsc.O_RDONLY | fsc.O_NONBLOCK, 'download from');
  try {
    if (offset > size) throw new InvalidArgumentError('offset', `offset ${offset} is past the end of the device (${size} bytes)`);
    const end = length > 0n && offset + length < size ? offset + length : size;
    let pos = offset;
    while (pos < end) {
      checkAborted(ctx.signal, 'download');
      const want = Number(end - pos < BigInt(BLOCK_IO_CHUNK) ? end - pos : BigInt(BLOCK_IO_CHUNK));
      const buf = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(buf, got, want - got, Number(pos) + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got === 0) break;
      pos += BigInt(got);
      ctx.progress?.(pos - offset, end - offset);
      yield got === want ? buf : buf.subarray(0, got);
    }
  } catch (err) {
    throw ioError(err, 'download from', path);
  } finally {
    await fh.close().catch(() => undefined);
  }
}
