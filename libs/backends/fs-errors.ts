// Filesystem, device and command failures as the typed errors of libs/errors, each naming
// what was being done to which path: the one translation the backends share.
import {
  AlreadyExistsError,
  CisternError,
  CommandFailedError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  asCisternError,
} from '../errors/errors.js';
import { printable } from '../api/names.js';

/**
 * What went wrong, as 'CODE: description': Node's message repeats the code and ends with the
 * system call and the path it was given (", open '/proc/self/fd/19/disk.raw'"), often the
 * agent's descriptor path, not the one the message names already.
 */
function errnoReason(e: NodeJS.ErrnoException): string {
  let text = String(e.message ?? '');
  if (text.startsWith(`${e.code}: `)) text = text.slice(e.code!.length + 2);
  if (e.syscall) {
    const at = text.lastIndexOf(`, ${e.syscall}`);
    if (at > 0) text = text.slice(0, at);
  }
  return `${e.code}: ${text}`;
}

/**
 * Maps a filesystem error to the typed error, saying what was being done to which path.
 * `sizeField`: the request's field a file too large for the filesystem (EFBIG) is blamed on.
 */
export function fsError(err: unknown, action: string, path: string, sizeField = 'capacity'): CisternError {
  if (err instanceof CisternError) return err;
  const e = err as NodeJS.ErrnoException;
  const what = `${action} '${printable(path, 200)}'`;
  const reason = e?.code ? errnoReason(e) : String(e?.message ?? err);
  switch (e?.code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new ResourceExhaustedError(`cannot ${what}: no space left on the device (${reason})`);
    case 'EEXIST':
      return new AlreadyExistsError(`cannot ${what}: it already exists`);
    case 'ENOENT':
      return new NotFoundError(`cannot ${what}: no such file or directory`);
    case 'EACCES':
    case 'EPERM':
      return new PermissionDeniedError(`cannot ${what}: permission denied (${reason})`);
    case 'EFBIG':
      return new InvalidArgumentError(sizeField, `cannot ${what}: the size is larger than the filesystem allows`);
    case 'ERR_OUT_OF_RANGE':
      // Node's file calls take sizes and offsets up to 2^53-1, below what xfs, btrfs or tmpfs allow
      return new InvalidArgumentError(sizeField, `cannot ${what}: the size is larger than the agent can give a file (at most ${Number.MAX_SAFE_INTEGER} bytes, 8 PiB - 1)`);
    case 'ENOTEMPTY':
      return new FailedPreconditionError(`cannot ${what}: the directory is not empty`);
    case 'EISDIR':
    case 'ENOTDIR':
    case 'EROFS':
    case 'EBUSY':
    case 'ETXTBSY':
      return new FailedPreconditionError(`cannot ${what}: ${reason}`);
  }
  const mapped = asCisternError(err);
  mapped.message = `cannot ${what}: ${mapped.message}`;
  return mapped;
}

/**
 * fsError for work on a device (a PV, an LV's node): a device that is missing, held or
 * read-only is a precondition the user can fix (attach it, release it), not NOT_FOUND or
 * PERMISSION_DENIED of a request's own file.
 */
export function deviceError(err: unknown, action: string, path: string): CisternError {
  if (err instanceof CisternError) return err;
  const e = err as NodeJS.ErrnoException;
  const what = `cannot ${action} '${printable(path, 200)}'`;
  switch (e?.code) {
    case 'ENOENT':
      return new FailedPreconditionError(`${what}: no such device`);
    case 'EBUSY':
      return new FailedPreconditionError(`${what}: the device is in use (mounted, or held by another driver)`);
    case 'ENOSPC':
      return new ResourceExhaustedError(`${what}: no space left on the device`);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new FailedPreconditionError(`${what}: ${errnoReason(e)}`);
  }
  return fsError(err, action, path);
}

/** What fallocate and qemu-img say when a size is beyond the filesystem's or the format's limit. */
const SIZE_REFUSED =
  /File too large|too large for file format|Invalid image size specified|image size must be|Unsupported VDI image size|exceeds maximum/i;

/**
 * A failed command as its typed error; a full disk or quota, which the tools only say on
 * stderr, is RESOURCE_EXHAUSTED. `size`: the request field and bytes the command was given,
 * so that a size the filesystem or the image format cannot hold is INVALID_ARGUMENT naming
 * that field (the client's mistake), not INTERNAL.
 */
export function commandError(err: unknown, size?: { field: string; bytes: bigint }): CisternError {
  if (err instanceof CommandFailedError && /No space left on device|Disk quota exceeded/i.test(err.stderr)) {
    return new ResourceExhaustedError(`no space left: ${err.message}`, err.details);
  }
  if (size && err instanceof CommandFailedError && SIZE_REFUSED.test(err.stderr)) {
    const said = err.stderr.trim().split('\n').find((line) => SIZE_REFUSED.test(line)) ?? '';
    return new InvalidArgumentError(
      size.field,
      `${size.bytes} bytes is more than this volume can hold on this filesystem or in this format (${printable(said.replace(/^[^:]+: /, ''), 200)})`,
    );
  }
  return asCisternError(err);
}

/**
 * A tool run on the agent's checked descriptor (scrub, fallocate, qemu-img: /proc/PID/fd/N,
 * so that it writes the file that was checked, not whatever the name holds by then) names that
 * descriptor in its argv and in what it says. The error names the volume's file instead: the
 * agent's pid and descriptor number tell the user nothing (libvirt, which runs them on the
 * name, shows the volume's path). A longer descriptor number (/proc/1/fd/21 for /proc/1/fd/2)
 * is left alone.
 */
export function namingFile(err: unknown, fdPath: string, path: string): unknown {
  if (!(err instanceof CisternError) || !fdPath) return err;
  const at = new RegExp(`${fdPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?!\\d)`, 'g');
  const shown = printable(path, 200);
  err.message = err.message.replace(at, shown);
  for (const [key, value] of Object.entries(err.details)) err.details[key] = value.replace(at, shown);
  return err;
}
