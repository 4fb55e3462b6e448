// The commands of the shell itself (virsh's 'Virsh itself' group): echo, cd, pwd, and the
// entries `help` lists for help, quit and exit (cli/run.ts acts on those three itself).
import { homedir } from 'node:os';
import { flag, str } from '../args.js';
import type { Command } from '../command.js';
import { UsageError } from '../errors.js';

/** virBufferEscapeShell: a word as is when it has no shell metacharacter, else single-quoted. */
export function shellQuote(word: string): string {
  if (word !== '' && !/[\r\t\n !"#$&'()*;<>?[\\\]^`{|}~]/.test(word)) return word;
  return `'${word.replace(/'/g, "'\\''")}'`;
}

/** virBufferEscapeString: XML's five entities; tab, newline and CR kept, other control characters dropped. */
export function xmlEscape(text: string): string {
  return text.replace(/[<>&"'\x00-\x08\x0b\x0c\x0e-\x1f]/g, (c) => XML_ENTITIES[c] ?? '');
}

const XML_ENTITIES: Record<string, string> = { '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' };

/** vshStringToArray: split on ',', where ',,' stands for a comma; '' has no parts. */
export function splitCommas(text: string): string[] {
  if (text === '') return [];
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== ',') current += text[i];
    else if (text[i + 1] === ',') {
      current += ',';
      i++;
    } else {
      parts.push(current);
      current = '';
    }
  }
  parts.push(current);
  return parts;
}

/** What virsh's cmdEcho prints for its arguments (no newline of its own). */
export function echoText(words: string[], mode: { shell?: boolean; xml?: boolean; split?: boolean }): string {
  const pairs: [keyof typeof mode, keyof typeof mode][] = [['shell', 'xml'], ['xml', 'split'], ['shell', 'split']];
  for (const [a, b] of pairs) {
    if (mode[a] && mode[b]) throw new UsageError(`Options --${a} and --${b} are mutually exclusive`);
  }
  return words.map((w) => {
    if (mode.shell) return shellQuote(w);
    if (mode.xml) return xmlEscape(w);
    if (mode.split) return splitCommas(w).map((p) => `${p}\n`).join('');
    return w;
  }).join(' ');
}

export const echo: Command = {
  name: 'echo',
  help: 'echo arguments. Used for internal testing.',
  description: 'Echo back arguments, possibly with quoting. Used for internal testing.',
  options: [
    { name: 'shell', type: 'bool', help: 'escape for shell use' },
    { name: 'xml', type: 'bool', help: 'escape for XML use' },
    { name: 'split', type: 'bool', help: "split each argument on ','; ',,' is an escape sequence" },
    { name: 'err', type: 'bool', help: 'output to stderr' },
    { name: 'string', type: 'argv', help: 'arguments to echo' },
  ],
  async run(ctx) {
    const text = echoText(ctx.opts.rest ?? [], { shell: flag(ctx.opts, 'shell'), xml: flag(ctx.opts, 'xml'), split: flag(ctx.opts, 'split') });
    if (!flag(ctx.opts, 'err')) ctx.print(text);
    else if (text !== '') ctx.stderr.write(`error: ${text}\n`);
  },
};

export const cd: Command = {
  name: 'cd',
  help: 'change the current directory',
  description: 'Change the current directory.',
  options: [{ name: 'dir', type: 'string', help: 'directory to switch to (default: home or else root)' }],
  async run(ctx) {
    if (!ctx.interactive) throw new UsageError('cd: command valid only in interactive mode');
    const dir = str(ctx.opts, 'dir') ?? (homedir() || '/');
    try {
      process.chdir(dir);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory'
        : (err as NodeJS.ErrnoException).code === 'ENOTDIR' ? 'Not a directory'
        : (err as NodeJS.ErrnoException).code === 'EACCES' ? 'Permission denied'
        : (err as Error).message;
      throw new UsageError(`cd: ${reason}: ${dir}`);
    }
  },
};

export const pwd: Command = {
  name: 'pwd',
  help: 'print the current directory',
  description: 'Print the current directory.',
  options: [],
  async run(ctx) {
    ctx.print(`${process.cwd()}\n`);
  },
};

/** Listed by `help` and shown by `help help`; cli/run.ts runs it. */
export const help: Command = {
  name: 'help',
  help: 'print help',
  description: 'Prints global help, command specific help, or help for a\n    group of related commands',
  options: [{ name: 'command', type: 'string', help: 'Prints global help, command specific help, or help for a group of related commands' }],
  async run() {
    throw new Error('help is run by cli/run.ts');
  },
};

function quitCommand(name: string): Command {
  return {
    name,
    help: 'quit this interactive terminal',
    options: [],
    async run() {
      throw new Error(`${name} is run by cli/run.ts`);
    },
  };
}

export const quit = quitCommand('quit');
export const exit = quitCommand('exit');
