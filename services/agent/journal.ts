// Journal of in-flight creates and clones under the agent's root: an entry is
// written after the backend planned the new volume and before it writes anything, and
// marked done when the operation ends (either way). An agent killed in between finds the
// entry at its next start and removes what the create left, before it starts any pool.
//
// One append-only file per agent (journal/creates.log, JSON lines: a begin record, later an
// end record with the same id): a create costs two small appends to an open file instead of
// creating, renaming and removing a file of its own (inode creation is the expensive part
// of a create on a busy disk). Once the file has grown past COMPACT_BYTES it is replaced by
// one holding only its open begin records (JournalFile.compactIfLarger), whether or not a
// create is in flight: one long clone does not keep it growing. It is removed at start once
// every interrupted create is cleaned up.
import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PoolDefinition, PoolType, VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { asCisternError, ResourceExhaustedError } from '../../libs/errors/errors.js';
import type { NewFileIdentity, PartitionExtent, StorageBackend } from '../../libs/backends/backend.js';
import type { Logger } from '../../libs/log/logger.js';
import { startedPoolDirectory, type DirectoryIdentity } from '../../libs/backends/dir/pool-directory.js';
import { JournalFile, parseOpenRecords } from './journal-file.js';

export interface JournalEntry {
  id: string;
  operation: 'create' | 'clone';
  pool: PoolDefinition;
  volume: VolumeDefinition;
  requestId: string;
  principal: string;
  /** the target path existed before the create: never removed by the cleanup */
  existed: boolean;
  startedAt: string;
  /**
   * The id the backend got for this create (CreateVolOptions.createId); the cleanup removes
   * only what carries it where the backend marks what it makes (logical: an LVM tag).
   * Absent in entries of earlier versions: their cleanup removes by name, as it did.
   */
  createId?: string;
  /**
   * A dir pool's directory (device, inode) as the pool started with it, which the create
   * wrote in. The cleanup, in a later process that has not seen the pool start, removes the
   * volume through that directory only: the target swapped for a link while the agent was
   * down (by anyone who can write in its parent) would lead root's unlink to a same-named file
   * anywhere. Absent when not known (other pool types, entries of earlier versions): by name.
   */
  poolDirectory?: DirectoryIdentity;
  /**
   * The file the create made (its `made` record, appended right after the exclusive create):
   * the cleanup removes that file only, never one that took the name since (deleted and made
   * again while the agent was down: another host on shared storage, or by hand). Absent when
   * the agent died before the file existed (nothing of this create's to remove), for backends
   * that make no files, and in entries of earlier versions: by name.
   */
  file?: NewFileIdentity;
  /**
   * The bytes the partition a disk pool's create made covers (its `made` record, appended once
   * mkpart's partition is in the table): the cleanup removes the partition covering them, under
   * whatever number it has by then, and no other, and only on the disk whose partition table
   * has the id recorded with it (the pool's path may lead to another disk by then). Absent (the
   * agent died before the record, entries of earlier versions): the extent the create planned,
   * in the entry's volume, on the disk the path leads to.
   */
  partition?: PartitionExtent;
}

/** What CreateJournal.begin returns: marks the create done; `made` records the file it made, `madePartition` the partition. */
export type JournalHandle = (() => Promise<void>) & { made(file: NewFileIdentity): void; madePartition(extent: PartitionExtent): void };

/** The journal file; per-create `<id>.json` files of earlier versions are still read. */
const LOG_FILE = 'creates.log';
/** Compacted (only its open begin records kept) when it is bigger than this, and than twice what the last compaction kept. */
const COMPACT_BYTES = 4 * 1024 * 1024;

export class CreateJournal {
  private readonly log: JournalFile;
  /** creates in flight: the id of each, and where its begin record starts in the file */
  private readonly inFlight = new Map<string, number>();
  /** entries of an earlier run still to clean up, by pool name (their pool was not up, or the clean-up failed) */
  private readonly waiting = new Map<string, JournalEntry[]>();
  private seq = 0;
  private readonly prefix = randomBytes(4).toString('hex');

  private constructor(
    readonly dir: string,
    private readonly compactBytes: number,
  ) {
    this.log = new JournalFile(join(dir, LOG_FILE));
  }

  /** `compactBytes`: COMPACT_BYTES unless given (tests). */
  static async open(root: string, compactBytes = COMPACT_BYTES): Promise<CreateJournal> {
    const dir = join(root, 'journal');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new CreateJournal(dir, compactBytes);
  }

  private append(record: Record<string, unknown>): number {
    return this.log.append(record);
  }

