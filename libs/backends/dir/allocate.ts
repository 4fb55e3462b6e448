// Giving a file's blocks to it ahead of use (preallocation), for creates and resizes.
// Node has no fallocate(2); util-linux fallocate is one process and allocates without
// writing, like libvirt's fallocate(fd, 0, ...).
import type { FileHandle } from 'node:fs/promises';
import { CommandFailedError, UnimplementedError } from '../../errors/errors.js';
import type { BackendContext } from '../backend.js';
import { commandError } from '../fs-errors.js';
import { checkAborted, zeroFill } from '../file-io.js';

/** Below this many bytes, preallocation writes zeros in-process; above, one `fallocate`. */
export const INPROCESS_ALLOCATE_LIMIT = 64 * 1024 * 1024;

/** fallocate(1) says so when the filesystem cannot allocate without writing, or punch a hole (EOPNOTSUPP). */
export function fallocateUnsupported(err: unknown): boolean {
  return err instanceof CommandFailedError && /not supported/i.test(err.stderr);
}

/**
 * Allocates [from, to) of `fh`: zeros in-process for small ranges, one `fallocate` for large
 * ones, falling back to zeros where the filesystem cannot, as libvirt's safezero does.
 * fallocate gets the descriptor as its fd 3 (/dev/fd/3): by name it would allocate, and
 * extend, whatever the name holds by then (a link to /etc/shadow that whoever can write in
 * the pool put there).
 */
export async function allocate(
  ctx: BackendContext,
  fh: FileHandle,
  from: bigint,
  to: bigint,
  fallocate: string,
  /** the request field that asked for `to` bytes, named when the filesystem cannot hold them */
  field: string,
): Promise<void> {
  if (to <= from) return;
  if (to - from > BigInt(INPROCESS_ALLOCATE_LIMIT)) {
    try {
      // one process with no progress of its own: its start and its end (a fallback to zeros
      // below starts at 0 again, which the throttle takes for the same report)
      ctx.progress?.(0n, to - from);
      await ctx.runner.run([fallocate, '-o', String(from), '-l', String(to - from), '--', '/dev/fd/3'], { signal: ctx.signal, timeoutMs: 0, fds: [fh.fd] });
      ctx.progress?.(to - from, to - from);
      return;
    } catch (err) {
      if (!fallocateUnsupported(err)) throw commandError(err, { field, bytes: to });
    }
  }
  await zeroFill(fh, from, to, ctx);
}

/**
 * Allocates [0, end) of a file, holes included, without touching its data (fallocate(1),
 * mode 0): zeros cannot stand in here, they would overwrite the data around the holes.
 * With `keepSize` the file's size stays as it is (--keep-size): blocks past its end are
 * allocated for a truncate to take in afterwards (a resize's grow).
 */
export async function fallocateRange(ctx: BackendContext, path: string, end: bigint, fallocate: string, keepSize = false): Promise<void> {
  try {
    // one process with no progress of its own: its start and its end
    ctx.progress?.(0n, end);
    await ctx.runner.run([fallocate, ...(keepSize ? ['--keep-size'] : []), '-o', '0', '-l', String(end), '--', path], { signal: ctx.signal, timeoutMs: 0 });
    ctx.progress?.(end, end);
  } catch (err) {
    if (fallocateUnsupported(err)) throw new UnimplementedError('preallocating this sparse volume is not supported by its filesystem');
    throw commandError(err, { field: 'capacity', bytes: end });
  }
}

/**
 * Allocates [from, to) of `fh` past its end without moving its size (fallocate(1)
 * --keep-size), for a grow that sets the size itself once the blocks are there: an agent
 * killed meanwhile leaves the volume at its old capacity, as libvirt's posix_fallocate (one
 * system call) does, instead of somewhere between. Where the filesystem cannot allocate
 * without writing, zeros as `allocate` writes them (the size then moves with them, as with
 * libvirt's safezero fallback).
 */
export async function allocatePastEnd(ctx: BackendContext, fh: FileHandle, from: bigint, to: bigint, fallocate: string, field: string): Promise<void> {
  if (to <= from) return;
  // a call cancelled already does not start the tool
  checkAborted(ctx.signal, 'allocation');
  try {
    ctx.progress?.(0n, to - from);
    await ctx.runner.run([fallocate, '--keep-size', '-o', String(from), '-l', String(to - from), '--', '/dev/fd/3'], { signal: ctx.signal, timeoutMs: 0, fds: [fh.fd] });
    ctx.progress?.(to - from, to - from);
  } catch (err) {
    if (!fallocateUnsupported(err)) throw commandError(err, { field, bytes: to });
    await zeroFill(fh, from, to, ctx);
  }
}
