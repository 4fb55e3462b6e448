// Sizes on the command line, as virsh reads them (virScaleInteger): an integer
// with an optional unit. No unit = bytes (or the command's default scale);
// b/byte/bytes = 1; k/KiB = 1024, KB = 1000, and so on up to E; case-insensitive.
import { UsageError } from './errors.js';

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

/**
 * Parses "10G", "512", "1KB" into bytes. `what` names the value in the error
 * message, which follows virsh ("Malformed size 10X").
 */
export function parseSize(text: string, what = 'size', defaultScale = 1n): bigint {
  const m = /^\s*\+?(\d+)([A-Za-z]*)$/.exec(text); // virsh: no blank between number and unit
  if (!m) throw new UsageError(`Malformed ${what} ${text}: expected a non-negative integer with an optional unit (b, K, KiB, KB, M, MiB, MB, G, GB, T, TB, P, PB, E, EB)`);
  const scale = unitScale(m[2]!, defaultScale);
  if (scale === undefined) {
    throw new UsageError(`Malformed ${what} ${text}: unknown suffix '${m[2]}'; allowed: b, K, KiB, KB, M, MiB, MB, G, GB, T, TB, P, PB, E, EB`);
  }
  const value = BigInt(m[1]!) * scale;
  if (value > MAX_SIZE) throw new UsageError(`Malformed ${what} ${text}: larger than ${MAX_SIZE} bytes`);
  return value;
}

/** A non-negative integer option such as --offset or --timeout. */
export function parseCount(text: string, option: string): bigint {
  if (!/^\d+$/.test(text)) throw new UsageError(`Numeric value '${text}' for <${option}> option is malformed or out of range`);
  const v = BigInt(text);
  if (v > MAX_SIZE) throw new UsageError(`Numeric value '${text}' for <${option}> option is malformed or out of range`);
  return v;
}