  /**
   * A begin record; before anything of the create was done. Out of space it says where: the
   * agent's own root is full, not the pool (whose space the error would otherwise be read
   * against, no-space.ts).
   */
  private appendBegin(record: Record<string, unknown>): number {
    try {
      return this.append(record);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOSPC' && code !== 'EDQUOT') throw err;
      throw new ResourceExhaustedError(
        `cannot record the ${String(record.operation)} in the agent's journal (${this.dir}): the filesystem of the agent's root (--root) has no space left; nothing was done`,
        { agentRoot: this.dir },
      );
    }
  }

  /** Keeps an entry of an earlier run for a later clean-up (when its pool starts). */
  keepWaiting(entry: JournalEntry): void {
    const list = this.waiting.get(entry.pool.name) ?? [];
    list.push(entry);
    this.waiting.set(entry.pool.name, list);
  }

  /** The waiting entries of `pool`, taken out of the waiting list. */
  takeWaiting(pool: string): JournalEntry[] {
    const list = this.waiting.get(pool) ?? [];
    this.waiting.delete(pool);
    return list;
  }

  /** Records a create about to write `volume`; the returned function marks it done. */
  async begin(entry: Omit<JournalEntry, 'id' | 'existed' | 'startedAt' | 'poolDirectory' | 'file' | 'partition'>): Promise<JournalHandle> {
    // a new create of a name an earlier run left waiting: that name was freed since (the
    // create checked it does not exist), and the old entry must never remove the new volume
    const left = this.waiting.get(entry.pool.name);
    if (left?.some((e) => e.volume.name === entry.volume.name)) {
      for (const old of left.filter((e) => e.volume.name === entry.volume.name)) this.append({ end: old.id });
      this.waiting.set(entry.pool.name, left.filter((e) => e.volume.name !== entry.volume.name));
    }
    const id = `${Date.now()}-${this.prefix}${(this.seq++).toString(36)}`;
    const path = entry.volume.target?.path;
    let existed = false;
    if (path) {
      try {
        // undefined for a missing path (a create's usual case) rather than a thrown ENOENT
        existed = lstatSync(path, { throwIfNoEntry: false }) !== undefined;
      } catch {
        existed = false;
      }
    }
    // a dir pool's only: an fs or netfs pool's mount may come back as another device (NFS)
    const poolDirectory = entry.pool.type === PoolType.POOL_TYPE_DIR ? startedPoolDirectory(entry.pool) : undefined;
    const beginAt = this.appendBegin({
      id,
      operation: entry.operation,
      pool: PoolDefinition.toJSON(entry.pool),
      volume: VolumeDefinition.toJSON(entry.volume),
      requestId: entry.requestId,
      principal: entry.principal,
      existed,
      startedAt: new Date().toISOString(),
      ...(entry.createId === undefined ? {} : { createId: entry.createId }),
      ...(poolDirectory === undefined ? {} : { poolDirectory: { dev: poolDirectory.dev, ino: poolDirectory.ino } }),
    });
    this.inFlight.set(id, beginAt);
    let done = false;
    const end = async (): Promise<void> => {
      if (done) return;
      done = true;
      this.end(id);
    };
    const made = (file: NewFileIdentity): void => {
      if (done) return;
      try {
        this.append({ made: id, file: { ino: String(file.ino), birthtimeNs: String(file.birthtimeNs) } });
      } catch {
        // not recorded (no space): the cleanup after a restart goes by name, as for entries of earlier versions
      }
    };
    const madePartition = (extent: PartitionExtent): void => {
      if (done) return;
      try {
        this.append({ made: id, partition: { start: String(extent.start), end: String(extent.end), ...(extent.table === undefined ? {} : { table: extent.table }) } });
      } catch {
        // not recorded (no space): the cleanup after a restart goes by the extent the create planned
      }
    };
    return Object.assign(end, { made, madePartition });
  }

  private end(id: string): void {
    try {
      // where its begin record is now (a compaction since its begin moved it)
      this.log.end(id, this.inFlight.get(id) ?? -1);
    } catch {
      // neither an end record nor the begin voided in place (the file gone, or unwritable):
      // the next start removes the volume as interrupted (as when killed)
    }
    this.inFlight.delete(id);
    const moved = this.log.compactIfLarger(this.compactBytes);
    // a begin record not found in the file is never voided in place (-1): that could hit another record
    if (moved) for (const open of this.inFlight.keys()) this.inFlight.set(open, moved.get(open) ?? -1);
  }

  async pending(): Promise<JournalEntry[]> {
    const out: JournalEntry[] = [];
    for (const name of (await readdir(this.dir)).sort()) {
      const file = join(this.dir, name);
      if (name.endsWith('.tmp')) {
        await unlink(file).catch(() => undefined); // written before anything else happened
        continue;
      }
      if (name === LOG_FILE) {
        out.push(...parseLog(await readFile(file, 'utf8')));
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        out.push(entryOf(JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>));
      } catch {
        await unlink(file).catch(() => undefined);
      }
    }
    return out;
  }

