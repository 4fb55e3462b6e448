// virsh's vsh-table layout: every cell is preceded by one space; all but the last
// column are padded to the column's width plus two spaces; the header is followed
// by a line of dashes as long as the sum of (width + 3) over all columns. In quiet
// mode (-q) virsh prints no header and the widths ignore it.

/** Control characters are shown escaped, as vshTableSafeEncode does. */
export function safeCell(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function width(text: string): number {
  return [...text].length;
}

export function renderTable(header: string[], rows: string[][], quiet = false): string {
  const cells = rows.map((r) => r.map(safeCell));
  const widths = header.map((h, i) => Math.max(quiet ? 0 : width(h), ...cells.map((r) => width(r[i] ?? ''))));
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
