// The scsi backend run whole against fixture sysfs and /dev trees (test/fixtures/sysfs,
// copied to a temp dir per test): scsi_host by name and by parentaddr, the LU scan (disks
// and CD-ROMs kept, other types and LUs without a stable path left out), keys from
// sysfs and from scsi_id (recording runner), fc_host vHBA create/delete with the test
// playing the kernel, and wipe/upload/download on a loop device standing in for a LUN.
import { expect } from 'chai';
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ScsiBackend, checkScsiAdapter } from '../../../libs/backends/scsi.js';
import { keyFromVpdPage83, keyFromWwid, npivKeyFromExport, scanScsiHost, scsiHostNumber, visibleKey } from '../../../libs/backends/scsi-scan.js';
import { splitDevT } from '../../../libs/backends/device-number.js';
import { formatPciAddress, vhbaParent } from '../../../libs/backends/vhba.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { requireOperation } from '../../../services/agent/context.js';
import { activatePool } from '../../../services/agent/handlers/pool-ops.js';
import { inProcessAgent } from '../../support/agent-context.js';
import type { PoolContext } from '../../../libs/backends/backend.js';
import { UnimplementedError, type CisternError } from '../../../libs/errors/errors.js';
import {
  AdapterType,
  PoolType,
  Tristate,
  WipeAlgorithm,
  type PoolDefinition,
  type SourceAdapter,
  type VolumeDefinition,
} from '../../../libs/proto/cistern/v1/storage.js';
import { makeTempDir } from '../../support/cleanup.js';
import { repoRoot } from '../../support/paths.js';
import { attachLoop, loopDevicesAvailable, withNameRepointed } from '../../support/loop.js';
import { rejects } from '../../support/rejects.js';
import { collect } from '../../support/volume-data.js';

const FIXTURES = join(repoRoot, 'test', 'fixtures', 'sysfs');

function fixture(name: string): { sys: string; dev: string; root: string } {
  const tmp = makeTempDir(`cistern-scsi-${name}-`);
  cpSync(join(FIXTURES, name), tmp.path, { recursive: true, verbatimSymlinks: true });
  return { sys: join(tmp.path, 'sys'), dev: join(tmp.path, 'dev'), root: tmp.path };
}

function adapter(a: Partial<SourceAdapter>): SourceAdapter {
  return {
    type: AdapterType.ADAPTER_TYPE_SCSI_HOST,
    name: '',
    hasParentAddress: false,
    uniqueId: 0,
    parentAddress: undefined,
    parent: '',
    parentWwnn: '',
    parentWwpn: '',
    parentFabricWwn: '',
    wwnn: '',
    wwpn: '',
    managed: Tristate.TRISTATE_ABSENT,
    ...a,
  };
}

function pool(a: Partial<SourceAdapter>, target = '/dev/disk/by-path'): PoolDefinition {
  return {
    type: PoolType.POOL_TYPE_SCSI,
    name: 'san',
    uuid: '7f9f3c7e-1111-4a4a-9b9b-000000000001',
    source: {
      hosts: [],
      devices: [],
      dir: '',
      adapter: adapter(a),
      name: '',
      format: '',
      protocolVersion: '',
      initiatorIqn: '',
      auth: undefined,
      vendor: '',
      product: '',
    },
    target: { path: target, permissions: undefined },
    features: undefined,
    mountOptions: [],
  };
}

function summary(vols: VolumeDefinition[]): Array<[string, string, string, bigint | undefined]> {
  return vols.map((v) => [v.name, v.target!.path, v.key, v.capacity]);
}

const BY_PATH_HOST2: Array<[string, string, string, bigint]> = [
  ['unit:0:0:0', '/dev/disk/by-path/pci-0000:00:10.0-sas-0x5000c500a1b2c3d4-lun-0', '36001405c0ffee0000000000000000001', 2097152n * 512n],
  ['unit:0:0:1', '/dev/disk/by-path/pci-0000:00:10.0-sas-0x5000c500a1b2c3d4-lun-1', '36001405c0ffee0000000000000000002', 4194304n * 512n],
  ['unit:0:1:0', '/dev/disk/by-path/pci-0000:00:10.0-sas-0x5000c500a1b2c3d5-lun-0', '/dev/disk/by-path/pci-0000:00:10.0-sas-0x5000c500a1b2c3d5-lun-0', 1228800n * 512n],
];

describe('SCSI LU scan of a host presenting many LUs', () => {
  it('runs scsi_id for a bounded number of LUs at a time, and keeps every LU', async () => {
    // a target may present thousands of LUs: one scsi_id each, all at once, was a fork storm
    const root = makeTempDir('cistern-scsi-many-');
    const sys = join(root.path, 'sys');
    const dev = join(root.path, 'dev');
    mkdirSync(join(dev, 'disk', 'by-path'), { recursive: true });
    const N = 60;
    for (let l = 0; l < N; l++) {
      const lu = join(sys, 'bus', 'scsi', 'devices', `9:0:0:${l}`);
      mkdirSync(join(lu, 'block', `sdm${l}`), { recursive: true });
      writeFileSync(join(lu, 'type'), '0\n');
      writeFileSync(join(lu, 'block', `sdm${l}`, 'size'), '8\n');
      writeFileSync(join(dev, `sdm${l}`), '');
      symlinkSync(`../../sdm${l}`, join(dev, 'disk', 'by-path', `ip-127.0.0.1:3260-iscsi-iqn.x-lun-${l}`));
    }
    let running = 0;
    let peak = 0;
    const runner = new RecordingRunner().onMatch(
      (a) => a[0] === '/lib/udev/scsi_id',
      async (argv) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        return { stdout: `3600140-${argv[argv.length - 1]!.split('-').pop()}\n` };
      },
    );
    try {
      const vols = await scanScsiHost(sys, 9, '/dev/disk/by-path', { devRoot: dev, runner, keySource: 'scsi_id', stableDirWaitMs: 0 });
      expect(vols).to.have.length(N);
      expect(runner.calls).to.have.length(N);
      expect(peak).to.be.within(2, 8);
    } finally {
      await root.remove();
    }
  });
});

