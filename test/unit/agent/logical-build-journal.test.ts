// An agent killed in the middle of building a logical pool, with the real logical backend
// over a recording runner that keeps PVs, VGs and their tags as LVM does (files stand in for
// the devices): at its next start the build journal's cleanup removes the VG that build's
// vgcreate recorded (it carries the build's tag) and the PV labels its pvcreates wrote, and
// never a same-named VG someone made by hand in between.
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType, Tristate } from '../../../libs/proto/cistern/v1/storage.js';
import { LogicalBackend } from '../../../libs/backends/logical.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { CommandFailedError } from '../../../libs/errors/errors.js';
import { dispatch } from '../../../services/agent/agent.js';
import { BuildJournal, cleanupInterruptedBuilds } from '../../../services/agent/build-journal.js';
import { silentLogger } from '../../../libs/log/logger.js';
import { inProcessAgent } from '../../support/agent-context.js';
import { makeTempDir } from '../../support/index.js';

const VG = 'HostVG';

function poolOn(devices: string[]): PoolDefinition {
  return PoolDefinition.fromPartial({
    type: PoolType.POOL_TYPE_LOGICAL,
    name: 'lvm',
    source: { name: VG, format: 'lvm2', devices: devices.map((path) => ({ path, partSeparator: Tristate.TRISTATE_ABSENT, freeExtents: [] })) },
    target: { path: `/dev/${VG}` },
  });
}

/**
 * LVM as far as a build and its cleanup need it: PVs (device -> VG name or ''), VGs with
 * their tags. vgremove honours `--select vg_tags={T}`. `at` is called when a command is
 * about to return: it may hang there, as a command does whose agent is killed.
 */
function fakeLvm(at: (cmd: string, argv: readonly string[]) => Promise<void> = async () => undefined) {
  const pvs = new Map<string, string>();
  const vgs = new Map<string, string[]>();
  const arg = (argv: readonly string[], flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i < 0 ? undefined : argv[i + 1];
  };
  const runner = new RecordingRunner({ strict: true })
    .on(['pvcreate'], async (argv) => {
      pvs.set(argv.at(-1)!, '');
      await at('pvcreate', argv);
      return {};
    })
    .on(['vgcreate'], async (argv) => {
      const tag = arg(argv, '--addtag');
      const rest = argv.slice(tag === undefined ? 1 : 3);
      const [name, ...devs] = rest;
      vgs.set(name!, tag ? [tag] : []);
      for (const d of devs) pvs.set(d, name!);
      await at('vgcreate', argv);
      return {};
    })
    .on(['vgchange', '--deltag'], (argv) => {
      const [, , tag, name] = argv;
      vgs.set(name!, (vgs.get(name!) ?? []).filter((t) => t !== tag));
      return {};
    })
    .on(['vgremove'], (argv) => {
      const name = argv.at(-1)!;
      if (!vgs.has(name)) throw new CommandFailedError([...argv], 5, `  Volume group "${name}" not found`);
      const select = /^vg_tags=\{(.*)\}$/.exec(arg(argv, '--select') ?? '');
      if (select && !vgs.get(name)!.includes(select[1]!)) return {};
      vgs.delete(name);
      for (const [d, v] of pvs) if (v === name) pvs.set(d, '');
      return {};
    })
    .on(['pvs'], (argv) =>
      argv.includes('pv_name,vg_name')
        ? { stdout: [...pvs].map(([d, v]) => `  ${d}:${v}`).join('\n') + '\n' }
        : { stdout: argv.slice(argv.indexOf('vg_name') + 1).map((d) => `  ${pvs.get(d) ?? ''}`).join('\n') + '\n' },
    )
    .on(['pvremove'], (argv) => {
      const dev = argv.at(-1)!;
      if (pvs.get(dev) !== '') throw new CommandFailedError([...argv], 5, `  No PV found on device ${dev}.`);
      pvs.delete(dev);
      return {};
    });
  return { runner, pvs, vgs };
}

/** Two files standing in for disks, and a journal root. */
function setup() {
  const dir = makeTempDir('cistern-buildjournal-').path;
  const devices = ['disk1', 'disk2'].map((n) => {
    const path = join(dir, n);
    writeFileSync(path, Buffer.alloc(4 * 1024 * 1024));
    return path;
  });
  return { root: join(dir, 'root'), devices };
}

async function agentWith(root: string, runner: RecordingRunner, pool: PoolDefinition) {
  const backend = new LogicalBackend({ allowRegularFiles: true });
  const { ctx } = inProcessAgent({ runner, backend });
  ctx.builds = await BuildJournal.open(root);
  const build = () => {
    const req = AgentRequest.fromPartial({ principal: 'alice', requestId: 'r1', pool });
    req.op = { $case: 'buildPool', value: { name: 'hosts/h/pools/lvm', flags: { overwrite: true, noOverwrite: false }, requestId: 'r1' } };
    return dispatch(ctx, 'buildPool', req);
  };
  return { build };
}

