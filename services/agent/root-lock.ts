// One agent per --root. What the root holds is one agent's alone: the journal of its creates
// and builds in flight (a start removes what the entries name, as left by a run that died),
// the pools it runs (restored at its next start, as its own host's), its revision floor. A
// second agent on the same root, say a second host id on one machine with both on the
// default root, would remove the first one's volumes being created and take its running pools
// for its own host's.
//
// The lock is an flock(2) lock on <root>/agent.lock (libs/os/flock.ts), held by a descriptor of
// the agent's process: the kernel holds it exactly as long as the agent lives and drops it when
// the agent dies however it dies (kill -9, the OOM killer), so a dead agent's root is free at
// once and a live one's is refused wherever the newcomer runs: another pid namespace (a second
// container over the same bind-mounted root), where a pid written down would name nothing or
// another process, and another machine on a filesystem whose locks the machines share (NFS).
// A stopped agent (SIGSTOP) keeps it, as it should: it may go on. The file's content only names
// the holder for the refusal (pid as the holder sees it, machine, host id).
//
// Not a listening Unix socket under the root (connect refused only when its holder is gone): on
// NFS another machine's connect reaches nothing and would take the root over, bind needs a
// writable root with a free inode, sun_path caps the root's path near 100 bytes, and a stale
// socket must be unlinked before a bind, which two starting agents race on. The flock costs one
// run of flock(1) at start (about 2 ms).
//
// A stop removes the file, still locked, then closes it. A newcomer that opened the file just
// before may then lock a file no longer there while a third one makes and locks a new one: so a
// lock taken counts only while <root>/agent.lock is still the file locked, else it is taken
// again. A kill -9 leaves the file, unlocked: the next agent takes it as it is.
//
// - A full filesystem: with no inode left agent.lock cannot be made; the agent starts anyway
//   (its operator must be able to free space), unlocked, and says so. With an inode but no free
//   block it is locked as usual; only its holder's name cannot be written.
// - No flock(1) (util-linux; Essential in Debian, in the image): the agent starts unlocked and says so.
// - A read-only root: the open fails and the agent does not start, as its journal could not be written either.
// - The symbolic link `<pid>:<start time>:<host id>` an earlier version made is judged as that
//   version did (refused while that process lives in this pid namespace) and replaced when dead.
import { closeSync, constants, fstatSync, ftruncateSync, lstatSync, openSync, readFileSync, readlinkSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { FailedPreconditionError } from '../../libs/errors/errors.js';
import { tryLockExclusive, type FlockResult } from '../../libs/os/flock.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { CommandRunner } from '../../libs/backends/runner.js';
import { hasExited } from '../../libs/os/proc.js';
import type { Logger } from '../../libs/log/logger.js';

export const ROOT_LOCK = 'agent.lock';

/** Another live agent holds the root: this one does not start (cistern-agent exits 2). */
export class RootTakenError extends FailedPreconditionError {}

/** Who holds the lock, as it wrote itself down. */
interface Holder {
  pid: number;
  host: string;
  /** os.hostname() of the holder: named when it is not this machine's (its pid means nothing here). */
  machine?: string;
}

function parseHolder(text: string): Holder | undefined {
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    if (Number.isSafeInteger(h.pid) && typeof h.host === 'string') {
      return { pid: h.pid!, host: h.host, ...(typeof h.machine === 'string' ? { machine: h.machine } : {}) };
    }
  } catch {
    // written by hand, or the holder has not written its name yet
  }
  return undefined;
}

function taken(root: string, holder: Holder | undefined): RootTakenError {
  if (!holder) {
    return new RootTakenError(`--root '${root}' is in use by another agent (${join(root, ROOT_LOCK)} does not name it): give each agent a --root of its own`, { root });
  }
  const where = holder.machine !== undefined && holder.machine !== hostname() ? ` on '${holder.machine}'` : '';
  return new RootTakenError(`--root '${root}' is in use by the agent of host '${holder.host}' (pid ${holder.pid}${where}): give each agent a --root of its own`, {
    root,
    host: holder.host,
    pid: String(holder.pid),
    ...(holder.machine !== undefined ? { machine: holder.machine } : {}),
  });
}