describe('scsi backend: scsi_host', () => {
  it('refresh rescans host2 and lists its disks and CD-ROM with stable paths, sizes and sysfs keys', async () => {
    const fx = fixture('scsi-host');
    const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, keySource: 'sysfs' });
    const runner = new RecordingRunner();
    const ctx: PoolContext = { pool: pool({ name: 'host2' }), runner };
    expect(await backend.checkPool(ctx)).to.equal(true);
    const r = await backend.refreshPool(ctx);
    expect(summary(r.volumes)).to.deep.equal(BY_PATH_HOST2);
    // tape (type 1), enclosure (13), a disk without a stable link and one without a block device: left out
    expect(r.volumes.map((v) => v.name)).to.not.include.members(['unit:0:2:0', 'unit:0:0:3', 'unit:0:0:4', 'unit:1:0:7']);
    for (const v of r.volumes) {
      expect(v.type).to.equal(2); // VOLUME_TYPE_BLOCK
      expect(v.allocation).to.equal(v.capacity);
      expect(v.target!.permissions!.mode).to.be.a('number');
    }
    const total = BY_PATH_HOST2.reduce((s, v) => s + v[3], 0n);
    expect(r.runtime).to.deep.equal({ capacity: total, allocation: total, available: 0n });
    expect(readFileSync(join(fx.sys, 'class/scsi_host/host2/scan'), 'utf8')).to.equal('- - -');
    expect(runner.argvs).to.deep.equal([['udevadm', 'settle']]);
  });

  it('keys come from scsi_id --replace-whitespace --whitelisted --device when it is used', async () => {
    const fx = fixture('scsi-host');
    const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, keySource: 'scsi_id', udevadm: null });
    const runner = new RecordingRunner({ strict: true }).onMatch(
      (a) => a[0] === '/lib/udev/scsi_id',
      (argv) => {
        const dev = argv[argv.length - 1]!;
        if (dev.endsWith('lun-0') && dev.includes('d5')) return { exitCode: 1 }; // the CD-ROM has no id
        return { stdout: `3600a0b80-${dev.split('-').pop()}\n` };
      },
    );
    const r = await backend.refreshPool({ pool: pool({ name: 'host2' }), runner });
    expect(r.volumes.map((v) => v.key)).to.deep.equal(['3600a0b80-0', '3600a0b80-1', BY_PATH_HOST2[2]![2]]);
    const byPath = join(fx.dev, 'disk/by-path');
    expect(runner.argvs).to.deep.include([
      '/lib/udev/scsi_id',
      '--replace-whitespace',
      '--whitelisted',
      '--device',
      join(byPath, 'pci-0000:00:10.0-sas-0x5000c500a1b2c3d4-lun-0'),
    ]);
    expect(runner.argvs).to.have.length(3);
  });

  it('target /dev/disk/by-id picks the by-id link; target /dev gives /dev/NAME and needs no link', async () => {
    const fx = fixture('scsi-host');
    const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, keySource: 'sysfs', udevadm: null });
    const runner = new RecordingRunner();
    const byId = await backend.refreshPool({ pool: pool({ name: 'host2' }, '/dev/disk/by-id'), runner });
    expect(byId.volumes.map((v) => v.target!.path)).to.deep.equal([
      '/dev/disk/by-id/scsi-36001405c0ffee0000000000000000001',
      '/dev/disk/by-id/scsi-36001405c0ffee0000000000000000002',
      '/dev/disk/by-id/scsi-SLIO-ORG_cdrom',
    ]);
    const dev = await backend.refreshPool({ pool: pool({ name: 'host2' }, '/dev'), runner });
    expect(dev.volumes.map((v) => [v.name, v.target!.path])).to.deep.equal([
      ['unit:0:0:0', '/dev/sdb'],
      ['unit:0:0:1', '/dev/sdc'],
      ['unit:0:0:4', '/dev/sde'],
      ['unit:0:1:0', '/dev/sr0'],
    ]);
    expect(dev.volumes[2]!.key).to.equal('36001405c0ffee0000000000000000004');
  });

  it('a target outside /dev is INVALID_ARGUMENT naming the field', async () => {
    const fx = fixture('scsi-host');
    const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, udevadm: null });
    const err = await rejects(backend.refreshPool({ pool: pool({ name: 'host2' }, '/srv/luns'), runner: new RecordingRunner() }));
    expect(err.code).to.equal('INVALID_ARGUMENT');
    expect(err.message).to.contain('/srv/luns').and.contain('/dev/disk/by-path');
  });

  it('a stable target directory that does not exist fails the refresh after the wait (libvirt virStorageBackendStablePath)', async () => {
    const fx = fixture('scsi-host');
    const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, keySource: 'sysfs', udevadm: null, stableDirWaitMs: 0 });
    // a mistyped target path must not look like a pool without LUNs
    const err = await rejects(backend.refreshPool({ pool: pool({ name: 'host2' }, '/dev/disk/by-pth'), runner: new RecordingRunner() }));
    expect(err.code, err.message).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.contain('/dev/disk/by-pth').and.contain('does not exist');
    // without LUs libvirt never looks at the directory: an empty pool
    const empty = await backend.refreshPool({ pool: pool({ name: 'host3' }, '/dev/disk/by-pth'), runner: new RecordingRunner() });
    expect(empty.volumes).to.deep.equal([]);
    // the wait for udev ends when the operation is cancelled
    const waiting = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, keySource: 'sysfs', udevadm: null });
    const ac = new AbortController();
    const pending = rejects(waiting.refreshPool({ pool: pool({ name: 'host2' }, '/dev/disk/by-pth'), runner: new RecordingRunner(), signal: ac.signal }));
    setTimeout(() => ac.abort(), 20);
    expect((await pending).code).to.equal('CANCELLED');
  });

  it('host0 sees only its own LU; a missing host is not active and cannot start', async () => {
    const fx = fixture('scsi-host');
    const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, keySource: 'sysfs', udevadm: null });
    const runner = new RecordingRunner();
    const r = await backend.refreshPool({ pool: pool({ name: 'host0' }), runner });
    expect(summary(r.volumes)).to.deep.equal([['unit:0:0:0', '/dev/disk/by-path/pci-0000:00:1f.2-ata-1', '1ATA_QEMU_HARDDISK_QM00001', 20971520n * 512n]]);
    const missing: PoolContext = { pool: pool({ name: 'host9' }), runner };
    expect(await backend.checkPool(missing)).to.equal(false);
    const err = await rejects(backend.startPool(missing));
    expect(err.code).to.equal('NOT_FOUND');
    expect(err.message).to.contain('host9');
    const rescan = await rejects(backend.refreshPool(missing));
    expect(rescan.code).to.equal('NOT_FOUND');
  });

  it('a kernel without the SCSI subsystem or FC transport (as this build host): FAILED_PRECONDITION naming it', async () => {
    const empty = makeTempDir('cistern-scsi-nosys-');
    const backend = new ScsiBackend({ sysfsRoot: empty.path, devRoot: empty.path, udevadm: null });
    const runner = new RecordingRunner({ strict: true });
    const byPci = pool({ hasParentAddress: true, uniqueId: 5, parentAddress: { domain: 0, bus: 0, slot: 0x1f, function: 2 } });
    for (const p of [pool({ name: 'host0' }), byPci, pool({ type: AdapterType.ADAPTER_TYPE_FC_HOST, ...VHBA })]) {
      // the agent's start: checkPool first (a parentaddr found nowhere is not "no such PCI host" here)
      expect(await backend.checkPool({ pool: p, runner })).to.equal(false);
      const start = await rejects(backend.startPool({ pool: p, runner }));
      expect(start.code).to.equal('FAILED_PRECONDITION');
      expect(start.message).to.match(/this kernel has no (SCSI subsystem|Fibre Channel transport)/);
      expect((await rejects(backend.refreshPool({ pool: p, runner }))).code).to.equal('FAILED_PRECONDITION');
    }
    expect(runner.argvs).to.deep.equal([]);
  });

  it('a scsi_host with no LUs is an empty pool of size 0', async () => {
    const fx = fixture('scsi-host');
    const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, udevadm: null });
    const r = await backend.refreshPool({ pool: pool({ name: 'host3' }), runner: new RecordingRunner() });
    expect(r.volumes).to.deep.equal([]);
    expect(r.runtime.capacity).to.equal(0n);
  });

  it('parentaddr resolves unique_id + PCI address to host2', async () => {
    const fx = fixture('scsi-host');
    const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, keySource: 'sysfs', udevadm: null });
    const addr = { domain: 0, bus: 0, slot: 0x10, function: 0 };
    expect(formatPciAddress(addr)).to.equal('0000:00:10.0');
    const p = pool({ hasParentAddress: true, uniqueId: 3, parentAddress: addr });
    expect(await backend.findHost(p)).to.equal('host2');
    const runner = new RecordingRunner();
    expect(await backend.checkPool({ pool: p, runner })).to.equal(true);
    const r = await backend.refreshPool({ pool: p, runner });
    expect(summary(r.volumes)).to.deep.equal(BY_PATH_HOST2);
    // same PCI device, other unique_id: not found, with the address in the message
    const err = await rejects(backend.refreshPool({ pool: pool({ hasParentAddress: true, uniqueId: 7, parentAddress: addr }), runner }));
    expect(err.code).to.equal('NOT_FOUND');
    expect(err.message).to.contain("'0000:00:10.0'").and.contain("unique_id='7'");
  });

  it('adapter checks: bad names, name with parentaddr, no adapter', () => {
    const bad = (a: Partial<SourceAdapter>) => {
      try {
        checkScsiAdapter(pool(a));
      } catch (err) {
        return err as CisternError;
      }
      throw new Error('expected an error');
    };
    expect(bad({ name: 'sda' }).code).to.equal('INVALID_ARGUMENT');
    expect(bad({ name: 'host0', hasParentAddress: true, parentAddress: { domain: 0, bus: 0, slot: 0, function: 0 } }).message).to.contain('not both');
    expect(bad({}).message).to.contain("'name'");
    expect(bad({ type: AdapterType.ADAPTER_TYPE_FC_HOST, wwnn: '20000000c9831b4b' }).message).to.contain('wwpn');
    expect(bad({ type: AdapterType.ADAPTER_TYPE_FC_HOST, wwnn: 'xyz', wwpn: '10000000c9831b4b' }).code).to.equal('INVALID_ARGUMENT');
    expect(scsiHostNumber('scsi_host12')).to.equal(12);
    // libvirt's virSCSIHostGetNumber takes the fc_hostN spelling too (virsh starts such a pool on hostN)
    expect(scsiHostNumber('fc_host7')).to.equal(7);
    expect(checkScsiAdapter(pool({ name: 'fc_host7' })).name).to.equal('fc_host7');
  });

  it('volumes cannot be created, deleted or resized: UNIMPLEMENTED with the reason', async () => {
    const backend = new ScsiBackend({ sysfsRoot: '/nonexistent', devRoot: '/nonexistent' });
    for (const op of ['createVol', 'buildVol', 'deleteVol', 'resizeVol', 'buildPool', 'deletePool'] as const) {
      expect(backend.operations.has(op), op).to.equal(false);
      expect(backend.unsupportedReasons[op], op).to.be.a('string');
    }
    expect(() => requireOperation(backend, 'createVol', 'creating a volume')).to.throw(UnimplementedError, /storage pool type scsi: .*LUNs/);
    expect(() => requireOperation(backend, 'deleteVol', 'deleting a volume')).to.throw(UnimplementedError, /storage pool type scsi/);
  });
});

