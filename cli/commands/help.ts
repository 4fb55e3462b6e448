// `cisternctl help` and `cisternctl help COMMAND`, laid out like virsh's help.
import { GLOBAL_OPTIONS, type OptionSpec } from '../args.js';
import type { Command } from '../command.js';

/** virsh's value placeholder: <number> for its integer options, <string> for every other value. */
function valueOf(o: OptionSpec): string {
  return o.metavar === 'number' ? '<number>' : '<string>';
}

/** An option in the general help's list (`--server <string>`). */
function optionSyntax(o: OptionSpec): string {
  return o.type === 'bool' ? `--${o.name}` : `--${o.name} ${valueOf(o)}`;
}

/**
 * virsh's vshCmddefHelp, section for section: in SYNOPSIS a required positional option is
 * `<name>`, others `[--name <string>]` or `[--name]`; in OPTIONS a required positional one is
 * `[--name] <string>`, each padded to 15 columns, two spaces, its help; a blank line ends it.
 */
export function commandHelp(cmd: Command): string {
  const synopsis = cmd.options.map((o) => {
    if (o.type === 'bool') return ` [--${o.name}]`;
    if (o.type === 'argv') return ` [<${o.name}>]...`;
    return o.required && !o.named ? ` <${o.name}>` : ` [--${o.name} ${valueOf(o)}]`;
  }).join('');
  let out = `  NAME\n    ${cmd.name} - ${cmd.help}\n\n  SYNOPSIS\n    ${cmd.name}${synopsis}\n`;
  if (cmd.description) out += `\n  DESCRIPTION\n    ${cmd.description}\n`;
  if (cmd.options.length > 0) {
    out += '\n  OPTIONS\n';
    for (const o of cmd.options) {
      const syntax = o.type === 'argv' ? `<${o.name}>`
        : o.required && !o.named && o.type === 'string' ? `[--${o.name}] ${valueOf(o)}` : optionSyntax(o);
      out += `    ${syntax.padEnd(15)}  ${o.help}\n`;
    }
  }
  return `${out}\n`;
}

/** A group of commands in `help`, found by `help NAME` or `help KEYWORD` as virsh finds its groups. */
export interface CommandGroup {
  name: string;
  keyword: string;
  commands: Command[];
}

/** The shell's own commands (virsh's 'Virsh itself' group). */
const SHELL_COMMANDS = new Set(['cd', 'echo', 'exit', 'help', 'pwd', 'quit']);

/**
 * virsh's groups: 'Secret' (secret), 'Storage Pool' (pool), 'Storage Volume' (volume), Cistern's 'Fleet' (fleet:
 * the host-* commands), and 'Cisternctl itself' (cisternctl) as virsh's 'Virsh itself'.
 */
export function commandGroups(commands: Command[]): CommandGroup[] {
  const fleet = (c: Command): boolean => c.name.startsWith('host-');
  const shell = (c: Command): boolean => SHELL_COMMANDS.has(c.name);
  const secret = (c: Command): boolean => c.name.startsWith('secret-');
  return [
    { name: 'Secret', keyword: 'secret', commands: commands.filter(secret) },
    { name: 'Storage Pool', keyword: 'pool', commands: commands.filter((c) => !c.name.startsWith('vol-') && !fleet(c) && !shell(c) && !secret(c)) },
    { name: 'Storage Volume', keyword: 'volume', commands: commands.filter((c) => c.name.startsWith('vol-')) },
    { name: 'Fleet', keyword: 'fleet', commands: commands.filter(fleet) },
    { name: 'Cisternctl itself', keyword: 'cisternctl', commands: commands.filter(shell) },
  ];
}

/** virsh's vshCmdGrpSearch: the group whose name or keyword is exactly `topic` (case matters). */
export function findGroup(commands: Command[], topic: string): CommandGroup | undefined {
  // 'virsh' is virsh's keyword for its own group: a script written for virsh asks for it so
  const keyword = topic === 'virsh' ? 'cisternctl' : topic;
  return commandGroups(commands).find((g) => g.name === topic || g.keyword === keyword);
}

/** virsh's vshCmdGrpHelp: the heading, then one line per command. */
export function groupHelp(group: CommandGroup): string {
  let out = ` ${group.name} (help keyword '${group.keyword}'):\n`;
  for (const c of group.commands) out += `    ${c.name.padEnd(30)} ${c.help}\n`;
  return out;
}

export function generalHelp(commands: Command[]): string {
  let out = 'cisternctl: virsh-style storage pool and volume commands for a Cistern fleet\n\n';
  out += 'Usage: cisternctl [global options] COMMAND [ARGS...]\n\n';
  out += commandGroups(commands).map(groupHelp).join('\n');
  out += '\n Global options (before or after the command):\n';
  for (const o of GLOBAL_OPTIONS) {
    const syntax = o.type === 'bool' ? `--${o.name}` : `--${o.name} <${o.metavar ?? o.name}>`;
    out += `    ${syntax.padEnd(30)} ${o.help}\n`;
  }
  out += `    ${'-c, --connect HOST:PORT'.padEnd(30)} same as --server (--connect only before the command)\n    ${'-q'.padEnd(30)} same as --quiet\n`;
  out += `    ${'-r, --readonly'.padEnd(30)} read-only: commands that would change something fail, as on virsh's read-only connection (only before the command)\n`;
  out += `    ${'-t, --timing'.padEnd(30)} print how long each command took (only before the command)\n`;
  out += `    ${'-d, --debug NUM'.padEnd(30)} debug level [0-4]: 1 or less prints each command's options on stderr (only before the command)\n`;
  out += `    ${'-e, --escape CHAR'.padEnd(30)} checked as virsh checks it; cisternctl has no console (only before the command)\n`;
  out += `    ${'-k, --keepalive-interval NUM'.padEnd(30)} keepalive interval in seconds, 0 for disable (only before the command)\n`;
  out += `    ${'-K, --keepalive-count NUM'.padEnd(30)} number of possible missed keepalive messages (only before the command)\n`;
  out += `    ${'-l, --log FILE'.padEnd(30)} append errors (and -d's messages) to FILE (only before the command)\n`;
  out += `    ${'-h, --help'.padEnd(30)} this help; 'help COMMAND' for one command\n`;
  out += `    ${'-v, --version'.padEnd(30)} the version; -V or --version=long adds the pool types it knows\n`;
  out += '\nPools are named POOL (when unique in the fleet) or HOST/POOL.\n';
  return out;
}
