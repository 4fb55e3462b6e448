// One append-only journal file of the agent (JSON lines): a begin record `{id, ...}` when an
// operation starts, an end record `{end: id}` when it is over, either way. What has a begin
// and no end at the next start was interrupted by the agent's death. An append is one
// write(2) to an O_APPEND file, so a record is whole or, when the agent dies mid-write, a
// torn last line that readers skip (nothing had happened yet when it was written).
//
// The file may sit on a filesystem that fills up (the agent's root beside busy pools). An
// append that fails part-way is cut off again, so the next record starts on a line of its own;
// and an end record that cannot be appended (no space for one more block) is made by voiding
// the begin record in place instead: that overwrites bytes the file already has and needs no
// space. Otherwise the next start would take a create that finished, and was answered as
// done, for an interrupted one, and remove the volume.
import { closeSync, fstatSync, ftruncateSync, openSync, writeSync, constants as fsc } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';

export type JournalRecord = Record<string, unknown>;

/** Written over a record's opening '{': the line no longer parses, and readers skip it. */
const VOID_MARK = Buffer.from('#');

export class JournalFile {
  private fd: number | undefined;

  constructor(readonly path: string) {}

  /**
   * Appends one record as one write(2) (the file is created on first use, mode 0600); returns
   * the offset it starts at. One that fails part-way is cut off before the error is thrown.
   */
  append(record: JournalRecord): number {
    if (this.fd === undefined) this.fd = openSync(this.path, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o600);
    const fd = this.fd;
    const line = Buffer.from(`${JSON.stringify(record)}\n`);
    // only this agent appends, one record at a time: the end is where this one starts
    const at = fstatSync(fd).size;
    let off = 0;
    try {
      while (off < line.length) off += writeSync(fd, line, off, line.length - off);
    } catch (err) {
      if (off > 0) {
        try {
          ftruncateSync(fd, at); // shrinking needs no space
        } catch {
          // the torn line stays; readers skip it
        }
      }
      throw err;
    }
    return at;
  }

  /**
   * Ends the record `id` that begins at `beginAt`: an end record appended, or, when that
   * cannot be written (no space), the begin record voided in place, so no reader finds it
   * open. Throws only when neither could be written.
   */
  end(id: string, beginAt: number): void {
    try {
      this.append({ end: id });
    } catch (err) {
      if (!this.voidInPlace(beginAt)) throw err;
    }
  }

  /**
   * Overwrites the first byte of the record at `at` ('{' becomes '#'), which readers then skip
   * as unreadable. Through a descriptor of its own: pwrite(2) on an O_APPEND one appends.
   */
  private voidInPlace(at: number): boolean {
    let fd: number | undefined;
    try {
      fd = openSync(this.path, fsc.O_WRONLY | fsc.O_NOFOLLOW);
      return writeSync(fd, VOID_MARK, 0, 1, at) === 1;
    } catch {
      return false;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
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
