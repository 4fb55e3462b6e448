// An agent killed in the middle of a create into a logical pool, with the real logical
// backend over a recording runner that keeps the VG's LVs and their tags as LVM does: at
// its next start the journal's cleanup removes the LV that create made (it carries the
// create's tag) and never a same-named LV someone made by hand in between.
import { expect } from 'chai';
import { join } from 'node:path';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType, Tristate, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { LogicalBackend } from '../../../libs/backends/logical.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { CommandFailedError } from '../../../libs/errors/errors.js';
import { dispatch } from '../../../services/agent/agent.js';
import { CreateJournal, cleanupInterruptedCreates, cleanupWhenStarted } from '../../../services/agent/journal.js';
import { silentLogger } from '../../../libs/log/logger.js';
import { inProcessAgent } from '../../support/agent-context.js';
import { makeTempDir } from '../../support/index.js';
import { lvmPoolRunner } from '../../support/lvm-script.js';

const VG = 'HostVG';
const MiB = 1024 * 1024;
const TARGET = `/nonexistent-cistern-test/${VG}`;
const pool = PoolDefinition.fromPartial({
  type: PoolType.POOL_TYPE_LOGICAL,
  name: 'lvm',
  source: { name: VG, format: 'lvm2', devices: [{ path: '/dev/sdb', partSeparator: Tristate.TRISTATE_ABSENT, freeExtents: [] }] },
  target: { path: TARGET },
});

/**
 * LVM as far as these tests need it: the VG's LVs with their tags. lvremove honours
 * `--select lv_tags={T}`. `lvcreate` is the test's: it may record the LV and then hang,
 * as an lvcreate does whose agent is killed.
 */
function fakeLvm(lvcreate: (name: string, tag: string | undefined) => Promise<void>) {
  const lvs = new Map<string, string[]>();
  const arg = (argv: readonly string[], flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i < 0 ? undefined : argv[i + 1];
  };
  const line = (name: string) => `  ${name}##uuid-${name}#/dev/sdb(0)#linear#1#${MiB}#4194304#${MiB}#-wi-a-----#`;
  const runner = lvmPoolRunner(VG)
    .on(['lvs'], () => ({ stdout: [...lvs.keys()].map(line).join('\n') + '\n' }))
    .on(['lvcreate'], async (argv) => {
      await lvcreate(arg(argv, '--name')!, arg(argv, '--addtag'));
      return {};
    })
    .on(['lvremove'], (argv) => {
      const name = argv.at(-1)!.slice(`${VG}/`.length);
      if (!lvs.has(name)) throw new CommandFailedError([...argv], 5, `  Failed to find logical volume "${VG}/${name}"`);
      const select = /^lv_tags=\{(.*)\}$/.exec(arg(argv, '--select') ?? '');
      if (!select || lvs.get(name)!.includes(select[1]!)) lvs.delete(name);
      return {};
    });
  return { runner, lvs };
}

/** An agent with a journal under `root`, its logical pool started. */
async function agentWith(root: string, runner: RecordingRunner) {
  const { ctx } = inProcessAgent({ runner, backend: new LogicalBackend() });
  ctx.journal = await CreateJournal.open(root);
  const call = (op: AgentRequest['op']) => {
    const req = AgentRequest.fromPartial({ principal: 'alice', requestId: 'r1', pool });
    req.op = op;
    return dispatch(ctx, op!.$case, req);
  };
  await call({ $case: 'startPool', value: { name: 'hosts/h/pools/lvm', build: false, buildFlags: undefined, requestId: '' } });
  const create = (name: string) =>
    call({ $case: 'createVolume', value: { parent: 'hosts/h/pools/lvm', definition: VolumeDefinition.fromPartial({ name, capacity: BigInt(MiB) }), xml: '', preallocMetadata: false, requestId: '', validate: false } });
  return { ctx, create };
}

/** The next start of the agent: the journal read again, the pool started, its cleanup run. */
async function restart(root: string, runner: RecordingRunner): Promise<CreateJournal> {
  const journal = await CreateJournal.open(root);
  await cleanupInterruptedCreates(journal, () => new LogicalBackend(), runner, silentLogger);
  await cleanupWhenStarted(journal, pool, new LogicalBackend(), runner, silentLogger);
  return journal;
}

describe('agent killed during a create into a logical pool (journal cleanup at the next start)', () => {
  it('removes the LV the interrupted create made: the one carrying the tag its journal entry names', async () => {
    const root = join(makeTempDir('cistern-lvjournal-').path, 'root');
    let reached!: () => void;
    const atLvcreate = new Promise<void>((r) => (reached = r));
    const { runner, lvs } = fakeLvm(async (name, tag) => {
      lvs.set(name, tag ? [tag] : []);
      reached();
      await new Promise(() => undefined); // the agent is killed here: lvcreate never returns
    });
    const { create } = await agentWith(root, runner);
    void create('half');
    await atLvcreate;
    expect(lvs.get('half')).to.have.length(1);
    const entry = (await (await CreateJournal.open(root)).pending())[0]!;
    expect(lvs.get('half')).to.deep.equal([`cistern.create.${entry.createId}`], 'the journal entry names the tag lvcreate got');

    runner.reset();
    const journal = await restart(root, runner);
    expect([...lvs.keys()]).to.deep.equal([]);
    expect(runner.callsOf('lvremove')).to.deep.equal([['lvremove', '-f', '--select', `lv_tags={cistern.create.${entry.createId}}`, `${VG}/half`]]);
    expect(await journal.pending()).to.deep.equal([]);
  });

  it('leaves a same-named LV made by hand after the agent died before LVM recorded its own', async () => {
    const root = join(makeTempDir('cistern-lvjournal-').path, 'root');
    let reached!: () => void;
    const atLvcreate = new Promise<void>((r) => (reached = r));
    const { runner, lvs } = fakeLvm(async () => {
      reached();
      await new Promise(() => undefined); // killed before LVM committed anything
    });
    const { create } = await agentWith(root, runner);
    void create('name');
    await atLvcreate;
    lvs.set('name', []); // the admin makes an LV of that name by hand before the restart
    const journal = await restart(root, runner);
    expect([...lvs.keys()]).to.deep.equal(['name']);
    expect(await journal.pending()).to.deep.equal([], 'the entry is done: there was nothing of this create to remove');
  });

  it('an entry an earlier version wrote (no create id) is cleaned up by name, as it was', async () => {
    const root = join(makeTempDir('cistern-lvjournal-').path, 'root');
    const { runner, lvs } = fakeLvm(async () => undefined);
    const first = await CreateJournal.open(root);
    await first.begin({ operation: 'create', pool, volume: VolumeDefinition.fromPartial({ name: 'old', target: { path: `${TARGET}/old` } }), requestId: '', principal: 'p' });
    lvs.set('old', []);
    await restart(root, runner);
    expect([...lvs.keys()]).to.deep.equal([]);
    expect(runner.callsOf('lvremove')).to.deep.equal([['lvremove', '-f', `${VG}/old`]]);
  });
});
