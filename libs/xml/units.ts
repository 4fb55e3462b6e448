// Sizes exactly as libvirt reads them (virScaleInteger): no unit = bytes; b, byte, bytes;
// K/KiB = 1024, KB = 1000, and so on up to E; case-insensitive; results above 2^63-1 refused.
import { InvalidArgumentError } from '../errors/errors.js';

export const MAX_SIZE_BYTES = (1n << 63n) - 1n;
const MAX_U64 = (1n << 64n) - 1n;
const EXPONENT: Record<string, bigint> = { k: 1n, m: 2n, g: 3n, t: 4n, p: 5n, e: 6n };
export const SIZE_UNITS_ALLOWED = 'none or b/byte/bytes, K/KiB/KB, M/MiB/MB, G/GiB/GB, T/TiB/TB, P/PiB/PB, E/EiB/EB (case-insensitive)';

function show(v: string): string {
  const s = v.replace(/[\x00-\x1f\x7f]/g, '?');
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

/** Bytes per unit, or undefined when the unit is not one libvirt knows. */
export function unitScale(unit: string | undefined): bigint | undefined {
  if (unit === undefined || unit === '') return 1n;
  const u = unit.toLowerCase();
  if (u === 'b' || u === 'byte' || u === 'bytes') return 1n;
  let base: bigint;
  if (u.length === 1 || u.slice(1) === 'ib') base = 1024n;
  else if (u.length === 2 && u[1] === 'b') base = 1000n;
  else return undefined;
  const exp = EXPONENT[u[0]!];
  return exp === undefined ? undefined : base ** exp;
}

/**
 * A number as C's strtol family reads it for libvirt (virStrToLong_*): ASCII blanks before it
 * are skipped, but nothing may follow it, a blank included. libvirt 9.0 takes
 * `<capacity> 1024</capacity>` and refuses `<capacity>1024 </capacity>` ("malformed capacity
 * element"), and likewise a mode, an owner, a port or a cipher size.
 */
export function withoutLeadingBlanks(text: string): string {
  return text.replace(/^[ \t\n\v\f\r]+/, '');
}

/**
 * Parses a libvirt size: `value` is a non-negative decimal integer, `unit` the unit attribute.
 * `field` names the element in error messages (e.g. "volume/capacity (line 4)").
 */
export function parseSize(value: string, unit: string | undefined, field: string): bigint {
  const text = typeof value === 'string' ? withoutLeadingBlanks(value) : '';
  if (!/^\+?[0-9]+$/.test(text) || text.replace(/^\+?0*/, '').length > 20) {
    throw new InvalidArgumentError(field, `size '${show(String(value ?? ''))}' is not a non-negative integer`);
  }
  const n = BigInt(text.replace(/^\+/, ''));
  if (n > MAX_U64) throw new InvalidArgumentError(field, `size '${show(text)}' is out of range; at most ${MAX_SIZE_BYTES} bytes`);
  const scale = unitScale(unit);
  if (scale === undefined) {
    throw new InvalidArgumentError(field, `unknown unit '${show(unit ?? '')}'; allowed: ${SIZE_UNITS_ALLOWED}`);
  }
  const bytes = n * scale;
  if (bytes > MAX_SIZE_BYTES) {
    throw new InvalidArgumentError(field, `size ${text}${unit ? ` ${show(unit)}` : ''} is too large; at most ${MAX_SIZE_BYTES} bytes (2^63-1)`);
  }
  return bytes;
}
