// Reading the files commands take (XML documents, secret values), with virsh's error wording.
import { readFile } from 'node:fs/promises';
import { UsageError } from './errors.js';
import { MAX_XML_BYTES } from '../libs/xml/limits.js';

/** virsh's VSH_MAX_XML_FILE */
export const MAX_XML_FILE = 10 * 1024 * 1024;

/**
 * An XML document's text. Read up to virsh's limit (its wording for a file over it), then held
 * to the coordinator's own (MAX_XML_BYTES): a bigger request would be refused by the gRPC
 * decoder, in words that name no document.
 */
export async function readXmlFile(path: string): Promise<string> {
  const data = await readLocalFile(path, MAX_XML_FILE, 'bytes of XML');
  if (data.length > MAX_XML_BYTES) {
    throw new UsageError(`File '${path}' is ${data.length} bytes: an XML document is at most ${MAX_XML_BYTES} bytes (1 MiB)`);
  }
  return decodeUtf8File(path, data);
}

/** A local file's bytes, at most `max` of them (`what` says of what, in the refusal), with virsh's wording. */
export async function readLocalFile(path: string, max: number, what: string): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    // virFileReadAll's two messages: open() failed, or the file opened and read() failed (a directory)
    const step = (err as NodeJS.ErrnoException).syscall === 'read' ? 'read' : 'open';
    throw new UsageError(`Failed to ${step} file '${path}': ${errnoText(err)}`);
  }
  if (data.length > max) throw new UsageError(`File '${path}' is too large: at most ${max} ${what}`);
  return data;
}

// fatal: Buffer.toString('utf8') would read every byte that is not UTF-8 as U+FFFD, and a
// Latin-1 file's /srv/caf\xE9 would define a pool on '/srv/caf\uFFFD', a directory nobody
// named. virsh refuses such a file too (libxml2: "Input is not proper UTF-8").
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The file's text; a UsageError saying where the first byte that is not UTF-8 is. */
function decodeUtf8File(path: string, data: Buffer): string {
  try {
    return utf8.decode(data);
  } catch {
    const at = firstInvalidUtf8(data);
    const before = data.subarray(0, at);
    const line = before.filter((b) => b === 0x0a).length + 1;
    const column = at - (before.lastIndexOf(0x0a) + 1) + 1;
    const byte = data[at] ?? 0;
    throw new UsageError(
      `File '${path}' is not valid UTF-8: byte 0x${byte.toString(16).toUpperCase().padStart(2, '0')} at line ${line}, column ${column}; ` +
        'XML documents are read as UTF-8: save the file as UTF-8',
    );
  }
}

/**
 * Offset of the first byte of the first ill-formed sequence (Unicode's table 3-7: no overlong
 * forms, no surrogates, nothing above U+10FFFF), for the message; data.length when none.
 */
function firstInvalidUtf8(data: Buffer): number {
  let i = 0;
  while (i < data.length) {
    const b = data[i]!;
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b < 0x80) n = 0;
    else if (b >= 0xc2 && b <= 0xdf) n = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      n = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= n; k++) {
      const c = data[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return data.length;
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
