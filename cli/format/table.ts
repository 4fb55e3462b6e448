// virsh's vsh-table layout: every cell is preceded by one space; all but the last
// column are padded to the column's width plus two spaces; the header is followed
// by a line of dashes as long as the sum of (width + 3) over all columns. In quiet
// mode (-q) virsh prints no header and the widths ignore it.
import { glibcPrintable } from './printable.js';

/**
 * A cell as virsh 9.0's vshTableSafeEncode writes it: an ASCII control character as `\xNN`; a
 * backslash followed by `x` as `\x5c`, so that a name holding the text `\x09` cannot pass for
 * one holding a tab; and each UTF-8 byte of a character glibc's iswprint rejects (U+2028, an
 * unassigned code point) as `\xff`: virsh formats the byte as a (signed) char, so 0xe2 becomes
 * ffffffe2, cut to `\xff` by its four-character buffer. Every other character is kept.
 */
export function safeCell(text: string): string {
  let i = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f || c === 0x5c) break;
  }
  if (i === text.length) return text; // the common case: printable ASCII without a backslash
  let out = text.slice(0, i);
  while (i < text.length) {
    const cp = text.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    i += ch.length;
    if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp === 0x5c && text.charCodeAt(i) === 0x78) out += '\\x5c';
    else if (cp >= 0x80 && !glibcPrintable(cp)) out += '\\xff'.repeat(Buffer.byteLength(ch, 'utf8'));
    else out += ch;
  }
  return out;
}

/** East Asian wide and fullwidth ranges (Unicode EastAsianWidth W/F): two columns each. */
const WIDE: ReadonlyArray<readonly [number, number]> = [
  [0x1100, 0x115f], [0x231a, 0x231b], [0x2329, 0x232a], [0x23e9, 0x23ec], [0x23f0, 0x23f0], [0x23f3, 0x23f3],
  [0x25fd, 0x25fe], [0x2614, 0x2615], [0x2648, 0x2653], [0x267f, 0x267f], [0x2693, 0x2693], [0x26a1, 0x26a1],
  [0x26aa, 0x26ab], [0x26bd, 0x26be], [0x26c4, 0x26c5], [0x26ce, 0x26ce], [0x26d4, 0x26d4], [0x26ea, 0x26ea],
  [0x26f2, 0x26f3], [0x26f5, 0x26f5], [0x26fa, 0x26fa], [0x26fd, 0x26fd], [0x2705, 0x2705], [0x270a, 0x270b],
  [0x2728, 0x2728], [0x274c, 0x274c], [0x274e, 0x274e], [0x2753, 0x2755], [0x2757, 0x2757], [0x2795, 0x2797],
  [0x27b0, 0x27b0], [0x27bf, 0x27bf], [0x2b1b, 0x2b1c], [0x2b50, 0x2b50], [0x2b55, 0x2b55],
  [0x2e80, 0x303e], [0x3041, 0x33ff], [0x3400, 0x4dbf], [0x4e00, 0x9fff], [0xa000, 0xa4cf], [0xa960, 0xa97f],
  [0xac00, 0xd7a3], [0xf900, 0xfaff], [0xfe10, 0xfe19], [0xfe30, 0xfe6f], [0xff00, 0xff60], [0xffe0, 0xffe6],
  [0x16fe0, 0x16fe4], [0x17000, 0x18aff], [0x1b000, 0x1b2ff], [0x1f004, 0x1f004], [0x1f0cf, 0x1f0cf],
  [0x1f18e, 0x1f18e], [0x1f191, 0x1f19a], [0x1f200, 0x1f251], [0x1f300, 0x1f64f], [0x1f680, 0x1f6ff],
  [0x1f900, 0x1f9ff], [0x1fa70, 0x1faff], [0x20000, 0x2fffd], [0x30000, 0x3fffd],
];

const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}\u1160-\u11ff\u200b]$/u;

function isWide(cp: number): boolean {
  let lo = 0;
  let hi = WIDE.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const [from, to] = WIDE[mid]!;
    if (cp < from) hi = mid - 1;
    else if (cp > to) lo = mid + 1;
    else return true;
  }
  return false;
}

/**
 * Terminal columns, as virsh's vshTableSafeEncode counts them: 0 for combining and format
 * characters (but the soft hyphen), 2 for East Asian wide ones, 1 for the rest.
 */
export function width(text: string): number {
  let i = 0;
  while (i < text.length && text.charCodeAt(i) < 0x300) i++;
  if (i === text.length) return text.length; // the common case: no character needs a look-up
  let n = i;
  for (const ch of text.slice(i)) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x300) n++; // Latin (the soft hyphen, a format character, still takes a column)
    else if (ZERO_WIDTH.test(ch)) continue;
    else n += isWide(cp) ? 2 : 1;
  }
  return n;
}

const SPACES = ' '.repeat(256);

export function spaces(n: number): string {
  return n <= SPACES.length ? SPACES.slice(0, n) : ' '.repeat(n);
}

export function renderTable(header: string[], rows: string[][], quiet = false): string {
  const columns = header.length;
  const widths = header.map((h) => (quiet ? 0 : width(h)));
  // cells escaped in place and their widths kept: each is measured once
  const cellWidths = new Array<number>(rows.length * columns);
  const cells: string[][] = new Array<string[]>(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const src = rows[r]!;
    const row = new Array<string>(src.length);
    for (let i = 0; i < src.length; i++) {
      const cell = safeCell(src[i]!);
      row[i] = cell;
      if (i < columns) {
        const w = width(cell);
        cellWidths[r * columns + i] = w;
        if (w > widths[i]!) widths[i] = w;
      }
    }
    for (let i = src.length; i < columns; i++) cellWidths[r * columns + i] = 0;
    cells[r] = row;
  }
  const line = (row: string[], rowWidths: (i: number) => number): string => {
    let out = '';
    const last = row.length - 1;
    for (let i = 0; i < last; i++) out += ` ${row[i]}${spaces(widths[i]! - rowWidths(i) + 2)}`;
    if (last >= 0) out += ` ${row[last]}`;
    return `${out}\n`;
  };
  let text = '';
  if (!quiet) {
    text += line(header, (i) => width(header[i]!));
    text += `${'-'.repeat(widths.reduce((sum, w) => sum + w + 3, 0))}\n`;
  }
  for (let r = 0; r < cells.length; r++) {
    const base = r * columns;
    text += line(cells[r]!, (i) => cellWidths[base + i]!);
  }
  return text;
}

/**
 * C's printf "%-Ns": pads to N bytes, not characters, so a name with multi-byte UTF-8
 * characters gets fewer spaces than its length in characters would give (virsh 9.0 prints
 * `pool-list --name` so).
 */
export function padBytes(text: string, bytes: number): string {
  const length = Buffer.byteLength(text, 'utf8');
  return length >= bytes ? text : text + spaces(bytes - length);
}

/** virsh's "%-15s %s" info lines (pool-info, vol-info). */
export function infoLine(label: string, value: string): string {
  return `${label.padEnd(15)} ${value}\n`;
}
