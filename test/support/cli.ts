// Runs cisternctl (dist/cli/main.js) the way a user would, and returns what it printed.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { entryPoints } from './paths.js';
import { trackPid, untrackPid } from './cleanup.js';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** HOST:PORT of the coordinator, passed as CISTERN_SERVER. */
  server: string;
  /** Written to standard input, then closed. */
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the CLI after this long (default 60 s); the result then has signal SIGKILL. */
  timeoutMs?: number;
}

export function runCli(args: string[], opts: CliOptions): Promise<CliResult> {
  if (!existsSync(entryPoints.cli)) {
    return Promise.reject(new Error(`cisternctl entry point ${entryPoints.cli} does not exist: run \`npm run build\``));
  }
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [entryPoints.cli, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, CISTERN_SERVER: opts.server, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const pid = child.pid;
    if (pid !== undefined) trackPid(pid);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      if (pid !== undefined) untrackPid(pid);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (pid !== undefined) untrackPid(pid);
      resolveRun({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.on('error', () => {
      /* the CLI may exit before reading its input */
    });
    child.stdin.end(opts.input ?? '');
  });
}