describe('scsi-scan: key parsers', () => {
  it("a key made from a target's designators shows its unprintable bytes as \\xNN", () => {
    // a target chooses these bytes: terminal escapes reached events, logs and vol-key output
    expect(visibleKey('8H8_VENDOR\u001b[2J\u001b]0;owned\u0007_serial')).to.equal('8H8_VENDOR\\x1b[2J\\x1b]0;owned\\x07_serial');
    expect(visibleKey('1a\\b \u00e9')).to.equal('1a\\x5cb\\x20\\xe9');
    expect(visibleKey('3600140500000000000000000000000aa')).to.equal('3600140500000000000000000000000aa');
  });

  it('sysfs wwid in scsi_id form', () => {
    expect(keyFromWwid('naa.6001405ABCDEF\n')).to.equal('36001405abcdef');
    expect(keyFromWwid('eui.0025385b71b02345')).to.equal('20025385b71b02345');
    expect(keyFromWwid('t10.ATA     QEMU HARDDISK   QM00001')).to.equal('1ATA_QEMU_HARDDISK_QM00001');
    expect(keyFromWwid('')).to.equal(undefined);
  });

  it('VPD page 0x83: NAA over T10, LU designators only', () => {
    const t10 = Buffer.concat([Buffer.from([0x02, 0x01, 0x00, 0x08]), Buffer.from('VEND  X ')]);
    const naaPort = Buffer.from([0x01, 0x13, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8]); // association 1 (port): ignored
    const naa = Buffer.from([0x01, 0x03, 0x00, 0x08, 0x50, 0x01, 0x40, 0x5c, 0, 0, 0, 9]);
    const body = Buffer.concat([t10, naaPort, naa]);
    const page = Buffer.concat([Buffer.from([0, 0x83, 0, body.length]), body]);
    expect(keyFromVpdPage83(page)).to.equal('35001405c00000009');
    const onlyT10 = Buffer.concat([Buffer.from([0, 0x83, 0, t10.length]), t10]);
    expect(keyFromVpdPage83(onlyT10)).to.equal('1VEND_X');
    expect(keyFromVpdPage83(Buffer.from([0, 0x80, 0, 0]))).to.equal(undefined);
  });

  it('NPIV key from scsi_id --export', () => {
    expect(npivKeyFromExport('ID_SCSI=1\nID_SERIAL=3600a0b8000aa\nID_TARGET_PORT=1\n')).to.equal('3600a0b8000aa_PORT1');
    expect(npivKeyFromExport('ID_SERIAL=x\n')).to.equal(undefined);
  });

  it('scanScsiHost is usable on its own (as the iscsi backend does)', async () => {
    const fx = fixture('scsi-host');
    const vols = await scanScsiHost(fx.sys, 2, '/dev/disk/by-path', { devRoot: fx.dev, keySource: 'sysfs' });
    expect(summary(vols)).to.deep.equal(BY_PATH_HOST2);
    // without a runner no program runs, even with keySource auto
    expect(summary(await scanScsiHost(fx.sys, 2, '/dev/disk/by-path/', { devRoot: fx.dev }))).to.deep.equal(BY_PATH_HOST2);
  });
});

