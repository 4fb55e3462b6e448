// Sizes on the command line, as virsh reads them (virScaleInteger): an integer
// with an optional unit. No unit = bytes (or the command's default scale);
// b/byte/bytes = 1; k/KiB = 1024, KB = 1000, and so on up to E; case-insensitive.
import { emptyOptionError, UsageError } from './errors.js';

export const MAX_SIZE = (1n << 63n) - 1n;

const POWERS = ['k', 'm', 'g', 't', 'p', 'e'];

/** Multiplier for a unit suffix, or undefined when the suffix is unknown. */
export function unitScale(suffix: string, defaultScale = 1n): bigint | undefined {
  const s = suffix.toLowerCase();
  if (s === '') return defaultScale;
  if (s === 'b' || s === 'byte' || s === 'bytes') return 1n;
  const power = POWERS.indexOf(s[0]!);
  if (power < 0) return undefined;
  const rest = s.slice(1);
  let base: bigint;
  if (rest === '' || rest === 'ib') base = 1024n;
  else if (rest === 'b') base = 1000n;
  else return undefined;
  return base ** BigInt(power + 1);
}

const UNITS = 'b, K, KiB, KB, M, MiB, MB, G, GiB, GB, T, TiB, TB, P, PiB, PB, E, EiB, EB';

/**
 * Parses "10G", "512", "1KB" into bytes. Errors start as virsh's (virshVolSize:
 * "Malformed size 10XB", then libvirt's "invalid argument: unknown suffix 'XB'") and go on to
 * say which option (`option`), what is wrong and what is allowed.
 */
export function parseSize(text: string, option = 'size', defaultScale = 1n): bigint {
  // virsh: vshCommandOptStringReq refuses an empty value before the size is looked at
  if (text === '') throw emptyOptionError(option);
  return parseSizeValue(text, option, defaultScale);
}

/** The first character of `text` outside ASCII, as U+XXXX, or undefined. */
function firstNonAscii(text: string): string | undefined {
  const c = /[^\x00-\x7f]/u.exec(text)?.[0];
  return c === undefined ? undefined : `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** parseSize for a value already taken apart (vol-resize's, after its '-'): '' is malformed. */
export function parseSizeValue(text: string, option: string, defaultScale = 1n): bigint {
  const malformed = (why: string): UsageError => new UsageError(`Malformed size ${text}`, why);
  // strtoull: leading blanks (C's isspace, ASCII only: not a no-break space, which JavaScript's
  // \s would take) and a '+' are taken, then digits; the rest is the unit (no blank before it)
  const m = /^[ \t\n\v\f\r]*\+?([0-9]+)([\s\S]*)$/.exec(text);
  if (!m) {
    // a no-break space or a full-width digit looks like what is taken: name it
    const odd = firstNonAscii(text);
    throw malformed(`invalid argument: <${option}> must be a non-negative integer with an optional unit (${UNITS})${odd ? `; ${odd} is not an ASCII digit or blank` : ''}`);
  }
  const scale = unitScale(m[2]!, defaultScale);
  if (scale === undefined) {
    const odd = firstNonAscii(m[2]!);
    const why = /^\s/.test(m[2]!) ? ': no blank may come between the number and its unit' : odd ? `: ${odd} is not an ASCII letter` : '';
    throw malformed(`invalid argument: unknown suffix '${m[2]}' in <${option}>${why}; allowed: ${UNITS}`);
  }
  const value = BigInt(m[1]!) * scale;
  if (value > MAX_SIZE) throw malformed(`numerical overflow: value too large: ${text} (<${option}> is at most ${MAX_SIZE} bytes)`);
  return value;
}

/** The largest value of virsh's unsigned options (vshCommandOptULongLong: ULLONG_MAX). */
export const MAX_ULLONG = (1n << 64n) - 1n;

/**
 * A non-negative integer option such as --offset or --timeout, read as virsh reads it
 * (virStrToLong_ullp / virStrToLong_i, base 10): leading blanks and a '+' are taken, nothing may
 * follow the digits. At most `max`.
 */
export function parseCount(text: string, option: string, max = MAX_SIZE): bigint {
  const m = /^[ \t\n\v\f\r]*\+?(\d+)$/.exec(text);
  if (!m || BigInt(m[1]!) > max) throw new UsageError(`Numeric value '${text}' for <${option}> option is malformed or out of range`);
  return BigInt(m[1]!);
}

/**
 * An unsigned option virsh reads with vshCommandOptULongLongWrap (virStrToLong_ull, as
 * strtoull does): like parseCount, but a '-' is taken too and wraps modulo 2^64, so `-1` is
 * 2^64-1 and `-0` is 0. virsh 9.0 reads vol-upload's and vol-download's --length so: `--length -1`
 * transfers everything.
 */
export function parseWrappingCount(text: string, option: string): bigint {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)$/.exec(text);
  const magnitude = m ? BigInt(m[2]!) : undefined;
  if (magnitude === undefined || magnitude > MAX_ULLONG) throw new UsageError(`Numeric value '${text}' for <${option}> option is malformed or out of range`);
  return m![1] === '-' && magnitude > 0n ? MAX_ULLONG + 1n - magnitude : magnitude;
}
