// One append-only journal file of the agent (JSON lines): a begin record `{id, ...}` when an
// operation starts, an end record `{end: id}` when it is over, either way. What has a begin
// and no end at the next start was interrupted by the agent's death. An append is one
// write(2) to an O_APPEND file, so a record is whole or, when the agent dies mid-write, a
// torn last line that readers skip (nothing had happened yet when it was written).
import { closeSync, fstatSync, ftruncateSync, openSync, writeSync, constants as fsc } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';

export type JournalRecord = Record<string, unknown>;

export class JournalFile {
  private fd: number | undefined;

  constructor(readonly path: string) {}

  /** Appends one record as one write(2) (the file is created on first use, mode 0600). */
  append(record: JournalRecord): void {
    if (this.fd === undefined) this.fd = openSync(this.path, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o600);
    const line = Buffer.from(`${JSON.stringify(record)}\n`);
    let off = 0;
    while (off < line.length) off += writeSync(this.fd, line, off, line.length - off);
  }

  /** Empties the file (same inode) when it has grown past `bytes`; call only when nothing is in flight. */
  compactIfLarger(bytes: number): void {
    if (this.fd === undefined) return;
    try {
      if (fstatSync(this.fd).size > bytes) ftruncateSync(this.fd, 0);
    } catch {
      // a big journal is only slower to read at the next start
    }
  }

  /** Begin records without an end record, in journal order (none when there is no file). */
  async openRecords(): Promise<JournalRecord[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return parseOpenRecords(text);
  }

  /** Closes and removes the file. */
  async remove(): Promise<void> {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
    await unlink(this.path).catch(() => undefined);
  }
}

/** Begin records of `text` without an end record; a torn or unreadable line is skipped. */
export function parseOpenRecords(text: string): JournalRecord[] {
  const open = new Map<string, JournalRecord>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    let raw: JournalRecord;
    try {
      raw = JSON.parse(line) as JournalRecord;
    } catch {
      continue;
    }
    if (typeof raw.end === 'string') open.delete(raw.end);
    else if (typeof raw.id === 'string') open.set(raw.id, raw);
  }
  return [...open.values()];
}
