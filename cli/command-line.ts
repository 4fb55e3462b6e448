// virsh's command-line syntax (vshCommandStringGetArg), for `cisternctl 'cmd1 a; cmd2 b'` and
// for commands read from stdin: ';' and newlines end a command, blanks separate words, single
// quotes take everything literally (an unclosed one runs to the end, as in virsh), double quotes
// and a backslash outside single quotes escape, a backslash-newline is dropped, and a word
// starting with '#' comments out the rest of the line. Errors are virsh's words.
import { UsageError } from './errors.js';

/** The commands of `text`, each as its words; empty commands are dropped. */
export function splitCommandLine(text: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  const endWord = (): void => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = (): void => {
    endWord();
    if (words.length > 0) commands.push(words);
    words = [];
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\r') {
      endWord();
    } else if (c === ';' || c === '\n') {
      endCommand();
    } else if (c === '#' && !inWord) {
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
    } else if (c === "'") {
      let close = text.indexOf("'", i + 1);
      if (close < 0) close = text.length;
      word += text.slice(i + 1, close);
      inWord = true;
      i = close;
    } else if (c === '"') {
      inWord = true;
      let closed = false;
      for (i++; i < text.length; i++) {
        const d = text[i]!;
        if (d === '"') {
          closed = true;
          break;
        }
        if (d === '\\') {
          if (i + 1 >= text.length) throw new UsageError('dangling \\');
          if (text[++i] !== '\n') word += text[i]!;
          continue;
        }
        word += d;
      }
      if (!closed) throw new UsageError('missing "');
    } else if (c === '\\') {
      if (i + 1 >= text.length) throw new UsageError('dangling \\');
      if (text[++i] === '\n') continue; // a backslash-newline is dropped
      word += text[i]!;
      inWord = true;
    } else {
      word += c;
      inWord = true;
    }
  }
  endCommand();
  return commands;
}

/** A single argument that is a whole command line rather than a command name. */
export function isCommandLine(arg: string): boolean {
  return /[\s;'"#\\]/.test(arg);
}
