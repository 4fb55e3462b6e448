// Points os.tmpdir() at a directory of the calling describe block's own while it runs. Tests
// that check the code under test left nothing in the temp folder (secret files, say) then see
// only their own leftovers, not those of another suite running on the machine at the time.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Call inside a describe block; returns the private directory's path once its before hook ran. */
export function usePrivateTmpdir(): () => string {
  let dir = '';
  let saved: string | undefined;
  before(() => {
    saved = process.env.TMPDIR;
    dir = mkdtempSync(join(tmpdir(), 'cistern-private-tmp-'));
    process.env.TMPDIR = dir;
  });
  after(() => {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return () => dir;
}
