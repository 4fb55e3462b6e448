// virsh-style command line parsing: options are `--name value`, `--name=value` or
// booleans `--flag`; options that take a value may also be given positionally, in
// the order the command declares them (virsh's VSH_OT_DATA / VSH_OT_STRING rule).
import { emptyOptionError, UsageError } from './errors.js';

/** 'argv': every remaining positional argument, in order (virsh VSH_OT_ARGV); at most one per command, last. */
export type OptionType = 'bool' | 'string' | 'argv';

export interface OptionSpec {
  name: string;
  type: OptionType;
  help: string;
  /** must be present (virsh VSH_OFLAG_REQ) */
  required?: boolean;
  /** only as `--name value`, never filled positionally (virsh VSH_OFLAG_REQ_OPT) */
  named?: boolean;
  /** placeholder shown in help, e.g. <pool> */
  metavar?: string;
  /**
   * An empty value is refused when the command reads it, with virsh's `Failed to get option
   * 'pool': Option argument is empty` (vshCommandOptStringReq): names of pools, volumes and
   * hosts, files, types, formats, algorithms, every option virsh 9.0 reads that way.
   */
  nonEmpty?: boolean;
}

export interface ParsedOptions {
  bools: Set<string>;
  strings: Map<string, string>;
  /** The command's 'argv' option: the positional arguments left after its other options took theirs. */
  rest?: string[];
  /** The options whose spec is nonEmpty: str and req refuse an empty value of theirs. */
  nonEmpty?: Set<string>;
  /** `--help` was given as an option (virsh's helpopt): the command is replaced by its help. */
  help?: true;
}

/**
 * virsh's test for an option token: two dashes, then an ASCII letter or digit. Anything else
 * ('---x', '--=x', '--é') is data, as a name or a value.
 */
function isOptionToken(arg: string): boolean {
  return arg.startsWith('--') && /^[A-Za-z0-9]$/.test(arg.charAt(2));
}

export function flag(opts: ParsedOptions, name: string): boolean {
  return opts.bools.has(name);
}

export function str(opts: ParsedOptions, name: string): string | undefined {
  const v = opts.strings.get(name);
  // at run time, as virsh reads it: the command fails (blank line on stdout), the line goes on
  if (v === '' && opts.nonEmpty?.has(name)) throw emptyOptionError(name);
  return v;
}

/** The value of a required option (parseCommandArgs has already checked it is there). */
export function req(opts: ParsedOptions, name: string): string {
  const v = str(opts, name);
  if (v === undefined) throw new UsageError(`option --${name} is required`);
  return v;
}

/** Options every command accepts (connection and output), never positional. */
export const GLOBAL_OPTIONS: OptionSpec[] = [
  { name: 'server', type: 'string', named: true, help: 'coordinator address HOST:PORT (env CISTERN_SERVER, default 127.0.0.1:50051)' },
  { name: 'ca', type: 'string', named: true, help: 'CA certificate file: use TLS (env CISTERN_CA)' },
  { name: 'cert', type: 'string', named: true, help: 'client certificate file for mutual TLS (env CISTERN_CERT)' },
  { name: 'key', type: 'string', named: true, help: 'client private key file for mutual TLS (env CISTERN_KEY)' },
  { name: 'token', type: 'string', named: true, help: 'bearer token (env CISTERN_TOKEN)' },
  { name: 'quiet', type: 'bool', help: 'quiet mode: no informational messages, no table headers' },
];

const SHORT_GLOBALS: Record<string, string> = { '-q': 'quiet', '-c': 'server' };

/**
 * Parses one command's arguments. `specs` are the command's own options; the global
 * options are accepted anywhere too. Throws UsageError with virsh's wording.
 */
