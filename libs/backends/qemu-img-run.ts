import { CommandFailedError } from '../errors/errors.js';
import type { CommandRunner, RunOptions, RunResult } from './runner.js';

/**
 * qemu-img calibrates a LUKS key slot's PBKDF2 iteration count by timing it against the
 * thread's CPU clock; where that clock is coarse (VMs, sandboxes) a measurement can come
 * back as 0 ms and qemu-img gives up with "Unable to get accurate CPU usage" although
 * nothing is wrong with the request. How often depends on the machine's clock: 1 create in
 * 20 on this VM once, 15 in 30 on another day, 21 in 30 on an idle machine on 2026-11-28
 * (qemu-img 7.2, `create -f luks`; qemu 9.2.1 fixed it, "crypto: fix bogus error
 * benchmarking pbkdf on fast machines"). The calibration fails in its first, ~5 ms round, so
 * an attempt that fails costs little (10-20 ms with the process start). Only that exact
 * failure is retried; every other one is returned at once.
 */
export const PBKDF_CALIBRATION_FAILURE = 'Unable to get accurate CPU usage';
/**
 * At a failure rate of 7 in 10, 12 attempts left 1 create in 70 failing (a fresh-clone CI run
 * failed so); 100 leave about 1 in 10^15, and cost 1-2 s on a machine where every attempt fails.
 */
export const QEMU_IMG_CALIBRATION_ATTEMPTS = 100;

export async function runQemuImgCalibrated(runner: CommandRunner, argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await runner.run(argv, options);
    } catch (err) {
      const calibration = err instanceof CommandFailedError && err.stderr.includes(PBKDF_CALIBRATION_FAILURE);
      if (!calibration || attempt >= QEMU_IMG_CALIBRATION_ATTEMPTS || options.signal?.aborted) throw err;
    }
  }
}
