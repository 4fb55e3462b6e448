// Children that die with the process that started them, however it dies.
//
// The agent runs as root and its children write to volumes and block devices (scrub, qemu-img
// convert, dd, parted, lvcreate). Should the agent alone be killed (kill -9 of its pid, the OOM
// killer), a child would go on writing to a volume the restarted agent considers free. Node
// cannot set PR_SET_PDEATHSIG between fork and exec, so every command runs under util-linux's
// `setpriv --pdeathsig KILL -- argv...` (package util-linux, Essential in Debian): setpriv sets
// the parent death signal and execs the tool, so the pid execa holds, times out and cancels is
// the tool's own. The details that make this hold:
// - the signal fires when the *thread* that forked dies. libuv forks in the thread that calls
//   spawn, the agent's main thread, which lives as long as the process. (A worker thread must
//   not run commands: its children would die with the worker.)
// - execve of a set-uid binary clears the signal only when it changes the credentials: root
//   running a set-uid-root tool (mount, umount) keeps it.
// - setpriv does not check getppid() after its prctl: a parent that dies between fork and the
//   prctl leaves the child to init. The agent's start sweeps such children (services/agent/orphans.ts).
// - the extra exec costs about half a millisecond per command (docs/security.md), small next to a
//   spawn from Node, so every command is wrapped, short lvm and parted ones too: they also write.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The signal the kernel sends a child when its parent dies: KILL, since the tool must stop writing at once. */
export const PARENT_DEATH_SIGNAL = 'KILL';

let setprivPath: string | null | undefined;

/** Where setpriv is (PATH, then /usr/bin and /bin), or null when this system has none. Looked up once. */
export function setpriv(): string | null {
  if (setprivPath === undefined) {
    const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d.startsWith('/')), '/usr/bin', '/bin'];
    setprivPath = dirs.map((dir) => join(dir, 'setpriv')).find(isExecutable) ?? null;
  }
  return setprivPath;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The program and arguments that run `argv` so that it is killed when this process dies:
 * [setpriv, ['--pdeathsig', 'KILL', '--', ...argv]]; without setpriv, argv as it is.
 */
export function dieWithParent(argv: readonly string[]): { file: string; args: string[]; wrapped: boolean } {
  const wrapper = setpriv();
  if (!wrapper) return { file: argv[0]!, args: argv.slice(1), wrapped: false };
  return { file: wrapper, args: ['--pdeathsig', PARENT_DEATH_SIGNAL, '--', ...argv], wrapped: true };
}

/**
 * When setpriv could not exec the tool it prints `setpriv: failed to execute NAME: REASON` and
 * exits 127 (not found) or 126 (found, not executable). Returned as the message execa gave for a
 * program that could not start (`spawn NAME ENOENT`), which callers match on; otherwise undefined.
 */
export function wrapperExecFailure(argv: readonly string[], exitCode: number | undefined, stderr: string): string | undefined {
  if (exitCode !== 127 && exitCode !== 126) return undefined;
  const m = /^setpriv: failed to execute .*?: (.*)$/m.exec(stderr);
  if (!m) return undefined;
  return exitCode === 127 ? `spawn ${argv[0]} ENOENT` : `spawn ${argv[0]} failed: ${m[1]}`;
}
