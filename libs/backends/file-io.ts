// Positional reads and writes on a file handle, zero fills, and the checks every data loop
// makes: cancellation, and the size of what a descriptor holds (a block device's from sysfs).
import { readFileSync, type BigIntStats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { CancelledError } from '../errors/errors.js';
import type { BackendContext } from './backend.js';
import { sysfsBlockDir } from './device-number.js';

/** Chunk size of copies, zero fills, uploads and downloads. */
export const IO_CHUNK = 1024 * 1024;
const ZERO = Buffer.alloc(IO_CHUNK);

/** File positions are JS numbers: beyond this one they would not be exact. */
export const MAX_POSITION = BigInt(Number.MAX_SAFE_INTEGER);

/** Throws CANCELLED once the caller's signal has fired: data loops call it between chunks. */
export function checkAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new CancelledError(`${what} cancelled`);
}

/** Reads up to `length` bytes at `position`; fewer only at the end of the file. Returns how many were read. */
export async function readFully(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<number> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/** Writes all `length` bytes of `buf` from `offset` at `position` (a write may take fewer at a time). */
export async function writeFully(fh: FileHandle, buf: Buffer, offset: number, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesWritten } = await fh.write(buf, offset + done, length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Writes zeros over [from, to) in large chunks. Progress is the bytes written out of
 * to - from; with `total`, the position out of `total` (the zeros go on from work already
 * reported, such as a clone's copied data before them).
 */
export async function zeroFill(fh: FileHandle, from: bigint, to: bigint, ctx: BackendContext, total?: bigint): Promise<void> {
  let pos = from;
  while (pos < to) {
    checkAborted(ctx.signal, 'zero fill');
    const n = Number(to - pos < BigInt(IO_CHUNK) ? to - pos : BigInt(IO_CHUNK));
    await writeFully(fh, ZERO, 0, n, Number(pos));
    pos += BigInt(n);
    if (total === undefined) ctx.progress?.(pos - from, to - from);
    else ctx.progress?.(pos, total);
  }
}

/**
 * virStorageBackendZeroPartitionTable: zeros over the first and the last `bytes` of what
 * `fh` holds (all of it when it is smaller), flushed to the device. The caller opened it
 * (with the flags its checks need) and maps the failure.
 */
export async function zeroEnds(fh: FileHandle, bytes: number): Promise<void> {
  const size = statSize(await fh.stat({ bigint: true }));
  const n = size < BigInt(bytes) ? size : BigInt(bytes);
  const zero = n <= BigInt(IO_CHUNK) ? ZERO : Buffer.alloc(Number(n));
  await writeFully(fh, zero, 0, Number(n), 0);
  if (size > n) await writeFully(fh, zero, 0, Number(n), Number(size - n));
  await fh.datasync();
}

/**
 * Yields `length` bytes (0 = to the end) of a file of `size` bytes from `offset`, in
 * IO_CHUNK Buffers, with progress. From the end on (or past it) there is nothing to read:
 * an empty download, as libvirt's.
 */
export async function* readRange(ctx: BackendContext, fh: FileHandle, offset: bigint, length: bigint, size: bigint): AsyncIterable<Buffer> {
  const end = length > 0n && offset + length < size ? offset + length : size;
  let pos = offset;
  while (pos < end) {
    checkAborted(ctx.signal, 'download');
    const want = Number(end - pos < BigInt(IO_CHUNK) ? end - pos : BigInt(IO_CHUNK));
    const buf = Buffer.allocUnsafe(want);
    const got = await readFully(fh, buf, want, Number(pos));
    if (got === 0) break;
    pos += BigInt(got);
    ctx.progress?.(pos - offset, end - offset);
    yield got === want ? buf : buf.subarray(0, got);
  }
}

/** The bytes a file or block device holds: a file's size, a device's from sysfs. */
export function statSize(st: BigIntStats): bigint {
  return st.isBlockDevice() ? blockDeviceSize(st) : st.size;
}

/** A block device's size in bytes, from sysfs (its device number); 0 when sysfs does not say. */
export function blockDeviceSize(st: BigIntStats): bigint {
  try {
    return BigInt(readFileSync(`${sysfsBlockDir(st.rdev)}/size`, 'utf8').trim()) * 512n;
  } catch {
    return 0n;
  }
}