  /** Marks an entry of an earlier run done (after its cleanup). */
  async remove(id: string): Promise<void> {
    await unlink(join(this.dir, `${id}.json`)).catch(() => undefined);
    this.append({ end: id });
    this.inFlight.delete(id);
  }

  /** Removes the journal file when nothing in it is pending any more (at start, after cleanup). */
  async removeIfDone(): Promise<void> {
    if (this.inFlight.size > 0) return;
    if ((await this.pending()).length > 0) return;
    await this.log.remove();
  }
}

function entryOf(raw: Record<string, unknown>): JournalEntry {
  return {
    id: String(raw.id),
    operation: raw.operation === 'clone' ? 'clone' : 'create',
    pool: PoolDefinition.fromJSON(raw.pool),
    volume: VolumeDefinition.fromJSON(raw.volume),
    requestId: String(raw.requestId ?? ''),
    principal: String(raw.principal ?? ''),
    existed: raw.existed === true,
    startedAt: String(raw.startedAt ?? ''),
    ...(typeof raw.createId === 'string' ? { createId: raw.createId } : {}),
    ...directoryOf(raw.poolDirectory),
    ...fileOf(raw.file),
    ...partitionOf(raw.partition),
  };
}

/** The recorded partition extent, when the record has a whole one. */
function partitionOf(raw: unknown): { partition?: PartitionExtent } {
  if (typeof raw !== 'object' || raw === null) return {};
  const { start, end, table } = raw as Record<string, unknown>;
  if (typeof start !== 'string' || typeof end !== 'string' || !/^\d+$/.test(start) || !/^\d+$/.test(end)) return {};
  // the table id (disk/table-id.ts) as written; an unreadable one is none (by the path, as before it was recorded)
  const id = typeof table === 'string' && /^(gpt|dos):[0-9a-f]{1,64}$/.test(table) ? { table } : {};
  return BigInt(start) < BigInt(end) ? { partition: { start: BigInt(start), end: BigInt(end), ...id } } : {};
}

/**
 * The partition a disk pool's interrupted create made: the extent its `made` record names, or
 * else the one it planned (createVol puts it in the volume the entry holds; mkpart is given
 * exactly those bytes). Never its number: by the next start, another partition may have it.
 */
function madeExtent(entry: JournalEntry): PartitionExtent | undefined {
  if (entry.pool.type !== PoolType.POOL_TYPE_DISK) return undefined;
  if (entry.partition) return entry.partition;
  const planned = entry.volume.sourceDevices[0]?.extents[0];
  return planned && planned.start < planned.end ? { start: planned.start, end: planned.end } : undefined;
}

/** The recorded file, when the record has a whole one. */
function fileOf(raw: unknown): { file?: NewFileIdentity } {
  if (typeof raw !== 'object' || raw === null) return {};
  const { ino, birthtimeNs } = raw as Record<string, unknown>;
  if (typeof ino !== 'string' || typeof birthtimeNs !== 'string' || !/^\d+$/.test(ino) || !/^\d+$/.test(birthtimeNs)) return {};
  return { file: { ino: BigInt(ino), birthtimeNs: BigInt(birthtimeNs) } };
}

/** The recorded pool directory, when the record has a whole one. */
function directoryOf(raw: unknown): { poolDirectory?: DirectoryIdentity } {
  if (typeof raw !== 'object' || raw === null) return {};
  const { dev, ino } = raw as Record<string, unknown>;
  return Number.isSafeInteger(dev) && Number.isSafeInteger(ino) ? { poolDirectory: { dev: dev as number, ino: ino as number } } : {};
}

/** Begin records without an end record, in journal order; a torn last line is ignored. */
function parseLog(text: string): JournalEntry[] {
  const out: JournalEntry[] = [];
  for (const raw of parseOpenRecords(text)) {
    try {
      out.push(entryOf(raw));
    } catch {
      // unreadable entry: nothing to clean up from it
    }
  }
  return out;
}

function onlyExtentOf(entry: JournalEntry): { onlyExtent?: PartitionExtent } {
  const extent = madeExtent(entry);
  return extent ? { onlyExtent: extent } : {};
}

export interface CleanupResult {
  removed: string[];
  failed: string[];
}

/**
 * Only a dir pool's storage is there before the pool starts: an fs or netfs pool is not
 * mounted yet at boot, an LV or a partition may not be active. There a volume that is not
 * found is not proof that it was removed.
 */
const readyAtBoot = (pool: PoolDefinition): boolean => pool.type === PoolType.POOL_TYPE_DIR;

