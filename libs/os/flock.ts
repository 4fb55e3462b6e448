// An flock(2) lock on a file descriptor of this process, taken by util-linux's flock(1).
//
// Node has no flock(). flock(1) given a descriptor number locks that descriptor: handed ours as
// its fd 3, it locks our open file description and exits, and the lock stays with the
// description, that is with this process's descriptor, until it is closed: by us, or by the
// kernel when this process dies however it dies (kill -9 included). No helper process lives on,
// and nothing is left behind for a next process to judge: a holder is alive exactly as long as
// the kernel says, whatever pid namespace, container or (on a filesystem whose locks are shared,
// NFS) machine it runs in. Descriptors Node opens are close-on-exec, so the programs this process
// runs later do not inherit the descriptor and keep the lock past its death. flock(1) runs
// through the CommandRunner, as every program does (no shell, a timeout).
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { CommandRunner } from '../backends/runner.js';

/** What came of asking for the lock: held by someone else, or no flock program on this system. */
export type FlockResult = 'locked' | 'held' | 'unavailable';

let flockPath: string | null | undefined;

/** Where flock(1) is (PATH, then /usr/bin and /bin), or null. Looked up once. */
function flockProgram(): string | null {
  if (flockPath === undefined) {
    const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d.startsWith('/')), '/usr/bin', '/bin'];
    flockPath =
      dirs
        .map((dir) => join(dir, 'flock'))
        .find((p) => {
          try {
            accessSync(p, constants.X_OK);
            return true;
          } catch {
            return false;
          }
        }) ?? null;
  }
  return flockPath;
}

/** Takes an exclusive flock on `fd` without waiting; 'held' when another open file holds one. */
export async function tryLockExclusive(runner: CommandRunner, fd: number): Promise<FlockResult> {
  const program = flockProgram();
  if (!program) return 'unavailable';
  // flock(1) exits 1 only for a lock held elsewhere (--nonblock); its own failures are sysexits
  // codes, which the runner throws (CommandFailedError, with its stderr)
  const r = await runner.run([program, '--exclusive', '--nonblock', '3'], { fds: [fd], okExitCodes: [0, 1], timeoutMs: 10_000 });
  return r.exitCode === 0 ? 'locked' : 'held';
}
