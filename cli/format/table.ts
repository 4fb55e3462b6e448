// virsh's vsh-table layout: every cell is preceded by one space; all but the last
// column are padded to the column's width plus two spaces; the header is followed
// by a line of dashes as long as the sum of (width + 3) over all columns. In quiet
// mode (-q) virsh prints no header and the widths ignore it.

/** Control characters are shown escaped, as vshTableSafeEncode does. */
export function safeCell(text: string): string {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) {
      return text.replace(/[\x00-\x1f\x7f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
    }
  }
  return text; // the common case: nothing to escape, no new string
}

/** Characters (code points), as virsh counts them: UTF-16 units minus low surrogates. */
export function width(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xdc00 && c <= 0xdfff && i > 0) {
      const p = text.charCodeAt(i - 1);
      if (p >= 0xd800 && p <= 0xdbff) n--;
    }
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

/** virsh's "%-15s %s" info lines (pool-info, vol-info). */
export function infoLine(label: string, value: string): string {
  return `${label.padEnd(15)} ${value}\n`;
}
