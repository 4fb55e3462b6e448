// runCli(argv, io): the whole of cisternctl as a function, so tests can run it
// in-process with their own stdout/stderr (and, for unit tests, a fake API).
import { CisternError } from '../libs/errors/errors.js';
import { visibleText } from '../libs/errors/visible.js';
import type { StorageApi } from './api.js';
import { mergeOptions, parseCommandArgs, splitGlobal, type ParsedOptions } from './args.js';
import { connect, connectionOptions, type ConnectionOptions } from './client.js';
import type { CliIo, Command, CommandContext, CommandInput } from './command.js';
import { Diagnostics } from './diagnostics.js';
import { DEBUG, ERROR, INFO } from './global-values.js';
import { COMMANDS, findCommand } from './commands/index.js';
import { commandHelp, findGroup, generalHelp, groupHelp } from './commands/help.js';
import { CommandError, ReportedError, UsageError } from './errors.js';
import { isCommandLine, splitCommandLine } from './command-line.js';
import { shownCommandLine } from './shown-command-line.js';
import { readOnlyApi } from './read-only.js';

export const VERSION = '0.1.0';

export type { CliIo } from './command.js';

/** `cisternctl -v` and `-V`, shaped as virsh's `-v` (`9.0.0`) and `-V`. */
export function versionText(form: 'short' | 'long'): string {
  if (form === 'short') return `${VERSION}\n`;
  return `Cisternctl command line tool of Cistern ${VERSION}\n` +
    'See docs/cli.md, or cisternctl help\n\n' +
    'Storage pool types: dir fs netfs logical disk iscsi iscsi-direct scsi mpath\n';
}

/**
 * A command parsed and its options checked, nothing run yet: virsh parses a whole command line
 * ('cmd1 a; cmd2 b') before it runs any of it, and runs none of it when a part does not parse.
 */
type Parsed =
  | { kind: 'help'; topic: string | undefined; opts: ParsedOptions }
  | { kind: 'quit' }
  | { kind: 'command'; command: Command; opts: ParsedOptions; conn: ConnectionOptions };

/** CliIo with -d and -l (cli/diagnostics.ts): its stderr logs the error lines. */
type RunIo = CliIo & { diagnostics: Diagnostics };

/** Runs one cisternctl command line; resolves to the exit code (0 ok, 1 error). */
export async function runCli(argv: string[], cliIo: CliIo): Promise<number> {
  const env = cliIo.env ?? process.env;
  let io: RunIo | undefined;
  try {
    const split = splitGlobal(argv);
    const level = split.globals.strings.get('debug');
    const diagnostics = Diagnostics.open(cliIo.stderr, level !== undefined ? Number(level) : ERROR, split.globals.strings.get('log'));
    io = { ...cliIo, stderr: diagnostics.stderr, diagnostics };
    for (const warning of split.warnings) io.stderr.write(`error: ${warning}\n`);
    if (split.version) {
      // virsh -v prints the version alone, no blank line after it; -V a few lines about the tool
      io.stdout.write(versionText(split.version));
      return 0;
    }
    // virsh refuses an empty command line (vshCommandStringParse) with exit status 1 and no
    // word: `cisternctl "$CMD"` with CMD empty is not a session that would run stdin's lines
    if (split.command === '' && split.rest.length === 0) return 1;
    // virsh: one argument is a whole command line ('cmd1 a; cmd2 b'); no command at all means
    // an interactive session, its commands on stdin, a line at a time
    if (split.command !== undefined && split.rest.length === 0 && isCommandLine(split.command)) {
      diagnostics.debug(DEBUG, `commands: "${shownCommandLine(split.command)}"`);
      const runIo = io;
      const code = await withConnections(io, (c) => runLine(split.command!, split.globals, env, runIo, c, false));
      return code === QUIT ? 0 : code ?? 0;
    }
    // only when no command word was given: an empty one ('' default) is an unknown command,
    // as virsh's vshCommandArgvParse says it, not a session running stdin's lines
    if (split.command === undefined && !split.help && io.openInput) {
      const input = io.openInput();
      const runIo = io;
      return await withConnections(io, (c) => runSession(input, split.globals, env, runIo, c));
    }
    const parsed = parseCommand(split.command, split.rest, split.help, split.globals, env, diagnostics);
    const runIo = io;
    return await withConnections(io, (c) => execute(parsed, runIo, c, false));
  } catch (err) {
    // a command line virsh could not parse (unknown command or option, missing or extra data)
    // runs nothing: only the error, no blank line
    (io?.stderr ?? cliIo.stderr).write(errorText(err));
    return 1;
  } finally {
    io?.diagnostics.close();
  }
}

