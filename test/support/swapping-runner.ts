// A runner for the name-swap tests: it runs the real tools (ExecRunner), and before the first
// command `when` accepts it runs `swap` once: whoever can write in a pool directory swapping a
// name the agent checked at the moment the tool's command line is seen, deterministically.
// With `trace`, qemu-img runs under strace and every path it opens is recorded.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { CommandRunner, RunOptions, RunResult } from '../../libs/backends/runner.js';

export class SwappingRunner implements CommandRunner {
  private readonly real = new ExecRunner();
  swapped = 0;
  /** every path qemu-img opened (with `trace`), in order */
  readonly opened: string[] = [];
  constructor(
    private readonly when: (argv: readonly string[]) => boolean,
    private readonly swap: () => void,
    private readonly options: { trace?: boolean } = {},
  ) {}

  async run(argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    if (this.swapped === 0 && this.when(argv)) {
      this.swap();
      this.swapped++;
    }
    if (!this.options.trace || argv[0] !== 'qemu-img') return this.real.run(argv, options);
    const dir = mkdtempSync(join(tmpdir(), 'cistern-strace-'));
    const log = join(dir, 'strace.log');
    try {
      return await this.real.run(['strace', '-f', '-qq', '-e', 'trace=open,openat,openat2', '-o', log, '--', ...argv], options);
    } finally {
      for (const line of readFileSync(log, 'utf8').split('\n')) {
        const m = /open(?:at2?)?\((?:AT_FDCWD|\d+)?,? ?"([^"]*)"/.exec(line);
        if (m) this.opened.push(m[1]!);
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
