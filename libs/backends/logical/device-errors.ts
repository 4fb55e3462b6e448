// Failures on a logical pool's devices (its PVs, an LV's node) as typed errors: a device
// that is missing, held or read-only is a precondition the user can fix, not an internal
// error, and the message names the device and what was being done to it.
import {
  CisternError,
  FailedPreconditionError,
  ResourceExhaustedError,
  asCisternError,
} from '../../errors/errors.js';
import { printable } from '../../api/names.js';

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
      return new FailedPreconditionError(`${what}: ${e.code}: ${e.message}`);
  }
  const mapped = asCisternError(err);
  mapped.message = `${what}: ${mapped.message}`;
  return mapped;
}
