// JSON output where 64-bit sizes (bigint) are printed as exact JSON numbers.

const MARK = '\u0000bigint:';

export function toJson(value: unknown): string {
  const text = JSON.stringify(
    value,
    (_k, v: unknown) => (typeof v === 'bigint' ? `${MARK}${v.toString()}` : v),
    2,
  );
  return `${text.replace(new RegExp(`"\\\\u0000bigint:(-?\\d+)"`, 'g'), '$1')}\n`;
}