export function parseCommandArgs(command: string, specs: OptionSpec[], argv: string[]): ParsedOptions {
  const all = [...specs, ...GLOBAL_OPTIONS];
  const byName = new Map(all.map((s) => [s.name, s]));
  const bools = new Set<string>();
  const strings = new Map<string, string>();
  const positionalQueue = specs.filter((s) => s.type === 'string' && !s.named);
  const takesArgv = specs.some((s) => s.type === 'argv');
  const rest: string[] = [];
  let onlyPositional = false;
  let help = false;

  const set = (spec: OptionSpec, value: string): void => {
    if (strings.has(spec.name)) throw new UsageError(`option --${spec.name} already seen`);
    strings.set(spec.name, value);
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!onlyPositional && arg === '--') {
      onlyPositional = true;
      continue;
    }
    const short = SHORT_GLOBALS[arg];
    if (!onlyPositional && (isOptionToken(arg) || short)) {
      let name = short ?? arg.slice(2);
      let inline: string | undefined;
      const eq = name.indexOf('=');
      if (!short && eq >= 0) {
        inline = name.slice(eq + 1);
        name = name.slice(0, eq);
      }
      // virsh's helpopt, a flag of every command: noted here, acted on once the whole command has
      // parsed (an unknown option after it is still an error); as a value or after '--' it is data
      if (name === 'help' && !byName.has('help')) {
        if (inline !== undefined) throw new UsageError(`invalid '=' after option --${name}`);
        help = true;
        continue;
      }
      const spec = byName.get(name);
      // virsh's help skips what it does not know ("Special case 'help' to ignore all spurious options")
      if (!spec && command === 'help') continue;
      if (!spec) throw new UsageError(`command '${command}' doesn't support option --${name}`);
      if (spec.type === 'argv') {
        // virsh: `echo --string a b` names the first word; the rest follow as data
        const word = inline ?? argv[++i];
        if (word === undefined) throw new UsageError(`expected syntax: --${name} <string>`);
        rest.push(word);
        continue;
      }
      if (spec.type === 'bool') {
        if (inline !== undefined) throw new UsageError(`invalid '=' after option --${name}`);
        // virsh's vshCmdOptAssign refuses any option given twice, a flag as a value
        if (bools.has(name)) throw new UsageError(`option --${name} already seen`);
        bools.add(name);
        continue;
      }
      let value = inline;
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new UsageError(`expected syntax: --${name} <${spec.metavar ?? 'string'}>`);
        value = argv[++i]!;
      }
      set(spec, value);
      continue;
    }
    const next = positionalQueue.find((s) => !strings.has(s.name));
    if (next) set(next, arg);
    else if (takesArgv) rest.push(arg);
    else if (command !== 'help') throw new UsageError(`unexpected data '${arg}'`);
  }

  const nonEmpty = new Set(specs.filter((s) => s.nonEmpty).map((s) => s.name));
  const parsed: ParsedOptions = { bools, strings, ...(takesArgv ? { rest } : {}), ...(nonEmpty.size > 0 ? { nonEmpty } : {}) };
  // virsh asks for no required option of a command whose help is asked for
  if (help) return { ...parsed, help: true };
  // virsh's vshCommandCheckOpts: every missing one, in the command's order, one line each
  const missing = specs
    .filter((spec) => spec.required && spec.type === 'string' && !strings.has(spec.name))
    .map((spec) => `command '${command}' requires <${spec.name}> option`);
  if (missing.length > 0) throw new UsageError(missing[0]!, ...missing.slice(1));
  return parsed;
}

export interface GlobalSplit {
  globals: ParsedOptions;
  command?: string;
  rest: string[];
  help: boolean;
  /** -v/--version (short), -V/--version=long (long), as virsh reads them */
  version: false | 'short' | 'long';
}

/** Splits `cisternctl [global options] COMMAND [args]`. */
export function splitGlobal(argv: string[]): GlobalSplit {
  const bools = new Set<string>();
  const strings = new Map<string, string>();
  let help = false;
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (arg === '-v' || arg === '-V' || arg === '--version' || arg.startsWith('--version=')) {
      if (help) continue;
      // virsh acts on it at once (getopt order): nothing after it is looked at
      const version = arg === '-V' || arg === '--version=long' ? 'long' : 'short';
      return { globals: { bools, strings }, rest: [], help, version };
    }
    // getopt's end of options: the command is the next word
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-' ) break;
    let name = SHORT_GLOBALS[arg] ?? (arg.startsWith('--') ? arg.slice(2) : '');
    let inline: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      inline = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const spec = GLOBAL_OPTIONS.find((s) => s.name === name);
    if (!spec) throw new UsageError(`unsupported option '${arg}'. See --help.`);
    if (spec.type === 'bool') {
      bools.add(name);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`option '${arg}' requires an argument`);
    strings.set(name, value);
  }
  return { globals: { bools, strings }, command: argv[i], rest: argv.slice(i + 1), help, version: false };
}

/** Merges global options given before the command with those given after it (later wins). */
export function mergeOptions(before: ParsedOptions, after: ParsedOptions): ParsedOptions {
  return {
    bools: new Set([...before.bools, ...after.bools]),
    strings: new Map([...before.strings, ...after.strings]),
    ...(after.rest ? { rest: after.rest } : {}),
    ...(after.nonEmpty ? { nonEmpty: after.nonEmpty } : {}),
    ...(after.help ? { help: after.help } : {}),
  };
}
