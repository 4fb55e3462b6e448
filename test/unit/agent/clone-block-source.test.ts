// A clone whose source is a block volume (here an LV) copies the volume's bytes as they are,
// as libvirt 9.0 does: storageBackendCreateQemuImgSetInput reads a VIR_STORAGE_VOL_BLOCK input
// as raw, and virStorageBackendGetBuildVolFromFunction copies a block input byte for byte; the
// logical backend never probes an LV's content for a format. What an LV holds is written by
// its guest: a qcow2 header there is the guest's data, not an image of the host. Read as an
// image, it made the clone of a guest's LV into a dir pool the flattened image its header
// describes, backing file and all (another volume of the host, in another pool, handed to
// whoever downloads the clone), and an LV whose header names a file outside the pools could
// not be cloned at all.
//
// The LV is a regular file in the pool's target directory standing in for its device node
// (this kernel has no device-mapper), LVM is a strict recording runner: a qemu-img run fails.
import { expect } from 'chai';
import { FailedPreconditionError } from '../../../libs/errors/errors.js';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType, Tristate, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { dispatch } from '../../../services/agent/agent.js';
import { inProcessAgent } from '../../support/agent-context.js';
import { makeTempDir } from '../../support/index.js';
import { lvmPoolRunner } from '../../support/lvm-script.js';
import { qcow2Header } from '../../support/qcow2-header.js';

const VG = 'HostVG';
const MiB = 1024 * 1024;
const LV_SIZE = 8 * MiB;

/** A guest's disk whose first bytes are a qcow2 header of 1 MiB naming `backing` (raw) as its backing file. */
function guestDisk(backing: string): Buffer {
  const disk = Buffer.alloc(LV_SIZE, 0x47);
  const header = qcow2Header(BigInt(MiB));
  header.writeBigUInt64BE(512n, 8); // backing_file_offset
  header.writeUInt32BE(Buffer.byteLength(backing), 16); // backing_file_size
  header.write(backing, 512);
  header.copy(disk, 0);
  return disk;
}

function setup(attr = '-wi-a-----') {
  const root = makeTempDir('cistern-clone-block-').path;
  const lvDir = join(root, 'lv');
  const dirTarget = join(root, 'dir');
  const outside = join(root, 'outside');
  for (const d of [lvDir, dirTarget, outside]) mkdirSync(d);
  const lvs = new Map<string, number>([['guest', LV_SIZE]]);
  const line = (name: string, size: number) => `  ${name}##uuid-${name}#/dev/sdb(0)#linear#1#${size}#4194304#${size}#${attr}#`;
  const runner = lvmPoolRunner(VG)
    .on(['lvs'], () => ({ stdout: [...lvs].map(([n, s]) => line(n, s)).join('\n') + '\n' }))
    .on(['lvcreate'], (argv) => {
      // the new LV's "device node": a file of the size asked for (extents of 4 MiB)
      const name = argv[argv.indexOf('--name') + 1]!;
      const kib = Number(argv[argv.indexOf('-L') + 1]!.replace(/K$/, ''));
      const size = Math.ceil((kib * 1024) / (4 * MiB)) * 4 * MiB;
      writeFileSync(join(lvDir, name), Buffer.alloc(size));
      lvs.set(name, size);
      return {};
    });
  const { ctx } = inProcessAgent({ runner });
  const lvmPool = PoolDefinition.fromPartial({
    type: PoolType.POOL_TYPE_LOGICAL,
    name: 'lvm',
    source: { name: VG, format: 'lvm2', devices: [{ path: '/dev/sdb', partSeparator: Tristate.TRISTATE_ABSENT, freeExtents: [] }] },
    target: { path: lvDir },
  });
  const dirPool = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'd', target: { path: dirTarget } });
  const call = (pool: PoolDefinition, op: AgentRequest['op'], sourcePool?: PoolDefinition) => {
    const req = AgentRequest.fromPartial({ principal: 'alice', requestId: '', pool, ...(sourcePool ? { sourcePool } : {}) });
    req.op = op;
    return dispatch(ctx, op!.$case, req);
  };
  const start = async (pool: PoolDefinition) =>
    call(pool, { $case: 'startPool', value: { name: `hosts/h/pools/${pool.name}`, build: false, buildFlags: undefined, requestId: '' } });
  const clone = (into: PoolDefinition, name: string) =>
    call(
      into,
      {
        $case: 'cloneVolume',
        value: {
          parent: `hosts/h/pools/${into.name}`,
          source: 'hosts/h/pools/lvm/volumes/guest',
          definition: VolumeDefinition.fromPartial({ name, ...(into === dirPool ? { target: { format: 'raw' } } : {}) }),
          xml: '',
          preallocMetadata: false,
          reflink: false,
          requestId: '',
          validate: false,
        },
      },
      lvmPool,
    );
  return { root, lvDir, dirTarget, outside, runner, lvmPool, dirPool, start, clone };
}

describe('agent: a clone of a logical volume copies its bytes, whatever header its guest wrote (libvirt reads block volumes as raw)', () => {
  it('into a dir pool: the LV byte for byte, its size; the backing file its header names is not read, qemu-img not run', async () => {
    const t = setup();
    // the header names another volume of the host, in the dir pool: a file the agent admits
    const victim = join(t.dirTarget, 'victim.raw');
    writeFileSync(victim, Buffer.alloc(MiB, 0x56));
    const disk = guestDisk(victim);
    writeFileSync(join(t.lvDir, 'guest'), disk);
    await t.start(t.dirPool);
    await t.start(t.lvmPool);

    const reply = await t.clone(t.dirPool, 'copy.raw');
    expect(reply.result?.$case).to.equal('volume');
    const copy = readFileSync(join(t.dirTarget, 'copy.raw'));
    expect(copy.length).to.equal(LV_SIZE);
    expect(copy.equals(disk)).to.equal(true);
    expect(t.runner.calls.map((c) => c.argv[0])).to.not.include('qemu-img');
  });

  it('into a logical pool: an LV whose header names a file outside every pool is copied, not refused', async () => {
    const t = setup();
    const secret = join(t.outside, 'secret');
    writeFileSync(secret, 'host secret');
    const disk = guestDisk(secret);
    writeFileSync(join(t.lvDir, 'guest'), disk);
    await t.start(t.lvmPool);

    const reply = await t.clone(t.lvmPool, 'copy');
    expect(reply.result?.$case).to.equal('volume');
    expect(statSync(join(t.lvDir, 'copy')).size).to.equal(LV_SIZE);
    expect(readFileSync(join(t.lvDir, 'copy')).equals(disk)).to.equal(true);
  });

  it('of an LV that is not active (no device node): FAILED_PRECONDITION saying so, not NOT_FOUND for a volume the pool lists', async () => {
    const t = setup('-wi-------');
    await t.start(t.dirPool);
    await t.start(t.lvmPool);
    const err = await t.clone(t.dirPool, 'copy.raw').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect((err as Error).message).to.match(/logical volume '.*\/lv\/guest' is not active \(state inactive\)/);
  });
});
