// A one-line progress bar for uploads and downloads, drawn on stderr only when
// it is a terminal.
import type { OutputStream } from '../command.js';
import { prettySize } from './size.js';

export interface Progress {
  update(done: bigint): void;
  finish(): void;
}

const NONE: Progress = { update() {}, finish() {} };

export function progressLine(label: string, done: bigint, total: bigint, width = 30): string {
  if (total <= 0n) return `${label} ${prettySize(done)}`;
  const clamped = done > total ? total : done;
  const pct = Number((clamped * 100n) / total);
  const filled = Number((clamped * BigInt(width)) / total);
  const bar = '='.repeat(filled) + (filled < width ? '>' : '') + ' '.repeat(Math.max(0, width - filled - 1));
  return `${label} [${bar}] ${String(pct).padStart(3)}% ${prettySize(clamped)} / ${prettySize(total)}`;
}

export function progressBar(stream: OutputStream, label: string, total: bigint): Progress {
  if (!stream.isTTY) return NONE;
  let last = 0;
  let shown = '';
  const draw = (done: bigint): void => {
    const line = progressLine(label, done, total);
    stream.write(`\r${line}${' '.repeat(Math.max(0, shown.length - line.length))}`);
    shown = line;
  };
  return {
    update(done) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      draw(done);
    },
    finish() {
      if (shown) stream.write('\n');
    },
  };
}
