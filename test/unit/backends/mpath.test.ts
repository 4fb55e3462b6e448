// The mpath backend: dmsetup output (captured / hand-written, test/fixtures/dmsetup)
// fed through the recording runner with a fixture /dev and /proc; this kernel's own lack
// of device-mapper as the user sees it; and map data I/O on a loop device standing in
// for /dev/mapper/NAME.
import { expect } from 'chai';
import { cpSync, readFileSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MpathBackend } from '../../../libs/backends/mpath.js';
import { splitDevT } from '../../../libs/backends/device-number.js';
import {
  deviceMapperMajor,
  dmsetupError,
  isMultipathTable,
  parseDmsetupLs,
  parseDmsetupTable,
  tableBytes,
} from '../../../libs/backends/dmsetup.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { requireOperation } from '../../../services/agent/context.js';
import type { PoolContext } from '../../../libs/backends/backend.js';
import { CommandFailedError, UnimplementedError } from '../../../libs/errors/errors.js';
import { PoolType, VolumeType, WipeAlgorithm, type PoolDefinition, type VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { makeTempDir } from '../../support/cleanup.js';
import { repoRoot } from '../../support/paths.js';
import { attachLoop, loopDevicesAvailable, withNameRepointed } from '../../support/loop.js';
import { rejects } from '../../support/rejects.js';
import { collect } from '../../support/volume-data.js';

const FIX = join(repoRoot, 'test', 'fixtures', 'dmsetup');
const text = (name: string) => readFileSync(join(FIX, name), 'utf8');

function tree(name = 'tree'): { dev: string; proc: string } {
  const tmp = makeTempDir('cistern-mpath-');
  cpSync(join(FIX, name), tmp.path, { recursive: true, verbatimSymlinks: true });
  return { dev: join(tmp.path, 'dev'), proc: join(tmp.path, 'proc') };
}

const POOL: PoolDefinition = {
  type: PoolType.POOL_TYPE_MPATH,
  name: 'mp',
  uuid: '',
  source: undefined,
  target: { path: '/dev/mapper', permissions: undefined },
  features: undefined,
  mountOptions: [],
};

function dmRunner(ls = text('ls-multipath.txt'), table = text('table-multipath.txt')): RecordingRunner {
  return new RecordingRunner({ strict: true })
    .on(['udevadm', 'settle'], {})
    .on(['dmsetup', 'ls', '--target', 'multipath'], { stdout: ls })
    .onMatch((a) => a.join(' ') === 'dmsetup table', { stdout: table });
}

describe('dmsetup parsers', () => {
  it('ls: names and major:minor, the old "(M, m)" form, and "No devices found"', () => {
    expect(parseDmsetupLs(text('ls-multipath.txt'))).to.deep.equal([
      { name: 'mpatha', major: 253, minor: 2 },
      { name: 'mpathb', major: 253, minor: 3 },
      { name: '36001405c0ffee0000000000000000009', major: 253, minor: 7 },
    ]);
    expect(parseDmsetupLs(text('ls-old-format.txt'))).to.deep.equal([{ name: 'mpatha', major: 253, minor: 2 }]);
    expect(parseDmsetupLs(text('ls-none.txt'))).to.deep.equal([]);
    expect(() => parseDmsetupLs('garbage line\n')).to.throw(/cannot parse dmsetup ls/);
  });

  it("/proc/devices: device-mapper's block major, not a character device's; none without device-mapper", () => {
    expect(deviceMapperMajor(readFileSync(join(FIX, 'tree', 'proc', 'devices'), 'utf8'))).to.equal(253);
    expect(deviceMapperMajor('Character devices:\n253 device-mapper\n\nBlock devices:\n  7 loop\n254 device-mapper\n')).to.equal(254);
    // this build host's: no device-mapper
    expect(deviceMapperMajor('Character devices:\n 10 misc\n\nBlock devices:\n  7 loop\n253 zram\n254 virtblk\n259 blkext\n')).to.equal(undefined);
    expect(deviceMapperMajor('')).to.equal(undefined);
  });

  it('table: targets per device, sizes, multipath check; single-device form', () => {
    const t = parseDmsetupTable(text('table-multipath.txt'));
    expect([...t.keys()]).to.deep.equal(['mpatha', 'mpathb', '36001405c0ffee0000000000000000009']);
    expect(t.get('mpatha')![0]).to.include({ start: 0n, length: 209715200n, type: 'multipath' });
    expect(t.get('mpatha')![0]!.params).to.match(/^1 queue_if_no_path 1 alua/);
    expect(tableBytes(t.get('mpathb')!)).to.equal(41943040n * 512n);
    const linear = parseDmsetupTable('vg0-root: 0 1000 linear 8:1 2048\nvg0-root: 1000 500 linear 8:2 0\nempty: \n');
    expect(tableBytes(linear.get('vg0-root')!)).to.equal(1500n * 512n);
    expect(isMultipathTable(linear.get('vg0-root'))).to.equal(false);
    expect(isMultipathTable(linear.get('empty'))).to.equal(false);
    expect(isMultipathTable(t.get('mpatha'))).to.equal(true);
    const single = parseDmsetupTable('0 2097152 multipath 0 0 1 1 round-robin 0 1 1 8:16 1\n', 'mpathz');
    expect(tableBytes(single.get('mpathz')!)).to.equal(2097152n * 512n);
  });

  it('the captured "no kernel driver" failure is FAILED_PRECONDITION naming device-mapper', () => {
    const err = dmsetupError(new CommandFailedError(['dmsetup', 'ls', '--target', 'multipath'], 1, text('no-kernel-driver.stderr.txt')));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.contain('device-mapper');
    const missing = dmsetupError(new CommandFailedError(['dmsetup', 'ls'], undefined, 'spawn dmsetup ENOENT'));
    expect(missing.code).to.equal('FAILED_PRECONDITION');
    expect(missing.message).to.contain('dmsetup is not installed');
  });
});

describe('mpath backend', () => {
  it('refresh lists multipath maps as dm-MINOR volumes with /dev/mapper paths, keys and table sizes', async () => {
    const fx = tree();
    const backend = new MpathBackend({ devRoot: fx.dev, procRoot: fx.proc });
    const runner = dmRunner();
    const ctx: PoolContext = { pool: POOL, runner };
    expect(await backend.checkPool()).to.equal(true);
    const r = await backend.refreshPool(ctx);
    expect(r.volumes.map((v) => [v.name, v.target!.path, v.key, v.capacity, v.type])).to.deep.equal([
      ['dm-2', '/dev/mapper/mpatha', '/dev/mapper/mpatha', 209715200n * 512n, VolumeType.VOLUME_TYPE_BLOCK],
      ['dm-3', '/dev/mapper/mpathb', '/dev/mapper/mpathb', 41943040n * 512n, VolumeType.VOLUME_TYPE_BLOCK],
      [
        'dm-7',
        '/dev/mapper/36001405c0ffee0000000000000000009',
        '/dev/mapper/36001405c0ffee0000000000000000009',
        2097152n * 512n,
        VolumeType.VOLUME_TYPE_BLOCK,
      ],
    ]);
    const total = (209715200n + 41943040n + 2097152n) * 512n;
    expect(r.runtime).to.deep.equal({ capacity: total, allocation: total, available: 0n });
    expect(runner.argvs).to.deep.include.members([
      ['udevadm', 'settle'],
      ['dmsetup', 'ls', '--target', 'multipath'],
      ['dmsetup', 'table'],
    ]);
  });

  it('no multipath maps: an empty pool; a map without a /dev node or a non-multipath table is left out', async () => {
    const fx = tree();
    const backend = new MpathBackend({ devRoot: fx.dev, procRoot: fx.proc, udevadm: null });
    const none = await backend.refreshPool({ pool: POOL, runner: dmRunner(text('ls-none.txt'), '') });
    expect(none.volumes).to.deep.equal([]);
    expect(none.runtime.capacity).to.equal(0n);
    unlinkSync(join(fx.dev, 'mapper/mpathb'));
    const table = text('table-multipath.txt').replace('mpatha: 0 209715200 multipath', 'mpatha: 0 209715200 linear');
    const r = await backend.refreshPool({ pool: POOL, runner: dmRunner(undefined, table) });
    expect(r.volumes.map((v) => v.name)).to.deep.equal(['dm-7']);
  });

  it('a map whose name ends in a blank is listed, and an odd name of another dm device does not fail the refresh', async () => {
    // dmsetup prints `NAME\t(MAJ:MIN)` for ls and `NAME: ` before each table line (dmsetup.c);
    // the kernel refuses only '/' in a name, so a name may end in a blank or hold a newline.
    // libvirt asks libdevmapper, which hands names over whole.
    const fx = tree();
    writeFileSync(join(fx.dev, 'mapper/mp a '), '');
    const ls = 'mp a \t(253:4)\nmpatha\t(253:2)\n';
    const table = [
      'mp a : 0 2048 multipath 0 0 1 1 round-robin 0 1 1 8:16 1',
      'mpatha: 0 209715200 multipath 0 0 1 1 round-robin 0 1 1 8:32 1',
      // a crypt device some tool named 'odd<newline>name': not a map, not this pool's business
      'odd',
      'name: 0 8 crypt aes-xts-plain64 :64:logon:cryptsetup:x 0 8:48 0',
    ].join('\n');
    const backend = new MpathBackend({ devRoot: fx.dev, procRoot: fx.proc, udevadm: null });
    const r = await backend.refreshPool({ pool: POOL, runner: dmRunner(ls, table) });
    expect(r.volumes.map((v) => [v.name, v.key, v.capacity])).to.deep.equal([
      ['dm-2', '/dev/mapper/mpatha', 209715200n * 512n],
      ['dm-4', '/dev/mapper/mp a ', 2048n * 512n],
    ]);
  });

  it("a map is multipath by its first target only, and its size is its whole table (dmsetup's --target filters table lines)", async () => {
    // What dmsetup prints for a host with two maps besides mpatha: 'hybrid' (a linear segment,
    // then a multipath one) and 'grown' (multipath, then a linear segment). `ls --target
    // multipath` lists a device with a multipath target anywhere; `table --target multipath`
    // prints only the multipath lines of each (dmsetup.c: "Skip if target type doesn't match").
    // libvirt asks libdevmapper for each listed map's table and keeps it when its FIRST target
    // is multipath (virStorageBackendIsMultipath), sized as the whole device.
    const fx = tree();
    writeFileSync(join(fx.dev, 'mapper/hybrid'), '');
    writeFileSync(join(fx.dev, 'mapper/grown'), '');
    const all = [
      'mpatha: 0 209715200 multipath 0 0 1 1 round-robin 0 1 1 8:16 1',
      'hybrid: 0 1000 linear 8:1 2048',
      'hybrid: 1000 2000 multipath 0 0 1 1 round-robin 0 1 1 8:32 1',
      'grown: 0 4000 multipath 0 0 1 1 round-robin 0 1 1 8:48 1',
      'grown: 4000 6000 linear 8:2 0',
      'vg0-root: 0 8000 linear 8:3 0',
    ];
    const filtered = all.filter((l) => / multipath /.test(l));
    const runner = new RecordingRunner({ strict: true })
      .on(['dmsetup', 'ls', '--target', 'multipath'], { stdout: 'mpatha\t(253:2)\nhybrid\t(253:4)\ngrown\t(253:5)\n' })
      .onMatch((a) => a.join(' ') === 'dmsetup table --target multipath', { stdout: `${filtered.join('\n')}\n` })
      .onMatch((a) => a.join(' ') === 'dmsetup table', { stdout: `${all.join('\n')}\n` });
    const backend = new MpathBackend({ devRoot: fx.dev, procRoot: fx.proc, udevadm: null });
    const r = await backend.refreshPool({ pool: POOL, runner });
    expect(r.volumes.map((v) => [v.name, v.target!.path, v.capacity])).to.deep.equal([
      ['dm-2', '/dev/mapper/mpatha', 209715200n * 512n],
      ['dm-5', '/dev/mapper/grown', 10000n * 512n],
    ]);
  });

  it('this kernel (no device-mapper in /proc/misc): start and refresh are FAILED_PRECONDITION, no dmsetup runs', async () => {
    const fx = tree('tree-nodm');
    const backend = new MpathBackend({ devRoot: fx.dev, procRoot: fx.proc });
    const runner = dmRunner();
    expect(await backend.checkPool()).to.equal(false);
    const start = await rejects(backend.startPool());
    expect(start.code).to.equal('FAILED_PRECONDITION');
    expect(start.message).to.contain('device-mapper is not available in this kernel');
    const refresh = await rejects(backend.refreshPool({ pool: POOL, runner }));
    expect(refresh.code).to.equal('FAILED_PRECONDITION');
    expect(runner.argvs).to.deep.equal([]);
  });

  it('on this host as configured by default: a clear FAILED_PRECONDITION, or maps when the kernel has device-mapper', async () => {
    const backend = new MpathBackend();
    const hasDm = /device-mapper/.test(readFileSync('/proc/misc', 'utf8'));
    if (hasDm) return; // a host with device-mapper: covered by the fixture tests above
    const err = await rejects(backend.refreshPool({ pool: POOL, runner: new RecordingRunner({ strict: true }) }));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.contain('device-mapper');
  });

  it('dmsetup failing with the kernel-driver message (dm present in /proc/misc) is FAILED_PRECONDITION', async () => {
    const fx = tree();
    const backend = new MpathBackend({ devRoot: fx.dev, procRoot: fx.proc, udevadm: null });
    const runner = new RecordingRunner({ strict: true }).on(['dmsetup'], { exitCode: 1, stderr: text('no-kernel-driver.stderr.txt') });
    const err = await rejects(backend.refreshPool({ pool: POOL, runner }));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.contain('device-mapper');
  });

  it('volumes cannot be created or deleted: UNIMPLEMENTED with the reason', async () => {
    const backend = new MpathBackend({ devRoot: '/nonexistent', procRoot: '/nonexistent' });
    for (const op of ['createVol', 'deleteVol', 'resizeVol', 'buildPool', 'deletePool', 'stopPool'] as const) {
      expect(backend.operations.has(op), op).to.equal(false);
    }
    expect(() => requireOperation(backend, 'createVol', 'creating a volume')).to.throw(UnimplementedError, /storage pool type mpath: .*multipath/);
    expect(() => requireOperation(backend, 'deleteVol', 'deleting a volume')).to.throw(UnimplementedError, /storage pool type mpath/);
  });
});


async function* once(b: Buffer): AsyncIterable<Buffer> {
  yield b;
}

describe('mpath backend: wipe, upload, download on the map device', function () {
  const SIZE = 2 * 1024 * 1024;
  let backend: MpathBackend;
  let ctx: PoolContext;
  let vol: VolumeDefinition;
  let file: string;
  let mapperDir: string;
  let procDevices: string;
  let loopMajor: number;
  let detach: (() => Promise<void>) | undefined;

  before(async function () {
    if (!loopDevicesAvailable()) this.skip();
    const loop = attachLoop(SIZE, 'mpath-map');
    detach = loop.detach;
    file = loop.file;
    const fx = tree();
    unlinkSync(join(fx.dev, 'mapper/mpathb'));
    symlinkSync(loop.device, join(fx.dev, 'mapper/mpathb'));
    backend = new MpathBackend({ devRoot: fx.dev, procRoot: fx.proc, udevadm: null });
    mapperDir = join(fx.dev, 'mapper');
    const table = text('table-multipath.txt').replace('mpathb: 0 41943040', `mpathb: 0 ${SIZE / 512}`);
    // the map's device number is the loop device's, as dmsetup ls would list it
    const { major, minor } = splitDevT(statSync(loop.device, { bigint: true }).rdev);
    // the loop device stands in for the map: in this fake /proc its major is device-mapper's
    loopMajor = major;
    procDevices = join(fx.proc, 'devices');
    writeFileSync(procDevices, `Character devices:\n 10 misc\n\nBlock devices:\n${String(major).padStart(3)} device-mapper\n259 blkext\n`);
    // the other maps get minors of their own: a loop device numbered 2 or 7 (other loops in use
    // on the host) would otherwise share its dm-MINOR volume name with mpatha or the wwid map
    const ls = text('ls-multipath.txt')
      .replace('mpathb\t(253:3)', `mpathb\t(${major}:${minor})`)
      .replace('mpatha\t(253:2)', `mpatha\t(253:${minor + 1})`)
      .replace('\t(253:7)', `\t(253:${minor + 2})`);
    ctx = { pool: POOL, runner: dmRunner(ls, table) };
    vol = (await backend.refreshPool(ctx)).volumes.find((v) => v.name === `dm-${minor}`)!;
    expect(vol.capacity).to.equal(BigInt(SIZE));
  });

  after(async () => {
    await detach?.();
  });

  it('upload then download round trip, zero wipe leaves zeros', async () => {
    const data = Buffer.alloc(70_000, 0x5a);
    expect(await backend.uploadVol!(ctx, vol, 512n, 0n, once(data))).to.equal(BigInt(data.length));
    expect((await collect(backend.downloadVol!(ctx, vol, 512n, BigInt(data.length)))).equals(data)).to.equal(true);
    await backend.wipeVol!(ctx, vol, WipeAlgorithm.WIPE_ALGORITHM_ZERO);
    expect(readFileSync(file).every((b) => b === 0)).to.equal(true);
  });

  it("refuses to wipe, write or read a device that is not the volume's map any more: its name now leads to another", async () => {
    const otherHolds = await withNameRepointed(join(mapperDir, 'mpathb'), SIZE, 'mpath-other', async () => {
      for (const attempt of [
        () => backend.wipeVol!(ctx, vol, WipeAlgorithm.WIPE_ALGORITHM_ZERO),
        () => backend.uploadVol!(ctx, vol, 0n, 0n, once(Buffer.alloc(4096, 1))),
        () => collect(backend.downloadVol!(ctx, vol, 0n, 0n)),
      ]) {
        const err = await rejects(attempt());
        expect(err.code).to.equal('FAILED_PRECONDITION');
        expect(err.message).to.match(/is not the device of volume 'dm-\d+' \(device-mapper device \d+:\d+\) any more: it is device \d+:\d+; refresh the pool/);
      }
    });
    expect(otherHolds.every((b) => b === 0x5a)).to.equal(true);
  });

  it("refuses a device of the volume's minor that is not a device-mapper device (another major): the name leads to, e.g., a disk", async () => {
    // the same node, but device-mapper has another major on this (fake) host: the node is then
    // some other driver's device that happens to have the map's minor
    const dmMajor = loopMajor === 253 ? 252 : 253;
    writeFileSync(procDevices, `Block devices:\n${String(loopMajor).padStart(3)} loop\n${dmMajor} device-mapper\n`);
    const before = readFileSync(file);
    try {
      for (const attempt of [
        () => backend.wipeVol!(ctx, vol, WipeAlgorithm.WIPE_ALGORITHM_ZERO),
        () => backend.wipeVol!(ctx, vol, WipeAlgorithm.WIPE_ALGORITHM_TRIM),
        () => backend.uploadVol!(ctx, vol, 0n, 0n, once(Buffer.alloc(4096, 1))),
        () => collect(backend.downloadVol!(ctx, vol, 0n, 0n)),
      ]) {
        const err = await rejects(attempt());
        expect(err.code, err.message).to.equal('FAILED_PRECONDITION');
        expect(err.message).to.match(new RegExp(`is not the device of volume 'dm-\\d+' \\(device-mapper device ${dmMajor}:\\d+\\) any more: it is device ${loopMajor}:\\d+; refresh the pool`));
      }
    } finally {
      writeFileSync(procDevices, `Block devices:\n${String(loopMajor).padStart(3)} device-mapper\n`);
    }
    expect(readFileSync(file).equals(before), 'nothing written').to.equal(true);
  });

  it('a path that is not a /dev/mapper map is refused', async () => {
    for (const path of ['/dev/mapper/control', '/dev/mapper/../sda', '/dev/sda']) {
      const err = await rejects(backend.wipeVol!(ctx, { ...vol, target: { ...vol.target!, path } }, WipeAlgorithm.WIPE_ALGORITHM_ZERO));
      expect(err.code, path).to.equal('INVALID_ARGUMENT');
    }
  });
});
