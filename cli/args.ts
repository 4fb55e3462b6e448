// virsh-style command line parsing: options are `--name value`, `--name=value` or
// booleans `--flag`; options that take a value may also be given positionally, in
// the order the command declares them (virsh's VSH_OT_DATA / VSH_OT_STRING rule).
import { emptyOptionError, UsageError } from './errors.js';
import { debugValue, escapeValue, keepaliveValue } from './global-values.js';

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
  /** A secret (secret-set-value --base64, --token): -d's lines show '(hidden)' for its value. */
  secret?: boolean;
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
  { name: 'token', type: 'string', named: true, secret: true, help: 'bearer token (env CISTERN_TOKEN)' },
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
  /** virsh's warnings while it read them (a -d level out of range), each an error line */
  warnings: string[];
}

/**
 * The options before the command, as virsh's getopt_long (optstring "+:c:d:e:hk:K:l:qrtvV") names them:
 * `arg` none, a value, or an optional `=value` (--version). `option` is the GLOBAL_OPTIONS
 * entry set; -c is virsh's --connect, which here is --server.
 */
interface GetoptOption {
  long: string;
  short?: string;
  arg: 'none' | 'required' | 'optional';
  option: 'server' | 'ca' | 'cert' | 'key' | 'token' | 'quiet' | 'readonly' | 'timing' | 'help' | 'version'
    | 'debug' | 'escape' | 'keepalive-interval' | 'keepalive-count' | 'log';
}

const GETOPT_OPTIONS: GetoptOption[] = [
  { long: 'connect', short: 'c', arg: 'required', option: 'server' },
  { long: 'server', arg: 'required', option: 'server' },
  { long: 'ca', arg: 'required', option: 'ca' },
  { long: 'cert', arg: 'required', option: 'cert' },
  { long: 'key', arg: 'required', option: 'key' },
  { long: 'token', arg: 'required', option: 'token' },
  { long: 'quiet', short: 'q', arg: 'none', option: 'quiet' },
  // virsh's -r and -t: only before the command, as in virsh; they set the bools of those names
  { long: 'readonly', short: 'r', arg: 'none', option: 'readonly' },
  { long: 'timing', short: 't', arg: 'none', option: 'timing' },
  { long: 'help', short: 'h', arg: 'none', option: 'help' },
  // virsh's -d, -e, -k, -K and -l, checked as virsh checks them (global-values.ts): -d and -l
  // are cli/diagnostics.ts, -k and -K the connection's keepalive (client.ts); -e is only
  // checked, cisternctl has no console
  { long: 'debug', short: 'd', arg: 'required', option: 'debug' },
  { long: 'escape', short: 'e', arg: 'required', option: 'escape' },
  { long: 'keepalive-interval', short: 'k', arg: 'required', option: 'keepalive-interval' },
  { long: 'keepalive-count', short: 'K', arg: 'required', option: 'keepalive-count' },
  { long: 'log', short: 'l', arg: 'required', option: 'log' },
  { long: 'version', short: 'v', arg: 'optional', option: 'version' },
];

/** getopt_long's lookup: an exact name, else the one option every name starting so belongs to. */
function findLongOption(name: string): GetoptOption | undefined {
  const exact = GETOPT_OPTIONS.find((o) => o.long === name);
  if (exact) return exact;
  const prefixed = name === '' ? [] : GETOPT_OPTIONS.filter((o) => o.long.startsWith(name));
  // --conn and --serv both set the server: not ambiguous, as getopt_long's same-flag rule
  return prefixed.length > 0 && prefixed.every((o) => o.option === prefixed[0]!.option) ? prefixed[0] : undefined;
}

/** virsh's words for a missing value: `option '-c'/'--connect' requires an argument`. */
function missingValue(o: GetoptOption): UsageError {
  const names = o.short ? `'-${o.short}'/'--${o.long}'` : `'--${o.long}'`;
  return new UsageError(`option ${names} requires an argument`);
}

/**
 * Splits `cisternctl [global options] COMMAND [args]` as virsh's getopt_long does: options stop
 * at the first word that is not one (or after `--`); short ones cluster (`-qc HOST`) and take
 * an attached value (`-cHOST`); long ones take `--opt=value` or the next word and may be shortened
 * to a unique prefix (`--conn`). -v/-V/--version act at once, unless -h came first.
 */
export function splitGlobal(argv: string[]): GlobalSplit {
  const bools = new Set<string>();
  const strings = new Map<string, string>();
  const warnings: string[] = [];
  let help = false;
  let i = 0;
  // one option found: false to go on, or the version asked for; `given` is how it was written
  const apply = (o: GetoptOption, value: string | undefined, given: string): false | 'short' | 'long' => {
    if (o.option === 'help') help = true;
    else if (o.option === 'keepalive-interval' || o.option === 'keepalive-count') {
      strings.set(o.option, String(keepaliveValue(given, value!)));
    } else if (o.option === 'debug') {
      const d = debugValue(given, value!);
      if ('level' in d) strings.set('debug', String(d.level));
      else warnings.push(d.warning);
    } else if (o.option === 'escape') strings.set('escape', escapeValue(value!));
    else if (o.option === 'version') {
      // virsh acts on it at once (getopt order): nothing after it is looked at
      if (!help) return value === 'long' ? 'long' : 'short';
    } else if (o.option === 'quiet' || o.option === 'readonly' || o.option === 'timing') bools.add(o.option);
    else strings.set(o.option, value!);
    return false;
  };
  const version = (form: 'short' | 'long'): GlobalSplit => ({ globals: { bools, strings }, rest: [], help, version: form, warnings });
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    // getopt's end of options: the command is the next word
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      const inline = eq < 0 ? undefined : arg.slice(eq + 1);
      const o = findLongOption(name);
      if (!o) throw new UsageError(`unsupported option '${arg}'. See --help.`);
      if (o.arg === 'none' && inline !== undefined) throw new UsageError(`option '--${o.long}' doesn't allow an argument. See --help.`);
      let value = inline;
      if (o.arg === 'required' && value === undefined) {
        value = argv[++i];
        if (value === undefined) throw missingValue(o);
      }
      const v = apply(o, value, `--${o.long}`);
      if (v) return version(v);
      continue;
    }
    // a cluster of short options; -c takes the rest of the word, or the next word
    for (let j = 1; j < arg.length; j++) {
      const ch = arg[j]!;
      if (ch === 'V') {
        if (help) continue;
        return version('long');
      }
      const o = GETOPT_OPTIONS.find((g) => g.short === ch);
      if (!o) throw new UsageError(`unsupported option '-${ch}'. See --help.`);
      if (o.arg === 'required') {
        let value = arg.slice(j + 1);
        if (value === '') {
          value = argv[++i]!;
          if (value === undefined) throw missingValue(o);
        }
        apply(o, value, `-${ch}`);
        break;
      }
      const v = apply(o, undefined, `-${ch}`);
      if (v) return version(v);
    }
  }
  return { globals: { bools, strings }, command: argv[i], rest: argv.slice(i + 1), help, version: false, warnings };
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
