// The agent's delete with the real logical backend over the recording runner: lvremove -f
// of an origin LV removes its snapshots too (LVM does it, libvirt's delete does the same),
// so the agent re-reads the pool and publishes the snapshots' deletion as well; deleting an
// LV nothing depends on publishes that one deletion and scans nothing.
import { expect } from 'chai';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { EventKind, PoolDefinition, PoolType, Tristate } from '../../../libs/proto/cistern/v1/storage.js';
import { LogicalBackend } from '../../../libs/backends/logical.js';
import { dispatch } from '../../../services/agent/agent.js';
import { inProcessAgent } from '../../support/agent-context.js';
import { lvmPoolRunner } from '../../support/lvm-script.js';

const VG = 'HostVG';
const MiB = 1024 * 1024;
const TARGET = `/nonexistent-cistern-test/${VG}`;

/** One lvs line (lvsArgv's fields), as lvm 2.03 prints it with --separator '#'. */
function lvLine(name: string, attr: string, opts: { origin?: string; size?: number; start?: number; originSize?: number } = {}): string {
  const size = opts.size ?? 8 * MiB;
  return `  ${name}#${opts.origin ?? ''}#uuid-${name}#/dev/sdb(${opts.start ?? 0})#linear#1#${size}#4194304#${size}#${attr}#${opts.originSize ?? ''}`;
}

function setup() {
  // o: an origin ('o' in lv_attr) with snapshot s (its origin column names o); keep: a plain LV
  let lines = [
    lvLine('o', 'owi-a-s---', { size: 16 * MiB, originSize: 16 * MiB }),
    lvLine('s', 'swi-a-s---', { origin: 'o', size: 4 * MiB, start: 4, originSize: 16 * MiB }),
    lvLine('keep', '-wi-a-----', { start: 5 }),
  ];
  const runner = lvmPoolRunner(VG)
    .on(['lvs'], () => ({ stdout: lines.join('\n') + '\n' }))
    .on(['lvremove'], (argv) => {
      const lv = argv.at(-1)!.split('/')[1]!;
      // lvm: removing an origin removes every snapshot of it
      lines = lines.filter((l) => {
        const [name, origin] = l.trim().split('#');
        return name !== lv && origin !== lv;
      });
      return {};
    });
  const { ctx, events } = inProcessAgent({ runner, backend: new LogicalBackend() });
  const pool = PoolDefinition.fromPartial({
    type: PoolType.POOL_TYPE_LOGICAL,
    name: 'lvm',
    source: { name: VG, format: 'lvm2', devices: [{ path: '/dev/sdb', partSeparator: Tristate.TRISTATE_ABSENT, freeExtents: [] }] },
    target: { path: TARGET },
  });
  const call = (op: AgentRequest['op']) => {
    const req = AgentRequest.fromPartial({ principal: 'alice', requestId: 'r1', pool });
    req.op = op;
    return dispatch(ctx, op!.$case, req);
  };
  const start = () => call({ $case: 'startPool', value: { name: 'hosts/h/pools/lvm', build: false, buildFlags: undefined, requestId: '' } });
  const del = (name: string) => call({ $case: 'deleteVolume', value: { name: `hosts/h/pools/lvm/volumes/${name}`, requestId: '' } });
  return { runner, events, ctx, start, del };
}

describe('agent delete on a logical pool (recording runner)', () => {
  it('deleting an origin publishes VOLUME_DELETED for it and for the snapshots lvremove took with it', async () => {
    const { runner, events, ctx, start, del } = setup();
    await start();
    const pool = ctx.state.getPool('lvm')!;
    expect([...pool.volumes.keys()].sort()).to.deep.equal(['keep', 'o', 's']);
    expect(pool.volumes.get('s')!.definition.backingStore?.path).to.equal(`${TARGET}/o`);

    const before = events.length;
    runner.reset();
    const reply = await del('o');
    const deleted = events.slice(before).filter((e) => e.kind === EventKind.VOLUME_DELETED).map((e) => e.volumeState?.definition?.name);
    expect(deleted).to.deep.equal(['o', 's']);
    expect(events.slice(before).filter((e) => e.kind === EventKind.VOLUME_CHANGED)).to.deep.equal([], 'keep did not change');
    expect([...pool.volumes.keys()]).to.deep.equal(['keep']);
    // the pool was re-read after the lvremove; the reply says the events carry the rest
    const argvs = runner.argvs.map((a) => a[0]);
    expect(argvs.indexOf('lvs')).to.be.greaterThan(argvs.indexOf('lvremove'));
    expect(reply.stateComplete).to.equal(false);
  });

  it('deleting an LV no other volume names as its origin publishes one VOLUME_DELETED and scans nothing', async () => {
    const { runner, events, ctx, start, del } = setup();
    await start();
    const before = events.length;
    runner.reset();
    const reply = await del('keep');
    expect(events.slice(before).map((e) => [e.kind, e.volumeState?.definition?.name])).to.deep.equal([[EventKind.VOLUME_DELETED, 'keep']]);
    expect(runner.callsOf('lvs')).to.deep.equal([]);
    expect(reply.stateComplete).to.equal(true);
    expect([...ctx.state.getPool('lvm')!.volumes.keys()].sort()).to.deep.equal(['o', 's']);
    // a snapshot is no origin: deleting it leaves the origin listed, without a scan
    runner.reset();
    await del('s');
    expect(runner.callsOf('lvs')).to.deep.equal([]);
    expect([...ctx.state.getPool('lvm')!.volumes.keys()]).to.deep.equal(['o']);
  });

  it('a delete gives the volume\'s allocation back to the pool, as storageVolDeleteInternal does: no refresh needed, no vgs run', async () => {
    const { runner, events, ctx, start, del } = setup();
    await start();
    const pool = ctx.state.getPool('lvm')!;
    // vgs: 120 MiB, 88 MiB free
    expect(pool.runtime).to.include({ capacity: 120n * BigInt(MiB), allocation: 32n * BigInt(MiB), available: 88n * BigInt(MiB) });
    const before = events.length;
    runner.reset();
    const reply = await del('keep'); // 8 MiB
    expect(runner.callsOf('vgs')).to.deep.equal([]);
    expect(pool.runtime).to.include({ capacity: 120n * BigInt(MiB), allocation: 24n * BigInt(MiB), available: 96n * BigInt(MiB) });
    const deleted = events.slice(before).find((e) => e.kind === EventKind.VOLUME_DELETED)!;
    expect(deleted.poolState).to.include({ capacity: 120n * BigInt(MiB), allocation: 24n * BigInt(MiB), available: 96n * BigInt(MiB) });
    expect(reply.poolState).to.include({ allocation: 24n * BigInt(MiB), available: 96n * BigInt(MiB) });
    // a snapshot gives back its COW area (its allocation), not its origin's size
    await del('s'); // 4 MiB
    expect(pool.runtime).to.include({ allocation: 20n * BigInt(MiB), available: 100n * BigInt(MiB) });
  });
});