/** Removes what one interrupted create left; false when it could not (the entry stays). */
async function cleanupEntry(
  journal: CreateJournal,
  entry: JournalEntry,
  backend: StorageBackend,
  runner: import('../../libs/backends/runner.js').CommandRunner,
  log: Logger,
): Promise<boolean> {
  const what = { pool: entry.pool.name, volume: entry.volume.name, operation: entry.operation, requestId: entry.requestId, startedAt: entry.startedAt };
  try {
    let removed = false;
    if (!entry.existed && backend.deleteVol) {
      try {
        // by its create id: a same-named volume made since (by hand) is not this create's; and
        // only in the directory it wrote in
        await backend.deleteVol({ pool: entry.pool, runner }, entry.volume, {
          ...(entry.createId === undefined ? {} : { createdBy: entry.createId }),
          ...(entry.poolDirectory === undefined ? {} : { poolDirectory: entry.poolDirectory }),
          ...(entry.file === undefined ? {} : { onlyFile: entry.file }),
          ...onlyExtentOf(entry),
        });
        removed = true;
      } catch (err) {
        // nothing of this create's there (never made, or removed since): said so in the log,
        // which an operator reads after an incident
        if (asCisternError(err).code !== 'NOT_FOUND') throw err;
      }
    }
    await journal.remove(entry.id);
    log.warn(removed ? 'removed what an interrupted volume create left' : 'nothing of an interrupted volume create was left to remove', what);
    return true;
  } catch (err) {
    log.error('could not remove what an interrupted volume create left; retried when the pool starts again', { ...what, error: err });
    return false;
  }
}

/**
 * Removes the volumes an interrupted create or clone left (journal entries of an earlier
 * run), before any pool starts, for dir pools. The others wait until their pool is started
 * (cleanupWhenStarted), as does a volume that cannot be removed now.
 */
export async function cleanupInterruptedCreates(
  journal: CreateJournal,
  backendOf: (pool: PoolDefinition) => StorageBackend,
  runner: import('../../libs/backends/runner.js').CommandRunner,
  log: Logger,
): Promise<CleanupResult> {
  const result: CleanupResult = { removed: [], failed: [] };
  for (const entry of await journal.pending()) {
    const name = `${entry.pool.name}/${entry.volume.name}`;
    if (readyAtBoot(entry.pool) && (await cleanupEntry(journal, entry, backendOf(entry.pool), runner, log))) {
      result.removed.push(name);
      continue;
    }
    journal.keepWaiting(entry);
    if (readyAtBoot(entry.pool)) result.failed.push(name);
  }
  await journal.removeIfDone();
  return result;
}

/** Whether `pool` started over other storage than the one `entry`'s create wrote in. */
function startedElsewhere(entry: JournalEntry, pool: PoolDefinition): boolean {
  return startedOverAnotherDisk(entry, pool) || startedInAnotherDirectory(entry, pool);
}

/**
 * A disk pool redefined over another device: the undo finds the partition by the bytes it
 * covers, and a partition lying there on the other disk (parted's default alignment makes
 * that common) is not the create's.
 */
function startedOverAnotherDisk(entry: JournalEntry, pool: PoolDefinition): boolean {
  if (pool.type !== PoolType.POOL_TYPE_DISK || entry.pool.type !== PoolType.POOL_TYPE_DISK) return false;
  const wrote = entry.pool.source?.devices[0]?.path;
  return wrote !== undefined && wrote !== pool.source?.devices[0]?.path;
}

/** Whether the dir pool `pool` started with another directory than the one `entry`'s create wrote in. */
function startedInAnotherDirectory(entry: JournalEntry, pool: PoolDefinition): boolean {
  const wrote = entry.poolDirectory;
  const now = pool.type === PoolType.POOL_TYPE_DIR ? startedPoolDirectory(pool) : undefined;
  return wrote !== undefined && now !== undefined && (now.dev !== wrote.dev || now.ino !== wrote.ino);
}

/** After `pool` started, before its first scan: what interrupted creates left in it goes. */
export async function cleanupWhenStarted(
  journal: CreateJournal,
  pool: PoolDefinition,
  backend: StorageBackend,
  runner: import('../../libs/backends/runner.js').CommandRunner,
  log: Logger,
): Promise<void> {
  for (const entry of journal.takeWaiting(pool.name)) {
    if (startedElsewhere(entry, pool)) {
      // what the create left is in the directory or on the disk it wrote in, which this pool
      // no longer is (rebuilt, its target made a link, redefined over another device): nothing
      // of it to remove here, ever
      await journal.remove(entry.id);
      log.warn('forgot an interrupted volume create: its pool started over another directory or device than the one it wrote in; what it left stays there', {
        pool: entry.pool.name,
        volume: entry.volume.name,
        operation: entry.operation,
        startedAt: entry.startedAt,
        wroteIn: entry.poolDirectory ?? entry.pool.source?.devices[0]?.path,
      });
      continue;
    }
    // the pool as it is defined now: where its storage is mounted or active
    if (!(await cleanupEntry(journal, { ...entry, pool }, backend, runner, log))) journal.keepWaiting(entry);
  }
}