// ------------------------------------------------------------------ fc_host / vHBA

const HBA_PATH = 'devices/pci0000:00/0000:00:03.0/0000:05:00.0/host5';
const VHBA = { wwnn: '2001001b32a9da4e', wwpn: '2101001b32a9da4e' };

/**
 * Plays the kernel for the fc-host fixture: a "wwpn:wwnn" written to host5's
 * vport_create makes host6 (a vHBA below host5 with one disk LU, sdf) appear; the same
 * written to vport_delete removes it. Polls the files the backend writes.
 */
function fakeKernel(fx: { sys: string; dev: string }, opts: { ignoreCreate?: boolean } = {}): { stop: () => void; writes: string[] } {
  const writes: string[] = [];
  const fc = join(fx.sys, HBA_PATH, 'fc_host/host5');
  const vhbaDir = join(fx.sys, HBA_PATH, 'vport-5:0-0/host6');
  const lu = join(vhbaDir, 'rport-6:0-0/target6:0:0/6:0:0:0');
  const create = (wwpn: string, wwnn: string) => {
    mkdirSync(join(vhbaDir, 'fc_host/host6'), { recursive: true });
    mkdirSync(join(vhbaDir, 'scsi_host/host6'), { recursive: true });
    writeFileSync(join(vhbaDir, 'fc_host/host6/node_name'), `0x${wwnn}\n`);
    writeFileSync(join(vhbaDir, 'fc_host/host6/port_name'), `0x${wwpn}\n`);
    writeFileSync(join(vhbaDir, 'scsi_host/host6/scan'), '');
    mkdirSync(join(lu, 'block/sdf'), { recursive: true });
    writeFileSync(join(lu, 'type'), '0\n');
    writeFileSync(join(lu, 'block/sdf/size'), '8388608\n');
    symlinkSync(`../../${HBA_PATH}/vport-5:0-0/host6/fc_host/host6`, join(fx.sys, 'class/fc_host/host6'));
    symlinkSync(`../../${HBA_PATH}/vport-5:0-0/host6/scsi_host/host6`, join(fx.sys, 'class/scsi_host/host6'));
    symlinkSync(`../../../${HBA_PATH}/vport-5:0-0/host6/rport-6:0-0/target6:0:0/6:0:0:0`, join(fx.sys, 'bus/scsi/devices/6:0:0:0'));
    mkdirSync(join(fx.dev, 'disk/by-path'), { recursive: true });
    symlinkSync('../../sdf', join(fx.dev, 'disk/by-path/pci-0000:05:00.0-fc-0x5006016844602198-lun-0'));
    writeFileSync(join(fc, 'npiv_vports_inuse'), '1\n');
  };
  const remove = () => {
    for (const l of ['class/fc_host/host6', 'class/scsi_host/host6', 'bus/scsi/devices/6:0:0:0']) unlinkSync(join(fx.sys, l));
    unlinkSync(join(fx.dev, 'disk/by-path/pci-0000:05:00.0-fc-0x5006016844602198-lun-0'));
    rmSync(join(fx.sys, HBA_PATH, 'vport-5:0-0'), { recursive: true });
    writeFileSync(join(fc, 'npiv_vports_inuse'), '0\n');
  };
  const timer = setInterval(() => {
    for (const op of ['vport_create', 'vport_delete']) {
      const file = join(fc, op);
      const text = readFileSync(file, 'utf8');
      if (!text) continue;
      writeFileSync(file, '');
      writes.push(`${op} ${text}`);
      const [wwpn, wwnn] = text.trim().split(':');
      if (op === 'vport_create' && !opts.ignoreCreate) create(wwpn!, wwnn!);
      if (op === 'vport_delete' && existsSync(join(fx.sys, 'class/fc_host/host6'))) remove();
    }
  }, 5);
  return { stop: () => clearInterval(timer), writes };
}

