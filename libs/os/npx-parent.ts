// A service started by npx (`npx cistern-agent ... &`, as the README does) runs as
// npm -> sh -c -> node. A SIGTERM to the npx process (`kill $!`, a script stopping what it
// started) ends npm and then the shell, neither passing it on, and the service ran on with no
// parent: a coordinator holding its port, an agent its host id. npm start's launcher watches
// its parent the same way (scripts/stack.mjs).
import { readFileSync } from 'node:fs';
import type { Logger } from '../log/logger.js';

const POLL_MS = 500;

/** Whether `pid` is the `sh -c BIN ...` npm exec runs a bin with. */
function isNpmExecShell(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return /(^|\/)sh$/.test(argv[0] ?? '') && argv[1] === '-c';
  } catch {
    return false;
  }
}

/**
 * When this process was started by npx, sends it SIGTERM (its ordinary stop) once that npx is
 * gone, that is once this process has been re-parented. Anything else (a service manager,
 * npm start, a test harness, a shell) is left to stop it as it does.
 */
export function stopWhenNpxIsGone(log: Pick<Logger, 'warn'>): void {
  const parent = process.ppid;
  if (process.env.npm_command !== 'exec' || !isNpmExecShell(parent)) return;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    log.warn('npx, which started this process, is gone: stopping', { npxShell: parent });
    process.kill(process.pid, 'SIGTERM');
  }, POLL_MS);
  timer.unref();
}
