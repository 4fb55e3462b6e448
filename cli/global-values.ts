// The values of virsh's -d, -e, -k and -K, read and refused as virsh 9.0's virshParseArgv reads
// them (virStrToLong_i, its escape test), in its words: a script written for virsh gets the same
// answer from cisternctl. `given` is the option as the user wrote it ('-k' or
// '--keepalive-interval'), which virsh names in its errors.
import { UsageError } from './errors.js';

/** virsh's debug levels: VSH_ERR_DEBUG (0) to VSH_ERR_ERROR (4), the default. */
export const DEBUG = 0;
export const INFO = 1;
export const ERROR = 4;

/**
 * virStrToLong_i: C's strtol (leading white space and a sign allowed; base 0 also reads 0x hex
 * and 0 octal), the whole string consumed, at least one digit, within a C int. undefined when not.
 */
export function strtolInt(text: string, base: 0 | 10): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?)(.*)$/s.exec(text)!;
  let digits = m[2]!;
  let radix = 10;
  if (base === 0 && /^0[xX][0-9a-fA-F]/.test(digits)) {
    radix = 16;
    digits = digits.slice(2);
  } else if (base === 0 && /^0[0-7]/.test(digits)) {
    radix = 8;
    digits = digits.slice(1);
  }
  const pattern = radix === 16 ? /^[0-9a-fA-F]+$/ : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!pattern.test(digits)) return undefined;
  const value = (m[1] === '-' ? -1 : 1) * parseInt(digits, radix);
  return value < -2147483648 || value > 2147483647 ? undefined : value;
}

/** -k/-K: a whole number of 0 or more (seconds, or a count of unanswered pings). */
export function keepaliveValue(given: string, text: string): number {
  const n = strtolInt(text, 0);
  if (n === undefined) throw new UsageError(`Invalid value for option ${given}`);
  if (n < 0) throw new UsageError(`option ${given} requires a positive integer argument`);
  return n;
}

/**
 * -d: a number in base 10; one outside 0-4 is not an error in virsh but ignored with a warning
 * (returned as `warning`, the level left as it was).
 */
export function debugValue(given: string, text: string): { level: number } | { warning: string } {
  const n = strtolInt(text, 10);
  if (n === undefined) throw new UsageError(`option ${given} takes a numeric argument`);
  if (n < DEBUG || n > ERROR) return { warning: `ignoring debug level ${n} out of range [${DEBUG}-${ERROR}]` };
  return { level: n };
}

/**
 * -e: the console's escape sequence, one character other than '^', or '^' and a letter or one
 * of @[\]^_ (a control character). cisternctl has no console: the value is only checked. virsh
 * counts bytes, so a character UTF-8 writes in two ('é') is not one.
 */
export function escapeValue(text: string): string {
  const bytes = Buffer.byteLength(text);
  const ok = (bytes === 2 && text[0] === '^' && /^[A-Za-z@[\\\]^_]$/.test(text[1]!)) || (bytes === 1 && text !== '^');
  if (!ok) throw new UsageError(`Invalid string '${text}' for escape sequence`);
  return text;
}
