// The undo of a create or clone the agent's death interrupted removes the file that create
// made, not whatever holds its name by the next start. On storage another host writes too (a
// dir or netfs pool over one NFS export), the partial file is seen there, deleted, and the name
// created again while this agent is down; its restart must not remove the other host's new
// volume (review h87: it did, by name). libvirt removes nothing at a restart.
import { expect } from 'chai';
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType } from '../../../libs/proto/cistern/v1/storage.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { DirBackend } from '../../../libs/backends/dir.js';
import { forgetPoolDirectory } from '../../../libs/backends/dir/pool-directory.js';
import { execRunner } from '../../../libs/backends/exec-runner.js';
import type { AgentContext } from '../../../services/agent/context.js';
import { dispatch } from '../../../services/agent/agent.js';
import { activatePool } from '../../../services/agent/handlers/pool-ops.js';
import { CreateJournal, cleanupInterruptedCreates } from '../../../services/agent/journal.js';
import { inProcessAgent } from '../../support/agent-context.js';
import { useTempDir } from '../../support/index.js';
import { silentLogger, type Logger } from '../../../libs/log/logger.js';

const silent = { debug() {}, info() {}, warn() {}, error() {}, child() { return silent; } } as never;

describe('create journal: a name taken again on shared storage while the agent was down', () => {
  const scratch = useTempDir('cistern-journal-shared-');

  /** Creates `name` in a running dir pool with a journal whose end never comes (the agent died after the file was made); returns the pool and the agent's root. */
  async function interruptedCreate(dir: string, name: string): Promise<{ pool: PoolDefinition; root: string }> {
    const target = join(scratch.path, dir);
    const root = join(scratch.path, `${dir}-root`);
    mkdirSync(target);
    const { ctx } = inProcessAgent({ runner: new RecordingRunner() });
    const journal = await CreateJournal.open(root);
    ctx.journal = {
      begin: async (entry: Parameters<CreateJournal['begin']>[0]) => {
        const handle = await journal.begin(entry);
        // what the journal records while the create runs stays; its end never comes
        return Object.assign(async () => undefined, handle);
      },
      takeWaiting: () => [],
    } as unknown as AgentContext['journal'];
    const pool = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: dir, target: { path: target } });
    await activatePool(ctx, pool, { persistent: false, autostart: false }, { principal: 't', requestId: '' });
    await dispatch(
      ctx,
      'createVolume',
      AgentRequest.fromPartial({ pool, op: { $case: 'createVolume', value: { parent: `hosts/h/pools/${dir}`, definition: { name, capacity: 1048576n, target: { format: 'raw' } } } } }),
    );
    forgetPoolDirectory(pool); // the next start is another process
    return { pool, root };
  }

  it("leaves the volume another host made under that name since, and removes the agent's own partial file", async () => {
    const { root, pool } = await interruptedCreate('shared', 'v.img');
    const file = join(pool.target!.path, 'v.img');
    // the other host: refreshes, deletes the partial file, creates v.img again with its data
    unlinkSync(file);
    writeFileSync(file, "the other host's data");
    const boot = await CreateJournal.open(root);
    await cleanupInterruptedCreates(boot, () => new DirBackend(), execRunner, silent);
    expect(existsSync(file), "the other host's volume").to.equal(true);
    expect(readFileSync(file, 'utf8')).to.equal("the other host's data");
    expect(await boot.pending(), 'nothing left to undo').to.deep.equal([]);

    // the plain case: the partial file is still there, and goes
    const own = await interruptedCreate('own', 'w.img');
    const next = await CreateJournal.open(own.root);
    expect(await cleanupInterruptedCreates(next, () => new DirBackend(), execRunner, silent)).to.deep.equal({ removed: ['own/w.img'], failed: [] });
    expect(existsSync(join(own.pool.target!.path, 'w.img'))).to.equal(false);
  });

  it('logs that nothing was left to remove when the name is another file now, or gone, and that it removed the partial file when it did (h92 did so for disk pools)', async () => {
    /** A logger keeping its warnings' messages. */
    const warnings = (): Logger & { seen: string[] } => {
      const seen: string[] = [];
      const log: Logger = { ...silentLogger, warn: (msg: string) => void seen.push(msg), child: () => log };
      return Object.assign(log, { seen });
    };
    const taken = await interruptedCreate('taken', 'v.img');
    const file = join(taken.pool.target!.path, 'v.img');
    unlinkSync(file);
    writeFileSync(file, "the other host's data");
    const takenLog = warnings();
    await cleanupInterruptedCreates(await CreateJournal.open(taken.root), () => new DirBackend(), execRunner, takenLog);
    expect(readFileSync(file, 'utf8')).to.equal("the other host's data");
    // it did not remove the other host's volume: the log must not tell the operator it did
    expect(takenLog.seen).to.deep.equal(['nothing of an interrupted volume create was left to remove']);

    const gone = await interruptedCreate('gone', 'g.img');
    unlinkSync(join(gone.pool.target!.path, 'g.img'));
    const goneLog = warnings();
    await cleanupInterruptedCreates(await CreateJournal.open(gone.root), () => new DirBackend(), execRunner, goneLog);
    expect(goneLog.seen).to.deep.equal(['nothing of an interrupted volume create was left to remove']);

    const own = await interruptedCreate('mine', 'w.img');
    const ownLog = warnings();
    await cleanupInterruptedCreates(await CreateJournal.open(own.root), () => new DirBackend(), execRunner, ownLog);
    expect(existsSync(join(own.pool.target!.path, 'w.img'))).to.equal(false);
    expect(ownLog.seen).to.deep.equal(['removed what an interrupted volume create left']);
  });
});
