// `cisternctl help` and `cisternctl help COMMAND`, laid out like virsh's help.
import { GLOBAL_OPTIONS, type OptionSpec } from '../args.js';
import type { Command } from '../command.js';

function optionSyntax(o: OptionSpec): string {
  if (o.type === 'bool') return `--${o.name}`;
  const value = `<${o.metavar ?? o.name}>`;
  if (o.named) return `--${o.name} ${value}`;
  return o.required ? `[--${o.name}] ${value}` : `[--${o.name}] ${value}`;
}

export function commandHelp(cmd: Command): string {
  const synopsis = cmd.options
    .map((o) => (o.required ? optionSyntax(o) : `[${optionSyntax(o)}]`))
    .join(' ');
  let out = `  NAME\n    ${cmd.name} - ${cmd.help}\n\n  SYNOPSIS\n    ${cmd.name} ${synopsis}\n`;
  if (cmd.description) out += `\n  DESCRIPTION\n    ${cmd.description}\n`;
  if (cmd.options.length > 0) {
    out += '\n  OPTIONS\n';
    for (const o of cmd.options) out += `    ${optionSyntax(o).padEnd(28)}  ${o.help}\n`;
  }
  return out;
}

/** A group of commands in `help`, found by `help NAME` or `help KEYWORD` as virsh finds its groups. */
export interface CommandGroup {
  name: string;
  keyword: string;
  commands: Command[];
}

/** virsh's groups: 'Storage Pool' (pool), 'Storage Volume' (volume), and Cistern's 'Fleet' (fleet: the host-* commands). */
export function commandGroups(commands: Command[]): CommandGroup[] {
  const fleet = (c: Command): boolean => c.name.startsWith('host-');
  return [
    { name: 'Storage Pool', keyword: 'pool', commands: commands.filter((c) => !c.name.startsWith('vol-') && !fleet(c)) },
    { name: 'Storage Volume', keyword: 'volume', commands: commands.filter((c) => c.name.startsWith('vol-')) },
    { name: 'Fleet', keyword: 'fleet', commands: commands.filter(fleet) },
  ];
}

/** virsh's vshCmdGrpSearch: the group whose name or keyword is exactly `topic` (case matters). */
export function findGroup(commands: Command[], topic: string): CommandGroup | undefined {
  return commandGroups(commands).find((g) => g.name === topic || g.keyword === topic);
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
  for (const o of GLOBAL_OPTIONS) out += `    ${optionSyntax(o).padEnd(30)} ${o.help}\n`;
  out += `    ${'-c HOST:PORT'.padEnd(30)} same as --server\n    ${'-q'.padEnd(30)} same as --quiet\n`;
  out += '\nPools are named POOL (when unique in the fleet) or HOST/POOL.\n';
  return out;
}