describe('scsi backend: fc_host (NPIV vHBA)', () => {
  it('start creates the vHBA on the parent, refresh lists its LUs with NPIV keys, stop deletes it', async () => {
    const fx = fixture('fc-host');
    const kernel = fakeKernel(fx);
    try {
      const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, keySource: 'scsi_id', udevadm: null, vportPollMs: 5 });
      const runner = new RecordingRunner({ strict: true }).on(['/lib/udev/scsi_id'], {
        stdout: 'ID_SCSI=1\nID_VENDOR=DGC\nID_SERIAL=360060160a0b12c00aabbccddeeff0011\nID_TARGET_PORT=2\n',
      });
      const p = pool({ type: AdapterType.ADAPTER_TYPE_FC_HOST, parent: 'scsi_host5', ...VHBA });
      const ctx: PoolContext = { pool: p, runner };
      expect(await backend.checkPool(ctx)).to.equal(false);
      await backend.startPool(ctx);
      expect(kernel.writes).to.deep.equal([`vport_create ${VHBA.wwpn}:${VHBA.wwnn}`]);
      expect(await vhbaParent(fx.sys, 'host6')).to.equal('host5');
      expect(await backend.checkPool(ctx)).to.equal(true);
      expect(p.source!.adapter!.managed).to.equal(Tristate.TRISTATE_YES);

      const r = await backend.refreshPool(ctx);
      expect(summary(r.volumes)).to.deep.equal([
        ['unit:0:0:0', '/dev/disk/by-path/pci-0000:05:00.0-fc-0x5006016844602198-lun-0', '360060160a0b12c00aabbccddeeff0011_PORT2', 8388608n * 512n],
      ]);
      expect(runner.argvs[0]!.slice(0, 5)).to.deep.equal(['/lib/udev/scsi_id', '--replace-whitespace', '--whitelisted', '--export', '--device']);
      expect(readFileSync(join(fx.sys, 'class/scsi_host/host6/scan'), 'utf8')).to.equal('- - -');

      await backend.stopPool(ctx);
      await waitUntil(() => kernel.writes.length === 2 && !existsSync(join(fx.sys, 'class/fc_host/host6')));
      expect(kernel.writes[1]).to.equal(`vport_delete ${VHBA.wwpn}:${VHBA.wwnn}`);
      expect(await backend.checkPool(ctx)).to.equal(false);
    } finally {
      kernel.stop();
    }
  });

  it('with no parent the vHBA goes on an online NPIV-capable HBA (host5, not host4)', async () => {
    const fx = fixture('fc-host');
    const kernel = fakeKernel(fx);
    try {
      const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, keySource: 'sysfs', udevadm: null, vportPollMs: 5 });
      const ctx: PoolContext = { pool: pool({ type: AdapterType.ADAPTER_TYPE_FC_HOST, ...VHBA }), runner: new RecordingRunner() };
      await backend.startPool(ctx);
      expect(kernel.writes).to.deep.equal([`vport_create ${VHBA.wwpn}:${VHBA.wwnn}`]);
      // managed: the parent is found from the vHBA's sysfs path at stop
      await backend.stopPool(ctx);
      await waitUntil(() => kernel.writes.length === 2);
      expect(kernel.writes[1]).to.equal(`vport_delete ${VHBA.wwpn}:${VHBA.wwnn}`);
    } finally {
      kernel.stop();
    }
  });

  it('parent by parent_wwnn/parent_wwpn and by parent_fabric_wwn', async () => {
    for (const parent of [
      { parentWwnn: '20000000c9831b4b', parentWwpn: '10000000c9831b4b' },
      { parentFabricWwn: '2002000573de9a81' },
    ]) {
      const fx = fixture('fc-host');
      const kernel = fakeKernel(fx);
      try {
        const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, udevadm: null, vportPollMs: 5 });
        const ctx: PoolContext = { pool: pool({ type: AdapterType.ADAPTER_TYPE_FC_HOST, ...parent, ...VHBA }), runner: new RecordingRunner() };
        await backend.startPool(ctx);
        expect(kernel.writes).to.deep.equal([`vport_create ${VHBA.wwpn}:${VHBA.wwnn}`]);
        await backend.stopPool(ctx);
      } finally {
        kernel.stop();
      }
    }
  });

  it('a parent that cannot create vports is FAILED_PRECONDITION and nothing is written', async () => {
    const fx = fixture('fc-host');
    const kernel = fakeKernel(fx);
    try {
      const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, udevadm: null });
      const err = await rejects(backend.startPool({ pool: pool({ type: AdapterType.ADAPTER_TYPE_FC_HOST, parent: 'scsi_host4', ...VHBA }), runner: new RecordingRunner() }));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.contain('host4').and.contain('vport');
      const nf = await rejects(backend.startPool({ pool: pool({ type: AdapterType.ADAPTER_TYPE_FC_HOST, parentFabricWwn: '2002000573de9aff', ...VHBA }), runner: new RecordingRunner() }));
      expect(nf.code).to.equal('FAILED_PRECONDITION');
      expect(nf.message).to.contain('parent_fabric_wwn');
      // a parent that is no host here says so (libvirt: "parent '...' specified for vHBA does not exist")
      const gone = await rejects(backend.startPool({ pool: pool({ type: AdapterType.ADAPTER_TYPE_FC_HOST, parent: 'scsi_host9', ...VHBA }), runner: new RecordingRunner() }));
      expect(gone.code).to.equal('FAILED_PRECONDITION');
      expect(gone.message).to.contain("parent 'scsi_host9'").and.contain('does not exist').and.not.contain('vport capable');
      expect(kernel.writes).to.deep.equal([]);
    } finally {
      kernel.stop();
    }
  });

  it('a vHBA that never appears fails the start and its vport is deleted again', async () => {
    const fx = fixture('fc-host');
    const kernel = fakeKernel(fx, { ignoreCreate: true });
    try {
      const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, udevadm: null, vportWaitMs: 100, vportPollMs: 5 });
      const err = await rejects(backend.startPool({ pool: pool({ type: AdapterType.ADAPTER_TYPE_FC_HOST, parent: 'host5', ...VHBA }), runner: new RecordingRunner() }));
      expect(err.code).to.equal('NOT_FOUND');
      expect(err.message).to.contain(VHBA.wwnn);
      await waitUntil(() => kernel.writes.length === 2);
      expect(kernel.writes).to.deep.equal([`vport_create ${VHBA.wwpn}:${VHBA.wwnn}`, `vport_delete ${VHBA.wwpn}:${VHBA.wwnn}`]);
    } finally {
      kernel.stop();
    }
  });

  it('a start cancelled while it waits for the vHBA is CANCELLED, not a vHBA that never appeared, and deletes its vport', async () => {
    const fx = fixture('fc-host');
    const kernel = fakeKernel(fx, { ignoreCreate: true });
    try {
      // a wait far longer than the test: only the cancel can end it
      const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, udevadm: null, vportWaitMs: 600_000, vportPollMs: 5 });
      const ac = new AbortController();
      const start = rejects(backend.startPool({ pool: pool({ type: AdapterType.ADAPTER_TYPE_FC_HOST, parent: 'host5', ...VHBA }), runner: new RecordingRunner(), signal: ac.signal }));
      await waitUntil(() => kernel.writes.length === 1);
      ac.abort();
      const err = await start;
      expect(err.code).to.equal('CANCELLED');
      expect(err.message).to.contain(VHBA.wwnn).and.not.contain('600000 ms');
      await waitUntil(() => kernel.writes.length === 2);
      expect(kernel.writes).to.deep.equal([`vport_create ${VHBA.wwpn}:${VHBA.wwnn}`, `vport_delete ${VHBA.wwpn}:${VHBA.wwnn}`]);
    } finally {
      kernel.stop();
    }
  });

  it('an existing vHBA is used as is: a wrong parent is refused; unmanaged, stop leaves it', async () => {
    const fx = fixture('fc-host');
    const kernel = fakeKernel(fx);
    try {
      const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, udevadm: null, vportPollMs: 5 });
      // someone else created it
      writeFileSync(join(fx.sys, HBA_PATH, 'fc_host/host5/vport_create'), `${VHBA.wwpn}:${VHBA.wwnn}`);
      await waitUntil(() => existsSync(join(fx.sys, 'class/fc_host/host6')));
      kernel.writes.length = 0;
      const other = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, udevadm: null });
      const wrong = await rejects(other.startPool({ pool: pool({ type: AdapterType.ADAPTER_TYPE_FC_HOST, parent: 'scsi_host4', ...VHBA }), runner: new RecordingRunner() }));
      expect(wrong.code).to.equal('FAILED_PRECONDITION');
      expect(wrong.message).to.contain('scsi_host5');
      const ctx: PoolContext = { pool: pool({ type: AdapterType.ADAPTER_TYPE_FC_HOST, parent: 'scsi_host5', ...VHBA }), runner: new RecordingRunner() };
      expect(await backend.checkPool(ctx)).to.equal(true);
      await backend.startPool(ctx);
      await backend.stopPool(ctx);
      // nothing written to vport_delete (neither pending nor consumed by the fake kernel)
      expect(readFileSync(join(fx.sys, HBA_PATH, 'fc_host/host5/vport_delete'), 'utf8')).to.equal('');
      expect(kernel.writes).to.deep.equal([]);
      expect(existsSync(join(fx.sys, 'class/fc_host/host6'))).to.equal(true);
      // managed='yes': stop deletes it
      ctx.pool.source!.adapter!.managed = Tristate.TRISTATE_YES;
      await backend.stopPool(ctx);
      await waitUntil(() => kernel.writes.length === 1);
      expect(kernel.writes).to.deep.equal([`vport_delete ${VHBA.wwpn}:${VHBA.wwnn}`]);
    } finally {
      kernel.stop();
    }
  });

  it("the agent's start of a pool whose vHBA exists below another parent is refused, as libvirt's createVport", async () => {
    // the agent starts a pool with checkPool, then startPool only when the check says down: a
    // vHBA that exists makes the check say up, so the parent check must not live in startPool alone
    const fx = fixture('fc-host');
    const kernel = fakeKernel(fx);
    try {
      writeFileSync(join(fx.sys, HBA_PATH, 'fc_host/host5/vport_create'), `${VHBA.wwpn}:${VHBA.wwnn}`);
      await waitUntil(() => existsSync(join(fx.sys, 'class/fc_host/host6')));
      const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, keySource: 'sysfs', udevadm: null });
      const { ctx } = inProcessAgent({ runner: new RecordingRunner(), backend });
      const wrong = await rejects(
        activatePool(ctx, pool({ type: AdapterType.ADAPTER_TYPE_FC_HOST, parent: 'scsi_host4', ...VHBA }), { persistent: false, autostart: false }, { principal: 't', requestId: '' }),
      );
      expect(wrong.code).to.equal('FAILED_PRECONDITION');
      expect(wrong.message).to.contain("parent attribute 'scsi_host4'").and.contain('scsi_host5');
      expect(ctx.state.getPool('san')).to.equal(undefined);
      // the right parent starts it, and lists the vHBA's LU
      const entry = await activatePool(ctx, pool({ type: AdapterType.ADAPTER_TYPE_FC_HOST, parent: 'scsi_host5', ...VHBA }), { persistent: false, autostart: false }, { principal: 't', requestId: '' });
      expect([...entry.volumes.keys()]).to.deep.equal(['unit:0:0:0']);
    } finally {
      kernel.stop();
    }
  });

  it('refresh of an fc_host pool whose vHBA does not exist is NOT_FOUND naming the WWNs', async () => {
    const fx = fixture('fc-host');
    const backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, udevadm: null });
    const err = await rejects(backend.refreshPool({ pool: pool({ type: AdapterType.ADAPTER_TYPE_FC_HOST, ...VHBA }), runner: new RecordingRunner() }));
    expect(err.code).to.equal('NOT_FOUND');
    expect(err.message).to.contain(VHBA.wwpn);
  });
});

