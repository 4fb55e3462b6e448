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
    const e = err as NodeJS.ErrnoException;
    const reason = e.code === 'ENOENT' ? 'No such file or directory' : e.code === 'EACCES' ? 'Permission denied' : e.message;
    throw new UsageError(`Failed to open file '${path}': ${reason}`);
  }
  if (data.length > MAX_XML_FILE) throw new UsageError(`File '${path}' is too large: at most ${MAX_XML_FILE} bytes of XML`);
  return data.toString('utf8');
}
