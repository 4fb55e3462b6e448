// Filesystem and command failures as the typed errors of libs/errors, each naming what was
// being done to which path: the one translation the file-based backends share.
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

/** Maps a filesystem error to the typed error, saying what was being done to which path. */
export function fsError(err: unknown, action: string, path: string): CisternError {
  if (err instanceof CisternError) return err;
  const e = err as NodeJS.ErrnoException;
  const what = `${action} '${printable(path, 200)}'`;
  const reason = e?.code ? `${e.code}: ${e.message}` : String(e?.message ?? err);
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
    case 'ERR_OUT_OF_RANGE':
      return new InvalidArgumentError('capacity', `cannot ${what}: the size is larger than the filesystem allows`);
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

/** A failed command as its typed error; a full disk or quota, which the tools only say on stderr, is RESOURCE_EXHAUSTED. */
export function commandError(err: unknown): CisternError {
  if (err instanceof CommandFailedError && /No space left on device|Disk quota exceeded/i.test(err.stderr)) {
    return new ResourceExhaustedError(`no space left: ${err.message}`, err.details);
  }
  return asCisternError(err);
}
