// Journal of in-flight creates and clones under the agent's root (issue 6): an entry is
// written after the backend planned the new volume and before it writes anything, and
// removed when the operation ends (either way). An agent killed in between finds the
// entry at its next start and removes what the create left, before it starts any pool.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PoolDefinition, VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { asCisternError } from '../../libs/errors/errors.js';
import type { StorageBackend } from '../../libs/backends/backend.js';
import type { Logger } from './log.js';

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
}

export class CreateJournal {
  private constructor(readonly dir: string) {}

  static async open(root: string): Promise<CreateJournal> {
    const dir = join(root, 'journal');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new CreateJournal(dir);
  }

  /** Records a create about to write `volume`; the returned function removes the record. */
  async begin(entry: Omit<JournalEntry, 'id' | 'existed' | 'startedAt'>): Promise<() => Promise<void>> {
    const id = `${Date.now()}-${randomBytes(6).toString('hex')}`;
    const path = entry.volume.target?.path;
    const existed = path ? await lstat(path).then(() => true, () => false) : false;
    const record = {
      id,
      operation: entry.operation,
      pool: PoolDefinition.toJSON(entry.pool),
      volume: VolumeDefinition.toJSON(entry.volume),
      requestId: entry.requestId,
      principal: entry.principal,
      existed,
      startedAt: new Date().toISOString(),
    };
    const file = join(this.dir, `${id}.json`);
    await writeFile(`${file}.tmp`, JSON.stringify(record), { mode: 0o600 });
    await rename(`${file}.tmp`, file);
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      await unlink(file).catch(() => undefined);
    };
  }

  async pending(): Promise<JournalEntry[]> {
    const out: JournalEntry[] = [];
    for (const name of (await readdir(this.dir)).sort()) {
      const file = join(this.dir, name);
      if (name.endsWith('.tmp')) {
        await unlink(file).catch(() => undefined); // written before anything else happened
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        const raw = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
        out.push({
          id: String(raw.id),
          operation: raw.operation === 'clone' ? 'clone' : 'create',
          pool: PoolDefinition.fromJSON(raw.pool),
          volume: VolumeDefinition.fromJSON(raw.volume),
          requestId: String(raw.requestId ?? ''),
          principal: String(raw.principal ?? ''),
          existed: raw.existed === true,
          startedAt: String(raw.startedAt ?? ''),
        });
      } catch {
        await unlink(file).catch(() => undefined);
      }
    }
    return out;
  }

  async remove(id: string): Promise<void> {
    await unlink(join(this.dir, `${id}.json`)).catch(() => undefined);
  }
}

export interface CleanupResult {
  removed: string[];
  failed: string[];
}

/**
 * Removes the volumes an interrupted create or clone left (journal entries of an earlier
 * run). A volume that cannot be removed now keeps its entry for the next start.
 */
export async function cleanupInterruptedCreates(
  journal: CreateJournal,
  backendOf: (pool: PoolDefinition) => StorageBackend,
  runner: import('../../libs/backends/runner.js').CommandRunner,
  log: Logger,
): Promise<CleanupResult> {
  const result: CleanupResult = { removed: [], failed: [] };
  for (const entry of await journal.pending()) {
    const what = { pool: entry.pool.name, volume: entry.volume.name, operation: entry.operation, requestId: entry.requestId, startedAt: entry.startedAt };
    try {
      if (!entry.existed) {
        const backend = backendOf(entry.pool);
        if (backend.deleteVol) {
          try {
            await backend.deleteVol({ pool: entry.pool, runner }, entry.volume);
          } catch (err) {
            if (asCisternError(err).code !== 'NOT_FOUND') throw err;
          }
        }
      }
      await journal.remove(entry.id);
      result.removed.push(`${entry.pool.name}/${entry.volume.name}`);
      log.warn('removed what an interrupted volume create left', what);
    } catch (err) {
      result.failed.push(`${entry.pool.name}/${entry.volume.name}`);
      log.error('could not remove what an interrupted volume create left; retried at the next start', { ...what, error: err });
    }
  }
  return result;
}
