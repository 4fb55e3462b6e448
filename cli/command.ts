// What a command is, and what it gets to run with.
import type { OptionSpec, ParsedOptions } from './args.js';
import type { StorageApi } from './api.js';

export interface OutputStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** Everything runCli touches outside itself, injectable for tests. */
export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  env?: Record<string, string | undefined>;
  /** Use this API instead of connecting to a server (tests). */
  api?: StorageApi;
  /** Aborting it interrupts long commands (pool-event, transfers): Ctrl-C. */
  signal?: AbortSignal;
  /**
   * Where commands come from when none is given on the command line: stdin, a line at a time,
   * as virsh reads its interactive shell. Opened only then.
   */
  openInput?: () => CommandInput;
  /** The user's terminal, when stdin is one (pool-edit's editor and its question). */
  terminal?: Terminal;
  /** What -t reads, in milliseconds (tests give a clock of their own; default performance.now). */
  clock?: () => number;
}

/** What a command needs of the terminal to run an editor on it and ask the user something. */
export interface Terminal {
  /** Runs `fn` (a child process that reads the terminal: an editor) with cisternctl's own reading of stdin paused. */
  lend<T>(fn: () => Promise<T>): Promise<T>;
  /** Shows `question` on stdout and reads one line; undefined at end of input, or when `signal` aborts (Ctrl-C). */
  ask(question: string, signal?: AbortSignal): Promise<string | undefined>;
  /** As `ask`, but what is typed is not shown (a password: virGetPassword); a new line follows it. */
  askHidden(question: string, signal?: AbortSignal): Promise<string | undefined>;
}

/** The lines of an interactive session, and what the session needs of the terminal. */
export interface CommandInput {
  /** Each line as it arrives; ends at end of input. */
  lines: AsyncIterable<string>;
  /** A terminal: greet, and show `text` before each line. Absent for a pipe or a file. */
  prompt?: (text: string) => void;
  /** The signal of the command about to run (Ctrl-C then interrupts it, not the session). */
  commandStarts?: () => AbortSignal;
  /** The command ended: a Ctrl-C now ends the session. */
  commandEnds?: () => void;
  /** Stops reading (quit): releases stdin so the process can end. */
  close(): void;
}

export interface CommandContext {
  readonly name: string;
  readonly opts: ParsedOptions;
  readonly quiet: boolean;
  /** Connects on first use. */
  api(): StorageApi;
  /** Plain output (virsh vshPrint). */
  print(text: string): void;
  /** Informational output, suppressed by -q (virsh vshPrintExtra). */
  printExtra(text: string): void;
  /** Progress and warnings on stderr. */
  stderr: OutputStream;
  stdoutIsTTY: boolean;
  signal: AbortSignal;
  /** Commands come from an interactive session (virsh's imode: `cd` only works there). */
  interactive: boolean;
  /** Machine output: no trailing blank line after the command. */
  setMachineOutput(): void;
  /** cisternctl's environment ($VISUAL, $EDITOR, $TMPDIR for pool-edit). */
  env: Record<string, string | undefined>;
  /** The user's terminal: absent when stdin is not one (virsh then asks nothing). */
  terminal?: Terminal;
}

export interface Command {
  name: string;
  help: string;
  /** Extra description lines for `help COMMAND`. */
  description?: string;
  options: OptionSpec[];
  run(ctx: CommandContext): Promise<void>;
}

/** The `--json` option every listing takes. */
export const JSON_OPTION: OptionSpec = { name: 'json', type: 'bool', help: 'print JSON instead of a table' };
