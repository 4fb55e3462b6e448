// The real CommandRunner: execa with an argument array (never a shell), LC_ALL=C so
// output is parseable, a timeout, cancellation by AbortSignal, stderr kept for the error.
// Every command dies with this process (die-with-parent.ts); argv in errors is the tool's own.
import { readlinkSync } from 'node:fs';
import { execa, type Options as ExecaOptions } from 'execa';
import { dieWithParent, wrapperExecFailure } from './die-with-parent.js';
import { CancelledError, CommandFailedError, DeadlineExceededError } from '../errors/errors.js';
import type { CommandRunner, RunOptions, RunResult } from './runner.js';

export const DEFAULT_TIMEOUT_MS = 60_000;

export interface ExecRunnerOptions {
  /** Default timeout for every command (ms); RunOptions.timeoutMs overrides it. */
  timeoutMs?: number;
  /** Environment added to every command (after LC_ALL=C, before RunOptions.env). */
  env?: Record<string, string>;
  /**
   * Environment set on every command, cleanEnv ones included, over everything else: the agent
   * names itself here so that its next start finds what it left running (services/agent/orphans.ts).
   */
  tagEnv?: Record<string, string>;
}

export class ExecRunner implements CommandRunner {
  private readonly timeoutMs: number;
  private readonly env: Record<string, string>;
  private readonly tagEnv: Record<string, string>;

  constructor(options: ExecRunnerOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.env = options.env ?? {};
    this.tagEnv = options.tagEnv ?? {};
  }

  async run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    if (argv.length === 0 || !argv[0]) throw new CommandFailedError(argv, undefined, 'empty command line');
    if (options.signal?.aborted) throw new CancelledError(`cancelled before start: ${argv.join(' ')}`);
    const env = options.cleanEnv
      ? { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...options.env, LC_ALL: 'C', ...this.tagEnv }
      : { ...this.env, ...options.env, LC_ALL: 'C', ...this.tagEnv };
    // Node refuses a NUL in an argument or a variable with a message that quotes the value, a
    // secret's (a CHAP password) included: refused here, naming only where it is
    const nulVar = Object.keys(env).find((k) => k.includes('\0') || String(env[k as keyof typeof env] ?? '').includes('\0'));
    if (nulVar !== undefined) throw new CommandFailedError(argv, undefined, `the environment variable ${nulVar.replace(/\0/g, '\\0')} holds a NUL byte, which a program's environment cannot`);
    const nulArg = argv.findIndex((a) => a.includes('\0'));
    if (nulArg >= 0) throw new CommandFailedError(argv.map((a) => a.replace(/\0/g, '\\0')), undefined, `argument ${nulArg} holds a NUL byte, which a program's arguments cannot`);
    const timeout = options.timeoutMs ?? this.timeoutMs;
    const command = dieWithParent(argv);
    const result = await execa(command.file, command.args, {
      shell: false,
      reject: false,
      extendEnv: !options.cleanEnv,
      env,
      timeout: timeout > 0 ? timeout : undefined,
      cancelSignal: options.signal,
      forceKillAfterDelay: 2_000,
      ...stdio(options),
      cwd: options.cwd,
      stripFinalNewline: false,
      encoding: 'utf8',
      windowsHide: true,
    });
    const stdout = typeof result.stdout === 'string' ? result.stdout : '';
    const stderr = typeof result.stderr === 'string' ? result.stderr : '';
    if (result.timedOut) {
      throw new DeadlineExceededError(`command timed out after ${timeout} ms: ${argv.join(' ')}${stderr ? `: ${stderr.trim()}` : ''}`, {
        command: argv.join(' '),
        stderr: stderr.trim(),
      });
    }
    if (result.isCanceled) {
      throw new CancelledError(`command cancelled: ${argv.join(' ')}`, { command: argv.join(' ') });
    }
    const exitCode = result.exitCode;
    if (exitCode === undefined) {
      // Could not start (ENOENT, EACCES) or killed by a signal.
      const why = result.signal ? `killed by ${result.signal}` : (result.originalMessage ?? result.shortMessage ?? 'could not start');
      throw new CommandFailedError(argv, undefined, stderr || why, passedFiles(options));
    }
    const notStarted = command.wrapped ? wrapperExecFailure(argv, exitCode, stderr) : undefined;
    if (notStarted) throw new CommandFailedError(argv, undefined, notStarted, passedFiles(options));
    const ok = options.okExitCodes ?? [0];
    if (!ok.includes(exitCode)) throw new CommandFailedError(argv, exitCode, stderr || stdout, passedFiles(options));
    return { stdout, stderr, exitCode };
  }
}

/** What each descriptor handed to the program is, by this process's view of it (for errors). */
function passedFiles(options: RunOptions): string[] {
  return (options.fds ?? []).map((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return `descriptor ${fd}`;
    }
  });
}

/**
 * stdin (the input, or nothing), stdout (passed through onStdout when given), stderr, and the
 * caller's descriptors as fd 3, 4, ...: setpriv execs the tool with them still open (exec keeps
 * a descriptor without close-on-exec, which the child's copies at 3 and up are).
 */
function stdio(options: RunOptions) {
  if (!options.fds?.length) {
    return {
      ...(options.input !== undefined ? { input: options.input } : { stdin: 'ignore' as const }),
      ...(options.onStdout ? { stdout: [streamTo(options.onStdout)] } : {}),
    };
  }
  const stdout = options.onStdout ? [streamTo(options.onStdout)] : ('pipe' as const);
  const input = options.input !== undefined ? { input: options.input } : {};
  const first = options.input !== undefined ? ('pipe' as const) : ('ignore' as const);
  // execa hands a plain number at index 3+ to child_process.spawn, which dup2()s it into the
  // child; its types only name 3..9 (the child's own numbers), hence the cast
  const fds = options.fds as unknown as Array<3>;
  return { ...input, stdio: [first, stdout, 'pipe', ...fds] as ExecaOptions['stdio'] };
}

/** An execa transform that hands each chunk of output to `onChunk` as it arrives and passes it on unchanged. */
function streamTo(onChunk: (chunk: string) => void) {
  const decoder = new TextDecoder();
  return {
    *transform(chunk: unknown) {
      onChunk(decoder.decode(chunk as Uint8Array, { stream: true }));
      yield chunk;
    },
    binary: true as const,
  };
}

/** One shared runner with the default timeout. */
export const execRunner: CommandRunner = new ExecRunner();
