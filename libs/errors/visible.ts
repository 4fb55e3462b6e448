// Text that echoes a request's values (an error message, a log line) made safe to show on a
// terminal: control characters (ESC starts a terminal command, C1's U+009B is one by itself),
// unpaired surrogates and invisible format characters (bidi overrides such as U+202E, which
// reorder what follows them; zero-width spaces; U+2028/U+2029) are written as escapes, \x1b,
// \x9b, \u202e. The escapes are plain ASCII, so escaping twice changes nothing.

/** C0 and C1 controls with DEL, and UTF-16 code units that pair with nothing. */
const CONTROL_OR_LONE_SURROGATE = /[\x00-\x1f\x7f-\x9f]|[\uD800-\uDFFF]/u;

/** Unicode format characters and line/paragraph separators, but the joiners emoji and some scripts need. */
const INVISIBLE_FORMAT = /(?![\u200C\u200D])[\p{Cf}\p{Zl}\p{Zp}]/u;

const HIDDEN = new RegExp(`${CONTROL_OR_LONE_SURROGATE.source}|${INVISIBLE_FORMAT.source}`, 'gu');

/** `c` as an escape: \xNN up to U+009F, \uNNNN, or \u{NNNNN} beyond the BMP. */
function escape(c: string): string {
  const code = c.codePointAt(0)!;
  if (code > 0xffff) return `\\u{${code.toString(16)}}`;
  return code > 0x9f ? `\\u${code.toString(16).padStart(4, '0')}` : `\\x${code.toString(16).padStart(2, '0')}`;
}

/**
 * `text` with its hidden characters escaped. With `keepLayout`, tabs and line breaks are kept
 * (a message of several lines, such as a schema validator's report); without it they are
 * escaped too (a single value quoted inside a message).
 */
export function visibleText(text: string, keepLayout = false): string {
  return text.replace(HIDDEN, (c) => (keepLayout && (c === '\n' || c === '\t') ? c : escape(c)));
}
