// Checks for every name and path that can reach the filesystem or a command.
// The agent runs as root: these run before anything else looks at the value.
import { isAbsolute, normalize } from 'node:path';
import { InvalidArgumentError } from '../errors/errors.js';
import { visibleText } from '../errors/visible.js';

export const MAX_NAME_LENGTH = 255;
export const MAX_PATH_LENGTH = 4095;
export const MAX_SIZE = (1n << 63n) - 1n;

const NAME_RULE = `1-${MAX_NAME_LENGTH} bytes of UTF-8, no '/', not '.' or '..', no control characters, not starting with '-'`;

// C0, DEL and C1 controls; a lone UTF-16 surrogate has no UTF-8 form, so the file made for
// it would carry another name (U+FFFD) than the one asked
const CONTROL_OR_LONE_SURROGATE = /[\x00-\x1f\x7f-\x9f]|[\uD800-\uDFFF]/u;

// Invisible characters that change how a name shows: format characters (Unicode Cf: bidi
// embeddings, overrides, isolates and marks, zero-width space, word joiner, BOM, soft hyphen)
// and the line and paragraph separators. 'a\u202Egpj.exe' shows as 'aexe.jpg', 'vm1\u200B.img'
// as 'vm1.img'. libvirt takes them (any UTF-8 but '/'); new names refuse them, names already on
// a host keep them, and messages show them escaped. ZWNJ and ZWJ (U+200C, U+200D) stay: words in
// Persian or Indic scripts and emoji sequences need them, and they join what is visible anyway.
const INVISIBLE_FORMAT = /(?![\u200C\u200D])[\p{Cf}\p{Zl}\p{Zp}]/u;

const NEW_NAME_RULE = `${NAME_RULE}, no invisible or direction-changing characters (Unicode format characters such as U+202E, U+2028/U+2029)`;

/**
 * The name of a pool or volume being made (defined, created, cloned), or a secret usage id:
 * checkObjectName, and none of the invisible characters that can make it show as another's.
 */
export function checkNewObjectName(name: string, field: string, what = 'name'): void {
  checkObjectName(name, field, what);
  checkNoInvisibleFormat(name, field, what, NEW_NAME_RULE);
}

