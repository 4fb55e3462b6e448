// Journal of allocating grows under way, under the agent's root (journal/grows.log). A dir
// pool's allocating grow allocates past the file's end and sets the new size last
// (libs/backends/dir/resize.ts): a kill -9 of the agent in between left the old capacity with
// the new blocks past it, for good: an 8 MiB volume showing 88 MiB allocated, the pool short of
// that space, and a later grow below 88 MiB refused as a shrink below the allocation. The grow
// is recorded right before it allocates (the file's identity, its size before and after) and
// marked done when the resize ends, either way. The next start, before any pool starts, has the
// backend cut what such a grow left back to its old size (undoInterruptedGrow), which gives the
// blocks back: the volume is as it was, as after a failed resize.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PoolDefinition, PoolType } from '../../libs/proto/cistern/v1/storage.js';
import type { AllocatingGrow, StorageBackend } from '../../libs/backends/backend.js';
import type { CommandRunner } from '../../libs/backends/runner.js';
import { newCreateId } from '../../libs/backends/create-id.js';
import { startedPoolDirectory, type DirectoryIdentity } from '../../libs/backends/dir/pool-directory.js';
import type { Logger } from '../../libs/log/logger.js';
import { JournalFile, type JournalRecord } from './journal-file.js';

export interface GrowEntry {
  id: string;
  pool: PoolDefinition;
  volume: string;
  grow: AllocatingGrow;
  /** the pool directory the grow wrote in, as the pool started with it */
  poolDirectory?: DirectoryIdentity;
  requestId: string;
  startedAt: string;
}

const LOG_FILE = 'grows.log';
/** Compacted to its open records past this size (JournalFile.compactIfLarger): an agent that runs for months does not keep every grow. */
const COMPACT_BYTES = 1024 * 1024;

export class GrowJournal {
  private readonly file: JournalFile;
  private inFlight = 0;

  private constructor(dir: string) {
    this.file = new JournalFile(join(dir, LOG_FILE));
  }

  static async open(root: string): Promise<GrowJournal> {
    const dir = join(root, 'journal');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new GrowJournal(dir);
  }

  /**
   * The resize's ResizeFlags.onAllocatingPastEnd and the function that marks it done. Only for
   * dir pools: their directory is there at the next start, before any pool starts; an fs or
   * netfs pool's is not mounted yet.
   */
  track(pool: PoolDefinition, volume: string, requestId: string): { onAllocatingPastEnd?: (grow: AllocatingGrow) => void; done: () => void } {
    const poolDirectory = pool.type === PoolType.POOL_TYPE_DIR ? startedPoolDirectory(pool) : undefined;
    if (!poolDirectory) return { done: () => undefined };
    let id: string | undefined;
    const onAllocatingPastEnd = (grow: AllocatingGrow): void => {
      const next = newCreateId();
      try {
        this.file.append({
          id: next,
          pool: PoolDefinition.toJSON(pool),
          volume,
          file: { ino: String(grow.file.ino), birthtimeNs: String(grow.file.birthtimeNs) },
          size: String(grow.size),
          capacity: String(grow.capacity),
          poolDirectory: { dev: poolDirectory.dev, ino: poolDirectory.ino },
          requestId,
          startedAt: new Date().toISOString(),
        });
      } catch {
        return; // not recorded (the agent's root is full): a kill leaves the blocks, as before
      }
      id = next;
      this.inFlight++;
    };
    const done = (): void => {
      if (id === undefined) return;
      const ended = id;
      id = undefined;
      this.inFlight--;
      try {
        this.file.append({ end: ended });
      } catch {
        // not recorded: the next start finds the grow done (the volume at its new size) or
        // failed (cut back to its old size already), and leaves the volume as it is
      }
      this.file.compactIfLarger(COMPACT_BYTES);
    };
    return { onAllocatingPastEnd, done };
  }

  /** Grows of an earlier run that never ended, oldest first. */
  async pending(): Promise<GrowEntry[]> {
    const out: GrowEntry[] = [];
    for (const raw of await this.file.openRecords()) {
      const entry = entryOf(raw);
      if (entry) out.push(entry);
    }
    return out;
  }

  /** Marks an entry of an earlier run done (after its undo). */
  remove(id: string): void {
    this.file.append({ end: id });
  }

  /** Removes the file when nothing in it is pending (at start, after the undo). */
  async removeIfDone(): Promise<void> {
    if (this.inFlight > 0 || (await this.pending()).length > 0) return;
    await this.file.remove();
  }
}

function entryOf(raw: JournalRecord): GrowEntry | undefined {
  try {
    const file = raw.file as Record<string, unknown>;
    const dir = raw.poolDirectory as Record<string, unknown> | undefined;
    const digits = (v: unknown): bigint => {
      if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new Error('not a number');
      return BigInt(v);
    };
    return {
      id: String(raw.id),
      pool: PoolDefinition.fromJSON(raw.pool),
      volume: String(raw.volume),
      grow: { file: { ino: digits(file.ino), birthtimeNs: digits(file.birthtimeNs) }, size: digits(raw.size), capacity: digits(raw.capacity) },
      ...(dir && Number.isSafeInteger(dir.dev) && Number.isSafeInteger(dir.ino) ? { poolDirectory: { dev: dir.dev as number, ino: dir.ino as number } } : {}),
      requestId: String(raw.requestId ?? ''),
      startedAt: String(raw.startedAt ?? ''),
    };
  } catch {
    return undefined; // unreadable: nothing to undo from it
  }
}

/**
 * At start, before any pool starts: the volumes allocating grows interrupted by this agent's
 * death left with blocks past their end are cut back to the size they had. An entry whose undo
 * fails (its pool directory not there) stays for the next start (logged).
 */
export async function undoInterruptedGrows(
  journal: GrowJournal,
  backendOf: (pool: PoolDefinition) => StorageBackend,
  runner: CommandRunner,
  log: Logger,
): Promise<{ undone: string[]; failed: string[] }> {
  const result = { undone: [] as string[], failed: [] as string[] };
  for (const entry of await journal.pending()) {
    const name = `${entry.pool.name}/${entry.volume}`;
    const what = { pool: entry.pool.name, volume: entry.volume, size: entry.grow.size, capacity: entry.grow.capacity, requestId: entry.requestId, startedAt: entry.startedAt };
    try {
      const found = (await backendOf(entry.pool).undoInterruptedGrow?.({ pool: entry.pool, runner }, entry.volume, entry.grow, entry.poolDirectory)) ?? 'not-found';
      journal.remove(entry.id);
      result.undone.push(name);
      if (found === 'released') log.warn('an interrupted allocating grow left the volume at its old size: gave back the blocks it had allocated past the end', what);
      else if (found === 'finished') log.info('an interrupted allocating grow had set its new size: the volume keeps it', what);
      else log.warn('nothing of an interrupted allocating grow was left to undo (the volume is gone or changed since)', what);
    } catch (err) {
      result.failed.push(name);
      log.error('could not undo an interrupted allocating grow; retried at the next start', { ...what, error: err });
    }
  }
  await journal.removeIfDone();
  return result;
}