/** What runLine returns after 'quit' or 'exit' (the exit code is then 0, as virsh's). */
const QUIT = -1;

const PROMPT = 'cisternctl # ';
const GREETING = "Welcome to cisternctl, the Cistern storage interactive terminal.\n\n" +
  "Type:  'help' for help with commands\n       'quit' to quit\n\n";

/** Runs `fn` with connections opened on demand, all closed when it ends. */
async function withConnections<T>(io: CliIo, fn: (connections: Connections) => Promise<T>): Promise<T> {
  const connections = new Connections(io.api);
  try {
    return await fn(connections);
  } finally {
    connections.close();
  }
}

/**
 * The interactive shell (virsh's imode): one line at a time, as it arrives, each parsed whole
 * before it runs; the commands share one connection per server, as virsh's session shares
 * its connection. On a terminal it greets and prompts; from a pipe it prints only what the
 * commands print. The exit code is the last command's (virsh's is always 0; the last status
 * tells a script more), 0 after quit or exit.
 */
async function runSession(
  input: CommandInput, globals: ParsedOptions, env: Record<string, string | undefined>, io: RunIo, connections: Connections,
): Promise<number> {
  let code = 0;
  try {
    if (input.prompt && !globals.bools.has('quiet')) io.stdout.write(GREETING);
    input.prompt?.(PROMPT);
    for await (const line of input.lines) {
      const signal = input.commandStarts?.() ?? io.signal;
      let status: number | undefined;
      try {
        status = await runLine(line, globals, env, signal === io.signal ? io : { ...io, signal }, connections, true);
      } finally {
        input.commandEnds?.();
      }
      if (status === QUIT) return 0;
      if (status !== undefined) code = status;
      input.prompt?.(PROMPT);
    }
    // end of input (Ctrl-D) on a terminal: end the prompt's line, as virsh does
    if (input.prompt) io.stdout.write('\n');
    return code;
  } finally {
    input.close();
  }
}

/**
 * One API per server for the commands of a line or a session, opened on first use and closed
 * at the end; a test's API (io.api) is used as it is and never closed here.
 */
export class Connections {
  private readonly open = new Map<string, StorageApi>();

  constructor(private readonly given?: StorageApi, private readonly connectTo: (c: ConnectionOptions) => StorageApi = connect) {}

  get(conn: ConnectionOptions): StorageApi {
    if (this.given) return this.given;
    const key = JSON.stringify(conn);
    let api = this.open.get(key);
    if (!api) {
      api = this.connectTo(conn);
      this.open.set(key, api);
    }
    return api;
  }

  /**
   * Forgets the connection to a server that could not be reached, so the next command dials
   * again, as virsh reconnects before its next command: grpc-js would otherwise fail every call
   * at once with the old error until its reconnect backoff (1 s growing to 120 s) passes, long
   * after the coordinator answers again.
   */
  drop(conn: ConnectionOptions): void {
    if (this.given) return;
    const key = JSON.stringify(conn);
    this.open.get(key)?.close();
    this.open.delete(key);
  }

  close(): void {
    for (const api of this.open.values()) api.close();
    this.open.clear();
  }
}

/**
 * Parses every command of `text`, then runs them in turn: nothing runs when any of them does
 * not parse. A command that fails is reported and the next one runs; 'quit' or 'exit' stop;
 * the exit code is the last command's (undefined: `text` has no command).
 */
