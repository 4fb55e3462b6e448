// A dir pool create the agent was killed in: its journal entry begun, a partial file written,
// and the pool's directory forgotten as by a new agent process. The create-journal tests start
// from here and change the disk before the next boot reads the journal.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateJournal } from '../../services/agent/journal.js';
import { PoolDefinition, PoolType, VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { forgetPoolDirectory, rememberPoolDirectory } from '../../libs/backends/dir/pool-directory.js';
import { makeTempDir } from './cleanup.js';

export interface InterruptedDirCreate {
  /** the test's temp dir: the pool directory is `pool` in it, the agent's root `root` */
  tmp: string;
  /** the pool's target directory */
  target: string;
  /** the agent's root, where the journal is */
  root: string;
  pool: PoolDefinition;
  /** the volume the create was making: half.img, holding 'partial' */
  volume: VolumeDefinition;
}

export async function interruptedDirCreate(prefix: string): Promise<InterruptedDirCreate> {
  const tmp = makeTempDir(prefix).path;
  const target = join(tmp, 'pool');
  const root = join(tmp, 'root');
  mkdirSync(target);
  const pool = PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: target } });
  const volume = VolumeDefinition.fromPartial({ name: 'half.img', target: { path: join(target, 'half.img'), format: 'raw' } });
  await rememberPoolDirectory(pool);
  const journal = await CreateJournal.open(root);
  await journal.begin({ operation: 'create', pool, volume, requestId: 'r', principal: 'p' });
  writeFileSync(join(target, 'half.img'), 'partial');
  forgetPoolDirectory(pool); // the next start is another process
  return { tmp, target, root, pool, volume };
}
