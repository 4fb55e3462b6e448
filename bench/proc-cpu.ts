// CPU time of the processes a bench starts, read from /proc, and of the bench process itself
// (its gRPC clients): what a measured span cost each of them apart from waiting.
import { readFileSync } from 'node:fs';

/** CPU seconds (user + system) a process has used so far, from /proc; NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return Number.NaN;
  }
}

export interface CpuMark {
  procs: Record<string, number>;
  self: NodeJS.CpuUsage;
}

/** Where each process (by name) and this one stand now. */
export function cpuMark(pids: Record<string, number>): CpuMark {
  return { procs: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)])), self: process.cpuUsage() };
}

/**
 * CPU milliseconds each process used since `mark`, divided by `per` (repetitions) and rounded
 * to `digits`; this process is `benchClient`.
 */
export function cpuMsSince(mark: CpuMark, pids: Record<string, number>, per = 1, digits = 1): Record<string, number> {
  const self = process.cpuUsage(mark.self);
  const ms: Record<string, number> = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, (cpuSeconds(pid) - mark.procs[k]!) * 1000]));
  ms.benchClient = (self.user + self.system) / 1000;
  return Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, +(v / per).toFixed(digits)]));
}
