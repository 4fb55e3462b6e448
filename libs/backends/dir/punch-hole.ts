// Deallocating a whole file at its size: one hole punched over it (fallocate(1) --punch-hole,
// which keeps the size), for the zero wipe of a sparse file (data.ts). Node has no fallocate(2).
import type { BigIntStats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { BackendContext } from '../backend.js';
import { commandError } from '../fs-errors.js';
import { fallocateUnsupported } from './allocate.js';

/**
 * Punches one hole over the whole of `fh` (`st` its stat): every byte reads as zero, no block
 * stays allocated, the size stays. The range is rounded up to the file's block size, so that
 * the last, partial block goes too. False when the filesystem cannot punch holes (the caller
 * does it another way); fallocate gets the descriptor as its fd 3, never the name.
 */
export async function punchWholeFile(ctx: BackendContext, fh: FileHandle, st: BigIntStats, fallocate: string): Promise<boolean> {
  const block = st.blksize > 0n ? st.blksize : 4096n;
  const length = ((st.size + block - 1n) / block) * block;
  try {
    await ctx.runner.run([fallocate, '--punch-hole', '--keep-size', '-o', '0', '-l', String(length), '--', '/dev/fd/3'], { signal: ctx.signal, fds: [fh.fd] });
    return true;
  } catch (err) {
    if (fallocateUnsupported(err)) return false;
    throw commandError(err);
  }
}
