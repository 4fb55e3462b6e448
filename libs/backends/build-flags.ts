// A pool build's flags: overwrite (format whatever is there) and no_overwrite (refuse a
// device that holds anything) ask opposite things, so every backend refuses the pair
// before it touches anything. (The agent checks the request itself first; a backend
// called directly keeps the same rule.)
import type { BuildFlags } from '../proto/cistern/v1/storage.js';
import { InvalidArgumentError } from '../errors/errors.js';

export function refuseConflictingBuildFlags(flags: BuildFlags | undefined): void {
  if (flags?.overwrite && flags?.noOverwrite) {
    throw new InvalidArgumentError('flags', 'overwrite and no_overwrite are mutually exclusive; give at most one');
  }
}
