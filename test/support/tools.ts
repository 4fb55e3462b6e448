// Which external programs this machine has: tests of a tool's behaviour skip (saying so)
// where the tool is missing instead of failing on the missing binary.
import { execFileSync } from 'node:child_process';

/** `command -v NAME` succeeds: the program is on PATH. */
export function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
