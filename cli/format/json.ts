// JSON output where 64-bit sizes (bigint) are printed as exact JSON numbers.
//
// Written out here rather than by JSON.stringify with a replacer: a replacer can only turn a
// bigint into a string, and marking that string to unquote it afterwards also unquotes any
// string value that happens to look like the mark. The layout is JSON.stringify's: `indent`
// spaces per level, `"key": value`, `[]` and `{}` for empty ones; 0 is one line with no spaces.

/** `indent` 0: the whole value on one line (a stream's JSON lines). */
export function toJson(value: unknown, indent = 2): string {
  return `${write(value, indent, '') ?? 'null'}\n`;
}

/** The value's JSON text, or undefined where JSON.stringify leaves it out (undefined, a function). */
function write(value: unknown, indent: number, pad: string): string | undefined {
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const withToJson = value as { toJSON?: () => unknown };
  if (typeof withToJson.toJSON === 'function') return write(withToJson.toJSON(), indent, pad);
  const inner = pad + ' '.repeat(indent);
  const join = (parts: string[], open: string, close: string): string => {
    if (parts.length === 0) return `${open}${close}`;
    if (indent === 0) return `${open}${parts.join(',')}${close}`;
    return `${open}\n${inner}${parts.join(`,\n${inner}`)}\n${pad}${close}`;
  };
  if (Array.isArray(value)) return join(value.map((v: unknown) => write(v, indent, inner) ?? 'null'), '[', ']');
  const parts: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    const text = write(v, indent, inner);
    if (text !== undefined) parts.push(`${JSON.stringify(key)}:${indent === 0 ? '' : ' '}${text}`);
  }
  return join(parts, '{', '}');
}
