// Journal of in-flight pool builds under the agent's root (journal/builds.log): a build of a
// pool type that can clean up after itself (StorageBackend.cleanupInterruptedBuild; LVM,
// where a killed build leaves PV labels and a VG that block a retry without overwrite) is
// recorded with its build id before it writes anything and marked done when it ends, either
// way. An agent killed in between finds the entry at its next start, before it serves any
// request, and has the backend remove what that build made (found by the id it carries).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PoolDefinition, type BuildFlags } from '../../libs/proto/cistern/v1/storage.js';
import type { PoolContext, StorageBackend } from '../../libs/backends/backend.js';
import type { CommandRunner } from '../../libs/backends/runner.js';
import { newCreateId } from '../../libs/backends/create-id.js';
import { JournalFile, type JournalRecord } from './journal-file.js';
import type { Logger } from '../../libs/log/logger.js';

export interface BuildEntry {
  /** the build id: the journal record's id, and what the backend marks its work with */
  id: string;
  pool: PoolDefinition;
  requestId: string;
  principal: string;
  startedAt: string;
}

const LOG_FILE = 'builds.log';

export class BuildJournal {
  private readonly file: JournalFile;
  private inFlight = 0;

  private constructor(dir: string) {
    this.file = new JournalFile(join(dir, LOG_FILE));
  }

  static async open(root: string): Promise<BuildJournal> {
    const dir = join(root, 'journal');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new BuildJournal(dir);
  }

  /** Records a build about to start; the returned function marks it done. */
  begin(entry: Omit<BuildEntry, 'id' | 'startedAt'>): { id: string; done: () => void } {
    const id = newCreateId();
    this.file.append({ id, pool: PoolDefinition.toJSON(entry.pool), requestId: entry.requestId, principal: entry.principal, startedAt: new Date().toISOString() });
    this.inFlight++;
    let ended = false;
    return {
      id,
      done: () => {
        if (ended) return;
        ended = true;
        this.end(id);
      },
    };
  }

  private end(id: string): void {
    try {
      this.file.append({ end: id });
    } catch {
      // not recorded: the next start cleans up after a build that finished; the backend
      // finds nothing of it to remove (its mark is taken off when the build is done)
    }
    this.inFlight--;
  }

  /** Builds of an earlier run that never ended, oldest first. */
  async pending(): Promise<BuildEntry[]> {
    const out: BuildEntry[] = [];
    for (const raw of await this.file.openRecords()) {
      const entry = entryOf(raw);
      if (entry) out.push(entry);
    }
    return out;
  }

  /** Marks an entry of an earlier run done (after its cleanup). */
  remove(id: string): void {
    this.file.append({ end: id });
  }

  /** Removes the file when nothing in it is pending (at start, after the cleanup). */
  async removeIfDone(): Promise<void> {
    if (this.inFlight > 0 || (await this.pending()).length > 0) return;
    await this.file.remove();
  }
}

function entryOf(raw: JournalRecord): BuildEntry | undefined {
  try {
    return {
      id: String(raw.id),
      pool: PoolDefinition.fromJSON(raw.pool),
      requestId: String(raw.requestId ?? ''),
      principal: String(raw.principal ?? ''),
      startedAt: String(raw.startedAt ?? ''),
    };
  } catch {
    return undefined; // unreadable: nothing to clean up from it
  }
}

/**
 * Runs `backend.buildPool`, journaled when the backend can clean up after a build its
 * agent's death interrupted (and the agent keeps a journal: unit tests may not).
 */
export async function journaledBuild(
  journal: BuildJournal | undefined,
  backend: StorageBackend,
  pc: PoolContext,
  flags: BuildFlags,
  actor: { principal: string; requestId: string },
): Promise<void> {
  if (!journal || !backend.cleanupInterruptedBuild) return backend.buildPool!(pc, flags);
  const { id, done } = journal.begin({ pool: pc.pool, requestId: actor.requestId, principal: actor.principal });
  try {
    await backend.buildPool!(pc, flags, { buildId: id });
  } finally {
    done();
  }
}

/**
 * At start, before any pool starts: what builds interrupted by this agent's death left is
 * removed. An entry whose cleanup fails stays for the next start (logged).
 */
export async function cleanupInterruptedBuilds(
  journal: BuildJournal,
  backendOf: (pool: PoolDefinition) => StorageBackend,
  runner: CommandRunner,
  log: Logger,
): Promise<{ cleaned: string[]; failed: string[] }> {
  const result = { cleaned: [] as string[], failed: [] as string[] };
  for (const entry of await journal.pending()) {
    const what = { pool: entry.pool.name, buildId: entry.id, requestId: entry.requestId, startedAt: entry.startedAt };
    const backend = backendOf(entry.pool);
    try {
      await backend.cleanupInterruptedBuild?.({ pool: entry.pool, runner }, entry.id);
      journal.remove(entry.id);
      result.cleaned.push(entry.pool.name);
      log.warn('removed what an interrupted pool build left', what);
    } catch (err) {
      result.failed.push(entry.pool.name);
      log.error('could not remove what an interrupted pool build left; retried at the next start', { ...what, error: err });
    }
  }
  await journal.removeIfDone();
  return result;
}
