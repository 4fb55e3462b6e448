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
//
// A record `{made: id, ...}` adds to the open record `id` (what the operation made, learned
// after it began); readers and compactions see the begin record with those fields.
//
// A file that has grown is compacted: replaced by a new one that holds only its open begin
// records, in the same order (written beside it, fsynced, renamed over it, the directory
// fsynced), so a reader finds in it exactly the open records it found before. An agent killed
// before the rename leaves the old file and a `.tmp` beside it, which the next start removes.
import { closeSync, fstatSync, openSync, readFileSync, writeSync, constants as fsc } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { appendLine, replaceDurably } from './journal-io.js';

export type JournalRecord = Record<string, unknown>;

/** Written over a record's opening '{': the line no longer parses, and readers skip it. */
const VOID_MARK = Buffer.from('#');

export class JournalFile {
  private fd: number | undefined;
  /** the size of the file after its last compaction: the next waits until it has grown past twice that */
  private keptBytes = 0;
  /** after a compaction that failed (no space), none is tried again before the file is this big */
  private retryAbove = 0;

  constructor(readonly path: string) {}

  /**
   * Appends one record as one write(2) (the file is created on first use, mode 0600); returns
   * the offset it starts at. One that fails part-way is cut off before the error is thrown.
   */
  append(record: JournalRecord): number {
    if (this.fd === undefined) this.fd = openSync(this.path, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o600);
    return appendLine(this.fd, Buffer.from(`${JSON.stringify(record)}\n`));
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
    if (at < 0) return false;
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

  /**
   * When the file has grown past `bytes` (and past twice what its last compaction kept),
   * replaces it with a new file that holds only its open begin records, whatever is in flight.
   * Returns where each of those now begins, by id (for `end`); undefined when the file was
   * left as it is (not that big, or the new file could not be written: no space).
   */
  compactIfLarger(bytes: number): Map<string, number> | undefined {
    if (this.fd === undefined) return undefined;
    let text: string;
    try {
      if (fstatSync(this.fd).size <= Math.max(bytes, 2 * this.keptBytes, this.retryAbove)) return undefined;
      text = readFileSync(this.path, 'utf8');
    } catch {
      return undefined;
    }
    const at = new Map<string, number>();
    const lines: Buffer[] = [];
    let size = 0;
    for (const [id, { line }] of openLines(text)) {
      const bytes = Buffer.from(`${line}\n`);
      at.set(id, size);
      lines.push(bytes);
      size += bytes.length;
    }
    if (!replaceDurably(this.path, Buffer.concat(lines, size))) {
      // the old file stays, and is appended to: a big journal is only slower to read at the next start
      this.retryAbove = Buffer.byteLength(text) + bytes;
      return undefined;
    }
    closeSync(this.fd); // the old file's: the next append opens the new one
    this.fd = undefined;
    this.keptBytes = size;
    this.retryAbove = 0;
    return at;
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
  return [...openLines(text).values()].map((o) => o.record);
}

/** The open begin records of `text` by id, in the order parseOpenRecords returns them, each with its line. */
function openLines(text: string): Map<string, { record: JournalRecord; line: string }> {
  const open = new Map<string, { record: JournalRecord; line: string }>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    let raw: JournalRecord;
    try {
      raw = JSON.parse(line) as JournalRecord;
    } catch {
      continue;
    }
    if (typeof raw.end === 'string') open.delete(raw.end);
    else if (typeof raw.made === 'string') {
      const begun = open.get(raw.made);
      if (!begun) continue;
      const { made: _made, ...fields } = raw;
      const record = { ...begun.record, ...fields };
      open.set(raw.made, { record, line: JSON.stringify(record) });
    } else if (typeof raw.id === 'string') open.set(raw.id, { record: raw, line });
  }
  return open;
}