/** The earlier version's lock, a link `<pid>:<start time>:<host id>`: refused while its process lives, removed when not. */
function replaceLegacyLink(root: string, path: string, log: Logger): void {
  let target: string;
  try {
    target = readlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const m = /^([0-9]+):([0-9]+):(.*)$/.exec(target);
  if (m && !hasExited(Number(m[1]), m[2]!)) throw taken(root, { pid: Number(m[1]), host: m[3]! });
  // only the link seen: another agent may have replaced it meanwhile, and its file must stay
  if (!lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() || readlinkSync(path) !== target) return;
  unlinkSync(path);
  if (m) log.info('took over --root from an agent that is gone', { root, pid: Number(m[1]), host: m[3] });
}

/** Opens (making it) the lock file, never through a link; undefined when the filesystem has no room for it. */
function openLockFile(root: string, path: string, log: Logger): number | undefined {
  for (let attempt = 0; ; attempt++) {
    try {
      return openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP' && attempt < 3) {
        replaceLegacyLink(root, path, log);
        continue;
      }
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        // no inode left: the agent must still start, to let its operator free space
        log.warn('could not lock --root (its filesystem is full): nothing keeps a second agent off it', { root, error: err });
        return undefined;
      }
      throw err;
    }
  }
}

/** Whether `path` is still the file open as `fd` (not removed by a stop, nor made anew since). */
function isStill(path: string, fd: number): boolean {
  const now = lstatSync(path, { throwIfNoEntry: false });
  const open = fstatSync(fd);
  return now !== undefined && now.dev === open.dev && now.ino === open.ino;
}

export class RootLock {
  private constructor(
    private readonly path: string,
    private fd: number | undefined,
  ) {}

  /** Takes `root` for the agent of `host` in this process, or throws RootTakenError naming the agent that holds it. */
  static async take(root: string, host: string, log: Logger, runner: CommandRunner = new ExecRunner()): Promise<RootLock> {
    const path = join(root, ROOT_LOCK);
    for (let attempt = 0; attempt < 3; attempt++) {
      const fd = openLockFile(root, path, log);
      if (fd === undefined) return new RootLock(path, undefined);
      let result: FlockResult | 'gone';
      try {
        result = await tryLockExclusive(runner, fd);
        // held by an agent that is removing it at its stop: look again at what is there now
        if (result === 'held' && !isStill(path, fd)) result = 'gone';
        else if (result === 'held') throw taken(root, parseHolder(readFileSync(fd, 'utf8')));
      } catch (err) {
        closeSync(fd);
        throw err;
      }
      if (result === 'unavailable') {
        closeSync(fd);
        log.warn('could not lock --root: no flock program (util-linux) on this system; nothing keeps a second agent off it', { root });
        return new RootLock(path, undefined);
      }
      if (result === 'locked' && isStill(path, fd)) return RootLock.named(path, fd, host, root, log);
      closeSync(fd); // removed by the stop of the agent that held it: lock the file there now
    }
    throw new RootTakenError(`--root '${root}' could not be locked: other agents are taking it at the same time; give each agent a --root of its own`, { root });
  }

  private static named(path: string, fd: number, host: string, root: string, log: Logger): RootLock {
    const name = `${JSON.stringify({ pid: process.pid, machine: hostname(), host })}\n`;
    try {
      // over a killed holder's name, then cut to length; a refused agent that reads it meanwhile
      // finds a name, or nothing in a file just made, and says it cannot name the holder
      const written = writeSync(fd, name, 0, 'utf8');
      ftruncateSync(fd, written);
    } catch (err) {
      log.warn('locked --root but could not write down which agent holds it: a refused agent will not name this one', { root, error: err });
    }
    return new RootLock(path, fd);
  }

  /** Gives the root back (at stop): removes the file while still holding it, then the kernel drops the lock with the descriptor. */
  release(): void {
    if (this.fd === undefined) return;
    try {
      if (isStill(this.path, this.fd)) unlinkSync(this.path);
    } catch {
      // gone already: a next agent makes it anew
    } finally {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }
}
