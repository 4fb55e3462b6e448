// Reading the XML files commands take, with virsh's error wording.
import { readFile } from 'node:fs/promises';
import { UsageError } from './errors.js';

/** virsh's VSH_MAX_XML_FILE */
export const MAX_XML_FILE = 10 * 1024 * 1024;

export async function readXmlFile(path: string): Promise<string> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    throw new UsageError(`Failed to open file '${path}': ${errnoText(err)}`);
  }
  if (data.length > MAX_XML_FILE) throw new UsageError(`File '${path}' is too large: at most ${MAX_XML_FILE} bytes of XML`);
  return data.toString('utf8');
}

/** The C library's words (strerror) for what a local file call failed with. */
const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  EROFS: 'Read-only file system',
  ENOSPC: 'No space left on device',
  EDQUOT: 'Disk quota exceeded',
  EFBIG: 'File too large',
  EIO: 'Input/output error',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
  ETXTBSY: 'Text file busy',
  EMFILE: 'Too many open files',
};

/**
 * Why a file call failed, in plain words as virsh shows them ('Is a directory'), not Node's
 * message ('EISDIR: illegal operation on a directory, read'). An errno not listed keeps
 * libuv's words without the code and the call ('illegal operation on a directory').
 */
export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const known = e.code !== undefined ? ERRNO_TEXT[e.code] : undefined;
  if (known) return known;
  return String(e.message).replace(/^E[A-Z0-9]+: /, '').replace(/, [a-z]+( '.*')?$/, '');
}
