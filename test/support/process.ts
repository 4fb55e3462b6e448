// A child process of the harness: its own process group (so signals reach what it spawns),
// output in a log file, stopped by its exact pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, registerCleanup, trackPid, untrackPid } from './cleanup.js';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** Shown in errors and log dumps, e.g. `coordinator` or `agent a`. */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const running = new Set<ServiceProcess>();

/** Processes started by the harness that have not been stopped yet. */
export function runningProcesses(): ServiceProcess[] {
  return [...running];
}

export class ServiceProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly command: string[];
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitStatus>;
  private status: ExitStatus | undefined;
  private readonly child: ChildProcess;
  private readonly unregister: () => Promise<void>;

  private constructor(opts: SpawnOptions, logFile: string, removeLogDir: () => Promise<void>) {
    this.name = opts.name;
    this.logFile = logFile;
    this.command = [opts.command, ...opts.args];
    const fd = openSync(logFile, 'a');
    try {
      this.child = spawn(opts.command, opts.args, {
        cwd: opts.cwd,
        env: { ...process.env, ...opts.env },
        stdio: ['ignore', fd, fd],
        detached: true, // own process group: stop() reaches its children too
      });
    } finally {
      closeSync(fd);
    }
    if (this.child.pid === undefined) {
      // spawn failed synchronously (ENOENT is reported through 'error').
      this.pid = -1;
    } else {
      this.pid = this.child.pid;
      trackPid(this.pid);
    }
    this.exited = new Promise<ExitStatus>((resolveExit) => {
      this.child.once('error', (err) => {
        this.status ??= { code: -1, signal: null };
        try {
          appendFileSync(logFile, `spawn failed: ${err.message}\n`);
        } catch {
          /* best effort */
        }
        resolveExit(this.status);
      });
      this.child.once('exit', (code, signal) => {
        this.status = { code, signal };
        resolveExit(this.status);
      });
    }).then((st) => {
      if (this.pid > 0) untrackPid(this.pid);
      running.delete(this);
      return st;
    });
    running.add(this);
    this.unregister = registerCleanup(`${this.name} (pid ${this.pid})`, async () => {
      await this.stop();
      await removeLogDir();
    });
  }

  static spawn(opts: SpawnOptions): ServiceProcess {
    const dir = makeTempDir(`cistern-log-${opts.name.replace(/[^A-Za-z0-9_.-]+/g, '-')}-`);
    const logFile = join(dir.path, 'output.log');
    return new ServiceProcess(opts, logFile, dir.remove);
  }

  /** True until the process has exited. */
  get alive(): boolean {
    return this.status === undefined;
  }

  get exitStatus(): ExitStatus | undefined {
    return this.status;
  }

  /** Everything the process wrote to stdout and stderr so far. */
  logs(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** The last `lines` lines of output, framed for an error message. */
  logTail(lines = 60): string {
    const all = this.logs().trimEnd().split('\n');
    const tail = all.slice(-lines).join('\n');
    return `----- ${this.name} (pid ${this.pid}) ${this.logFile} -----\n${tail}\n----- end ${this.name} -----`;
  }

  /** Sends a signal to the process group (pgid = our exact pid). */
  signal(sig: NodeJS.Signals): void {
    if (!this.alive || this.pid <= 0) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      try {
        process.kill(this.pid, sig);
      } catch {
        /* gone */
      }
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves with the exit status. */
  async stop(graceMs = 10_000): Promise<ExitStatus> {
    if (!this.alive) return this.status!;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL right away, as a crash would (fault tests). */
  async kill(): Promise<ExitStatus> {
    if (!this.alive) return this.status!;
    this.signal('SIGKILL');
    return this.exited;
  }

  /** Stops the process and removes its log directory (the same as the registered cleanup). */
  dispose(): Promise<void> {
    return this.unregister();
  }
}


/**
 * Polls `check` every `intervalMs` until it returns a value other than undefined/false.
 * `describe` says what is awaited; `onTimeout` adds context (logs) to the error.
 */
export async function waitFor<T>(
  describe: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 30_000, intervalMs = 50, context }: { timeoutMs?: number; intervalMs?: number; context?: () => string } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as T;
    } catch (err) {
      if (err instanceof AbortWait) throw err.cause;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError ? ` (last error: ${(lastError as Error)?.message ?? lastError})` : '';
      const extra = context ? `\n${context()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe}${why}${extra}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Thrown from a waitFor check to stop waiting at once with `cause`. */
export class AbortWait extends Error {
  constructor(override readonly cause: Error) {
    super(cause.message);
  }
}
