// cisternctl as a process: stdout/stderr, Ctrl-C, exit code. cli/main.ts runs it (tsc output);
// the bundle (scripts/bundle-cli.mjs) exports it for its launcher.
import { createInterface, type Interface } from 'node:readline';
import type { CommandInput, Terminal } from './command.js';
import { runCli } from './run.js';
import { hiddenQuestionOutput, readHiddenLine, type QuestionOutput, type RawInput } from './hidden-input.js';

/** Runs cisternctl with `argv` (default: the process's arguments) and sets process.exitCode. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  // `cisternctl pool-list | head`: a closed pipe ends the output, not the program with a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }

  // Ctrl-C interrupts the running command (pool-event, transfers); a second one, or one at the
  // interactive prompt, ends cisternctl as the signal would.
  let command = new AbortController();
  let running = true;
  const interrupt = (): void => {
    if (!running || command.signal.aborted) process.exit(130);
    command.abort();
  };
  process.on('SIGINT', interrupt);

  let session: Interface | undefined;
  const terminal = stdinTerminal(() => session);
  const code = await runCli(argv, {
    ...(terminal ? { terminal } : {}),
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    signal: command.signal,
    openInput: () => {
      running = false;
      const input = stdinInput(interrupt, {
        starts: () => {
          command = new AbortController();
          running = true;
          return command.signal;
        },
        ends: () => {
          running = false;
        },
      });
      session = input.reader;
      return input;
    },
  });
  process.exitCode = code;
  return code;
}

/**
 * stdin as the session's lines. A terminal gets readline's line editing and history, and its
 * Ctrl-C (which readline reads as a key, not a signal) goes to `interrupt`; a pipe is read as
 * plain lines, without prompts.
 */
function stdinInput(
  interrupt: () => void, command: { starts: () => AbortSignal; ends: () => void },
): CommandInput & { reader: Interface } {
  const terminal = !!process.stdin.isTTY && !!process.stdout.isTTY;
  const rl = createInterface({
    input: process.stdin,
    ...(terminal ? { output: process.stdout, terminal: true, historySize: 1000 } : { terminal: false }),
    crlfDelay: Infinity,
  });
  if (terminal) rl.on('SIGINT', interrupt);
  return {
    lines: rl,
    ...(terminal ? {
      prompt: (text: string) => {
        rl.setPrompt(text);
        rl.prompt();
      },
    } : {}),
    commandStarts: command.starts,
    commandEnds: command.ends,
    close: () => rl.close(),
    reader: rl,
  };
}

/**
 * stdin as pool-edit's terminal, when it is one (virsh asks its questions only then). The
 * session's reader, if any, stops reading while an editor runs, and it reads the answer to a
 * question itself, so that the answer is not taken for the next command.
 */
function stdinTerminal(session: () => Interface | undefined): Terminal | undefined {
  if (!process.stdin.isTTY) return undefined;
  const stdin = process.stdin;
  return {
    async lend(fn) {
      const reader = session();
      const raw = stdin.isRaw;
      reader?.pause();
      // the editor gets the terminal as a shell would give it: not in readline's raw mode
      if (raw) stdin.setRawMode(false);
      try {
        return await fn();
      } finally {
        if (raw) stdin.setRawMode(true);
        reader?.resume();
      }
    },
    askHidden(question, signal) {
      return readHiddenLine(stdin as unknown as RawInput, hiddenQuestionOutput<QuestionOutput>(process.stdout, process.stderr), question, signal);
    },
    ask(question, signal) {
      if (signal?.aborted) return Promise.resolve(undefined);
      const reader = session() ?? createInterface({ input: stdin, terminal: false });
      // a terminal reader draws its prompt itself (and would clear a line written before it)
      const terminalReader = (reader as Interface & { terminal?: boolean }).terminal === true;
      if (!terminalReader) process.stdout.write(question);
      return new Promise((resolve) => {
        const finish = (answer: string | undefined): void => {
          reader.off('close', ended);
          signal?.removeEventListener('abort', aborted);
          // a reader made for this question lets go of stdin, so cisternctl can exit
          if (reader !== session()) reader.close();
          resolve(answer);
        };
        const ended = (): void => finish(undefined);
        // the question is withdrawn with the signal, so the next line is a command again
        const aborted = (): void => finish(undefined);
        reader.once('close', ended);
        signal?.addEventListener('abort', aborted, { once: true });
        reader.question(terminalReader ? question : '', signal ? { signal } : {}, finish);
      });
    },
  };
}
