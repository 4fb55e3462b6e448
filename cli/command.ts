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
  /** Commands to run when none is given on the command line and stdin is not a terminal (as virsh reads them). */
  readStdin?: () => Promise<string>;
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
  /** Machine output: no trailing blank line after the command. */
  setMachineOutput(): void;
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
