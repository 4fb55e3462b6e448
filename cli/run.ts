// runCli(argv, io): the whole of cisternctl as a function, so tests can run it
// in-process with their own stdout/stderr (and, for unit tests, a fake API).
import { CisternError } from '../libs/errors/errors.js';
import type { StorageApi } from './api.js';
import { mergeOptions, parseCommandArgs, splitGlobal, type ParsedOptions } from './args.js';
import { connect, connectionOptions } from './client.js';
import type { CliIo, Command, CommandContext } from './command.js';
import { COMMANDS, findCommand } from './commands/index.js';
import { commandHelp, findGroup, generalHelp, groupHelp } from './commands/help.js';
import { CommandError, UsageError } from './errors.js';
import { isCommandLine, splitCommandLine } from './command-line.js';

export const VERSION = '0.1.0';

export type { CliIo } from './command.js';

/** `cisternctl -v` and `-V`, shaped as virsh's `-v` (`9.0.0`) and `-V`. */
export function versionText(form: 'short' | 'long'): string {
  if (form === 'short') return `${VERSION}\n`;
  return `Cisternctl command line tool of Cistern ${VERSION}\n` +
    'See docs/cli.md, or cisternctl help\n\n' +
    'Storage pool types: dir fs netfs logical disk iscsi iscsi-direct scsi mpath\n';
}

/** Runs one cisternctl command line; resolves to the exit code (0 ok, 1 error). */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const env = io.env ?? process.env;
  let api: StorageApi | undefined = io.api;
  let ownsApi = false;
  let server = '';
  let trailer = true;
  // virsh prints its blank line after a command that ran, failed or not; a command line it
  // could not parse (unknown command or option, missing or extra data) runs nothing: no blank line
  let ran = false;
  let quiet = false;
  try {
    const split = splitGlobal(argv);
    if (split.version) {
      // virsh -v prints the version alone, no blank line after it; -V a few lines about the tool
      trailer = false;
      io.stdout.write(versionText(split.version));
      return 0;
    }
    // virsh: one argument is a whole command line ('cmd1 a; cmd2 b'); no command at all, with
    // stdin not a terminal, means commands on stdin
    if (split.command !== undefined && split.rest.length === 0 && isCommandLine(split.command)) {
      trailer = false; // each command prints its own
      return await runCommandLines(argv.slice(0, -1), split.command, io);
    }
    if (!split.command && !split.help && !split.version && io.readStdin) {
      trailer = false;
      return await runCommandLines(argv, await io.readStdin(), io);
    }
    if (!split.command || split.command === 'help' || split.help) {
      ran = true;
      const topic = split.command === 'help' ? split.rest[0] : split.command;
      if (!topic) {
        io.stdout.write(generalHelp(COMMANDS));
        return 0;
      }
      // virsh's cmdHelp: a command, else a group by name or keyword ('help pool')
      const cmd = findCommand(topic);
      const group = cmd ? undefined : findGroup(COMMANDS, topic);
      if (!cmd && !group) throw new UsageError(`command or command group '${topic}' doesn't exist`);
      io.stdout.write(cmd ? commandHelp(cmd) : groupHelp(group!));
      return 0;
    }
    const command = findCommand(split.command);
    if (!command) throw new UsageError(`unknown command: '${split.command}'`);
    if (split.rest.includes('--help')) {
      io.stdout.write(commandHelp(command));
      return 0;
    }
    const own = parseCommandArgs(command.name, command.options, split.rest);
    const opts: ParsedOptions = mergeOptions(split.globals, own);
    quiet = opts.bools.has('quiet');
    const conn = connectionOptions(opts.strings, env);
    server = conn.server;
    const signal = io.signal ?? new AbortController().signal;
    const ctx: CommandContext = {
      name: command.name,
      opts,
      quiet,
      api: () => {
        if (!api) {
          api = connect(conn);
          ownsApi = true;
        }
        return api;
      },
      print: (t) => void io.stdout.write(t),
      printExtra: (t) => {
        if (!quiet) io.stdout.write(t);
      },
      stderr: io.stderr,
      stdoutIsTTY: !!io.stdout.isTTY,
      signal,
      setMachineOutput: () => {
        trailer = false;
      },
    };
    ran = true;
    await runCommand(command, ctx);
    return 0;
  } catch (err) {
    // virsh connects before it runs a command: when it cannot, nothing is printed on stdout either
    if (!ran || isConnectFailure(err instanceof CommandError ? err.cause : err)) trailer = false;
    io.stderr.write(errorText(err, server));
    return 1;
  } finally {
    if (trailer && !quiet) io.stdout.write('\n');
    if (ownsApi) api?.close();
  }
}

/**
 * Runs each command of `text` in turn with the global options `globals`, as virsh runs a
 * command line: an error is reported and the next command still runs; 'quit' or 'exit' stop;
 * the exit code is the last command's.
 */
async function runCommandLines(globals: string[], text: string, io: CliIo): Promise<number> {
  let code = 0;
  for (const words of splitCommandLine(text)) {
    if (words[0] === 'quit' || words[0] === 'exit') break;
    code = await runCli([...globals, ...words], { ...io, readStdin: undefined });
  }
  return code;
}

async function runCommand(command: Command, ctx: CommandContext): Promise<void> {
  await command.run(ctx);
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

function isConnectFailure(err: unknown): boolean {
  return err instanceof CisternError && err.code === 'UNAVAILABLE' &&
    /No connection established|ECONNREFUSED|failed to connect|Name resolution failed|DNS resolution failed/i.test(err.message);
}

/** virsh prints every error line as "error: ..." on stderr. */
export function errorText(err: unknown, server = ''): string {
  if (err instanceof CommandError) {
    if (isConnectFailure(err.cause)) return errorText(err.cause, server);
    return `error: ${err.context}\nerror: ${messageOf(err.cause)}\n`;
  }
  if (err instanceof UsageError) return err.messages.map((m) => `error: ${m}\n`).join('');
  if (isConnectFailure(err)) {
    const m = /connect (E[A-Z]+) (\S+?)\.?(\s|$)/.exec(messageOf(err));
    const cause = m ? `connect ${m[1]} ${m[2]}` : messageOf(err).replace(/\s*Resolution note:\s*$/, '');
    return `error: failed to connect to the coordinator at ${server}\nerror: ${cause}\n`;
  }
  return `error: ${messageOf(err)}\n`;
}
