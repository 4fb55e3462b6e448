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
function width(text: string): number {
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

export function renderTable(header: string[], rows: string[][], quiet = false): string {
  const cells = rows.map((r) => r.map(safeCell));
  const widths = header.map((h) => (quiet ? 0 : width(h)));
  for (const r of cells) {
    for (let i = 0; i < widths.length; i++) {
      const w = width(r[i] ?? '');
      if (w > widths[i]!) widths[i] = w;
    }
  }
  const line = (row: string[]): string => {
    let out = '';
    row.forEach((cell, i) => {
      out += ` ${cell}`;
      if (i < row.length - 1) out += ' '.repeat(widths[i]! - width(cell) + 2);
    });
    return `${out}\n`;
  };
  let text = '';
  if (!quiet) {
    text += line(header);
    text += `${'-'.repeat(widths.reduce((sum, w) => sum + w + 3, 0))}\n`;
  }
  for (const row of cells) text += line(row);
  return text;
}

/** virsh's "%-15s %s" info lines (pool-info, vol-info). */
export function infoLine(label: string, value: string): string {
  return `${label.padEnd(15)} ${value}\n`;
}