/** The next start of the agent: the build journal read again and its cleanup run. */
async function restart(root: string, runner: RecordingRunner) {
  const journal = await BuildJournal.open(root);
  const result = await cleanupInterruptedBuilds(journal, () => new LogicalBackend({ allowRegularFiles: true }), runner, silentLogger);
  return { journal, result };
}

/**
 * LVM whose command `cmd` (for which `when` holds) records what it does and never returns, as
 * one does whose agent is killed; `reached` resolves once it got there.
 */
function lvmKilledIn(cmd: string, when: (argv: readonly string[]) => boolean = () => true) {
  let hit!: () => void;
  const reached = new Promise<void>((r) => (hit = r));
  const lvm = fakeLvm(async (c, argv) => {
    if (c !== cmd || !when(argv)) return;
    hit();
    await new Promise(() => undefined);
  });
  return { ...lvm, reached };
}

describe('agent killed during a logical pool build (build journal cleanup at the next start)', () => {
  it('removes the VG the interrupted vgcreate recorded (it carries the tag the journal entry names) and its PV labels', async () => {
    const { root, devices } = setup();
    const { runner, pvs, vgs, reached } = lvmKilledIn('vgcreate');
    const { build } = await agentWith(root, runner, poolOn(devices));
    void build();
    await reached;
    const entry = (await (await BuildJournal.open(root)).pending())[0]!;
    expect(vgs.get(VG)).to.deep.equal([`cistern.build.${entry.id}`], 'the journal entry names the tag vgcreate got');

    runner.reset();
    const { journal, result } = await restart(root, runner);
    expect([...vgs.keys()]).to.deep.equal([]);
    expect([...pvs.keys()]).to.deep.equal([]);
    expect(runner.callsOf('vgremove')).to.deep.equal([['vgremove', '-f', '--select', `vg_tags={cistern.build.${entry.id}}`, VG]]);
    expect(result).to.deep.equal({ cleaned: ['lvm'], failed: [] });
    expect(await journal.pending()).to.deep.equal([]);
  });

  it('removes the labels of the pvcreates that ran, the one the agent died in too', async () => {
    const { root, devices } = setup();
    const { runner, pvs, vgs, reached } = lvmKilledIn('pvcreate', (argv) => argv.at(-1) === devices[1]);
    const { build } = await agentWith(root, runner, poolOn(devices));
    void build();
    await reached;
    expect([...pvs.keys()]).to.deep.equal(devices);
    await restart(root, runner);
    expect([...pvs.keys()]).to.deep.equal([]);
    expect([...vgs.keys()]).to.deep.equal([]);
  });

  it('keeps a same-named VG made by hand after the agent died before LVM recorded its own', async () => {
    const { root, devices } = setup();
    const { runner, pvs, vgs, reached } = lvmKilledIn('vgcreate');
    const { build } = await agentWith(root, runner, poolOn(devices));
    void build();
    await reached;
    // the killed vgcreate had committed nothing; the admin makes the VG by hand
    vgs.set(VG, []);
    const { journal } = await restart(root, runner);
    expect(vgs.get(VG)).to.deep.equal([]);
    expect([...pvs.values()]).to.deep.equal([VG, VG], 'its PVs stay in it');
    expect(await journal.pending()).to.deep.equal([], 'the entry is done: nothing of this build was left');
  });

  it('a build that finishes takes its tag off the VG and leaves no journal entry', async () => {
    const { root, devices } = setup();
    const { runner, vgs } = fakeLvm();
    const { build } = await agentWith(root, runner, poolOn(devices));
    await build();
    expect(vgs.get(VG)).to.deep.equal([]);
    expect(await (await BuildJournal.open(root)).pending()).to.deep.equal([]);
    runner.reset();
    await restart(root, runner);
    expect(runner.calls).to.deep.equal([], 'nothing to clean up at the next start');
  });

  it('a build that fails is done too: its own undo ran, the next start runs nothing', async () => {
    const { root, devices } = setup();
    // vgcreate fails after LVM recorded the VG (as when it times out)
    const { runner, pvs, vgs } = fakeLvm(async (cmd) => {
      if (cmd === 'vgcreate') throw new CommandFailedError(['vgcreate'], 5, '  Interrupted.');
    });
    const { build } = await agentWith(root, runner, poolOn(devices));
    let failed = false;
    await build().catch(() => (failed = true));
    expect(failed).to.equal(true);
    expect(await (await BuildJournal.open(root)).pending()).to.deep.equal([]);
    expect(vgs.size).to.equal(0);
    expect(pvs.size).to.equal(0);
    runner.reset();
    await restart(root, runner);
    expect(runner.calls).to.deep.equal([]);
  });
});
