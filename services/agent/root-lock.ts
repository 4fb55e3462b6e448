// One agent per --root. What the root holds is one agent's alone: the journal of its creates
// and builds in flight (a start removes what the entries name, as left by a run that died),
// the pools it runs (restored at its next start, as its own host's), its revision floor. A
// second agent on the same root, say a second host id on one machine with both on the
// default root, would remove the first one's volumes being created and take its running pools
// for its own host's.
//
// The lock is a symbolic link, <root>/agent.lock, whose target names the holder:
// `<pid>:<start time>:<host id>`. Made by one symlink() (atomic: it fails when the link
// exists) and read by one readlink(); a target this short lives in the inode, so a root whose
// filesystem has no free block can still be locked. A link whose process has exited (killed
// outright, nothing released) is taken over. Two agents that find the same dead holder at the
// same moment could both remove it; each reads back its own link once made, which leaves only
// the removal of a link made a moment ago by the other between its creation and its read-back.
import { readlinkSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FailedPreconditionError } from '../../libs/errors/errors.js';
import { hasExited, readProcStat } from '../../libs/os/proc.js';
import type { Logger } from '../../libs/log/logger.js';

export const ROOT_LOCK = 'agent.lock';

/** Another live agent holds the root: this one does not start (cistern-agent exits 2). */
export class RootTakenError extends FailedPreconditionError {}

interface Holder {
  pid: number;
  startTime: string;
  host: string;
}

function parseHolder(target: string): Holder | undefined {
  const m = /^([0-9]+):([0-9]+):(.*)$/.exec(target);
  return m ? { pid: Number(m[1]), startTime: m[2]!, host: m[3]! } : undefined;
}

/** The link's target, or undefined when there is none; `''` for a file there that is no link. */
function readHolder(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EINVAL') return ''; // not a link: no agent made it
    throw err;
  }
}

function removeStale(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export class RootLock {
  private constructor(
    private readonly path: string,
    private readonly owner: string | undefined,
  ) {}

  /** Takes `root` for the agent of `host` in this process, or throws RootTakenError naming the agent that holds it. */
  static take(root: string, host: string, log: Logger): RootLock {
    const path = join(root, ROOT_LOCK);
    const owner = `${process.pid}:${readProcStat(process.pid)?.startTime ?? '0'}:${host}`;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        symlinkSync(owner, path);
        if (readHolder(path) === owner) return new RootLock(path, owner);
        continue; // removed by an agent that found the dead holder too: try again
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOSPC' || code === 'EDQUOT') {
          // no inode left: the agent must still start, to let its operator free space
          log.warn('could not lock --root (its filesystem is full): nothing keeps a second agent off it', { root, error: err });
          return new RootLock(path, undefined);
        }
        if (code !== 'EEXIST') throw err;
      }
      const target = readHolder(path);
      if (target === undefined) continue;
      const holder = parseHolder(target);
      if (holder && target !== owner && !hasExited(holder.pid, holder.startTime)) {
        throw new RootTakenError(`--root '${root}' is in use by the agent of host '${holder.host}' (pid ${holder.pid}): give each agent a --root of its own`, {
          root,
          host: holder.host,
          pid: String(holder.pid),
        });
      }
      if (holder) log.info('took over --root from an agent that is gone', { root, pid: holder.pid, host: holder.host });
      removeStale(path);
    }
    throw new RootTakenError(`--root '${root}' could not be locked: other agents are taking it at the same time; give each agent a --root of its own`, { root });
  }

  /** Gives the root back (at stop); only a lock this agent holds is removed. */
  release(): void {
    if (this.owner === undefined) return;
    try {
      if (readHolder(this.path) === this.owner) unlinkSync(this.path);
    } catch {
      // gone already: the next agent takes it as a dead one's anyway
    }
  }
}