async function runLine(
  text: string, globals: ParsedOptions, env: Record<string, string | undefined>, io: RunIo,
  connections: Connections, interactive: boolean,
): Promise<number | undefined> {
  let parsed: Parsed[];
  try {
    parsed = splitCommandLine(text).map(([name, ...rest]) => parseCommand(name, rest, false, globals, env, io.diagnostics));
  } catch (err) {
    io.stderr.write(errorText(err));
    return 1;
  }
  let code: number | undefined;
  for (const p of parsed) {
    if (p.kind === 'quit') return QUIT;
    code = await execute(p, io, connections, interactive);
  }
  return code;
}

/** Parses one command (virsh's vshCommandParse for it): throws UsageError, runs nothing. */
function parseCommand(
  name: string | undefined, rest: string[], helpFlag: boolean, globals: ParsedOptions, env: Record<string, string | undefined>,
  diagnostics: Diagnostics,
): Parsed {
  if (name === undefined || helpFlag) return { kind: 'help', topic: name, opts: globals };
  const command = findCommand(name);
  if (!command) throw new UsageError(`unknown command: '${name}'`);
  const own = parseCommandArgs(command.name, command.options, rest);
  for (const line of optionLines(command, own)) diagnostics.debug(INFO, line);
  const opts = mergeOptions(globals, own);
  // virsh replaces a command given --help (as an option, not as data) by 'help COMMAND'
  if (opts.help) return { kind: 'help', topic: command.name, opts };
  if (name === 'help') return { kind: 'help', topic: opts.strings.get('command'), opts };
  if (name === 'quit' || name === 'exit') return { kind: 'quit' };
  return { kind: 'command', command, opts, conn: connectionOptions(opts.strings, env) };
}

/**
 * virsh's vshCommandParse at -d 1 or below: `cmd: opt(optdata): value` for each of the command's
 * own options given (`opt(bool): (none)` for a flag), in the command's order. A secret's value
 * is not shown: the lines go to stderr and to a log file others may read.
 */
function optionLines(command: Command, opts: ParsedOptions): string[] {
  const lines: string[] = [];
  for (const spec of command.options) {
    if (spec.type === 'bool') {
      if (opts.bools.has(spec.name)) lines.push(`${command.name}: ${spec.name}(bool): (none)`);
      continue;
    }
    const values = spec.type === 'argv' ? opts.rest ?? [] : opts.strings.has(spec.name) ? [opts.strings.get(spec.name)!] : [];
    for (const v of values) lines.push(`${command.name}: ${spec.name}(optdata): ${spec.secret ? '(hidden)' : v}`);
  }
  return lines;
}

/**
 * Runs a parsed command; virsh's blank line follows it, whether it failed or not (not with --json).
 * With -t, virsh's vshCommandRun prints `\n(Time: %.3f ms)\n\n` instead, with vshPrint: also
 * with -q, after a failure and after help. With -r the command's API is a read-only connection.
 */
async function execute(parsed: Parsed, io: RunIo, connections: Connections, interactive: boolean): Promise<number> {
  if (parsed.kind === 'quit') return 0;
  const quiet = parsed.opts.bools.has('quiet');
  const timing = parsed.opts.bools.has('timing');
  const readonly = parsed.opts.bools.has('readonly');
  const clock = io.clock ?? (() => performance.now());
  const before = clock();
  // --json output is JSON or nothing: a failed command leaves stdout empty (its error is on
  // stderr), where virsh's blank line would be read as a document by a script
  let trailer = !(parsed.kind === 'command' && parsed.opts.bools.has('json'));
  let connected = true;
  let server = '';
  try {
    if (parsed.kind === 'help') {
      io.stdout.write(helpText(parsed.topic));
      return 0;
    }
    const { command, opts, conn } = parsed;
    server = conn.server;
    const ctx: CommandContext = {
      name: command.name,
      opts,
      quiet,
      api: () => (readonly ? readOnlyApi(connections.get(conn)) : connections.get(conn)),
      print: (t) => void io.stdout.write(t),
      printExtra: (t) => {
        if (!quiet) io.stdout.write(t);
      },
      stderr: io.stderr,
      stdoutIsTTY: !!io.stdout.isTTY,
      signal: io.signal ?? new AbortController().signal,
      interactive,
      setMachineOutput: () => {
        trailer = false;
      },
      env: io.env ?? process.env,
      ...(io.terminal ? { terminal: io.terminal } : {}),
    };
    await command.run(ctx);
    return 0;
  } catch (err) {
    // virsh connects before it runs a command: when it cannot, nothing is printed on stdout
    // either, and the next command connects again
    if (isConnectFailure(err instanceof CommandError ? err.cause : err)) {
      trailer = false;
      connected = false;
      if (parsed.kind === 'command') connections.drop(parsed.conn);
    }
    io.stderr.write(errorText(err, server));
    return 1;
  } finally {
    const after = clock();
    if (trailer && timing) io.stdout.write(timingText(after - before));
    // --json keeps stdout a document: the time goes to stderr (virsh has no --json)
    else if (timing && connected) io.stderr.write(timingText(after - before));
    else if (trailer && !quiet) io.stdout.write('\n');
  }
}

