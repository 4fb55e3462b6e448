// cisternctl as a process: stdout/stderr, Ctrl-C, exit code. cli/main.ts runs it (tsc output);
// the bundle (scripts/bundle-cli.mjs) exports it for its launcher.
import { runCli } from './run.js';

/** Runs cisternctl with `argv` (default: the process's arguments) and sets process.exitCode. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  // `cisternctl pool-list | head`: a closed pipe ends the output, not the program with a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }

  const controller = new AbortController();
  let interrupted = false;
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    controller.abort();
  });

  const code = await runCli(argv, {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    signal: controller.signal,
    // `echo 'pool-list' | cisternctl`: commands come on stdin, as virsh reads them
    readStdin: process.stdin.isTTY ? undefined : readAll,
  });
  process.exitCode = code;
  return code;
}

async function readAll(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
