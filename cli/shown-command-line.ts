// The command line -d 0 shows (`commands: "..."`, virsh's vshDebug of the line it was given),
// with the value of every secret option (secret-set-value --base64, --token) replaced by
// '(hidden)'. virsh shows the line as typed; here the line goes to stderr and to -l's log file,
// which others may read (virsh's and cisternctl's are created 0644), and docs/cli.md promises a
// secret's value is never in -d's output. The rest of the line is shown as typed.
import { GLOBAL_OPTIONS } from './args.js';
import { commandWords, type CommandWord } from './command-line.js';
import { findCommand } from './commands/index.js';

const HIDDEN = '(hidden)';

/** The names of the named options of command `name` whose values are secret (global ones too). */
function secretOptions(name: string): Set<string> {
  const specs = [...(findCommand(name)?.options ?? []), ...GLOBAL_OPTIONS];
  return new Set(specs.filter((s) => s.secret && s.type === 'string').map((s) => s.name));
}

/** `text` with the secret values replaced; also a line that will not parse (an unclosed quote). */
export function shownCommandLine(text: string): string {
  const replaced: Array<{ start: number; end: number; by: string }> = [];
  for (const words of commandWords(text, true)) {
    const secret = secretOptions(words[0]!.text);
    words.forEach((w: CommandWord, i) => {
      if (!w.text.startsWith('--')) return;
      const eq = w.text.indexOf('=');
      const name = eq < 0 ? w.text.slice(2) : w.text.slice(2, eq);
      if (!secret.has(name)) return;
      if (eq >= 0) replaced.push({ start: w.start, end: w.end, by: `--${name}=${HIDDEN}` });
      else if (words[i + 1]) replaced.push({ start: words[i + 1]!.start, end: words[i + 1]!.end, by: HIDDEN });
    });
  }
  let out = '';
  let at = 0;
  for (const r of replaced.sort((a, b) => a.start - b.start)) {
    if (r.start < at) continue; // '--base64 --base64': the second word is already hidden
    out += text.slice(at, r.start) + r.by;
    at = r.end;
  }
  return out + text.slice(at);
}
