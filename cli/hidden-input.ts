// A line read from the terminal without showing it: a secret's value (virsh's virGetPassword).
// The terminal goes to raw mode, which stops its echo; the bytes are then read as typed.
// cisternctl's own reader of its shell (readline) is set aside meanwhile, so that it neither
// shows the characters nor takes them for the next command.
import { StringDecoder } from 'node:string_decoder';

/** What of stdin the read uses: a TTY stream. */
export interface RawInput {
  isRaw?: boolean;
  setRawMode(raw: boolean): unknown;
  on(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  off(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  listeners(event: 'keypress'): Array<(...args: unknown[]) => void>;
  removeListener(event: 'keypress', listener: (...args: unknown[]) => void): unknown;
  on(event: 'keypress', listener: (...args: unknown[]) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

/** A stream the question can be written to. */
export interface QuestionOutput {
  isTTY?: boolean;
  write(text: string): unknown;
}

/**
 * Where the question goes: stdout on a terminal; stderr when stdout is redirected, so that
 * `secret-set-value --interactive > out.txt` still asks on the screen and puts no question in
 * the file (getpass, which virsh uses, asks on the terminal itself).
 */
export function hiddenQuestionOutput<T extends QuestionOutput>(stdout: T, stderr: T): T {
  return stdout.isTTY ? stdout : stderr;
}

const ENTER = new Set(['\r', '\n']);
const CTRL_C = '\x03';
const CTRL_D = '\x04';
const ERASE = new Set(['\x7f', '\b']);

/**
 * Shows `question`, reads one line with echo off, then ends the line on the output. Undefined
 * on Ctrl-C, on Ctrl-D at an empty line, and when `signal` aborts.
 */
export function readHiddenLine(input: RawInput, output: { write(text: string): unknown }, question: string, signal?: AbortSignal): Promise<string | undefined> {
  if (signal?.aborted) return Promise.resolve(undefined);
  output.write(question);
  const wasRaw = input.isRaw === true;
  // readline's key handler would echo what is typed and keep it as its next line
  const keyHandlers = input.listeners('keypress');
  for (const h of keyHandlers) input.removeListener('keypress', h);
  input.setRawMode(true);
  return new Promise((resolve) => {
    let typed = '';
    // one decoder across reads: a character's bytes may come in two (a paste split on the way)
    const decoder = new StringDecoder('utf8');
    const finish = (answer: string | undefined): void => {
      input.off('data', onData);
      signal?.removeEventListener('abort', aborted);
      input.setRawMode(wasRaw);
      for (const h of keyHandlers) input.on('keypress', h);
      if (keyHandlers.length === 0) input.pause();
      output.write('\n');
      resolve(answer);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of typeof chunk === 'string' ? chunk : decoder.write(chunk)) {
        if (ENTER.has(ch)) return finish(typed);
        if (ch === CTRL_C || (ch === CTRL_D && typed === '')) return finish(undefined);
        if (ERASE.has(ch)) typed = [...typed].slice(0, -1).join('');
        else if (ch >= ' ' || ch === '\t') typed += ch;
      }
    };
    const aborted = (): void => finish(undefined);
    signal?.addEventListener('abort', aborted, { once: true });
    input.on('data', onData);
    input.resume();
  });
}
