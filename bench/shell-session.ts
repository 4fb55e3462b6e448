// One interactive shell process (virsh, or cisternctl) reading commands from a pipe, on one
// connection: `batch(commands)` writes all commands to its stdin at once, followed by
// `echo <marker>`, and resolves when the marker comes back. The time is what the tool needs to
// execute the commands back to back, with no process start and no connection set-up: libvirt's
// fastest path, and the same path for cisternctl when both run as sessions. Then (untimed)
// `echo --err <marker>`, which both shells print on stderr as 'error: <marker>': once it is
// back, every error the batch's commands wrote on stderr is too, with no pause on a timer (a
// 20 ms pause after each command left virsh and libvirtd idle between the control workload's
// commands, which doubled libvirt's per-command latency there, while Cistern's calls ran back
// to back). The marker is looked for in what each chunk adds (and the few characters before
// it where a split marker starts), not in the whole output again: virsh writes a line per
// command, mostly read as a chunk each, and a rescan per chunk is quadratic: 1 s of the bench's
// own CPU, counted in libvirt's time, during 5,000 vol-create-as.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export interface BatchResult {
  ms: number;
  stdout: string;
  errors: string[];
}

export class ShellSession {
  readonly proc: ChildProcessWithoutNullStreams;
  /** The batch's stdout so far, in chunks (joined once, at its end). */
  private chunks: string[] = [];
  private outLength = 0;
  /** The end of the output already searched: a marker line split over chunks starts in it. */
  private tail = '';
  /** Where the batch's marker line starts in its output, once found. */
  private found = -1;
  private err = '';
  private serial = 0;
  private waiter: { marker: string; resolve: () => void } | undefined;
  private errWaiter: { line: string; resolve: () => void } | undefined;
  private exited = false;
  private readonly prompt: string | undefined;

  /**
   * `command args` must run the shell quietly (-q: no headers, no blank line after a command),
   * so that `echo` prints the marker alone. `prompt`: what the shell prints before each line
   * on a pipe (virsh does, cisternctl does not).
   */
  constructor(command: string, args: string[], opts: { prompt?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.prompt = opts.prompt;
    this.proc = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    this.proc.stdout.setEncoding('utf8');
    this.proc.stderr.setEncoding('utf8');
    this.proc.stdout.on('data', (s: string) => this.append(s));
    this.proc.stderr.on('data', (s: string) => {
      this.err += s;
      if (this.errWaiter && this.err.includes(this.errWaiter.line)) this.errWaiter.resolve();
    });
    this.proc.once('exit', () => {
      this.exited = true;
      this.waiter?.resolve();
      this.errWaiter?.resolve();
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /**
   * Keeps `s` and looks for the batch's marker line in it: preceded by a newline or the start
   * of the output, followed by a newline, the prompt, or the end of what has come so far.
   */
  private append(s: string): void {
    this.chunks.push(s);
    this.outLength += s.length;
    const marker = this.waiter?.marker;
    if (marker === undefined || this.found >= 0) return;
    // the output starts as if after a newline (at -1): a marker first in it is a line too; the
    // tail is always the end of that newline and the output, so positions stay the output's
    const window = (this.outLength === s.length ? '\n' : '') + this.tail + s;
    const windowStart = this.outLength - window.length;
    const at = `\n${marker}`;
    for (const end of this.prompt ? ['\n', this.prompt] : ['\n']) {
      const i = window.indexOf(at + end);
      if (i >= 0) return this.markerAt(windowStart + i + 1);
    }
    if (window.endsWith(at)) return this.markerAt(this.outLength - marker.length);
    this.tail = window.slice(-(at.length + (this.prompt?.length ?? 1)));
  }

  private markerAt(start: number): void {
    this.found = start;
    this.waiter?.resolve();
  }

  async batch(commands: string[]): Promise<BatchResult> {
    if (this.exited) throw new Error(`${this.proc.spawnfile} (pid ${this.pid}) has exited: ${this.err}`);
    const marker = `__CISTERN_BENCH_${process.pid}_${++this.serial}__`;
    this.chunks = [];
    this.outLength = 0;
    this.tail = '';
    this.found = -1;
    this.err = '';
    const done = new Promise<void>((resolve) => {
      this.waiter = { marker, resolve };
    });
    const errLine = `error: ${marker}\n`;
    const errDone = new Promise<void>((resolve) => {
      this.errWaiter = { line: errLine, resolve };
    });
    const text = `${commands.join('\n')}\necho ${marker}\necho --err ${marker}\n`;
    const t0 = process.hrtime.bigint();
    this.proc.stdin.write(text);
    await done;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    this.waiter = undefined;
    // stderr is a separate pipe: the marker the shell wrote there after the batch says it has
    // all been read (not timed)
    await errDone;
    this.errWaiter = undefined;
    if (this.exited) throw new Error(`${this.proc.spawnfile} (pid ${this.pid}) exited during a batch: ${this.err}`);
    const stdout = this.found >= 0 ? this.chunks.join('').slice(0, this.found) : this.chunks.join('');
    const errors = this.err
      .slice(0, this.err.indexOf(errLine))
      .split('\n')
      .filter((l) => /^error:/.test(l));
    return { ms, stdout, errors };
  }

  /** Like batch() but throws when the shell reported an error. */
  async run(commands: string[]): Promise<BatchResult> {
    const r = await this.batch(commands);
    if (r.errors.length > 0) {
      throw new Error(`${this.proc.spawnfile} reported ${r.errors.length} error(s), first: ${r.errors.slice(0, 3).join(' | ')}`);
    }
    return r;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.stdin.end('quit\n');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(t);
  }
}