/** Refuses a value with a character INVISIBLE_FORMAT matches, naming it by its code point. */
export function checkNoInvisibleFormat(value: string, field: string, what: string, rule: string): void {
  const found = INVISIBLE_FORMAT.exec(value);
  if (found) {
    const code = `U+${found[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    throw new InvalidArgumentError(field, `${what} '${printable(value)}' contains ${code}, an invisible or direction-changing character that can make it show as another name; allowed: ${rule}`);
  }
}

/** A pool, volume or host name: one path component that cannot escape or look like an option. */
export function checkObjectName(name: string, field: string, what = 'name'): void {
  const problem = nameProblem(name) ?? (name.startsWith('-') ? "starts with '-'" : undefined);
  if (problem) throw new InvalidArgumentError(field, `${what} '${printable(String(name ?? ''))}' ${problem}; allowed: ${NAME_RULE}`);
}

/**
 * The name of a volume that may already be there: checkObjectName without its leading '-'
 * rule. A refresh lists a file such as `-x` that someone put in a dir pool, as libvirt does,
 * and it must then be reachable like any other (info, download, wipe, delete); its path is
 * absolute, so it never reaches a command as an option. New names keep the rule.
 */
export function checkExistingVolumeName(name: string, field: string): void {
  const problem = nameProblem(name);
  if (problem) {
    throw new InvalidArgumentError(field, `volume name '${printable(String(name ?? ''))}' ${problem}; allowed: ${EXISTING_NAME_RULE}`);
  }
}

const EXISTING_NAME_RULE = `1-${MAX_NAME_LENGTH} bytes of UTF-8, no '/', not '.' or '..', no control characters`;

/** What makes `name` no single path component of printable UTF-8, or undefined. */
function nameProblem(name: string): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'is empty';
  // file systems count a name's bytes (NAME_MAX), not its characters
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_NAME_LENGTH) return `is ${bytes} bytes long`;
  if (name.includes('/')) return "contains '/'";
  if (name === '.' || name === '..') return 'is reserved (the directory itself or its parent)';
  if (CONTROL_OR_LONE_SURROGATE.test(name)) return 'contains a control character or an unpaired surrogate';
  return undefined;
}

/**
 * A path that is already absolute and normal, in printable ASCII without spaces: '/'-separated
 * segments of 1-255 characters, none of them '.' or '..', no trailing '/'. Nearly every path a request
 * carries; for these checkAbsolutePath's full checks (byte length, the unicode control-character
 * scan, normalize) give the path back unchanged, so this one test stands for them.
 */
const PLAIN_NORMAL_PATH = /^(?:\/(?!\.\.?(?:\/|$))[!-.0-~]{1,255})+$/;

/** An absolute, normalised path without control characters (target paths, device paths). */
export function checkAbsolutePath(path: string, field: string): string {
  if (typeof path === 'string' && path.length <= MAX_PATH_LENGTH && PLAIN_NORMAL_PATH.test(path)) return path;
  return checkAbsolutePathFully(path, field);
}

/** checkAbsolutePath without its fast path (exported so a test holds the two to the same answers). */
export function checkAbsolutePathFully(path: string, field: string): string {
  if (typeof path !== 'string' || path.length === 0) {
    throw new InvalidArgumentError(field, 'path is empty; an absolute path is required');
  }
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_LENGTH) {
    throw new InvalidArgumentError(field, `path is ${Buffer.byteLength(path, 'utf8')} bytes long; at most ${MAX_PATH_LENGTH} allowed`);
  }
  if (CONTROL_OR_LONE_SURROGATE.test(path)) {
    throw new InvalidArgumentError(field, `path '${printable(path)}' contains a control character or an unpaired surrogate`);
  }
  if (!isAbsolute(path)) {
    throw new InvalidArgumentError(field, `path '${printable(path)}' is not absolute; it must start with '/'`);
  }
  const normal = normalize(path).replace(/(.)\/+$/, '$1');
  if (path.split('/').includes('..')) {
    throw new InvalidArgumentError(field, `path '${printable(path)}' contains '..'; give the normalised path ${printable(normal)}`);
  }
  // a longer component fails every system call with ENAMETOOLONG, later and less clearly
  const long = normal.split('/').find((c) => Buffer.byteLength(c, 'utf8') > MAX_NAME_LENGTH);
  if (long !== undefined) {
    throw new InvalidArgumentError(
      field,
      `path '${printable(path)}' has a component of ${Buffer.byteLength(long, 'utf8')} bytes ('${printable(long, 40)}'); at most ${MAX_NAME_LENGTH} bytes allowed per component`,
    );
  }
  return normal;
}

/** A size in bytes within 0..2^63-1. */
export function checkSize(value: bigint, field: string): bigint {
  if (value < 0n || value > MAX_SIZE) {
    throw new InvalidArgumentError(field, `size ${value} is out of range; allowed: 0 to ${MAX_SIZE} bytes`);
  }
  return value;
}

/** Makes a user value safe to echo in an error message: controls, lone surrogates and invisible format characters escaped. */
export function printable(value: string, max = 80): string {
  const clean = visibleText(value);
  if (clean.length <= max) return clean;
  // cut between code points, never inside a surrogate pair
  const points = Array.from(clean);
  return points.length > max ? `${points.slice(0, max).join('')}...` : clean;
}

const HOST_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Host ids travel in NATS subjects, so they are restricted to one safe subject token. */
export function checkHostId(id: string, field = 'host'): string {
  if (typeof id !== 'string' || !HOST_ID.test(id) || id.startsWith('-')) {
    throw new InvalidArgumentError(
      field,
      `host id '${printable(String(id ?? ''))}' is not valid; allowed: 1-64 of A-Z a-z 0-9 _ -, not starting with '-'`,
    );
  }
  return id;
}
