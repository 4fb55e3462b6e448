// The logical backend with the recording runner: every command line of every operation
// (libvirt 9's argv), undo on failure, refusals before anything runs. Source devices are
// regular temp files (allowRegularFiles) and an "active" LV's device node is a file the
// scripted lvcreate drops into the pool target, so the in-process work (clearing device
// ends, permissions, wipe, clone copies, upload, download) is checked on real bytes.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogicalBackend, logicalBackend, lvcreateArgv, type LogicalVolumeDefinition } from '../../../libs/backends/logical.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { findBackend } from '../../../libs/backends/registry.js';
import '../../../libs/backends/index.js';
import type { PoolContext } from '../../../libs/backends/backend.js';
import type { CommandRunner } from '../../../libs/backends/runner.js';
import { CancelledError, CommandFailedError, DeadlineExceededError, InvalidArgumentError } from '../../../libs/errors/errors.js';
import { PoolType, Tristate, VolumeType, WipeAlgorithm, type PoolDefinition, type VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { rejects } from '../../support/rejects.js';
import { qcow2Header } from '../../support/qcow2-header.js';

const MiB = 1024 * 1024;
const VG = 'HostVG';
const LVS = ['lvs', '--separator', '#', '--noheadings', '--units', 'b', '--unbuffered', '--nosuffix', '--options', 'lv_name,origin,uuid,devices,segtype,stripes,seg_size,vg_extent_size,size,lv_attr,origin_size', VG];
const VGS = ['vgs', '--separator', ':', '--noheadings', '--units', 'b', '--unbuffered', '--nosuffix', '--options', 'vg_size,vg_free', VG];
const PVS = ['pvs', '--noheadings', '-o', 'pv_name,vg_name'];
/** libvirt's virWaitForDevices before a refresh and before lvremove, with the default timeout. */
const SETTLE = ['udevadm', 'settle', '--timeout=30'];
/** What lvcreate gets after libvirt's argv: the tag of the create with this id. */
const addTag = (id: string): string[] => ['--addtag', `cistern.create.${id}`];
/** lvremove -f of an LV only if it carries the tag of the create with this id. */
const removeTagged = (lv: string, id: string): string[] => ['lvremove', '-f', '--select', `lv_tags={cistern.create.${id}}`, lv];

function source(name: string, devices: string[]): PoolDefinition['source'] {
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

function vol(name: string, capacity?: bigint, extra: Partial<VolumeDefinition> = {}): VolumeDefinition {
  return { type: VolumeType.VOLUME_TYPE_UNSPECIFIED, name, key: '', capacity, allocation: undefined, sourceDevices: [], target: undefined, backingStore: undefined, ...extra };
}

/** One lvs line as lvm 2.03 prints it: origin_size is empty for an LV that is neither origin nor snapshot. */
function lvLine(name: string, attr: string, opts: { origin?: string; uuid?: string; devices?: string; size?: number; originSize?: number } = {}): string {
  const size = opts.size ?? 8 * MiB;
  return `  ${name}#${opts.origin ?? ''}#${opts.uuid ?? `uuid-${name}`}#${opts.devices ?? '/dev/sdb(0)'}#linear#1#${size}#4194304#${size}#${attr}#${opts.originSize ?? ''}`;
}

function failed(argv: string[], stderr: string, exit = 5): CommandFailedError {
  return new CommandFailedError(argv, exit, stderr);
}

describe('logical backend (recording runner)', () => {
  let root: string;
  let target: string;
  let devA: string;
  let devB: string;
  let runner: RecordingRunner;
  let pool: PoolDefinition;
  let ctx: PoolContext;
  const backend = new LogicalBackend({ allowRegularFiles: true });

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cistern-logical-unit-'));
    target = join(root, 'dev', VG);
    devA = join(root, 'sdb');
    devB = join(root, 'sdc');
    // 4 MiB "disks" full of 0xff
    writeFileSync(devA, Buffer.alloc(4 * MiB, 0xff));
    writeFileSync(devB, Buffer.alloc(4 * MiB, 0xff));
    runner = new RecordingRunner({ strict: true });
    pool = { type: PoolType.POOL_TYPE_LOGICAL, name: 'p', uuid: '', source: source(VG, [devA, devB]), target: { path: target, permissions: undefined }, features: undefined, mountOptions: [] };
    ctx = { runner, pool };
  });

  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** lvcreate "creates" the LV: with `active`, a device node file appears in the target. */
  /** lvcreate makes the LV (a file standing in for its node when active); `onCreate` runs first, once per lvcreate. */
  function scriptLvcreate(lines: string[], opts: { active: boolean; size?: number; onCreate?: () => void } = { active: true }): void {
    runner.on(['lvcreate'], (argv) => {
      opts.onCreate?.();
      const name = argv[2]!;
      if (opts.active) {
        require_dir(target);
        writeFileSync(join(target, name), Buffer.alloc(opts.size ?? MiB));
      }
      lines.push(lvLine(name, opts.active ? '-wi-a-----' : '-wi-------', { size: opts.size ?? MiB }));
      return {};
    });
    runner.on(LVS, () => ({ stdout: lines.join('\n') + '\n' }));
  }

  function require_dir(dir: string): void {
    mkdirSync(dir, { recursive: true });
  }

  it('is registered for POOL_TYPE_LOGICAL with libvirt\'s operations (no resize: libvirt has none)', () => {
    expect(findBackend(PoolType.POOL_TYPE_LOGICAL)).to.equal(logicalBackend);
    expect(logicalBackend.operations.has('resizeVol')).to.equal(false);
    for (const op of ['buildPool', 'startPool', 'stopPool', 'deletePool', 'createVol', 'deleteVol', 'wipeVol', 'findPoolSources', 'buildVolFrom'] as const) {
      expect(logicalBackend.operations.has(op), op).to.equal(true);
    }
    expect(logicalBackend.defaultPoolFormat).to.equal('lvm2');
  });

  describe('build', () => {
    // no VG of the pool's name yet (a build asks before it writes to a device)
    beforeEach(() => {
      runner.on(['vgscan'], {});
      runner.on(PVS, { stdout: '' });
    });

    it('a VG of that name that exists already: ALREADY_EXISTS before any device is cleared or pvcreated', async () => {
      runner = new RecordingRunner({ strict: true });
      runner.on(['vgscan'], {}).on(PVS, { stdout: `  /dev/sdz ${VG}\n` });
      const err = await rejects(backend.buildPool({ runner, pool }, { overwrite: true, noOverwrite: false }));
      expect(err.code).to.equal('ALREADY_EXISTS');
      expect(err.message).to.include(`volume group '${VG}' already exists on /dev/sdz`);
      expect(runner.callsOf('pvcreate')).to.deep.equal([]);
      for (const d of [devA, devB]) expect(readFileSync(d).every((b) => b === 0xff), d).to.equal(true);
    });

    it("a name whose /dev entry exists but is no VG's (vgcreate refuses it: '/dev/null: already exists in filesystem'): INVALID_ARGUMENT naming source.name before any device is cleared or pvcreated", async () => {
      // the pool's target stands for /dev/<vg>: here a file, as /dev/null is for a pool named 'null'
      mkdirSync(join(root, 'dev'), { recursive: true });
      writeFileSync(target, '');
      runner.on(['pvcreate'], {}).on(['pvremove'], {});
      runner.on(['vgcreate'], { exitCode: 3, stderr: `  ${target}: already exists in filesystem\n  Run \`vgcreate --help' for more information.\n` });
      const err = await rejects(backend.buildPool(ctx, { overwrite: true, noOverwrite: false }));
      expect(err.code).to.equal('INVALID_ARGUMENT');
      expect((err as InvalidArgumentError).field).to.equal('source.name');
      expect(err.message).to.include(`'${target}' exists`);
      expect(err.message).to.include('nothing was written');
      expect(runner.callsOf('pvcreate')).to.deep.equal([]);
      expect(runner.callsOf('vgcreate')).to.deep.equal([]);
      for (const d of [devA, devB]) expect(readFileSync(d).every((b) => b === 0xff), d).to.equal(true);
    });

    it('probes each device, clears its first and last MiB, pvcreates each, then vgcreate VG DEVICES', async () => {
      runner.on(['blkid'], { exitCode: 2 });
      runner.on(['pvcreate'], {});
      runner.on(['vgcreate'], {});
      await backend.buildPool(ctx, { overwrite: false, noOverwrite: true });
      expect(runner.argvs).to.deep.equal([
        ['blkid', '-p', '-o', 'export', '--', devA],
        ['blkid', '-p', '-o', 'export', '--', devB],
        ['vgscan'],
        PVS,
        ['pvcreate', devA],
        ['pvcreate', devB],
        ['vgcreate', VG, devA, devB],
      ]);
      for (const d of [devA, devB]) {
        const bytes = readFileSync(d);
        expect(bytes.subarray(0, MiB).every((b) => b === 0), 'first MiB').to.equal(true);
        expect(bytes.subarray(3 * MiB).every((b) => b === 0), 'last MiB').to.equal(true);
        expect(bytes.subarray(MiB, 3 * MiB).every((b) => b === 0xff), 'middle untouched').to.equal(true);
      }
      // the runner's environment (LVM_SYSTEM_DIR of a test) is never overridden
      for (const c of runner.calls.filter((c) => c.argv[0] !== 'blkid')) {
        expect(c.options.env).to.deep.equal({ LVM_SUPPRESS_FD_WARNINGS: '1' });
      }
    });

    it('refuses a device holding data (FAILED_PRECONDITION) before touching any device', async () => {
      runner.on(['blkid', '-p', '-o', 'export', '--', devA], { exitCode: 2 });
      runner.on(['blkid', '-p', '-o', 'export', '--', devB], { stdout: 'TYPE=ext4\nUSAGE=filesystem\n' });
      for (const flags of [{ overwrite: false, noOverwrite: true }, { overwrite: false, noOverwrite: false }]) {
        const err = await rejects(backend.buildPool(ctx, flags));
        expect(err.code).to.equal('FAILED_PRECONDITION');
        expect(err.message).to.include(devB).and.include('ext4');
      }
      expect(runner.callsOf('pvcreate')).to.deep.equal([]);
      for (const d of [devA, devB]) expect(readFileSync(d).every((b) => b === 0xff)).to.equal(true);
    });

    it('with overwrite does not probe', async () => {
      runner.on(['pvcreate'], {});
      runner.on(['vgcreate'], {});
      await backend.buildPool(ctx, { overwrite: true, noOverwrite: false });
      expect(runner.callsOf('blkid')).to.deep.equal([]);
      expect(runner.argvs.slice(0, 3)).to.deep.equal([['vgscan'], PVS, ['pvcreate', devA]]);
    });

    it('a failed vgcreate pvremoves every device pvcreate initialised; a VG of that name that was there before is left alone', async () => {
      runner.on(['blkid'], { exitCode: 2 });
      runner.on(['pvcreate'], {});
      runner.on(['vgcreate'], failed(['vgcreate'], '  A volume group called HostVG already exists.'));
      // the new PVs are in no VG (the HostVG that exists is someone else's)
      runner.on(['pvs', '--noheadings', '-o', 'vg_name'], { stdout: '  \n  \n' });
      runner.on(['pvremove'], {});
      const err = await rejects(backend.buildPool(ctx, { overwrite: false, noOverwrite: false }));
      expect(err.code).to.equal('ALREADY_EXISTS');
      expect(runner.argvs.slice(-3)).to.deep.equal([['pvs', '--noheadings', '-o', 'vg_name', devA, devB], ['pvremove', devA], ['pvremove', devB]]);
      expect(runner.callsOf('vgremove')).to.deep.equal([]);
    });

    it('a vgcreate killed, timed out or cancelled after recording the VG: the VG is removed, then its PVs', async () => {
      for (const death of [new DeadlineExceededError('command timed out: vgcreate'), new CancelledError('command cancelled: vgcreate')]) {
        // what LVM holds: device -> its VG ('' = a PV in no VG)
        const pvs = new Map<string, string>();
        runner = new RecordingRunner({ strict: true });
        runner.on(['vgscan'], {}).on(PVS, { stdout: '' }); // no VG of that name yet
        runner.on(['pvcreate'], (argv) => void pvs.set(argv[1]!, ''));
        runner.on(['vgcreate'], (argv) => {
          for (const d of argv.slice(2)) pvs.set(d, argv[1]!);
          throw death;
        });
        runner.on(['pvs', '--noheadings', '-o', 'vg_name'], (argv) => ({ stdout: argv.slice(4).map((d) => `  ${pvs.get(d)}\n`).join('') }));
        runner.on(['vgremove', '-f', VG], () => {
          for (const [d, g] of pvs) if (g === VG) pvs.set(d, '');
        });
        runner.on(['pvremove'], (argv) => {
          if (pvs.get(argv[1]!)) throw failed([...argv], `  PV ${argv[1]} is used by VG ${VG} so please use vgreduce first.`);
          pvs.delete(argv[1]!);
        });
        const err = await rejects(backend.buildPool({ runner, pool }, { overwrite: true, noOverwrite: false }));
        expect(err.code).to.equal(death.code);
        expect([...pvs], death.message).to.deep.equal([], 'a failed build leaves no VG and no PV behind');
        expect(runner.calls.filter((c) => ['pvs', 'vgremove', 'pvremove'].includes(c.argv[0]!)).every((c) => c.options.signal === undefined)).to.equal(true);
      }
    });

    it("pvcreate refusing the device itself (rejected by lvm.conf's filter, a multipath or md component, too small): FAILED_PRECONDITION with LVM's reason, not INTERNAL", async () => {
      const reasons = [
        'device is rejected by filter config',
        'device is a multipath component',
        'device is an md component',
        'device is too small (pv_min_size)',
      ];
      for (const reason of reasons) {
        runner = new RecordingRunner({ strict: true });
        runner.on(['vgscan'], {}).on(PVS, { stdout: '' });
        runner.on(['pvcreate', devA], failed(['pvcreate', devA], `  WARNING: Activation disabled. No device-mapper interaction will be attempted.\n  Cannot use ${devA}: ${reason}\n`));
        runner.on(['pvremove'], failed(['pvremove', devA], `  No PV found on device ${devA}.`));
        const err = await rejects(backend.buildPool({ runner, pool: { ...pool, source: source(VG, [devA]) } }, { overwrite: true, noOverwrite: false }));
        expect(err.code, reason).to.equal('FAILED_PRECONDITION');
        expect(err.message).to.include(`cannot initialise '${devA}' as a physical volume`);
        expect(err.message).to.include(reason);
      }
    });

    it('a failed pvcreate: the devices done before it and the one it ran on are pvremoved, the ones after it untouched', async () => {
      const devC = join(root, 'sdd');
      writeFileSync(devC, Buffer.alloc(4 * MiB, 0xff));
      const three = { ...pool, source: source(VG, [devA, devB, devC]) };
      runner.on(['pvcreate', devA], {});
      runner.on(['pvcreate', devB], failed(['pvcreate', devB], '  Cannot use /dev/sdc: device is partitioned'));
      // pvcreate wrote no label there: pvremove finds none, and that failure is ignored
      runner.on(['pvremove', devB], failed(['pvremove', devB], '  No PV found on device /dev/sdc.'));
      runner.on(['pvremove'], {});
      const err = await rejects(backend.buildPool({ runner, pool: three }, { overwrite: true, noOverwrite: false }));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.include('device is partitioned');
      expect(runner.callsOf('vgcreate')).to.deep.equal([]);
      expect(runner.callsOf('pvremove')).to.deep.equal([['pvremove', devA], ['pvremove', devB]]);
      expect(readFileSync(devC).every((b) => b === 0xff), 'a device after the failure is not touched').to.equal(true);
    });

    it('a pvcreate killed, timed out or cancelled after writing its label: that label is removed too (libvirt leaves it)', async () => {
      const labels = new Set<string>();
      for (const death of [
        new DeadlineExceededError('command timed out after 120000 ms: pvcreate'),
        new CancelledError('command cancelled: pvcreate'),
        new CommandFailedError(['pvcreate'], undefined, 'killed by SIGKILL'),
      ]) {
        runner = new RecordingRunner({ strict: true });
        runner.on(['vgscan'], {}).on(PVS, { stdout: '' }); // no VG of that name yet
        runner.on(['pvcreate'], (argv) => {
          labels.add(argv[1]!);
          if (argv[1] === devB) throw death;
          return {};
        });
        runner.on(['pvremove'], (argv) => {
          labels.delete(argv[1]!);
          return {};
        });
        const err = await rejects(backend.buildPool({ runner, pool }, { overwrite: true, noOverwrite: false }));
        expect(err.code).to.equal(death.code);
        expect([...labels], death.message).to.deep.equal([], 'a failed build leaves no PV label behind');
        // the undo runs without the caller's signal: a cancelled build still undoes
        expect(runner.calls.filter((c) => c.argv[0] === 'pvremove').every((c) => c.options.signal === undefined)).to.equal(true);
      }
    });

    it('refuses bad input before anything runs', async () => {
      const cases: [PoolDefinition, BuildFlagsT, string, RegExp][] = [
        [pool, { overwrite: true, noOverwrite: true }, 'INVALID_ARGUMENT', /mutually exclusive/],
        [{ ...pool, source: source(VG, []) }, NO_FLAGS, 'INVALID_ARGUMENT', /no source device/],
        [{ ...pool, source: source('bad vg', [devA]) }, NO_FLAGS, 'INVALID_ARGUMENT', /A-Z a-z 0-9/],
        [{ ...pool, source: source(VG, [devA, devA]) }, NO_FLAGS, 'INVALID_ARGUMENT', /listed twice/],
        [{ ...pool, source: source(VG, [join(root, 'missing')]) }, NO_FLAGS, 'FAILED_PRECONDITION', /no such device/],
        [{ ...pool, source: source(VG, ['relative/dev']) }, NO_FLAGS, 'INVALID_ARGUMENT', /not absolute/],
      ];
      for (const [def, flags, code, why] of cases) {
        const err = await rejects(backend.buildPool({ runner, pool: def }, flags));
        expect(err.code, why.source).to.equal(code);
        expect(err.message).to.match(why);
      }
      expect(runner.argvs).to.deep.equal([]);
      // a regular file is no block device for the production backend
      const err = await rejects(logicalBackend.buildPool(ctx, { overwrite: true, noOverwrite: false }));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.include('not a block device');
      expect(readFileSync(devA).every((b) => b === 0xff)).to.equal(true);
    });
  });

  describe('start, stop, check, delete', () => {
    it('start: vgscan, pvs (the VG and a device must match), vgchange -aly VG', async () => {
      runner.on(['vgscan'], {});
      runner.on(PVS, { stdout: `  ${devA} ${VG}\n  ${devB} ${VG}\n  /dev/sdz other\n` });
      runner.on(['vgchange'], {});
      await backend.startPool(ctx);
      expect(runner.argvs).to.deep.equal([['vgscan'], PVS, ['vgchange', '-aly', VG]]);
    });

    it('start refuses a VG that is not there, or has none of the pool\'s devices', async () => {
      runner.on(['vgscan'], failed(['vgscan'], 'scan failed'));
      runner.on(PVS, { stdout: '  /dev/sdz other\n' }, 1);
      runner.on(PVS, { stdout: `  /dev/sdz ${VG}\n` }, 1);
      let err = await rejects(backend.startPool(ctx));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.include(`cannot find logical volume group '${VG}'`);
      err = await rejects(backend.startPool(ctx));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.include('cannot find any matching source devices');
      expect(runner.callsOf('vgchange')).to.deep.equal([]);
    });

    it('stop: vgchange -aln VG', async () => {
      runner.on(['vgchange'], {});
      await backend.stopPool(ctx);
      expect(runner.argvs).to.deep.equal([['vgchange', '-aln', VG]]);
    });

    it('checkPool: active only when the VG matches and none of its LVs is inactive (thin pools aside)', async () => {
      runner.on(['vgscan'], {});
      runner.on(PVS, { stdout: `  ${devA} ${VG}\n` });
      runner.on(LVS, { stdout: [lvLine('a', '-wi-ao----'), lvLine('tp', 'twi-------', { devices: 'tp_tdata(0)' })].join('\n') }, 1);
      runner.on(LVS, { stdout: [lvLine('a', '-wi-a-----'), lvLine('b', '-wi-------')].join('\n') }, 1);
      expect(await backend.checkPool(ctx)).to.equal(true);
      expect(await backend.checkPool(ctx)).to.equal(false);
      expect(runner.argvs.slice(0, 3)).to.deep.equal([['vgscan'], PVS, LVS]);
    });

    it('checkPool: an LV that vgchange -aly leaves as it is (activation skip, an invalid snapshot) does not make a running pool look stopped', async () => {
      // `lvchange -ky VG/lin` then lvs (LVS above) on lvm2 2.03.16 printed, activation off:
      //   lin##W9TT11-TYeI-cUs2-KlMm-HcH9-xyBO-3MS4gA#/dev/loop0(0)#linear#1#8388608#4194304#8388608#-wi-XX---k#
      // the same LV on a host with device-mapper, after `vgchange -aly` skipped it: '-wi------k'.
      // An old-style snapshot whose COW area overflowed stays mapped as 'swi-I-s---'. Neither
      // changes with another vgchange -aly, so counting them as "not active" made checkPool
      // false for good: the agent's restart dropped the running pool (restore.ts), where
      // libvirt 9.0's checkPool asks only whether the VG is there on the pool's devices.
      runner.on(['vgscan'], {});
      runner.on(PVS, { stdout: `  ${devA} ${VG}\n` });
      runner.on(LVS, {
        stdout: [
          lvLine('a', '-wi-ao----'),
          lvLine('lin', '-wi------k'),
          lvLine('origin', 'owi-a-s---', { originSize: 8 * MiB }),
          lvLine('full', 'swi-I-s---', { origin: 'origin', size: 4 * MiB, originSize: 8 * MiB }),
        ].join('\n'),
      });
      expect(await backend.checkPool(ctx)).to.equal(true);
    });

    it('checkPool is false when the VG is missing', async () => {
      runner.on(['vgscan'], {});
      runner.on(PVS, { stdout: '' });
      expect(await backend.checkPool(ctx)).to.equal(false);
      expect(runner.callsOf('lvs')).to.deep.equal([]);
    });

    it('delete: the VG checked on the pool\'s devices, vgremove -f VG, then pvremove each device (its failures ignored)', async () => {
      runner.on(['vgscan'], {});
      runner.on(PVS, { stdout: `  ${devA} ${VG}\n  ${devB} ${VG}\n` });
      runner.on(['vgremove'], {});
      runner.on(['pvremove', devA], failed(['pvremove', devA], 'busy'));
      runner.on(['pvremove', devB], {});
      await backend.deletePool(ctx);
      expect(runner.argvs).to.deep.equal([['vgscan'], PVS, ['vgremove', '-f', VG], ['pvremove', devA], ['pvremove', devB]]);
    });

    it('delete of a VG that is gone is NOT_FOUND and removes nothing', async () => {
      runner.on(['vgscan'], {});
      runner.on(PVS, { stdout: '' });
      const err = await rejects(backend.deletePool(ctx));
      expect(err.code).to.equal('NOT_FOUND');
      expect(runner.callsOf('vgremove')).to.deep.equal([]);
      expect(runner.callsOf('pvremove')).to.deep.equal([]);
    });

    it("delete of a pool whose VG is on other disks (someone else's VG of that name) is FAILED_PRECONDITION and removes nothing", async () => {
      runner.on(['vgscan'], {});
      runner.on(PVS, { stdout: `  /dev/sdz ${VG}\n` });
      const err = await rejects(backend.deletePool(ctx));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.match(/cannot find any matching source devices/);
      expect(runner.callsOf('vgremove')).to.deep.equal([]);
      expect(runner.callsOf('pvremove')).to.deep.equal([]);
    });

    it('defaults: VG = pool name, target = /dev/VG', async () => {
      runner.on(['vgchange'], {});
      const bare: PoolDefinition = { ...pool, name: 'Other', source: source('', []), target: { path: '', permissions: undefined } };
      await backend.stopPool({ runner, pool: bare });
      expect(runner.argvs).to.deep.equal([['vgchange', '-aln', 'Other']]);
      const planned = await backend.createVol({ runner, pool: bare }, vol('lv', 1024n));
      expect(planned.target?.path).to.equal('/dev/Other/lv');
    });
  });

  describe('refresh', () => {
    it('runs udevadm settle, lvs, then vgs; lists every LV (inactive with its state), key = uuid, extents, backing origin', async () => {
      runner.on(SETTLE, {});
      runner.on(LVS, {
        stdout: [
          lvLine('root', 'owi-aos---', { uuid: 'U-root', devices: `${devA}(0)`, originSize: 8 * MiB }),
          lvLine('off', '-wi-------', { uuid: 'U-off', devices: `${devB}(2)`, size: 4194304 }),
          lvLine('snap', 'swi-a-s---', { origin: 'root', uuid: 'U-snap', devices: `${devB}(0)`, originSize: 8 * MiB }),
          lvLine('virt', 'swi-a-s---', { origin: '[virt_vorigin]', uuid: 'U-virt', devices: `${devB}(3)`, originSize: 64 * MiB }),
          lvLine('tpool', 'twi-aotz--', { devices: 'tpool_tdata(0)' }),
        ].join('\n'),
      });
      runner.on(VGS, { stdout: '  125829120:25165824\n' });
      const r = await backend.refreshPool(ctx);
      expect(runner.argvs).to.deep.equal([SETTLE, LVS, VGS]);
      expect(runner.calls[0]!.options.timeoutMs).to.equal(35_000, 'the runner stops a udevadm that outlives its own timeout');
      expect(r.runtime).to.deep.equal({ capacity: 125829120n, allocation: 100663296n, available: 25165824n });
      const byName = new Map(r.volumes.map((v) => [v.name, v as LogicalVolumeDefinition]));
      expect([...byName.keys()]).to.deep.equal(['root', 'off', 'snap', 'virt']);
      const off = byName.get('off')!;
      expect(off.state).to.equal('inactive');
      expect(off.key).to.equal('U-off');
      expect(off.type).to.equal(VolumeType.VOLUME_TYPE_BLOCK);
      expect(off.target?.path).to.equal(`${target}/off`);
      expect(off.capacity).to.equal(4194304n);
      expect(off.allocation).to.equal(4194304n);
      expect(off.sourceDevices).to.deep.equal([{ path: devB, extents: [{ start: 2n * 4194304n, end: 3n * 4194304n }] }]);
      expect(byName.get('root')!.state).to.equal('active');
      expect(byName.get('snap')!.backingStore).to.deep.equal({ path: `${target}/root`, format: 'raw', permissions: undefined, timestamps: undefined });
      expect(byName.get('snap')!.sparse).to.equal(true);
      expect(byName.get('virt')!.backingStore).to.equal(undefined);
    });

    it('a snapshot without a device node to read: capacity = origin_size (the origin\'s, or the virtual size), allocation = its COW size', async () => {
      runner.on(LVS, {
        stdout: [
          lvLine('o', 'owi---s---', { devices: `${devA}(0)`, size: 16 * MiB, originSize: 16 * MiB }),
          lvLine('s', 'swi---s---', { origin: 'o', devices: `${devA}(4)`, size: 4 * MiB, originSize: 16 * MiB }),
          lvLine('sp', 'swi---s---', { origin: '[sp_vorigin]', devices: `${devA}(5)`, size: 4 * MiB, originSize: 20 * MiB }),
          // active, but its node is not there (yet): the LVM sizes stand
          lvLine('nonode', 'swi-a-s---', { origin: 'o', devices: `${devB}(0)`, size: 4 * MiB, originSize: 16 * MiB }),
          lvLine('th', 'Vwi---tz--', { devices: 'pool(0)', size: 32 * MiB }),
          lvLine('plain', '-wi-------', { devices: `${devB}(1)`, size: 8 * MiB }),
        ].join('\n'),
      });
      runner.on(VGS, { stdout: '  125829120:25165824\n' });
      const r = await backend.refreshPool(ctx);
      const sizes = Object.fromEntries(r.volumes.map((v) => [v.name, [v.capacity, v.allocation]]));
      expect(sizes).to.deep.equal({
        o: [16n * BigInt(MiB), 16n * BigInt(MiB)],
        s: [16n * BigInt(MiB), 4n * BigInt(MiB)],
        sp: [20n * BigInt(MiB), 4n * BigInt(MiB)],
        nonode: [16n * BigInt(MiB), 4n * BigInt(MiB)],
        th: [32n * BigInt(MiB), 32n * BigInt(MiB)],
        plain: [8n * BigInt(MiB), 8n * BigInt(MiB)],
      });
      const one = await backend.refreshVol!(ctx, vol('sp'));
      expect([one.capacity, one.allocation]).to.deep.equal([20n * BigInt(MiB), 4n * BigInt(MiB)]);
    });

    it('settle before lvs (virStorageBackendLogicalRefreshPool\'s virWaitForDevices): udevadm failing is ignored, the caller\'s cancel does not reach it, udevadm null skips it', async () => {
      const lvsVgs = (r: RecordingRunner) => r.on(LVS, { stdout: lvLine('lv', '-wi-------', { devices: `${devA}(0)` }) }).on(VGS, { stdout: '  125829120:25165824\n' });
      for (const answer of [new CommandFailedError(SETTLE, undefined, 'spawn udevadm ENOENT'), new CommandFailedError(SETTLE, 1, 'Timed out for waiting the udev queue being empty.')]) {
        runner = lvsVgs(new RecordingRunner({ strict: true }).on(SETTLE, answer));
        const r = await backend.refreshPool({ runner, pool });
        expect(runner.argvs, answer.message).to.deep.equal([SETTLE, LVS, VGS]);
        expect(r.volumes.map((v) => v.name)).to.deep.equal(['lv']);
      }

      // the caller's cancel does not reach the wait (libvirt's cannot be cancelled, and a failed
      // refresh stops the pool): the refresh goes on to lvs and vgs
      const cancel = new AbortController();
      cancel.abort();
      runner = lvsVgs(new RecordingRunner({ strict: true }).on(SETTLE, new CancelledError('command cancelled: udevadm settle')));
      await backend.refreshPool({ runner, pool, signal: cancel.signal }).catch(() => undefined);
      expect(runner.calls[0]!.options.signal).to.equal(undefined);
      expect(runner.argvs.slice(0, 2)).to.deep.equal([SETTLE, LVS]);

      runner = lvsVgs(new RecordingRunner({ strict: true }));
      await new LogicalBackend({ udevadm: null, allowRegularFiles: true }).refreshPool({ runner, pool });
      expect(runner.argvs).to.deep.equal([LVS, VGS]);

      runner = lvsVgs(new RecordingRunner({ strict: true }).on(['/usr/bin/udevadm'], {}));
      await new LogicalBackend({ udevadm: '/usr/bin/udevadm', udevSettleTimeoutSec: 5 }).refreshPool({ runner, pool });
      expect(runner.argvs).to.deep.equal([['/usr/bin/udevadm', 'settle', '--timeout=5'], LVS, VGS]);
      expect(runner.calls[0]!.options.timeoutMs).to.equal(10_000);
    });

    it('a missing VG is NOT_FOUND', async () => {
      runner.on(LVS, failed(LVS, `  Volume group "${VG}" not found\n  Cannot process volume group ${VG}`));
      const err = await rejects(backend.refreshPool(ctx));
      expect(err.code).to.equal('NOT_FOUND');
      expect(err.message).to.include(VG);
    });
  });

  describe('volumes', () => {
    it('lvcreate with libvirt\'s argv: plain, sparse (--virtualsize snapshot), backed (-s ORIGIN), sizes rounded up to KiB', () => {
      expect(lvcreateArgv(VG, 'lv', 8n * 1024n * 1024n, 8n * 1024n * 1024n)).to.deep.equal(['lvcreate', '--name', 'lv', '-L', '8192K', VG, '--yes']);
      expect(lvcreateArgv(VG, 'lv', 1000n, 1000n)).to.deep.equal(['lvcreate', '--name', 'lv', '-L', '1K', VG, '--yes']);
      expect(lvcreateArgv(VG, 'sp', 10n * 1024n * 1024n, 1024n * 1024n)).to.deep.equal([
        'lvcreate', '--name', 'sp', '-L', '1024K', '--type', 'snapshot', '--virtualsize', '10240K', VG, '--yes',
      ]);
      expect(lvcreateArgv(VG, 'sp', 4096n, 0n)).to.deep.equal(['lvcreate', '--name', 'sp', '-L', '1K', '--type', 'snapshot', '--virtualsize', '4K', VG, '--yes']);
      expect(lvcreateArgv(VG, 'bk', 2048n, 2048n, '/dev/HostVG/root')).to.deep.equal(['lvcreate', '--name', 'bk', '-L', '2K', '-s', '/dev/HostVG/root', '--yes']);
    });

    it('create: checks, lvcreate, lvs; an active LV gets mode 0600 (or the one asked) on its node', async () => {
      const lines: string[] = [];
      scriptLvcreate(lines);
      const planned = await backend.createVol(ctx, vol('data', 8n * BigInt(MiB)));
      expect(runner.argvs).to.deep.equal([], 'createVol only plans');
      expect(planned.type).to.equal(VolumeType.VOLUME_TYPE_BLOCK);
      expect(planned.target?.path).to.equal(`${target}/data`);
      await backend.buildVol(ctx, planned, { preallocMetadata: false, createId: 'c1' });
      expect(runner.argvs).to.deep.equal([['lvcreate', '--name', 'data', '-L', '8192K', VG, '--yes', ...addTag('c1')], LVS]);
      expect(statSync(join(target, 'data')).mode & 0o777).to.equal(0o600);

      runner.reset();
      const withMode = await backend.createVol(ctx, vol('m', BigInt(MiB), { target: { path: '', format: '', permissions: { mode: 0o640, owner: undefined, group: undefined, label: '' }, timestamps: undefined, compat: '', nocow: false, clusterSize: 0n, lazyRefcounts: false, extendedL2: false, encryption: undefined } }));
      await backend.buildVol(ctx, withMode, { preallocMetadata: false });
      expect(statSync(join(target, 'm')).mode & 0o777).to.equal(0o640);
      const v = (await backend.refreshVol!(ctx, vol('m'))) as LogicalVolumeDefinition;
      expect(v.key).to.equal('uuid-m');
      expect(v.target?.permissions?.mode).to.equal(0o640);
    });

    it('create with --prealloc-metadata runs the same lvcreate: libvirt 9.0 takes the flag and ignores it for an LV', async () => {
      const lines: string[] = [];
      scriptLvcreate(lines);
      const planned = await backend.createVol(ctx, vol('pm', 8n * BigInt(MiB)));
      await backend.buildVol(ctx, planned, { preallocMetadata: true, createId: 'p1' });
      expect(runner.argvs).to.deep.equal([['lvcreate', '--name', 'pm', '-L', '8192K', VG, '--yes', ...addTag('p1')], LVS]);
      // an explicit preallocation mode or a reflink still has nothing to act on
      runner.reset();
      const err = await rejects(backend.buildVol(ctx, await backend.createVol(ctx, vol('rf', BigInt(MiB))), { preallocMetadata: false, reflink: true }));
      expect(err.code).to.equal('INVALID_ARGUMENT');
      expect(runner.argvs).to.deep.equal([]);
    });

    it('create of an inactive LV (activation off) skips the node and lists it with its state', async () => {
      const lines: string[] = [];
      scriptLvcreate(lines, { active: false });
      const planned = await backend.createVol(ctx, vol('cold', BigInt(MiB)));
      await backend.buildVol(ctx, planned, { preallocMetadata: false });
      const v = (await backend.refreshVol!(ctx, vol('cold'))) as LogicalVolumeDefinition;
      expect(v.state).to.equal('inactive');
      expect(v.capacity).to.equal(BigInt(MiB));
    });

    it('sparse and backed volumes', async () => {
      const lines: string[] = [];
      scriptLvcreate(lines);
      const sp = await backend.createVol(ctx, vol('sp', 10n * BigInt(MiB), { allocation: BigInt(MiB) }));
      await backend.buildVol(ctx, sp, { preallocMetadata: false, createId: 's1' });
      const bk = await backend.createVol(ctx, vol('bk', BigInt(MiB), { backingStore: { path: `${target}/sp`, format: '', permissions: undefined, timestamps: undefined } }));
      await backend.buildVol(ctx, bk, { preallocMetadata: false, createId: 'b1' });
      expect(runner.callsOf('lvcreate')).to.deep.equal([
        ['lvcreate', '--name', 'sp', '-L', '1024K', '--type', 'snapshot', '--virtualsize', '10240K', VG, '--yes', ...addTag('s1')],
        ['lvcreate', '--name', 'bk', '-L', '1024K', '-s', `${target}/sp`, '--yes', ...addTag('b1')],
      ]);
    });

    it('a snapshot (backing store) with an allocation below its capacity is INVALID_ARGUMENT naming volume.allocation, before anything runs', async () => {
      // libvirt 9.0's command line for it, run on lvm2 2.03.16, exit status 3, nothing made:
      //   lvcreate --name s2 -L 4096K --type snapshot --virtualsize 8192K -s /dev/h123vg/lin --yes
      //   Volume group name expected (no slash)
      //   Run `lvcreate --help' for more information.
      const backing = { path: `${target}/origin`, format: '', permissions: undefined, timestamps: undefined };
      for (const allocation of [0n, BigInt(MiB)]) {
        const err = await rejects(backend.createVol(ctx, vol('snap', 2n * BigInt(MiB), { allocation, backingStore: backing })));
        expect(err.code).to.equal('INVALID_ARGUMENT');
        expect(err.message).to.match(/^volume\.allocation: /);
        expect(err.message).to.include(`a snapshot of '${target}/origin'`);
        expect(err.message).to.include('allowed: no allocation, or one equal to the capacity');
      }
      expect(runner.argvs).to.deep.equal([]);
      // the allocation left out, or the capacity's: the snapshot lvcreate libvirt runs
      const same = await backend.createVol(ctx, vol('snap', 2n * BigInt(MiB), { allocation: 2n * BigInt(MiB), backingStore: backing }));
      expect(same.allocation).to.equal(2n * BigInt(MiB));
    });

    it('an allocation above the capacity: a plain LV of the capacity (libvirt 9 would run a sparse snapshot lvcreate)', async () => {
      const lines: string[] = [];
      scriptLvcreate(lines);
      const planned = await backend.createVol(ctx, vol('over', BigInt(MiB), { allocation: 2n * BigInt(MiB) }));
      expect(planned.allocation).to.equal(BigInt(MiB));
      await backend.buildVol(ctx, planned, { preallocMetadata: false, createId: 'o1' });
      expect(runner.callsOf('lvcreate')).to.deep.equal([['lvcreate', '--name', 'over', '-L', '1024K', VG, '--yes', ...addTag('o1')]]);
    });

    it('refuses bad names, sizes, backing stores and encryption before anything runs', async () => {
      const cases: [VolumeDefinition, RegExp][] = [
        [vol('bad name', 1024n), /contains ' '.*allowed: 1-127 characters of A-Z a-z 0-9 \+ _ \. -/],
        [vol('a:b', 1024n), /contains ':'/],
        [vol('x/y', 1024n), /contains '\/'/],
        [vol('snapshot1', 1024n), /reserved/],
        [vol('lv', undefined), /capacity greater than 0/],
        [vol('lv', 0n), /capacity greater than 0/],
        [vol('lv', 1024n, { backingStore: { path: '/elsewhere/x', format: '', permissions: undefined, timestamps: undefined } }), /not a volume of this pool/],
        [vol('lv', 1024n, { backingStore: { path: `${target}/bad name`, format: '', permissions: undefined, timestamps: undefined } }), /backing_store/],
      ];
      for (const [v, why] of cases) {
        const err = await rejects(backend.createVol(ctx, v));
        expect(err.code, why.source).to.equal('INVALID_ARGUMENT');
        expect(err.message).to.match(why);
      }
      const enc = await rejects(
        backend.createVol(ctx, vol('lv', 1024n, { target: { path: '', format: '', permissions: undefined, timestamps: undefined, compat: '', nocow: false, clusterSize: 0n, lazyRefcounts: false, extendedL2: false, encryption: { format: 'luks', secrets: [], cipher: undefined, ivgen: undefined } } })),
      );
      expect(enc.code).to.equal('INVALID_ARGUMENT');
      expect(enc.message).to.include("volume.target.encryption.secrets: a single <secret type='passphrase'> is expected, got 0");
      expect(runner.argvs).to.deep.equal([]);
      // a format is ignored, as libvirt ignores it for LVs
      const fmt = await backend.createVol(ctx, vol('lv', 1024n, { target: { path: '', format: 'qcow2', permissions: undefined, timestamps: undefined, compat: '', nocow: false, clusterSize: 0n, lazyRefcounts: false, extendedL2: false, encryption: undefined } }));
      expect(fmt.target?.format).to.equal('');
    });

    it('no space: lvcreate\'s refusal is RESOURCE_EXHAUSTED', async () => {
      runner.on(['lvcreate'], failed(['lvcreate'], `  Volume group "${VG}" has insufficient free space (5 extents): 256 required.`));
      const planned = await backend.createVol(ctx, vol('big', 1024n * BigInt(MiB)));
      const err = await rejects(backend.buildVol(ctx, planned, { preallocMetadata: false }));
      expect(err.code).to.equal('RESOURCE_EXHAUSTED');
      expect(err.message).to.include('insufficient free space');
    });

    it('a failure after lvcreate removes the LV again if it carries the create\'s tag (udevadm settle, then lvremove --select)', async () => {
      runner.on(['lvcreate'], {});
      runner.on(LVS, { stdout: '' });
      runner.on(SETTLE, {});
      runner.on(['lvremove'], {});
      const planned = await backend.createVol(ctx, vol('ghost', BigInt(MiB)));
      const err = await rejects(backend.buildVol(ctx, planned, { preallocMetadata: false, createId: 'g1' }));
      expect(err.code).to.equal('NOT_FOUND');
      expect(runner.argvs.slice(-2)).to.deep.equal([SETTLE, removeTagged(`${VG}/ghost`, 'g1')]);
    });

    /**
     * A VG's LVs with their tags, kept by lvcreate and lvremove as LVM keeps them: lvremove
     * honours `--select lv_tags={T}` (an LV without T is left and the command succeeds).
     * `lvcreate` runs `onLvcreate` after recording the LV (a killed lvcreate throws there).
     */
    function fakeLvm(onLvcreate: (argv: readonly string[], lvs: Map<string, string[]>) => void = () => undefined): Map<string, string[]> {
      const lvs = new Map<string, string[]>();
      const after = (argv: readonly string[], flag: string): string | undefined => {
        const i = argv.indexOf(flag);
        return i < 0 ? undefined : argv[i + 1];
      };
      runner.on(['lvcreate'], (argv) => {
        const name = after(argv, '--name')!;
        if (lvs.has(name)) throw failed([...argv], `  Logical Volume "${name}" already exists in volume group "${VG}"`);
        const tag = after(argv, '--addtag');
        lvs.set(name, tag ? [tag] : []);
        onLvcreate(argv, lvs);
        return {};
      });
      runner.on(['lvremove'], (argv) => {
        const name = argv.at(-1)!.slice(`${VG}/`.length);
        if (!lvs.has(name)) throw failed([...argv], `  Failed to find logical volume "${VG}/${name}"`);
        const select = /^lv_tags=\{(.*)\}$/.exec(after(argv, '--select') ?? '');
        if (!select || lvs.get(name)!.includes(select[1]!)) lvs.delete(name);
        return {};
      });
      runner.on(SETTLE, {});
      runner.on(LVS, () => ({ stdout: [...lvs.keys()].map((n) => lvLine(n, '-wi-------')).join('\n') + '\n' }));
      return lvs;
    }

    it('an lvcreate killed, timed out or cancelled after LVM recorded the LV: the create fails and its LV is removed', async () => {
      const deaths: [string, Error][] = [
        ['DEADLINE_EXCEEDED', new DeadlineExceededError('command timed out after 120000 ms: lvcreate')],
        ['CANCELLED', new CancelledError('command cancelled: lvcreate')],
        ['INTERNAL', new CommandFailedError(['lvcreate'], undefined, 'killed by SIGKILL')],
      ];
      for (const [code, death] of deaths) {
        runner = new RecordingRunner({ strict: true });
        const lvs = fakeLvm(() => {
          throw death;
        });
        const planned = await backend.createVol({ runner, pool }, vol('half', BigInt(MiB)));
        const err = await rejects(backend.buildVol({ runner, pool }, planned, { preallocMetadata: false, createId: 'k9' }));
        expect(err.code, code).to.equal(code);
        expect([...lvs.keys()], code).to.deep.equal([], 'a failed create leaves nothing behind');
        expect(runner.argvs.at(-1)).to.deep.equal(removeTagged(`${VG}/half`, 'k9'));
      }
    });

    it('the undo never removes a same-named LV someone else made: one already there, or one made while our lvcreate died', async () => {
      // already there (made by hand, without our tag): lvcreate refuses, the LV stays
      let lvs = fakeLvm();
      lvs.set('theirs', []);
      const planned = await backend.createVol(ctx, vol('theirs', BigInt(MiB)));
      const err = await rejects(backend.buildVol(ctx, planned, { preallocMetadata: false, createId: 'a1' }));
      expect(err.code).to.equal('ALREADY_EXISTS');
      expect([...lvs.keys()]).to.deep.equal(['theirs']);

      // our lvcreate dies before LVM recorded anything; by the time the undo runs, someone
      // has made an LV of that name
      runner = new RecordingRunner({ strict: true });
      lvs = fakeLvm((argv, all) => {
        all.set('late', []); // theirs, not ours: without our tag
        throw new DeadlineExceededError(`command timed out: ${argv.join(' ')}`);
      });
      const err2 = await rejects(backend.buildVol({ runner, pool }, await backend.createVol(ctx, vol('late', BigInt(MiB))), { preallocMetadata: false, createId: 'a2' }));
      expect(err2.code).to.equal('DEADLINE_EXCEEDED');
      expect([...lvs.keys()]).to.deep.equal(['late']);
    });

    it('a clone whose lvcreate is killed after LVM recorded the LV removes it; the source is not read', async () => {
      const lvs = fakeLvm(() => {
        throw new CommandFailedError(['lvcreate'], undefined, 'killed by SIGKILL');
      });
      const src = join(root, 'src.img');
      writeFileSync(src, Buffer.alloc(MiB, 1));
      const srcVol = vol('src.img', BigInt(MiB), { target: { path: src, format: 'raw', permissions: undefined, timestamps: undefined, compat: '', nocow: false, clusterSize: 0n, lazyRefcounts: false, extendedL2: false, encryption: undefined } });
      const err = await rejects(backend.buildVolFrom(ctx, vol('copy', BigInt(MiB)), { pool, volume: srcVol }, { preallocMetadata: false, createId: 'c7' }));
      expect(err.code).to.equal('INTERNAL');
      expect([...lvs.keys()]).to.deep.equal([]);
      expect(runner.callsOf('lvcreate')[0]).to.include.members(addTag('c7'));
    });

    it('without a create id from the caller each create tags its LV with one of its own', async () => {
      const lvs = fakeLvm();
      for (const name of ['one', 'two']) await backend.buildVol(ctx, await backend.createVol(ctx, vol(name, BigInt(MiB))), { preallocMetadata: false });
      const [one, two] = [lvs.get('one')!, lvs.get('two')!];
      expect(one).to.have.length(1);
      expect(one[0]).to.match(/^cistern\.create\.[0-9a-f]{16}$/);
      expect(two[0]).to.not.equal(one[0]);
    });

    it('deleteVol with createdBy removes the LV only if that create tagged it; a create id LVM would refuse is INVALID_ARGUMENT before anything runs', async () => {
      const lvs = fakeLvm();
      lvs.set('mine', ['cistern.create.m1']);
      lvs.set('hand', []);
      await backend.deleteVol(ctx, vol('hand'), { createdBy: 'm1' });
      await backend.deleteVol(ctx, vol('mine'), { createdBy: 'm1' });
      await backend.deleteVol(ctx, vol('gone'), { createdBy: 'm1' });
      expect([...lvs.keys()]).to.deep.equal(['hand']);
      runner.reset();
      for (const bad of ['', 'a b', 'x,y', 'a}', '{a']) {
        const err = await rejects(backend.deleteVol(ctx, vol('hand'), { createdBy: bad }));
        expect(err.code, bad).to.equal('INVALID_ARGUMENT');
        expect(err.message).to.include('A-Z a-z 0-9 _ . + -');
        const err2 = await rejects(backend.buildVol(ctx, await backend.createVol(ctx, vol('n', BigInt(MiB))), { preallocMetadata: false, createId: bad }));
        expect(err2.code, bad).to.equal('INVALID_ARGUMENT');
      }
      expect(runner.argvs).to.deep.equal([]);
    });

    it('delete: udevadm settle, lvremove -f VG/LV; on failure lvchange -aln and lvremove again; a gone LV is fine', async () => {
      runner.on(SETTLE, {});
      runner.on(['lvremove'], {});
      await backend.deleteVol(ctx, vol('a'));
      expect(runner.argvs).to.deep.equal([SETTLE, ['lvremove', '-f', `${VG}/a`]]);
      expect(runner.calls[0]!.options.timeoutMs).to.equal(35_000, 'the runner stops a udevadm that outlives its own timeout');

      runner = new RecordingRunner({ strict: true });
      runner.on(SETTLE, {});
      runner.on(['lvremove'], failed(['lvremove'], '  Logical volume HostVG/b in use.'), 1);
      runner.on(['lvchange'], {});
      runner.on(['lvremove'], {});
      await backend.deleteVol({ runner, pool }, vol('b'));
      expect(runner.argvs).to.deep.equal([SETTLE, ['lvremove', '-f', `${VG}/b`], ['lvchange', '-aln', `${VG}/b`], ['lvremove', '-f', `${VG}/b`]]);

      runner = new RecordingRunner({ strict: true });
      runner.on(SETTLE, {});
      runner.on(['lvremove'], failed(['lvremove'], '  Failed to find logical volume "HostVG/c"'));
      await backend.deleteVol({ runner, pool }, vol('c'));
      expect(runner.argvs).to.deep.equal([SETTLE, ['lvremove', '-f', `${VG}/c`]]);

      runner = new RecordingRunner({ strict: true });
      runner.on(SETTLE, {});
      runner.on(['lvremove'], failed(['lvremove'], '  Logical volume HostVG/d in use.'));
      runner.on(['lvchange'], failed(['lvchange'], '  Logical volume HostVG/d in use.'));
      const err = await rejects(backend.deleteVol({ runner, pool }, vol('d')));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.include('in use');
    });

    it('an LV in use (mounted, open by a guest) refuses stop, pool delete and volume delete as FAILED_PRECONDITION, not INTERNAL', async () => {
      runner.on(['vgchange'], failed(['vgchange'], `  Logical volume ${VG}/a in use.\n  Can't deactivate volume group "${VG}" with 1 open logical volume(s)\n`));
      const stop = await rejects(backend.stopPool(ctx));
      expect(stop.code).to.equal('FAILED_PRECONDITION');
      expect(stop.message).to.match(/cannot deactivate volume group .*open logical volume/);
      runner.on(['vgscan'], {});
      runner.on(PVS, { stdout: `  ${devA} ${VG}\n  ${devB} ${VG}\n` });
      runner.on(['vgremove'], failed(['vgremove'], `  Logical volume ${VG}/a contains a filesystem in use.\n`));
      const del = await rejects(backend.deletePool(ctx));
      expect(del.code).to.equal('FAILED_PRECONDITION');
      expect(runner.callsOf('pvremove')).to.deep.equal([]);
    });

    it('delete: udevadm missing, failing or timing out is ignored; a cancelled settle removes nothing; udevadm null skips it', async () => {
      const lvremove = ['lvremove', '-f', `${VG}/a`];
      for (const answer of [
        new CommandFailedError(SETTLE, undefined, 'spawn udevadm ENOENT'),
        new CommandFailedError(SETTLE, 1, 'Timed out for waiting the udev queue being empty.'),
        new Error('something else went wrong'),
      ]) {
        runner = new RecordingRunner({ strict: true }).on(SETTLE, answer).on(['lvremove'], {});
        await backend.deleteVol({ runner, pool }, vol('a'));
        expect(runner.argvs, answer.message).to.deep.equal([SETTLE, lvremove]);
      }

      runner = new RecordingRunner({ strict: true }).on(SETTLE, new CancelledError('command cancelled: udevadm settle')).on(['lvremove'], {});
      const err = await rejects(backend.deleteVol({ runner, pool }, vol('a')));
      expect(err.code).to.equal('CANCELLED');
      expect(runner.callsOf('lvremove')).to.deep.equal([]);

      runner = new RecordingRunner({ strict: true }).on(['lvremove'], {});
      await new LogicalBackend({ udevadm: null }).deleteVol({ runner, pool }, vol('a'));
      expect(runner.argvs).to.deep.equal([lvremove]);

      runner = new RecordingRunner({ strict: true }).on(['/usr/bin/udevadm'], {}).on(['lvremove'], {});
      await new LogicalBackend({ udevadm: '/usr/bin/udevadm', udevSettleTimeoutSec: 5 }).deleteVol({ runner, pool }, vol('a'));
      expect(runner.argvs).to.deep.equal([['/usr/bin/udevadm', 'settle', '--timeout=5'], lvremove]);
      expect(runner.calls[0]!.options.timeoutMs).to.equal(10_000);

      for (const bad of [-1, 1.5, Number.NaN]) {
        expect(() => new LogicalBackend({ udevSettleTimeoutSec: bad })).to.throw(InvalidArgumentError, /udevSettleTimeoutSec: must be a whole number of seconds/);
      }
    });

    it('asks for a re-read after deleting an origin (lvremove -f takes its snapshots), not after other deletes', async () => {
      let lines = [
        lvLine('o', 'owi-a-s---', { devices: `${devA}(0)` }),
        lvLine('s', 'swi-a-s---', { origin: 'o', devices: `${devA}(2)` }),
        lvLine('virt', 'swi-a-s---', { origin: '[virt_vorigin]', devices: `${devB}(0)` }),
        lvLine('plain', '-wi-a-----', { devices: `${devB}(2)` }),
      ];
      runner.on(LVS, () => ({ stdout: lines.join('\n') + '\n' }));
      runner.on(VGS, { stdout: '  125829120:92274688\n' });
      runner.on(['lvremove', '-f', `${VG}/o`], () => {
        lines = lines.filter((l) => !/^\s*(o|s)#/.test(l));
        return {};
      });
      const known = (await backend.refreshPool(ctx)).volumes;
      const byName = new Map(known.map((v) => [v.name, v]));
      const wants = (name: string): boolean => {
        const rule = backend.refreshAfterDeleteVol;
        return rule(byName.get(name)!, known.filter((v) => v.name !== name));
      };
      expect(wants('o')).to.equal(true);
      for (const name of ['s', 'virt', 'plain']) expect(wants(name), name).to.equal(false);
      await backend.deleteVol(ctx, byName.get('o')!);
      expect((await backend.refreshPool(ctx)).volumes.map((v) => v.name)).to.deep.equal(['virt', 'plain']);
    });

    it('wipe: zero in-process on the node, other algorithms with scrub; snapshots and inactive LVs refused, thin volumes wiped', async () => {
      require_dir(target);
      writeFileSync(join(target, 'w'), Buffer.alloc(2 * MiB, 0xab));
      runner.on(LVS, {
        stdout: [lvLine('w', '-wi-a-----'), lvLine('sp', 'swi-a-s---'), lvLine('th', 'Vwi-a-tz--', { devices: 'pool(0)' }), lvLine('off', '-wi-------')].join('\n'),
      });
      runner.on(['scrub'], {});
      await backend.wipeVol(ctx, vol('w'), WipeAlgorithm.WIPE_ALGORITHM_ZERO);
      expect(readFileSync(join(target, 'w')).every((b) => b === 0)).to.equal(true);
      await backend.wipeVol(ctx, vol('w'), WipeAlgorithm.WIPE_ALGORITHM_DOD);
      expect(runner.callsOf('scrub').map((argv) => argv.slice(0, -1))).to.deep.equal([['scrub', '-f', '-p', 'dod', '--']]);
      const err = await rejects(backend.wipeVol(ctx, vol('sp'), WipeAlgorithm.WIPE_ALGORITHM_ZERO));
      expect(err.code).to.equal('UNIMPLEMENTED');
      expect(err.message).to.include('is sparse, volume wipe not supported');
      // a thin volume is wiped, as libvirt wipes it (only attr 's' is sparse there)
      writeFileSync(join(target, 'th'), Buffer.alloc(MiB, 0xcd));
      await backend.wipeVol(ctx, vol('th'), WipeAlgorithm.WIPE_ALGORITHM_ZERO);
      expect(readFileSync(join(target, 'th')).every((b) => b === 0)).to.equal(true);
      const off = await rejects(backend.wipeVol(ctx, vol('off'), WipeAlgorithm.WIPE_ALGORITHM_ZERO));
      expect(off.code).to.equal('FAILED_PRECONDITION');
      expect(off.message).to.include('not active');
      // the pool runs (a wipe needs it): the advice is to activate the LV, not to start the pool
      expect(off.message).to.not.include('start the pool');
      expect(off.message).to.match(/lvchange -ay '?[^ ]+\/off'?/);
      const trim = await rejects(backend.wipeVol(ctx, vol('w'), WipeAlgorithm.WIPE_ALGORITHM_TRIM));
      expect(trim.code).to.equal('UNIMPLEMENTED');
      expect(runner.callsOf('scrub')).to.have.length(1);
    });

    it('clone: lvcreate at least the source size, raw data copied in; qcow2 sources via qemu-img convert; failures remove the LV', async () => {
      const lines: string[] = [];
      scriptLvcreate(lines, { active: true, size: 2 * MiB });
      const src = join(root, 'src.img');
      const data = Buffer.alloc(2 * MiB);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
      writeFileSync(src, data);
      const srcPool: PoolDefinition = { ...pool, type: PoolType.POOL_TYPE_DIR, name: 'files' };
      const srcVol = vol('src.img', BigInt(2 * MiB), { target: { path: src, format: 'raw', permissions: undefined, timestamps: undefined, compat: '', nocow: false, clusterSize: 0n, lazyRefcounts: false, extendedL2: false, encryption: undefined } });
      const asked = vol('copy', BigInt(MiB), { allocation: 4096n, backingStore: { path: '/elsewhere/base.img', format: 'raw', permissions: undefined, timestamps: undefined } });
      await backend.buildVolFrom(ctx, asked, { pool: srcPool, volume: srcVol }, { preallocMetadata: false, createId: 'k1' });
      expect(runner.callsOf('lvcreate')[0]).to.deep.equal(['lvcreate', '--name', 'copy', '-L', '2048K', VG, '--yes', ...addTag('k1')]);
      expect(readFileSync(join(target, 'copy')).equals(data)).to.equal(true);

      runner.on(['qemu-img'], failed(['qemu-img'], 'Could not open'));
      runner.on(SETTLE, {});
      runner.on(['lvremove'], {});
      const image = join(root, 'src.qcow2');
      writeFileSync(image, qcow2Header(BigInt(2 * MiB)));
      const q = { ...srcVol, target: { ...srcVol.target!, path: image, format: 'qcow2' } };
      const err = await rejects(backend.buildVolFrom(ctx, vol('conv', BigInt(MiB)), { pool: srcPool, volume: q }, { preallocMetadata: false, createId: 'k2' }));
      expect(err.code).to.equal('INTERNAL');
      // the copy wrote to the LV, udev probes it again: settle before lvremove, as libvirt;
      // qemu-img reads the source as its fd 3, the descriptor opened before the LV was made
      const chain = 'json:{"driver":"qcow2","backing":null,"file":{"driver":"file","filename":"/dev/fd/3"}}';
      expect(runner.argvs.slice(-3)).to.deep.equal([
        ['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', '--', chain, `${target}/conv`],
        SETTLE,
        removeTagged(`${VG}/conv`, 'k2'),
      ]);
      expect(runner.calls.find((c) => c.argv[0] === 'qemu-img')!.options.fds).to.have.length(1);
    });

    it('clone: the source is read through the descriptor opened before lvcreate, not a link put in place of its name meanwhile', async () => {
      const lines: string[] = [];
      const src = join(root, 'src.img');
      const outside = join(root, 'shadow');
      const data = randomBytes(MiB);
      writeFileSync(src, data);
      writeFileSync(outside, Buffer.alloc(MiB, 0x53));
      // whoever can write in the source's directory swaps the name while the LV is being made
      scriptLvcreate(lines, {
        active: true,
        size: MiB,
        onCreate: () => {
          renameSync(src, `${src}.aside`);
          symlinkSync(outside, src);
        },
      });
      const srcPool: PoolDefinition = { ...pool, type: PoolType.POOL_TYPE_DIR, name: 'files' };
      const srcVol = vol('src.img', BigInt(MiB), { target: { path: src, format: 'raw', permissions: undefined, timestamps: undefined, compat: '', nocow: false, clusterSize: 0n, lazyRefcounts: false, extendedL2: false, encryption: undefined } });
      await backend.buildVolFrom(ctx, vol('copy', BigInt(MiB)), { pool: srcPool, volume: srcVol }, { preallocMetadata: false });
      expect(readFileSync(join(target, 'copy')).equals(data)).to.equal(true);
    });

    it('clone of a disk pool partition (format linux, a block volume): its bytes copied in, as libvirt copies block volumes; no qemu-img', async () => {
      const lines: string[] = [];
      scriptLvcreate(lines, { active: true, size: 2 * MiB });
      // the partition's node (a file standing in for /dev/sdb1)
      const part = join(root, 'sdb1');
      const data = randomBytes(2 * MiB);
      writeFileSync(part, data);
      const diskPool: PoolDefinition = { ...pool, type: PoolType.POOL_TYPE_DISK, name: 'disky' };
      for (const format of ['linux', 'none', 'linux-lvm']) {
        const partVol = vol('sdb1', BigInt(2 * MiB), {
          type: VolumeType.VOLUME_TYPE_BLOCK,
          target: { path: part, format, permissions: undefined, timestamps: undefined, compat: '', nocow: false, clusterSize: 0n, lazyRefcounts: false, extendedL2: false, encryption: undefined },
        });
        const name = `from-${format}`;
        await backend.buildVolFrom(ctx, vol(name, BigInt(MiB)), { pool: diskPool, volume: partVol }, { preallocMetadata: false });
        expect(readFileSync(join(target, name)).equals(data), format).to.equal(true);
      }
      expect(runner.callsOf('qemu-img')).to.deep.equal([]);
    });

    it('a create or clone cancelled after lvcreate still removes the LV: the undo does not run under the cancelled signal', async () => {
      const lines: string[] = [];
      scriptLvcreate(lines, { active: true, size: 2 * MiB });
      runner.on(SETTLE, {});
      runner.on(['lvremove'], {});
      // as the ExecRunner does: nothing starts under a cancelled signal
      const cancelling: CommandRunner = {
        run: (argv, options = {}) => (options.signal?.aborted ? Promise.reject(new CancelledError(`cancelled before start: ${argv.join(' ')}`)) : runner.run(argv, options)),
      };
      const src = join(root, 'src.qcow2');
      writeFileSync(src, qcow2Header(BigInt(MiB)));
      const srcVol = vol('src.qcow2', BigInt(MiB), { target: { path: src, format: 'qcow2', permissions: undefined, timestamps: undefined, compat: '', nocow: false, clusterSize: 0n, lazyRefcounts: false, extendedL2: false, encryption: undefined } });

      // the clone is cancelled while qemu-img converts into the new LV
      const clone = new AbortController();
      runner.on(['qemu-img'], () => {
        clone.abort();
        throw new CancelledError('command cancelled: qemu-img convert');
      });
      const err = await rejects(backend.buildVolFrom({ runner: cancelling, pool, signal: clone.signal }, vol('conv', BigInt(MiB)), { pool, volume: srcVol }, { preallocMetadata: false, createId: 'x1' }));
      expect(err.code).to.equal('CANCELLED');
      expect(runner.argvs.slice(-2)).to.deep.equal([SETTLE, removeTagged(`${VG}/conv`, 'x1')]);

      // a create cancelled right after lvcreate: the lvs that follows does not start
      runner.reset();
      const create = new AbortController();
      const cancelAfterLvcreate: CommandRunner = {
        run: async (argv, options) => {
          const r = await cancelling.run(argv, options);
          if (argv[0] === 'lvcreate') create.abort();
          return r;
        },
      };
      const planned = await backend.createVol(ctx, vol('late', BigInt(MiB)));
      const err2 = await rejects(backend.buildVol({ runner: cancelAfterLvcreate, pool, signal: create.signal }, planned, { preallocMetadata: false, createId: 'x2' }));
      expect(err2.code).to.equal('CANCELLED');
      expect(runner.argvs).to.deep.equal([['lvcreate', '--name', 'late', '-L', '1024K', VG, '--yes', ...addTag('x2')], SETTLE, removeTagged(`${VG}/late`, 'x2')]);
    });

    it('clone into an LV without a device node fails and removes the LV', async () => {
      const lines: string[] = [];
      scriptLvcreate(lines, { active: false });
      runner.on(['lvremove'], {});
      const src = join(root, 'src.img');
      writeFileSync(src, Buffer.alloc(MiB, 1));
      const srcVol = vol('src.img', BigInt(MiB), { target: { path: src, format: 'raw', permissions: undefined, timestamps: undefined, compat: '', nocow: false, clusterSize: 0n, lazyRefcounts: false, extendedL2: false, encryption: undefined } });
      const err = await rejects(backend.buildVolFrom(ctx, vol('copy', BigInt(MiB)), { pool, volume: srcVol }, { preallocMetadata: false, createId: 'n1' }));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.include('not active');
      expect(runner.argvs.at(-1)).to.deep.equal(removeTagged(`${VG}/copy`, 'n1'));
    });

    it('upload and download go through the LV device node; no node is FAILED_PRECONDITION', async () => {
      require_dir(target);
      writeFileSync(join(target, 'io'), Buffer.alloc(MiB));
      async function* chunks(): AsyncIterable<Buffer> {
        yield Buffer.from('hello ');
        yield Buffer.from('world');
      }
      expect(await backend.uploadVol(ctx, vol('io'), 100n, 0n, chunks())).to.equal(11n);
      const got: Buffer[] = [];
      for await (const b of backend.downloadVol(ctx, vol('io'), 100n, 11n)) got.push(b);
      expect(Buffer.concat(got).toString()).to.equal('hello world');
      const err = await rejects(backend.uploadVol(ctx, vol('absent'), 0n, 0n, chunks()));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.include('not active');
      async function* tooMuch(): AsyncIterable<Buffer> {
        yield Buffer.alloc(MiB + 1);
      }
      // an LV does not grow by writing past its end: the stream is too long for it
      const over = await rejects(backend.uploadVol(ctx, vol('io'), 0n, 0n, tooMuch()));
      expect(over.code).to.equal('INVALID_ARGUMENT');
      expect(over.message).to.include('longer than the volume');
      expect(runner.argvs).to.deep.equal([]);
    });
  });

  describe('findPoolSources', () => {
    it('vgscan (failure ignored) + pvs: one source per VG with its devices, format lvm2', async () => {
      runner.on(['vgscan'], failed(['vgscan'], 'oops'));
      runner.on(PVS, { stdout: '  /dev/sdb\n  /dev/sdc VolGroup00\n  /dev/sdd VolGroup00\n  /dev/sde data\n' });
      const sources = await backend.findPoolSources(ctx);
      expect(runner.argvs).to.deep.equal([['vgscan'], PVS]);
      expect(sources.map((s) => ({ name: s.name, format: s.format, devices: s.devices.map((d) => d.path) }))).to.deep.equal([
        { name: 'VolGroup00', format: 'lvm2', devices: ['/dev/sdc', '/dev/sdd'] },
        { name: 'data', format: 'lvm2', devices: ['/dev/sde'] },
      ]);
    });

    it('pvs not installed: FAILED_PRECONDITION saying which program and package, not INTERNAL', async () => {
      runner.on(['vgscan'], new CommandFailedError(['vgscan'], undefined, 'spawn vgscan ENOENT'));
      runner.on(PVS, new CommandFailedError(PVS, undefined, 'spawn pvs ENOENT'));
      const err = await rejects(backend.findPoolSources(ctx));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.equal('cannot list physical volumes: pvs is not installed on this host (Debian package lvm2)');
    });

    it("pvs failing in another way keeps LVM's words under what was being done", async () => {
      runner.on(PVS, new CommandFailedError(PVS, 5, '  Some lvm failure\n'));
      const err = await rejects(backend.findPoolSources(ctx));
      expect(err.message).to.match(/^cannot list physical volumes: /);
      expect(err.message).to.include('Some lvm failure');
    });
  });
});

type BuildFlagsT = { overwrite: boolean; noOverwrite: boolean };
const NO_FLAGS: BuildFlagsT = { overwrite: false, noOverwrite: false };