async function waitUntil(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!cond()) throw new Error('condition not reached');
}

// ------------------------------------------------------------------ LUN data (loop device)


async function* chunks(...bufs: Buffer[]): AsyncIterable<Buffer> {
  for (const b of bufs) yield b;
}

describe('scsi backend: wipe, upload, download on the LUN block device', function () {
  const SIZE = 4 * 1024 * 1024;
  let fx: { sys: string; dev: string };
  let backend: ScsiBackend;
  let ctx: PoolContext;
  let runner: RecordingRunner;
  let lun: VolumeDefinition;
  let file: string;
  let detach: (() => Promise<void>) | undefined;

  before(async function () {
    if (!loopDevicesAvailable()) this.skip();
    const loop = attachLoop(SIZE, 'scsi-lun');
    detach = loop.detach;
    file = loop.file;
    fx = fixture('scsi-host');
    // the LU 2:0:0:0's block device sdb is the loop device
    unlinkSync(join(fx.dev, 'sdb'));
    symlinkSync(loop.device, join(fx.dev, 'sdb'));
    writeFileSync(join(fx.sys, 'bus/scsi/devices/2:0:0:0/block/sdb/size'), `${SIZE / 512}\n`);
    const { major, minor } = splitDevT(statSync(loop.device, { bigint: true }).rdev);
    writeFileSync(join(fx.sys, 'bus/scsi/devices/2:0:0:0/block/sdb/dev'), `${major}:${minor}\n`);
    backend = new ScsiBackend({ sysfsRoot: fx.sys, devRoot: fx.dev, keySource: 'sysfs', udevadm: null });
    runner = new RecordingRunner();
    ctx = { pool: pool({ name: 'host2' }), runner };
    lun = (await backend.refreshPool(ctx)).volumes.find((v) => v.name === 'unit:0:0:0')!;
    expect(lun.capacity).to.equal(BigInt(SIZE));
  });

  after(async () => {
    await detach?.();
  });

  it('upload at an offset then download reads the same bytes back', async () => {
    const data = Buffer.alloc(300_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const n = await backend.uploadVol!(ctx, lun, 4096n, 0n, chunks(data.subarray(0, 100_000), data.subarray(100_000)));
    expect(n).to.equal(BigInt(data.length));
    expect((await collect(backend.downloadVol!(ctx, lun, 4096n, BigInt(data.length)))).equals(data)).to.equal(true);
    const whole = await collect(backend.downloadVol!(ctx, lun, 0n, 0n));
    expect(whole.length).to.equal(SIZE);
    expect(whole.subarray(4096, 4096 + data.length).equals(data)).to.equal(true);
    // the data is on the device the loop device backs
    expect(readFileSync(file).subarray(4096, 4096 + 16).equals(data.subarray(0, 16))).to.equal(true);
  });

  it('an upload past the end of the LUN is INVALID_ARGUMENT (a LUN cannot grow); a download from past its end too, from its very end is empty', async () => {
    const err = await rejects(backend.uploadVol!(ctx, lun, BigInt(SIZE - 10), 100n, chunks(Buffer.alloc(100, 1))));
    expect(err.code).to.equal('INVALID_ARGUMENT');
    expect(err.message).to.contain('do not fit');
    // libvirt 9.0 cannot seek a block device past its end: 'Unable to seek ... Invalid argument'
    const past = await rejects(collect(backend.downloadVol!(ctx, lun, BigInt(SIZE + 1), 0n)));
    expect(past.code).to.equal('INVALID_ARGUMENT');
    expect(past.message).to.contain(`offset ${SIZE + 1} is past the end`);
    expect((await collect(backend.downloadVol!(ctx, lun, BigInt(SIZE), 0n))).length).to.equal(0);
  });

  it('zero wipe writes zeros over the whole device', async () => {
    await backend.uploadVol!(ctx, lun, 0n, 0n, chunks(Buffer.alloc(8192, 0xab)));
    await backend.wipeVol!(ctx, lun, WipeAlgorithm.WIPE_ALGORITHM_ZERO);
    const all = readFileSync(file);
    expect(all.length).to.equal(SIZE);
    expect(all.every((b) => b === 0)).to.equal(true);
  });

  it('other algorithms run scrub on the LUN device opened and checked, trim runs blkdiscard on its path', async () => {
    runner.reset();
    const scrubbed: string[] = [];
    runner.on(['scrub'], (argv) => void scrubbed.push(realpathSync(argv[argv.length - 1]!)));
    await backend.wipeVol!(ctx, lun, WipeAlgorithm.WIPE_ALGORITHM_DOD);
    await backend.wipeVol!(ctx, lun, WipeAlgorithm.WIPE_ALGORITHM_TRIM);
    const dev = join(fx.dev, 'disk/by-path/pci-0000:00:10.0-sas-0x5000c500a1b2c3d4-lun-0');
    expect(runner.argvs.map((argv) => (argv[0] === 'scrub' ? argv.slice(0, -1) : argv))).to.deep.equal([
      ['scrub', '-f', '-p', 'dod', '--'],
      ['blkdiscard', '--', dev],
    ]);
    expect(scrubbed).to.deep.equal([realpathSync(dev)]);
  });

  it("refuses to wipe, write or read a device that is not the volume's LU any more: its name now leads to another disk", async () => {
    // a target claiming a local disk's serial shares its /dev/disk/by-id link, which udev may
    // point at either; a /dev/sdX name is reused once its LUN goes away
    const link = join(fx.dev, 'disk/by-path/pci-0000:00:10.0-sas-0x5000c500a1b2c3d4-lun-0');
    const otherHolds = await withNameRepointed(link, SIZE, 'scsi-other', async () => {
      for (const attempt of [
        () => backend.wipeVol!(ctx, lun, WipeAlgorithm.WIPE_ALGORITHM_ZERO),
        () => backend.wipeVol!(ctx, lun, WipeAlgorithm.WIPE_ALGORITHM_TRIM),
        () => backend.uploadVol!(ctx, lun, 0n, 0n, chunks(Buffer.alloc(4096, 1))),
        () => collect(backend.downloadVol!(ctx, lun, 0n, 0n)),
      ]) {
        const err = await rejects(attempt());
        expect(err.code).to.equal('FAILED_PRECONDITION');
        expect(err.message).to.match(/is not the device of volume 'unit:0:0:0' \(SCSI LU 2:0:0:0\) any more: it is device \d+:\d+, the LU's is sdb \(\d+:\d+\); refresh the pool/);
      }
    });
    expect(otherHolds.every((b) => b === 0x5a)).to.equal(true);
  });

  it('a volume path outside the pool target is refused before any I/O', async () => {
    const bad = { ...lun, target: { ...lun.target!, path: '/dev/disk/by-path/../../sda' } };
    const err = await rejects(backend.wipeVol!(ctx, bad, WipeAlgorithm.WIPE_ALGORITHM_ZERO));
    expect(err.code).to.equal('INVALID_ARGUMENT');
  });
});
