// The logical backend against the real LVM tools on loop devices. This kernel has no
// device-mapper, so LVs cannot be activated: the test gives LVM a configuration of its
// own (LVM_SYSTEM_DIR in the runner's environment) that switches activation off and lets
// LVM see only the test's loop devices, never the host's disks. Everything that needs an
// active LV (device nodes, wipe, upload, clone copies) is covered by the recording-runner
// unit tests instead.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { LogicalBackend, type LogicalVolumeDefinition } from '../../libs/backends/logical.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { PoolContext } from '../../libs/backends/backend.js';
import type { CommandRunner } from '../../libs/backends/runner.js';
import { DeadlineExceededError } from '../../libs/errors/errors.js';
import { PoolType, Tristate, VolumeType, type PoolDefinition, type VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { attachLoop, loopDevicesAvailable, makeTempDir, registerCleanup, type LoopDevice } from '../support/index.js';
import { rejects } from '../support/rejects.js';

const MiB = 1024n * 1024n;

function hasLvm(): boolean {
  try {
    execFileSync('lvm', ['version'], { stdio: 'ignore', env: { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1' } });
    return true;
  } catch {
    // `lvm version` exits non-zero without device-mapper but still runs: look for the binary
    try {
      execFileSync('sh', ['-c', 'command -v lvcreate'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }
}

function sha256(path: string, bytes: number): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    let got = 0;
    while (got < bytes) {
      const n = readSync(fd, buf, got, bytes - got, got);
      if (n === 0) break;
      got += n;
    }
    return createHash('sha256').update(buf.subarray(0, got)).digest('hex');
  } finally {
    closeSync(fd);
  }
}

/** An lvm.conf that accepts only `devices`, never activates, and keeps its state in `dir`. */
function writeLvmConf(dir: string, devices: string[]): void {
  const accept = devices.map((d) => `"a|^${d.replace(/[.]/g, '\\.')}$|"`).join(', ');
  mkdirSync(join(dir, 'lock'), { recursive: true });
  writeFileSync(
    join(dir, 'lvm.conf'),
    `devices {
  filter = [ ${accept}, "r|.*|" ]
  global_filter = [ ${accept}, "r|.*|" ]
  use_devicesfile = 0
  obtain_device_list_from_udev = 0
  hints = "none"
}
activation {
  udev_sync = 0
  udev_rules = 0
  verify_udev_operations = 0
  monitoring = 0
}
global {
  activation = 0
  use_lvmpolld = 0
  event_activation = 0
  locking_dir = "${dir}/lock"
}
backup {
  backup = 0
  archive = 0
}
`,
  );
}

function vol(name: string, capacity: bigint, extra: Partial<VolumeDefinition> = {}): VolumeDefinition {
  return {
    type: VolumeType.VOLUME_TYPE_UNSPECIFIED,
    name,
    key: '',
    capacity,
    allocation: undefined,
    sourceDevices: [],
    target: undefined,
    backingStore: undefined,
    ...extra,
  };
}

const skipReason = !loopDevicesAvailable()
  ? 'needs root and loop devices'
  : !hasLvm()
    ? 'needs the lvm2 tools (bash scripts/setup.sh installs them)'
    : undefined;

describe('logical backend (real LVM on loop devices, activation off: this kernel has no device-mapper)', function () {
  this.timeout(120_000);
  let disks: LoopDevice[] = [];
  let spare: LoopDevice;
  let confDir: string;
  let runner: ExecRunner;
  let env: NodeJS.ProcessEnv;
  const backend = new LogicalBackend();
  const vg = `cistern_t${process.pid}_${randomBytes(3).toString('hex')}`;
  let pool: PoolDefinition;
  let ctx: PoolContext;

  function lvmOut(argv: string[]): string {
    return execFileSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** A random LVM id: 32 characters of [A-Za-z0-9] as 6-4-4-4-4-4-6. */
  function lvmId(): string {
    const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    const raw = [...randomBytes(32)].map((b) => chars[b % chars.length]).join('');
    return [raw.slice(0, 6), raw.slice(6, 10), raw.slice(10, 14), raw.slice(14, 18), raw.slice(18, 22), raw.slice(22, 26), raw.slice(26)].join('-');
  }

  /**
   * Turns existing LVs into snapshots in the VG's metadata (vgcfgbackup, edit, vgcfgrestore):
   * lvcreate cannot make a snapshot without device-mapper, lvs and lvremove handle one fine.
   * `virtual`: the origin is a hidden zero LV of that many extents (what --virtualsize makes).
   */
  function addSnapshotsToMetadata(snaps: { origin: string; cow: string; originExtents: number; virtual?: boolean }[]): void {
    const file = join(confDir, 'meta.vg');
    lvmOut(['vgcfgbackup', '-f', file, vg]);
    const blocks: string[] = [];
    snaps.forEach((snap, i) => {
      if (snap.virtual) {
        blocks.push(`${snap.origin} {\nid = "${lvmId()}"\nstatus = ["READ", "WRITE"]\nflags = []\nsegment_count = 1\nsegment1 {\nstart_extent = 0\nextent_count = ${snap.originExtents}\ntype = "zero"\n}\n}\n`);
      }
      blocks.push(
        `snapshot${i} {\nid = "${lvmId()}"\nstatus = ["READ"]\nflags = []\nsegment_count = 1\nsegment1 {\nstart_extent = 0\nextent_count = ${snap.originExtents}\ntype = "snapshot"\nchunk_size = 8\norigin = "${snap.origin}"\ncow_store = "${snap.cow}"\n}\n}\n`,
      );
    });
    // the file ends with the logical_volumes section closing, then the VG
    const text = readFileSync(file, 'utf8');
    const end = /\}\s*\}\s*$/.exec(text);
    if (!end) throw new Error(`unexpected vgcfgbackup output: ${text.slice(-200)}`);
    writeFileSync(file, `${text.slice(0, end.index)}${blocks.join('')}}\n}\n`);
    lvmOut(['vgcfgrestore', '-f', file, vg]);
  }

  before(function () {
    if (skipReason) this.skip();
    disks = [attachLoop(64 * 1024 * 1024, 'lvm-a'), attachLoop(64 * 1024 * 1024, 'lvm-b')];
    spare = attachLoop(16 * 1024 * 1024, 'lvm-spare');
    const dir = makeTempDir('cistern-lvmconf-');
    confDir = dir.path;
    writeLvmConf(confDir, [...disks, spare].map((d) => d.device));
    runner = new ExecRunner({ env: { LVM_SYSTEM_DIR: confDir } });
    env = { ...process.env, LVM_SYSTEM_DIR: confDir, LVM_SUPPRESS_FD_WARNINGS: '1', LC_ALL: 'C' };
    // runs before the loop devices are detached (cleanups run newest first)
    registerCleanup(`volume group ${vg}`, () => {
      for (const argv of [['vgremove', '-f', vg], ['pvremove', ...[...disks, spare].map((d) => d.device)]]) {
        try {
          execFileSync(argv[0]!, argv.slice(1), { env, stdio: 'ignore' });
        } catch {
          /* already gone */
        }
      }
    });
    pool = {
      type: PoolType.POOL_TYPE_LOGICAL,
      name: vg,
      uuid: '',
      source: PoolDefinitionSource(vg, disks.map((d) => d.device)),
      target: { path: `/dev/${vg}`, permissions: undefined },
      features: undefined,
      mountOptions: [],
    };
    ctx = { runner, pool };
  });

  it('builds a volume group on two empty loop devices (pvcreate each, vgcreate); the build tag is gone when it is done', async () => {
    await backend.buildPool(ctx, { overwrite: false, noOverwrite: true }, { buildId: 'b0' });
    const pvs = lvmOut(['pvs', '--noheadings', '-o', 'pv_name,vg_name']);
    for (const d of disks) expect(pvs).to.match(new RegExp(`${d.device}\\s+${vg}`));
    expect(lvmOut(['vgs', '--noheadings', '-o', 'vg_tags', vg]).trim()).to.equal('');
    expect(await backend.checkPool(ctx)).to.equal(true, 'a VG without LVs has nothing inactive');
    await backend.startPool(ctx);
  });

  it('refresh reports the VG sizes from vgs', async () => {
    const r = await backend.refreshPool(ctx);
    const [size, free] = lvmOut(['vgs', '--noheadings', '--units', 'b', '--nosuffix', '--separator', ':', '-o', 'vg_size,vg_free', vg]).trim().split(':');
    expect(r.runtime.capacity).to.equal(BigInt(size!));
    expect(r.runtime.available).to.equal(BigInt(free!));
    expect(r.runtime.allocation).to.equal(0n);
    expect(r.volumes).to.deep.equal([]);
    expect(r.runtime.capacity > 100n * MiB).to.equal(true);
  });

  it('creates LVs that refresh lists with key, path, extents per device and their (not active) state', async () => {
    const a = await backend.createVol(ctx, vol('data', 8n * MiB));
    await backend.buildVol(ctx, a, { preallocMetadata: false });
    // bigger than one disk: spans both devices
    const b = await backend.createVol(ctx, vol('spans.both+disks', 80n * MiB));
    await backend.buildVol(ctx, b, { preallocMetadata: false });

    const r = await backend.refreshPool(ctx);
    const byName = new Map(r.volumes.map((v) => [v.name, v as LogicalVolumeDefinition]));
    expect([...byName.keys()].sort()).to.deep.equal(['data', 'spans.both+disks']);
    const uuids = lvmOut(['lvs', '--noheadings', '-o', 'lv_name,lv_uuid', vg]);
    const data = byName.get('data')!;
    expect(data.type).to.equal(VolumeType.VOLUME_TYPE_BLOCK);
    expect(uuids).to.match(new RegExp(`^\\s*data\\s+${data.key}\\s*$`, 'm'));
    expect(data.key).to.match(/^[A-Za-z0-9]{6}(-[A-Za-z0-9]{4}){5}-[A-Za-z0-9]{6}$/);
    expect(data.target?.path).to.equal(`/dev/${vg}/data`);
    expect(data.capacity).to.equal(8n * MiB);
    expect(data.allocation).to.equal(8n * MiB);
    expect(data.state).to.not.equal('active');
    expect(data.state).to.equal('unknown', 'without device-mapper LVM reports the state as X (unknown)');
    expect(data.sourceDevices).to.have.length(1);
    const ext = data.sourceDevices[0]!.extents;
    expect(ext).to.have.length(1);
    expect(ext[0]!.end - ext[0]!.start).to.equal(8n * MiB);

    const spans = byName.get('spans.both+disks')!;
    expect(spans.capacity).to.equal(80n * MiB);
    expect(spans.sourceDevices.map((d) => d.path).sort()).to.deep.equal(disks.map((d) => d.device).sort());
    const total = spans.sourceDevices.flatMap((d) => d.extents).reduce((s, e) => s + (e.end - e.start), 0n);
    expect(total).to.equal(80n * MiB);
    // extents of different LVs never overlap on a device
    for (const d of disks) {
      const ranges = r.volumes.flatMap((v) => v.sourceDevices.filter((s) => s.path === d.device).flatMap((s) => s.extents));
      ranges.sort((x, y) => (x.start < y.start ? -1 : 1));
      for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.start >= ranges[i - 1]!.end).to.equal(true);
    }
    expect(r.runtime.allocation).to.equal(88n * MiB);
    expect(await backend.checkPool(ctx)).to.equal(false, 'LVs that are not active: the pool needs a start');

    const one = await backend.refreshVol!(ctx, vol('data', 0n));
    expect(one.key).to.equal(data.key);
  });

  it('refuses an LV name with characters LVM refuses, before running anything', async () => {
    for (const name of ['bad name', 'a:b', 'snapshot1', 'x_rimage', 'ü']) {
      const err = await rejects(backend.createVol(ctx, vol(name, MiB)));
      expect(err.code, name).to.equal('INVALID_ARGUMENT');
      expect(err.message).to.include('A-Z a-z 0-9 + _ . -');
    }
    const r = await backend.refreshPool(ctx);
    expect(r.volumes.map((v) => v.name).sort()).to.deep.equal(['data', 'spans.both+disks']);
  });

  it('a volume larger than the free space is RESOURCE_EXHAUSTED and creates nothing', async () => {
    const big = await backend.createVol(ctx, vol('toobig', 1024n * MiB));
    const err = await rejects(backend.buildVol(ctx, big, { preallocMetadata: false }));
    expect(err.code).to.equal('RESOURCE_EXHAUSTED');
    const r = await backend.refreshPool(ctx);
    expect(r.volumes.map((v) => v.name)).to.not.include('toobig');
  });

  it('a LUKS-encrypted LV: LVM records it 2 MiB larger than asked (libvirt 9.0); without device-mapper it has no node to format, so the create fails and removes it; bad requests make nothing', async () => {
    const UUID = '6f1e1c2a-3b4d-4e5f-8a9b-000000000065';
    const enc = (name: string, secrets = 1) =>
      vol(name, 10n * MiB, {
        target: { path: '', format: '', permissions: undefined, timestamps: undefined, compat: '', nocow: false, clusterSize: 0n, lazyRefcounts: false, extendedL2: false, encryption: { format: 'luks', secrets: Array.from({ length: secrets }, () => ({ type: 'passphrase', uuid: UUID, usage: '' })), cipher: undefined, ivgen: undefined } },
      });
    const names = () => lvmOut(['lvs', '--noheadings', '-o', 'lv_name', vg]).split('\n').map((l) => l.trim()).filter(Boolean).sort();
    const before = names();
    // what LVM recorded, read right after the real lvcreate returned
    let recorded = '';
    const watching: CommandRunner = {
      run: async (argv, options) => {
        const result = await runner.run(argv, options);
        if (argv[0] === 'lvcreate') recorded = lvmOut(['lvs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'lv_size', `${vg}/sealed`]).trim();
        return result;
      },
    };
    const sctx: PoolContext = { runner: watching, pool, secrets: new Map([[UUID, Buffer.from('h65 passphrase')]]) };
    const planned = await backend.createVol(sctx, enc('sealed'));
    const err = await rejects(backend.buildVol(sctx, planned, { preallocMetadata: false, createId: 'luks1' }));
    expect(recorded).to.equal(String(12n * MiB));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.match(/not active/);
    expect(names()).to.deep.equal(before);

    recorded = '';
    for (const [volume, c] of [
      [enc('sealed', 2), sctx],
      [enc('sealed'), { ...sctx, secrets: new Map() }],
    ] as Array<[VolumeDefinition, PoolContext]>) {
      await rejects(
        (async () => {
          await backend.buildVol(c, await backend.createVol(c, volume), { preallocMetadata: false });
        })(),
      );
      expect(recorded, 'no lvcreate ran').to.equal('');
      expect(names()).to.deep.equal(before);
    }
  });

  it('an lvcreate that dies after LVM recorded the LV (here: timed out) fails the create and its LV is removed; a same-named LV made by hand is never removed', async () => {
    // the runner reports a timeout once the real lvcreate is done, as when it is killed
    // after committing the VG's metadata
    const dying: CommandRunner = {
      run: async (argv, options) => {
        const result = await runner.run(argv, options);
        if (argv[0] === 'lvcreate') throw new DeadlineExceededError(`command timed out after 120000 ms: ${argv.join(' ')}`);
        return result;
      },
    };
    const half = await backend.createVol(ctx, vol('half', 4n * MiB));
    const err = await rejects(backend.buildVol({ runner: dying, pool }, half, { preallocMetadata: false, createId: 'real1' }));
    expect(err.code).to.equal('DEADLINE_EXCEEDED');
    const names = () => lvmOut(['lvs', '--noheadings', '-o', 'lv_name', vg]).split('\n').map((l) => l.trim()).filter(Boolean).sort();
    expect(names()).to.deep.equal(['data', 'spans.both+disks'], 'a failed create leaves nothing behind');

    // an LV of the same name made by hand (no tag): our create is ALREADY_EXISTS, and neither
    // its undo nor the restart cleanup of an interrupted create of that name removes it
    lvmOut(['lvcreate', '--name', 'hand', '-L', '4M', vg, '--yes']);
    const clash = await rejects(backend.buildVol({ runner: dying, pool }, await backend.createVol(ctx, vol('hand', 4n * MiB)), { preallocMetadata: false, createId: 'real2' }));
    expect(clash.code).to.equal('ALREADY_EXISTS');
    await backend.deleteVol(ctx, vol('hand', 0n), { createdBy: 'real2' });
    expect(names()).to.include('hand');

    // a create that succeeded keeps its tag; the cleanup of that create id removes it
    await backend.buildVol(ctx, await backend.createVol(ctx, vol('tagged', 4n * MiB)), { preallocMetadata: false, createId: 'real3' });
    expect(lvmOut(['lvs', '--noheadings', '-o', 'lv_tags', `${vg}/tagged`]).trim()).to.equal('cistern.create.real3');
    await backend.deleteVol(ctx, vol('tagged', 0n), { createdBy: 'real3' });
    await backend.deleteVol(ctx, vol('hand', 0n));
    expect(names()).to.deep.equal(['data', 'spans.both+disks']);
  });

  it('deletes one LV (lvremove -f VG/LV); the other stays', async () => {
    await backend.deleteVol(ctx, vol('data', 0n));
    const r = await backend.refreshPool(ctx);
    expect(r.volumes.map((v) => v.name)).to.deep.equal(['spans.both+disks']);
    expect(r.runtime.allocation).to.equal(80n * MiB);
    // deleting a volume that is gone is not an error
    await backend.deleteVol(ctx, vol('data', 0n));
  });

  it('snapshots (metadata written with vgcfgrestore: no device-mapper to make them): capacity = what they show, allocation = the COW area; lvremove of the origin takes its snapshot', async () => {
    for (const [name, size] of [['origin', 8n * MiB], ['cow', 4n * MiB], ['vcow', 4n * MiB]] as const) {
      await backend.buildVol(ctx, await backend.createVol(ctx, vol(name, size)), { preallocMetadata: false });
    }
    // what `lvcreate -s -L 4M VG/origin --name cow` and `lvcreate -L 4M --type snapshot
    // --virtualsize 20M --name vcow VG` record: a snapshot segment joining origin and COW
    addSnapshotsToMetadata([
      { origin: 'origin', cow: 'cow', originExtents: 2 },
      { origin: 'vcow_vorigin', cow: 'vcow', originExtents: 5, virtual: true },
    ]);
    const byName = new Map((await backend.refreshPool(ctx)).volumes.map((v) => [v.name, v as LogicalVolumeDefinition]));
    expect([...byName.keys()].sort()).to.deep.equal(['cow', 'origin', 'spans.both+disks', 'vcow']);
    const sizes = (name: string) => [byName.get(name)!.capacity, byName.get(name)!.allocation];
    expect(sizes('origin')).to.deep.equal([8n * MiB, 8n * MiB]);
    expect(sizes('cow')).to.deep.equal([8n * MiB, 4n * MiB], "a snapshot shows its origin's 8 MiB; its 4 MiB COW area is what it allocates");
    expect(sizes('vcow')).to.deep.equal([20n * MiB, 4n * MiB], 'a --virtualsize LV shows its virtual size');
    expect(byName.get('cow')!.backingStore?.path).to.equal(`/dev/${vg}/origin`);
    expect(byName.get('vcow')!.backingStore).to.equal(undefined);
    expect(byName.get('cow')!.sparse).to.equal(true);

    // the agent re-reads the pool after deleting a volume another one is backed by
    expect(backend.refreshAfterDeleteVol(byName.get('origin')!, [...byName.values()])).to.equal(true);
    expect(backend.refreshAfterDeleteVol(byName.get('vcow')!, [...byName.values()])).to.equal(false);
    await backend.deleteVol(ctx, byName.get('origin')!);
    expect((await backend.refreshPool(ctx)).volumes.map((v) => v.name).sort()).to.deep.equal(['spans.both+disks', 'vcow']);
    await backend.deleteVol(ctx, byName.get('vcow')!);
    expect(lvmOut(['lvs', '-a', '--noheadings', '-o', 'lv_name', vg]).trim()).to.equal('spans.both+disks');
  });

  it('findPoolSources finds the VG with its devices', async () => {
    const sources = await backend.findPoolSources(ctx);
    const mine = sources.find((s) => s.name === vg);
    expect(mine, JSON.stringify(sources)).to.not.equal(undefined);
    expect(mine!.format).to.equal('lvm2');
    expect(mine!.devices.map((d) => d.path).sort()).to.deep.equal(disks.map((d) => d.device).sort());
  });

  it('refuses a device holding data unless overwrite, leaving its bytes unchanged', async () => {
    // an ext4 signature on the spare device
    execFileSync('mkfs.ext4', ['-q', '-F', spare.device], { stdio: 'ignore' });
    const before = sha256(spare.device, 16 * 1024 * 1024);
    const other: PoolDefinition = { ...pool, name: `${vg}x`, source: PoolDefinitionSource(`${vg}x`, [spare.device]) };
    for (const flags of [{ overwrite: false, noOverwrite: true }, { overwrite: false, noOverwrite: false }]) {
      const err = await rejects(backend.buildPool({ runner, pool: other }, flags));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.include('ext4');
    }
    expect(sha256(spare.device, 16 * 1024 * 1024)).to.equal(before);
    // a VG name that is already a pool's device's VG: also refused before any write
    const missing: PoolDefinition = { ...other, source: PoolDefinitionSource(`${vg}y`, ['/dev/cistern-no-such-device']) };
    const err = await rejects(backend.buildPool({ runner, pool: missing }, { overwrite: false, noOverwrite: true }));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.include('no such device');
  });

  it('a failed vgcreate pvremoves what pvcreate initialised', async () => {
    // the VG name exists already: vgcreate fails after pvcreate of the spare device
    const clash: PoolDefinition = { ...pool, name: 'clash', source: PoolDefinitionSource(vg, [spare.device]) };
    const err = await rejects(backend.buildPool({ runner, pool: clash }, { overwrite: true, noOverwrite: false }));
    expect(err.code).to.equal('ALREADY_EXISTS');
    const pvs = lvmOut(['pvs', '--noheadings', '-o', 'pv_name']);
    expect(pvs).to.not.include(spare.device);
  });

  it("a VG name whose /dev entry is something else (/dev/null): refused naming source.name, the device's bytes unchanged even with overwrite", async () => {
    // vgcreate refuses it only after the build cleared the device and pvcreated it
    const fd = openSync(spare.device, 'r+');
    writeSync(fd, Buffer.from('data of its own'), 0, 15, 0);
    closeSync(fd);
    const before = sha256(spare.device, 16 * 1024 * 1024);
    const clash: PoolDefinition = { ...pool, name: 'null', source: PoolDefinitionSource('null', [spare.device]), target: { path: '/dev/null', permissions: undefined } };
    const err = await rejects(backend.buildPool({ runner, pool: clash }, { overwrite: true, noOverwrite: false }));
    expect(err.code, err.message).to.equal('INVALID_ARGUMENT');
    expect(err.message).to.match(/^source\.name: .*'\/dev\/null' exists/);
    expect(sha256(spare.device, 16 * 1024 * 1024)).to.equal(before);
    expect(lvmOut(['pvs', '--noheadings', '-o', 'pv_name'])).to.not.include(spare.device);
  });

  it('one device named twice (the device and a link to it): refused naming source.devices and both names, before any byte is written, even with overwrite', async () => {
    // the names differ, so the by-name check let it through: the build cleared the device and
    // pvcreated it, then cleared it again under the second name, over the first one's label
    const fd = openSync(spare.device, 'r+');
    writeSync(fd, Buffer.from('data of its own'), 0, 15, 0);
    closeSync(fd);
    const before = sha256(spare.device, 16 * 1024 * 1024);
    const link = join(makeTempDir('cistern-lvm-link-').path, 'same-disk');
    symlinkSync(spare.device, link);
    // LVM takes the link too, as a host's default filter does
    writeLvmConf(confDir, [...disks, spare].map((d) => d.device).concat(link));
    try {
      const twice: PoolDefinition = { ...pool, name: 'twice', source: PoolDefinitionSource(`${vg}t`, [spare.device, link]), target: { path: `/dev/${vg}t`, permissions: undefined } };
      for (const flags of [{ overwrite: true, noOverwrite: false }, { overwrite: false, noOverwrite: false }]) {
        const err = await rejects(backend.buildPool({ runner, pool: twice }, flags));
        expect(err.code, err.message).to.equal('INVALID_ARGUMENT');
        expect(err.message).to.match(/^source\.devices: /);
        expect(err.message).to.include(spare.device).and.include(link);
      }
      expect(sha256(spare.device, 16 * 1024 * 1024)).to.equal(before);
      expect(lvmOut(['pvs', '--noheadings', '-o', 'pv_name'])).to.not.include(spare.device);
    } finally {
      writeLvmConf(confDir, [...disks, spare].map((d) => d.device));
    }
  });

  it('a pvcreate that dies after writing its label (here: timed out) leaves no PV behind', async () => {
    // the runner reports a timeout once the real pvcreate is done, as when it is killed
    // after writing the label
    const dying: CommandRunner = {
      run: async (argv, options) => {
        const result = await runner.run(argv, options);
        if (argv[0] === 'pvcreate') throw new DeadlineExceededError(`command timed out after 120000 ms: ${argv.join(' ')}`);
        return result;
      },
    };
    const killed: PoolDefinition = { ...pool, name: 'killed', source: PoolDefinitionSource(`${vg}k`, [spare.device]) };
    const err = await rejects(backend.buildPool({ runner: dying, pool: killed }, { overwrite: true, noOverwrite: false }));
    expect(err.code).to.equal('DEADLINE_EXCEEDED');
    expect(lvmOut(['pvs', '--noheadings', '-o', 'pv_name'])).to.not.include(spare.device);
  });

  it('a vgcreate that dies after recording the VG (here: timed out) leaves neither the VG nor the PV behind', async () => {
    const dying: CommandRunner = {
      run: async (argv, options) => {
        const result = await runner.run(argv, options);
        if (argv[0] === 'vgcreate') throw new DeadlineExceededError(`command timed out after 120000 ms: ${argv.join(' ')}`);
        return result;
      },
    };
    const killed: PoolDefinition = { ...pool, name: 'killed', source: PoolDefinitionSource(`${vg}k`, [spare.device]) };
    const err = await rejects(backend.buildPool({ runner: dying, pool: killed }, { overwrite: true, noOverwrite: false }));
    expect(err.code).to.equal('DEADLINE_EXCEEDED');
    expect(lvmOut(['vgs', '--noheadings', '-o', 'vg_name'])).to.not.include(`${vg}k`);
    expect(lvmOut(['pvs', '--noheadings', '-o', 'pv_name'])).to.not.include(spare.device);
    expect(lvmOut(['vgs', '--noheadings', '-o', 'vg_name'])).to.include(vg, "the pool's own VG is untouched");
  });

  it("an agent's death during a build: its cleanup removes the VG carrying the build's tag and the PV labels in no VG", async () => {
    // what a build killed in its vgcreate leaves, after LVM committed the VG
    const killed: PoolDefinition = { ...pool, name: 'killed', source: PoolDefinitionSource(`${vg}k`, [spare.device]) };
    lvmOut(['pvcreate', '-ff', '-y', spare.device]);
    lvmOut(['vgcreate', '--addtag', 'cistern.build.b1', `${vg}k`, spare.device]);
    await backend.cleanupInterruptedBuild({ runner, pool: killed }, 'b1');
    expect(lvmOut(['vgs', '--noheadings', '-o', 'vg_name'])).to.not.include(`${vg}k`);
    expect(lvmOut(['pvs', '--noheadings', '-o', 'pv_name'])).to.not.include(spare.device);
    expect(lvmOut(['vgs', '--noheadings', '-o', 'vg_name'])).to.include(vg, "the pool's own VG is untouched");
    // killed in its pvcreate: the label alone
    lvmOut(['pvcreate', '-ff', '-y', spare.device]);
    await backend.cleanupInterruptedBuild({ runner, pool: killed }, 'b2');
    expect(lvmOut(['pvs', '--noheadings', '-o', 'pv_name'])).to.not.include(spare.device);
  });

  it('the cleanup of an interrupted build leaves a same-named VG without its tag (made by hand since) and its PVs', async () => {
    const killed: PoolDefinition = { ...pool, name: 'killed', source: PoolDefinitionSource(`${vg}k`, [spare.device]) };
    lvmOut(['pvcreate', '-ff', '-y', spare.device]);
    lvmOut(['vgcreate', `${vg}k`, spare.device]);
    try {
      await backend.cleanupInterruptedBuild({ runner, pool: killed }, 'b3');
      expect(lvmOut(['pvs', '--noheadings', '-o', 'pv_name,vg_name'])).to.match(new RegExp(`${spare.device}\\s+${vg}k`));
    } finally {
      lvmOut(['vgremove', '-f', `${vg}k`]);
      lvmOut(['pvremove', spare.device]);
    }
  });

  it('stops and deletes the pool: vgremove, pvremove of each device', async () => {
    await backend.stopPool(ctx);
    await backend.deletePool(ctx);
    const pvs = lvmOut(['pvs', '--noheadings', '-o', 'pv_name']);
    for (const d of disks) expect(pvs).to.not.include(d.device);
    const sources = await backend.findPoolSources(ctx);
    expect(sources.find((s) => s.name === vg)).to.equal(undefined);
    const err = await rejects(backend.refreshPool(ctx));
    expect(err.code).to.equal('NOT_FOUND');
    expect(await backend.checkPool(ctx)).to.equal(false);
  });

  it('builds with overwrite over a device that holds data', async () => {
    const again: PoolDefinition = { ...pool, source: PoolDefinitionSource(vg, [spare.device]) };
    const fd = openSync(spare.device, 'r+');
    writeSync(fd, Buffer.from('not empty'), 0, 9, 0);
    closeSync(fd);
    await backend.buildPool({ runner, pool: again }, { overwrite: true, noOverwrite: false });
    const r = await backend.refreshPool({ runner, pool: again });
    expect(r.runtime.capacity > 8n * MiB).to.equal(true);
    await backend.deletePool({ runner, pool: again });
    expect(lvmOut(['pvs', '--noheadings', '-o', 'pv_name'])).to.not.include(spare.device);
  });
});

function PoolDefinitionSource(name: string, devices: string[]): PoolDefinition['source'] {
  return {
    hosts: [],
    devices: devices.map((path) => ({ path, partSeparator: Tristate.TRISTATE_ABSENT, freeExtents: [] })),
    dir: '',
    adapter: undefined,
    name,
    format: 'lvm2',
    protocolVersion: '',
    initiatorIqn: '',
    auth: undefined,
    vendor: '',
    product: '',
  };
}
