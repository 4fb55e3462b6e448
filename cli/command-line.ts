// virsh's command-line syntax (vshCommandStringGetArg), for `cisternctl 'cmd1 a; cmd2 b'` and
// for commands read from stdin: ';' and newlines end a command, blanks separate words, single
// quotes take everything literally (an unclosed one runs to the end, as in virsh), double quotes
// and a backslash outside single quotes escape, a backslash-newline is dropped, and a word
// starting with '#' comments out the rest of the line. Errors are virsh's words.
import { UsageError } from './errors.js';

/** The commands of `text`, each as its words; empty commands are dropped. */
export function splitCommandLine(text: string): string[][] {
  return commandWords(text, false).map((words) => words.map((w) => w.text));
}

/** A word of a command line: its value, and where its text is in the line (quotes included). */
export interface CommandWord {
  text: string;
  start: number;
  end: number;
}

/**
 * The commands of `text` with where each word is. `lenient`: an unclosed '"' or a dangling
 * '\\' ends the line instead of failing it (for showing a line that will not run).
 */
export function commandWords(text: string, lenient: boolean): CommandWord[][] {
  const commands: CommandWord[][] = [];
  let words: CommandWord[] = [];
  let word = '';
  let inWord = false;
  let start = 0;
  const begin = (at: number): void => {
    if (!inWord) start = at;
    inWord = true;
  };
  const endWord = (at: number): void => {
    if (inWord) words.push({ text: word, start, end: at });
    word = '';
    inWord = false;
  };
  const endCommand = (at: number): void => {
    endWord(at);
    if (words.length > 0) commands.push(words);
    words = [];
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\r') {
      endWord(i);
    } else if (c === ';' || c === '\n') {
      endCommand(i);
    } else if (c === '#' && !inWord) {
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
    } else if (c === "'") {
      begin(i);
      let close = text.indexOf("'", i + 1);
      if (close < 0) close = text.length;
      word += text.slice(i + 1, close);
      i = close;
    } else if (c === '"') {
      begin(i);
      let closed = false;
      for (i++; i < text.length; i++) {
        const d = text[i]!;
        if (d === '"') {
          closed = true;
          break;
        }
        if (d === '\\') {
          if (i + 1 >= text.length) {
            if (lenient) break;
            throw new UsageError('dangling \\');
          }
          if (text[++i] !== '\n') word += text[i]!;
          continue;
        }
        word += d;
      }
      if (!closed && !lenient) throw new UsageError('missing "');
    } else if (c === '\\') {
      if (i + 1 >= text.length) {
        if (lenient) break;
        throw new UsageError('dangling \\');
      }
      if (text[++i] === '\n') continue; // a backslash-newline is dropped
      begin(i - 1);
      word += text[i]!;
    } else {
      begin(i);
      word += c;
    }
  }
  endCommand(text.length);
  return commands;
}

/** A single argument that is a whole command line rather than a command name. */
export function isCommandLine(arg: string): boolean {
  return /[\s;'"#\\]/.test(arg);
}
