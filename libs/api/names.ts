// Checks for every name and path that can reach the filesystem or a command.
// The agent runs as root: these run before anything else looks at the value.
import { isAbsolute, normalize } from 'node:path';
import { InvalidArgumentError } from '../errors/errors.js';

export const MAX_NAME_LENGTH = 255;
export const MAX_PATH_LENGTH = 4095;
export const MAX_SIZE = (1n << 63n) - 1n;

const NAME_RULE = `1-${MAX_NAME_LENGTH} characters, no '/', not '.' or '..', no control characters, not starting with '-'`;

/** A pool, volume or host name: one path component that cannot escape or look like an option. */
export function checkObjectName(name: string, field: string, what = 'name'): void {
  let problem: string | undefined;
  if (typeof name !== 'string' || name.length === 0) problem = 'is empty';
  else if (name.length > MAX_NAME_LENGTH) problem = `is ${name.length} characters long`;
  else if (name.includes('/')) problem = "contains '/'";
  else if (name === '.' || name === '..') problem = `is '${name}'`;
  else if (/[\x00-\x1f\x7f]/.test(name)) problem = 'contains a control character';
  else if (name.startsWith('-')) problem = "starts with '-'";
  if (problem) {
    throw new InvalidArgumentError(field, `${what} '${printable(String(name ?? ''))}' ${problem}; allowed: ${NAME_RULE}`);
  }
}

/** An absolute, normalised path without control characters (target paths, device paths). */
export function checkAbsolutePath(path: string, field: string): string {
  if (typeof path !== 'string' || path.length === 0) {
    throw new InvalidArgumentError(field, 'path is empty; an absolute path is required');
  }
  if (path.length > MAX_PATH_LENGTH) {
    throw new InvalidArgumentError(field, `path is ${path.length} characters long; at most ${MAX_PATH_LENGTH} allowed`);
  }
  if (/[\x00-\x1f\x7f]/.test(path)) {
    throw new InvalidArgumentError(field, `path '${printable(path)}' contains a control character`);
  }
  if (!isAbsolute(path)) {
    throw new InvalidArgumentError(field, `path '${printable(path)}' is not absolute; it must start with '/'`);
  }
  const normal = normalize(path).replace(/(.)\/+$/, '$1');
  if (path.split('/').includes('..')) {
    throw new InvalidArgumentError(field, `path '${printable(path)}' contains '..'; give the normalised path ${printable(normal)}`);
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

/** Makes a user value safe to echo in an error message. */
export function printable(value: string, max = 80): string {
  const clean = value.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
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
