// One registry of everything the harness started, so nothing outlives the test run:
// mocha's root after-hook (hooks.ts) runs what tests did not tear down themselves, and a
// synchronous exit handler kills leftover child processes by their exact process-group id.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Cleanup = { label: string; run: () => Promise<void> | void };

const cleanups: Cleanup[] = [];
const livePids = new Set<number>();

/** Registers a teardown step; returns a function that runs it once and unregisters it. */
export function registerCleanup(label: string, run: () => Promise<void> | void): () => Promise<void> {
  const entry: Cleanup = { label, run };
  cleanups.push(entry);
  let done: Promise<void> | undefined;
  return () => {
    if (!done) {
      const i = cleanups.indexOf(entry);
      if (i >= 0) cleanups.splice(i, 1);
      done = Promise.resolve().then(run);
    }
    return done;
  };
}

/** Runs every registered teardown, newest first. Errors are collected and rethrown together. */
export async function runAllCleanups(): Promise<void> {
  const errors: unknown[] = [];
  while (cleanups.length > 0) {
    const entry = cleanups.pop()!;
    try {
      await entry.run();
    } catch (err) {
      errors.push(new Error(`cleanup ${entry.label} failed: ${(err as Error)?.message ?? err}`));
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} cleanups failed`);
}

export function trackPid(pid: number): void {
  livePids.add(pid);
}
export function untrackPid(pid: number): void {
  livePids.delete(pid);
}

// Last resort when mocha exits without running hooks (uncaught error, Ctrl-C): SIGKILL the
// process groups we started. Children are spawned detached, so their pgid is their pid.
function killLeftovers(): void {
  for (const pid of livePids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  livePids.clear();
}
process.on('exit', killLeftovers);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killLeftovers();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

/** A fresh temporary directory, removed by the returned cleanup (and by the root hook). */
export function makeTempDir(prefix = 'cistern-test-'): { path: string; remove: () => Promise<void> } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  const remove = registerCleanup(`temp dir ${path}`, () => {
    if (process.env.CISTERN_KEEP_TEMP === '1') return;
    rmSync(path, { recursive: true, force: true });
  });
  return { path, remove };
}

/**
 * Mocha helper: a fresh temporary directory made in `before` and removed in `after`, so a
 * run whose --grep selects none of the suite's tests makes (and leaves) nothing.
 *   const scratch = useTempDir('cistern-x-');
 *   it('...', () => join(scratch.path, 'pool'));
 */
export function useTempDir(prefix = 'cistern-test-'): { readonly path: string } {
  let dir: { path: string; remove: () => Promise<void> } | undefined;
  before(() => {
    dir = makeTempDir(prefix);
  });
  after(async () => {
    await dir?.remove();
    dir = undefined;
  });
  return {
    get path(): string {
      if (!dir) throw new Error(`the temp dir ${prefix}* does not exist (its before hook has not run)`);
      return dir.path;
    },
  };
}
