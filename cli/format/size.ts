// virsh's human sizes: vshPrettyCapacity picks B, KiB, MiB, GiB, TiB, PiB or EiB
// (powers of 1024) and the value is printed with "%.2lf", i.e. rounded to two
// decimals the way C's printf rounds the exact binary value (ties to even).

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

function unitIndex(bytes: bigint): number {
  let i = 0;
  let limit = 1024n;
  while (i < UNITS.length - 1 && bytes >= limit) {
    i++;
    limit *= 1024n;
  }
  return i;
}

/** "%.2f" of bytes / 1024^power, computed exactly, ties rounded to even as glibc does. */
function twoDecimals(bytes: bigint, power: number): string {
  const div = 1024n ** BigInt(power);
  const scaled = bytes * 100n;
  let q = scaled / div;
  const r = scaled % div;
  const twice = r * 2n;
  if (twice > div || (twice === div && q % 2n === 1n)) q += 1n;
  const whole = q / 100n;
  const frac = (q % 100n).toString().padStart(2, '0');
  return `${whole}.${frac}`;
}

// Below this, bytes * 100 is an exact double and dividing by a power of 1024 is exact too,
// so the same digits come out of plain numbers (listings print 20,000 sizes).
const EXACT_LIMIT = Math.floor(Number.MAX_SAFE_INTEGER / 100);
const POWERS = [1, 1024, 1024 ** 2, 1024 ** 3, 1024 ** 4];

function prettySmall(bytes: number): string {
  let i = 0;
  while (i < POWERS.length - 1 && bytes >= POWERS[i + 1]!) i++;
  const div = POWERS[i]!;
  const scaled = bytes * 100;
  let q = Math.floor(scaled / div);
  const twice = (scaled - q * div) * 2;
  if (twice > div || (twice === div && q % 2 === 1)) q += 1;
  const frac = q % 100;
  return `${(q - frac) / 100}.${frac < 10 ? '0' : ''}${frac} ${UNITS[i]}`;
}

/** e.g. 10485760n -> "10.00 MiB", 270553174016n -> "251.97 GiB". */
export function prettySize(bytes: bigint | number): string {
  if (typeof bytes === 'number') {
    if (bytes <= 0) return '0.00 B';
    if (Number.isSafeInteger(bytes) && bytes < EXACT_LIMIT) return prettySmall(bytes);
    bytes = BigInt(bytes);
  } else if (bytes >= 0n && bytes < BigInt(EXACT_LIMIT)) {
    return prettySmall(Number(bytes));
  }
  const b = bytes < 0n ? 0n : bytes;
  const i = unitIndex(b);
  return `${twoDecimals(b, i)} ${UNITS[i]}`;
}
