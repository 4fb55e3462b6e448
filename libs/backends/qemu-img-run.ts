import { CommandFailedError } from '../errors/errors.js';
import type { CommandRunner, RunOptions, RunResult } from './runner.js';

/**
 * qemu-img calibrates a LUKS key slot's PBKDF2 iteration count by timing it against the
 * thread's CPU clock; where that clock is coarse (VMs, sandboxes) a measurement can come
 * back as 0 ms and qemu-img gives up with "Unable to get accurate CPU usage" although
 * nothing is wrong with the request (seen on this machine in about 1 of 20 creates).
 * Only that exact failure is retried; every other one is returned at once.
 */
export const PBKDF_CALIBRATION_FAILURE = 'Unable to get accurate CPU usage';
const ATTEMPTS = 4;

export async function runQemuImgCalibrated(runner: CommandRunner, argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await runner.run(argv, options);
    } catch (err) {
      const calibration = err instanceof CommandFailedError && err.stderr.includes(PBKDF_CALIBRATION_FAILURE);
      if (!calibration || attempt >= ATTEMPTS || options.signal?.aborted) throw err;
    }
  }
}
