// JSON output where 64-bit sizes (bigint) are printed as exact JSON numbers.

const MARK = '\u0000bigint:';

/** `indent` 0: the whole value on one line (a stream's JSON lines). */
export function toJson(value: unknown, indent = 2): string {
  const text = JSON.stringify(
    value,
    (_k, v: unknown) => (typeof v === 'bigint' ? `${MARK}${v.toString()}` : v),
    indent,
  );
  return `${text.replace(new RegExp(`"\\\\u0000bigint:(-?\\d+)"`, 'g'), '$1')}\n`;
}
