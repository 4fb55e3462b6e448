// libvirt's wipe algorithms and the scrub command line that runs all but 'zero', shared
// by file volumes (dir) and block volumes (block-data).
import { WipeAlgorithm } from '../proto/cistern/v1/storage.js';
import type { BackendContext } from './backend.js';
import { scrubProgressReader } from './scrub-progress.js';

/** libvirt's wipe algorithms by their names; all but zero run `scrub -p NAME`. */
export const WIPE_ALGORITHMS: Readonly<Record<number, string>> = {
  [WipeAlgorithm.WIPE_ALGORITHM_ZERO]: 'zero',
  [WipeAlgorithm.WIPE_ALGORITHM_NNSA]: 'nnsa',
  [WipeAlgorithm.WIPE_ALGORITHM_DOD]: 'dod',
  [WipeAlgorithm.WIPE_ALGORITHM_BSI]: 'bsi',
  [WipeAlgorithm.WIPE_ALGORITHM_GUTMANN]: 'gutmann',
  [WipeAlgorithm.WIPE_ALGORITHM_SCHNEIER]: 'schneier',
  [WipeAlgorithm.WIPE_ALGORITHM_PFITZNER7]: 'pfitzner7',
  [WipeAlgorithm.WIPE_ALGORITHM_PFITZNER33]: 'pfitzner33',
  [WipeAlgorithm.WIPE_ALGORITHM_RANDOM]: 'random',
};

/** scrub -f -p ALG -- PATH, as libvirt runs it for the non-zero algorithms. */
export function scrubArgv(algorithm: string, path: string, scrub = 'scrub'): string[] {
  return [scrub, '-f', '-p', algorithm, '--', path];
}

/**
 * Runs a scrub wipe of `size` bytes with progress read from scrub's output
 * (scrub-progress.ts): 0 first, the share of its passes drawn as they go, `size` once it exited.
 */
export async function runScrub(ctx: BackendContext, argv: readonly string[], algorithm: string, size: bigint): Promise<void> {
  const progress = ctx.progress;
  progress?.(0n, size);
  await ctx.runner.run(argv, { signal: ctx.signal, timeoutMs: 0, ...(progress ? { onStdout: scrubProgressReader(algorithm, size, progress) } : {}) });
  progress?.(size, size);
}