/** virsh's `_("\n(Time: %.3f ms)\n\n")`. */
function timingText(ms: number): string {
  return `\n(Time: ${ms.toFixed(3)} ms)\n\n`;
}

/** virsh's cmdHelp: every command, one command, or a group by name or keyword ('help pool'). */
function helpText(topic: string | undefined): string {
  if (!topic) return generalHelp(COMMANDS);
  const cmd = findCommand(topic);
  if (cmd) return commandHelp(cmd);
  const group = findGroup(COMMANDS, topic);
  if (!group) throw new UsageError(`command or command group '${topic}' doesn't exist`);
  return groupHelp(group);
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

function isConnectFailure(err: unknown): boolean {
  return err instanceof CisternError && err.code === 'UNAVAILABLE' &&
    /No connection established|ECONNREFUSED|failed to connect|Name resolution failed|DNS resolution failed/i.test(err.message);
}

/**
 * The cause in grpc-js's words for a failed connect: while it backs off after a connection it
 * lost (a coordinator killed) it says 'No connection established. Last error: read ECONNRESET
 * (<when>).', of which only the error says anything to the user.
 */
function lastConnectError(message: string): string {
  const last = /^No connection established\. Last error: (.*?)(?: \(\d{4}-\d\d-\d\dT[\d:.]+Z\))?\.?$/s.exec(message);
  return last ? last[1]! : message.replace(/\s*Resolution note:\s*$/, '');
}

/**
 * virsh prints every error line as "error: ..." on stderr. Control and format characters in it
 * are shown escaped (libs/errors/visible.ts), whoever wrote the message: cisternctl's own
 * parsing echoes what was typed, and a coordinator may send a message raw.
 */
export function errorText(err: unknown, server = ''): string {
  return visibleText(errorLines(err, server), true);
}

function errorLines(err: unknown, server: string): string {
  if (err instanceof ReportedError) return '';
  if (err instanceof CommandError) {
    if (isConnectFailure(err.cause)) return errorLines(err.cause, server);
    return `error: ${err.context}\nerror: ${messageOf(err.cause)}\n`;
  }
  if (err instanceof UsageError) return err.messages.map((m) => `error: ${m}\n`).join('');
  if (isConnectFailure(err)) {
    const m = /connect (E[A-Z]+) (\S+?)\.?(\s|$)/.exec(messageOf(err));
    // OpenSSL's words for a TLS handshake answered in plain text, which say nothing of the cause
    const plaintext = /wrong version number/.test(messageOf(err));
    const cause = plaintext
      ? 'the server does not answer TLS (a coordinator without --tls-cert?): without --ca and CISTERN_CA, cisternctl connects in plain text'
      : m ? `connect ${m[1]} ${m[2]}` : lastConnectError(messageOf(err));
    return `error: failed to connect to the coordinator at ${server}\nerror: ${cause}\n`;
  }
  return `error: ${messageOf(err)}\n`;
}
