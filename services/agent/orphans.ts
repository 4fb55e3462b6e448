// The programs an earlier run of this agent started and that outlived it. The kernel kills
// what the agent runs when the agent dies (setpriv --pdeathsig, libs/backends/die-with-parent.ts),
// except:
// - a child whose agent died between fork and setpriv's prctl (setpriv does not check getppid()
//   after it; the child is init's by then, and its parent death signal never fires);
// - what a tool forks itself (mount runs mount.nfs): the signal reaches direct children only;
// - every child, on a system without setpriv.
// So every command carries CISTERN_AGENT_CHILD=HOST:PID:START:SESSION in its environment
// (inherited by what it forks), naming the agent process that started it and its session, and an
// agent's start kills every tagged process of its host whose agent process is gone, before its
// journal cleanup removes what an interrupted create left: nothing may still be writing there.
// A tagged process in another session is left alone: it called setsid(), so it is a daemon a
// tool started (dmeventd forked by lvm, iscsid by iscsiadm, rpc.statd for mount.nfs), not work of
// the agent's, and killing it would break what the host runs.
import { readdirSync, readFileSync } from 'node:fs';
import { hasExited, readProcStat } from '../../libs/os/proc.js';
import type { Logger } from '../../libs/log/logger.js';

export const CHILD_TAG = 'CISTERN_AGENT_CHILD';

/** How long the start waits for a killed process to be gone (one in uninterruptible I/O ends when the I/O does). */
const EXIT_WAIT_MS = 10_000;

/** The value of CHILD_TAG for the commands of this process, the agent of `host`. */
export function childTag(host: string): string {
  const self = readProcStat(process.pid);
  return `${host}:${process.pid}:${self?.startTime ?? ''}:${self?.session ?? ''}`;
}

interface Tagged {
  pid: number;
  startTime: string;
  comm: string;
  agentPid: number;
}

/** Processes tagged as started by an agent of `host` that is no longer running, still in that agent's session. */
export function findOrphans(host: string): Tagged[] {
  const found: Tagged[] = [];
  const prefix = `${CHILD_TAG}=${host}:`;
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue; // gone, or not ours to read
    }
    const tag = environ.split('\0').find((v) => v.startsWith(prefix));
    if (!tag) continue;
    const [agentPid, agentStart, agentSession] = tag.slice(prefix.length).split(':');
    if (!agentPid || !agentStart || !agentSession || !hasExited(Number(agentPid), agentStart)) continue;
    const stat = readProcStat(pid);
    if (stat && stat.state !== 'Z' && stat.session === Number(agentSession)) found.push({ pid, startTime: stat.startTime, comm: stat.comm, agentPid: Number(agentPid) });
  }
  return found;
}

/** SIGKILLs what an earlier run of this host's agent left running and waits until it is gone. */
export async function killOrphans(host: string, log: Logger): Promise<void> {
  const orphans = findOrphans(host);
  if (orphans.length === 0) return;
  for (const o of orphans) {
    try {
      if (!hasExited(o.pid, o.startTime)) process.kill(o.pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
  const deadline = Date.now() + EXIT_WAIT_MS;
  let left = orphans;
  while ((left = left.filter((o) => !hasExited(o.pid, o.startTime))).length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const shown = orphans.map((o) => ({ pid: o.pid, command: o.comm, agentPid: o.agentPid }));
  log.warn('killed the programs an earlier run of this agent left running', { processes: shown });
  if (left.length > 0) {
    log.error('programs an earlier run of this agent left are still exiting (uninterruptible I/O?)', { pids: left.map((o) => o.pid) });
  }
}
