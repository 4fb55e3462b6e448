// What /proc says about a process: enough to tell one process from a later one with the same
// pid (its start time), whether it has exited (gone, or a zombie nobody reaped yet), and its
// children. Linux only; every reader answers undefined or [] for a process that is gone.
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcStat {
  pid: number;
  /** The executable's name as the kernel keeps it (at most 15 bytes). */
  comm: string;
  /** R, S, D, Z (zombie: exited, not reaped), T ... */
  state: string;
  ppid: number;
  /** Its session id: a daemon has called setsid(), a program run for someone has not. */
  session: number;
  /** Clock ticks after boot at which the process started: with the pid, names it uniquely. */
  startTime: string;
}

/** /proc/PID/stat, parsed; undefined when there is no such process. */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state), then ppid, pgrp, session; starttime is field 22
  return { pid, comm: text.slice(open + 1, close), state: rest[0] ?? '', ppid: Number(rest[1]), session: Number(rest[3]), startTime: rest[19] ?? '' };
}

/** True when the process started at `startTime` no longer runs (gone, a zombie, or its pid reused). */
export function hasExited(pid: number, startTime: string): boolean {
  const stat = readProcStat(pid);
  return stat === undefined || stat.state === 'Z' || stat.startTime !== startTime;
}

/** The pids of the children of every thread of `pid` (/proc/PID/task/TID/children). */
export function childPids(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const tid of tasks) {
    try {
      for (const word of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (word) pids.push(Number(word));
    } catch {
      /* the thread ended meanwhile */
    }
  }
  return pids;
}
