// Journal of allocating grows under way, under the agent's root (journal/grows.log). A dir
// pool's allocating grow allocates past the file's end and sets the new size last
// (libs/backends/dir/resize.ts): a kill -9 of the agent in between left the old capacity with
// the new blocks past it, for good: an 8 MiB volume showing 88 MiB allocated, the pool short of
// that space, and a later grow below 88 MiB refused as a shrink below the allocation. The grow
// is recorded right before it allocates (the file's identity, its size before and after) and
// marked done when the resize ends, either way. The backend cuts what such a grow left back to
// its old size (undoInterruptedGrow), which gives the blocks back: the volume is as it was, as
// after a failed resize. A dir pool's grows are undone at the next start, before any pool
// starts; an fs or netfs pool's directory is there only once the pool is mounted, so theirs
// wait until the pool is taken back (restore.ts) or started (undoGrowsWhenStarted).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PoolDefinition, PoolType } from '../../libs/proto/cistern/v1/storage.js';
import type { AllocatingGrow, PoolContext, StorageBackend } from '../../libs/backends/backend.js';
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
  /** the pool directory the grow wrote in, as the pool started with it (dir pools only: a mount's device number may change when it is mounted again) */
  poolDirectory?: DirectoryIdentity;
  requestId: string;
  startedAt: string;
}

const LOG_FILE = 'grows.log';
/** Compacted to its open records past this size (JournalFile.compactIfLarger): an agent that runs for months does not keep every grow. */
const COMPACT_BYTES = 1024 * 1024;

/** The pools whose allocating grows write a file in a directory (libs/backends/dir/resize.ts, which fs and netfs use). */
const FILE_POOLS = new Set([PoolType.POOL_TYPE_DIR, PoolType.POOL_TYPE_FS, PoolType.POOL_TYPE_NETFS]);

/** A dir pool's directory is there at the agent's start; an fs or netfs pool's once the pool is mounted. */
const readyAtBoot = (pool: PoolDefinition): boolean => pool.type === PoolType.POOL_TYPE_DIR;

export class GrowJournal {
  private readonly file: JournalFile;
  private inFlight = 0;
  /** Entries of an earlier run whose pool was not up at the start (or whose undo failed), by pool name. */
  private readonly waiting = new Map<string, GrowEntry[]>();

  private constructor(dir: string) {
    this.file = new JournalFile(join(dir, LOG_FILE));
  }

  static async open(root: string): Promise<GrowJournal> {
    const dir = join(root, 'journal');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new GrowJournal(dir);
  }

  /**
   * The resize's ResizeFlags.onAllocatingPastEnd and the function that marks it done, for the
   * pools whose volumes are files. A dir pool's entry names its directory (device and inode), the
   * only one its undo goes through; an fs or netfs pool's does not: mounted again, the same file
   * system may show another device number, and the undo goes through the directory the pool
   * started with then (the file's inode and birth time still tell it is the grow's file).
   */
  track(pool: PoolDefinition, volume: string, requestId: string): { onAllocatingPastEnd?: (grow: AllocatingGrow) => void; done: () => void } {
    if (!FILE_POOLS.has(pool.type)) return { done: () => undefined };
    const poolDirectory = startedPoolDirectory(pool);
    if (!poolDirectory) return { done: () => undefined };
    const recordDirectory = readyAtBoot(pool);
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
          ...(recordDirectory ? { poolDirectory: { dev: poolDirectory.dev, ino: poolDirectory.ino } } : {}),
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

  /** Keeps an entry of an earlier run for when its pool starts (undoGrowsWhenStarted). */
  keepWaiting(entry: GrowEntry): void {
    const list = this.waiting.get(entry.pool.name) ?? [];
    list.push(entry);
    this.waiting.set(entry.pool.name, list);
  }

  /** The waiting entries of `pool`, taken out of the waiting list. */
  takeWaiting(pool: string): GrowEntry[] {
    const list = this.waiting.get(pool) ?? [];
    this.waiting.delete(pool);
    return list;
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

/** Undoes one entry of an earlier run, through `pool` as it is defined now; false when the undo failed (the entry stays open). */
async function undoEntry(journal: GrowJournal, entry: GrowEntry, pool: PoolDefinition, backend: StorageBackend, runner: CommandRunner, log: Logger): Promise<boolean> {
  const what = { pool: entry.pool.name, volume: entry.volume, size: entry.grow.size, capacity: entry.grow.capacity, requestId: entry.requestId, startedAt: entry.startedAt };
  try {
    const ctx: PoolContext = { pool, runner };
    const found = (await backend.undoInterruptedGrow?.(ctx, entry.volume, entry.grow, entry.poolDirectory)) ?? 'not-found';
    journal.remove(entry.id);
    if (found === 'released') log.warn('an interrupted allocating grow left the volume at its old size: gave back the blocks it had allocated past the end', what);
    else if (found === 'finished') log.info('an interrupted allocating grow had set its new size: the volume keeps it', what);
    else log.warn('nothing of an interrupted allocating grow was left to undo (the volume is gone or changed since)', what);
    return true;
  } catch (err) {
    log.error('could not undo an interrupted allocating grow; retried when its pool starts, or at the next start', { ...what, error: err });
    return false;
  }
}

/**
 * At start, before any pool starts: the dir pools' volumes allocating grows interrupted by this
 * agent's death left with blocks past their end are cut back to the size they had. The other
 * pools' entries, and one whose undo fails (its pool directory not there), wait for their
 * pool's start (undoGrowsWhenStarted) and stay for the next agent start (logged).
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
    if (readyAtBoot(entry.pool) && (await undoEntry(journal, entry, entry.pool, backendOf(entry.pool), runner, log))) {
      result.undone.push(name);
      continue;
    }
    journal.keepWaiting(entry);
    if (readyAtBoot(entry.pool)) result.failed.push(name);
  }
  await journal.removeIfDone();
  return result;
}

/**
 * After `pool` started (mounted) or was found up by a restarted agent, before its first scan:
 * what its allocating grows interrupted by an earlier run's death left past their volumes' ends
 * is given back, so the scan lists the volumes as they were. A dir pool started over another
 * directory than the one its grow wrote in (rebuilt, its target made a link) has nothing of it
 * here: the entry is forgotten (logged).
 */
export async function undoGrowsWhenStarted(journal: GrowJournal, pool: PoolDefinition, backend: StorageBackend, runner: CommandRunner, log: Logger): Promise<void> {
  for (const entry of journal.takeWaiting(pool.name)) {
    const wrote = entry.poolDirectory;
    const now = startedPoolDirectory(pool);
    if (wrote && now && (wrote.dev !== now.dev || wrote.ino !== now.ino)) {
      journal.remove(entry.id);
      log.warn('forgot an interrupted allocating grow: its pool started over another directory than the one it wrote in; what it left stays there', {
        pool: entry.pool.name,
        volume: entry.volume,
        requestId: entry.requestId,
        startedAt: entry.startedAt,
        wroteIn: wrote,
      });
      continue;
    }
    if (!(await undoEntry(journal, entry, pool, backend, runner, log))) journal.keepWaiting(entry);
  }
}
