// What an fs pool build says when mkfs refuses the source: the device too small for the format
// (mkfs.xfs wants 300 MB), empty (a 0-byte image), unreadable. That is the pool's device and
// format, the user's to change, not an internal failure of the agent; and what the user needs
// from mkfs's stderr is its reason, not its version banner, its usage text (mkfs.xfs prints 30
// lines of it after the reason) or the descriptor path it was given (/dev/fd/3).
import { CommandFailedError, FailedPreconditionError } from '../errors/errors.js';
import { printable } from '../api/names.js';

/** The lines of mkfs's stderr that say why, the device's name for the descriptor path. */
export function mkfsReason(stderr: string, fdPath: string, device: string): string {
  const lines: string[] = [];
  for (const raw of stderr.split('\n')) {
    const line = raw.trim();
    if (/^usage:/i.test(line)) break; // the rest is the tool's option list
    if (!line || /^mke2fs \d|^mkfs\.fat \d|^mkfs\.\S+ version \d/i.test(line)) continue;
    lines.push(line.split(fdPath).join(device));
  }
  return printable(lines.join(' '), 500);
}

/**
 * mkfs exited with a failure: FAILED_PRECONDITION on source.format, naming the device, the
 * format and mkfs's reason. Anything else (not started, killed at its time limit) is left as it is.
 */
export function mkfsError(err: unknown, fdPath: string, device: string, format: string, pool: string): unknown {
  if (!(err instanceof CommandFailedError) || err.exitCode === undefined) return err;
  const reason = mkfsReason(err.stderr, fdPath, device) || `mkfs exited with ${err.exitCode}`;
  return new FailedPreconditionError(
    `cannot format source device '${printable(device, 200)}' of pool '${printable(pool)}' as '${printable(format)}' (source.format): ${reason}; ` +
      'choose a device this format fits, or another format',
    { field: 'source.format', device, format, stderr: err.stderr.trim(), exitCode: String(err.exitCode) },
  );
}
