// Every external program runs through a CommandRunner: argument arrays, never a
// shell, a timeout, stderr kept for the error. Unit tests use a recording runner.

export interface RunOptions {
  /** Bytes or text written to the program's stdin. */
  input?: string | Buffer;
  /** Milliseconds before the program is killed (default 60 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Exit codes that are not failures (default [0]). */
  okExitCodes?: number[];
  /** Extra environment; the runner passes LC_ALL=C so output is parseable. */
  env?: Record<string, string>;
  /** Only PATH, LC_ALL=C and `env`: none of the caller's environment (tools fed untrusted input). */
  cleanEnv?: boolean;
  cwd?: string;
  /**
   * Descriptors of this process the program gets as its fd 3, 4, ... (name them `/dev/fd/3` ...):
   * a file the agent opened and checked, so that the program writes to that file and not to
   * whatever its name holds by the time the program opens it.
   */
  fds?: readonly number[];
  /** Called with the program's output as it comes (progress a tool prints); stdout is still returned whole. */
  onStdout?: (chunk: string) => void;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface CommandRunner {
  /** Runs argv[0] with argv[1..]; throws CommandFailedError on a non-ok exit. */
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
}
