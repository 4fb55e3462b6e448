// virsh's -d LEVEL and -l FILE (vshDebug, vshError, vshOutputLogFile): messages at LEVEL or
// above go to stderr, and with -l to FILE too, one line each as
// `[YYYY.MM.DD HH:MM:SS cisternctl PID] LEVEL message`; every error line ('error: ...') is
// logged as ERROR, whatever the level. The file is opened for append (O_APPEND, as virsh's) and
// each line is one write, so the lines of two cisternctl logging to one file do not mix.
import { closeSync, openSync, writeSync } from 'node:fs';
import type { OutputStream } from './command.js';
import { UsageError } from './errors.js';
import { ERROR } from './global-values.js';
import { visibleText } from '../libs/errors/visible.js';

const LEVEL_NAMES = ['DEBUG', 'INFO', 'NOTICE', 'WARNING', 'ERROR'];

export class Diagnostics {
  /** stderr as the commands write to it, its error lines also logged. */
  readonly stderr: OutputStream;
  private pending = '';

  private constructor(private readonly out: OutputStream, readonly level: number, private readonly fd: number | undefined) {
    this.stderr = {
      write: (text: string) => {
        this.logErrors(text);
        return out.write(text);
      },
      ...(out.isTTY !== undefined ? { isTTY: out.isTTY } : {}),
    };
  }

  /** Opens the log (virsh's words when it cannot: the path is not shown, as virsh shows none). */
  static open(stderr: OutputStream, level = ERROR, logPath?: string): Diagnostics {
    let fd: number | undefined;
    if (logPath !== undefined) {
      try {
        fd = openSync(logPath, 'a', 0o644);
      } catch {
        throw new UsageError('failed to open the log file. check the log file path');
      }
    }
    return new Diagnostics(stderr, level, fd);
  }

  /** vshDebug: `text` (one line) on stderr and in the log, when `level` is at least -d's. */
  debug(level: number, text: string): void {
    if (level < this.level) return;
    // option values are what was typed: shown as error lines are (libs/errors/visible.ts)
    text = visibleText(text, true);
    this.log(level, text);
    this.out.write(`${text}\n`);
  }

  close(): void {
    if (this.pending !== '') this.logErrors('\n');
    if (this.fd !== undefined) closeSync(this.fd);
  }

  private logErrors(text: string): void {
    if (this.fd === undefined) return;
    const lines = (this.pending + text).split('\n');
    this.pending = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith('error: ')) this.log(ERROR, line.slice('error: '.length));
    }
  }

  private log(level: number, text: string): void {
    if (this.fd === undefined) return;
    const d = new Date();
    const two = (n: number): string => String(n).padStart(2, '0');
    const stamp = `${d.getFullYear()}.${two(d.getMonth() + 1)}.${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
    writeSync(this.fd, `[${stamp} cisternctl ${process.pid}] ${LEVEL_NAMES[level]} ${text}\n`);
  }
}
