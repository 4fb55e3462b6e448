// LUKS-encrypted logical volumes, as libvirt 9.0's logical createVol makes them
// (virStorageBackendLogicalLVCreate + virStorageBackendCreateVolUsingQemuImg): lvcreate for the
// capacity plus 2 MiB of header room, then `qemu-img create -f luks` on the LV for the capacity
// asked, the passphrase in a file. With the recording runner: this kernel has no device-mapper,
// so no LV can be active here and no LV node exists to be written (test/backends/logical.test.ts
// runs the real LVM tools with activation off). An "active" LV's node is a regular file the
// scripted lvcreate drops into the pool target; the backend takes regular files only with
// allowRegularFiles (unit tests), and a real one refuses them (the last tests).
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { LogicalBackend } from '../../../libs/backends/logical.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import type { PoolContext } from '../../../libs/backends/backend.js';
import type { RunOptions } from '../../../libs/backends/runner.js';
import { CommandFailedError } from '../../../libs/errors/errors.js';
import { PoolType, Tristate, VolumeDefinition, PoolDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { rejects } from '../../support/rejects.js';

const MiB = 1024 * 1024;
const VG = 'HostVG';
const UUID = '6f1e1c2a-3b4d-4e5f-8a9b-000000000065';
const PASSPHRASE = 'h65 lv luks passphrase';
const LVS = ['lvs', '--separator', '#', '--noheadings', '--units', 'b', '--unbuffered', '--nosuffix', '--options', 'lv_name,origin,uuid,devices,segtype,stripes,seg_size,vg_extent_size,size,lv_attr,origin_size', VG];
const VGS = ['vgs', '--separator', ':', '--noheadings', '--units', 'b', '--unbuffered', '--nosuffix', '--options', 'vg_size,vg_free', VG];
const SETTLE = ['udevadm', 'settle', '--timeout=30'];
const LUKS_MAGIC = Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]);

function pool(target: string): PoolDefinition {
  return PoolDefinition.fromPartial({
    type: PoolType.POOL_TYPE_LOGICAL,
    name: 'p',
    source: { devices: [{ path: '/dev/sdb', partSeparator: Tristate.TRISTATE_ABSENT }], name: VG, format: 'lvm2' },
    target: { path: target },
  });
}

const luks = (name: string, capacity: number, extra: { encFormat?: string; secrets?: number; allocation?: number; backing?: string } = {}): VolumeDefinition =>
  VolumeDefinition.fromPartial({
    name,
    capacity: BigInt(capacity),
    ...(extra.allocation !== undefined ? { allocation: BigInt(extra.allocation) } : {}),
    ...(extra.backing ? { backingStore: { path: extra.backing, format: 'raw' } } : {}),
    target: {
      encryption: {
        format: extra.encFormat ?? 'luks',
        secrets: Array.from({ length: extra.secrets ?? 1 }, () => ({ type: 'passphrase', uuid: UUID, usage: '' })),
      },
    },
  });

/** One lvs line as lvm 2.03 prints it (4 MiB extents). */
function lvLine(name: string, size: number, attr = '-wi-a-----', uuid = `uuid-${name}`): string {
  return `  ${name}#${''}#${uuid}#/dev/sdb(0)#linear#1#${size}#4194304#${size}#${attr}#`;
}

/** An LV of `bytes` rounded up to whole 4 MiB extents, as lvcreate -L makes it. */
const extents = (bytes: number): number => Math.ceil(bytes / (4 * MiB)) * 4 * MiB;

describe('logical backend: LUKS-encrypted LVs as libvirt 9.0 makes them (recording runner: no device-mapper here)', () => {
  let root: string;
  let target: string;
  let runner: RecordingRunner;
  let ctx: PoolContext;
  let lines: string[];
  /** what the scripted qemu-img saw while it ran */
  let seen: { argv: readonly string[]; options: RunOptions; passphrase?: string; mode?: number; fdTarget?: string } | undefined;
  const backend = new LogicalBackend({ allowRegularFiles: true });

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cistern-logical-luks-'));
    target = join(root, 'dev', VG);
    runner = new RecordingRunner({ strict: true });
    ctx = { runner, pool: pool(target), secrets: new Map([[UUID, Buffer.from(PASSPHRASE)]]) };
    lines = [];
    seen = undefined;
    runner.on(SETTLE, {});
    runner.on(LVS, () => ({ stdout: lines.join('\n') + '\n' }));
    runner.on(VGS, { stdout: `  ${64 * MiB}:${32 * MiB}\n` });
  });

  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** lvcreate makes an active LV of whole extents: a regular file standing in for its node. */
  function scriptLvcreate(opts: { active?: boolean } = {}): void {
    runner.on(['lvcreate'], (argv) => {
      const name = argv[2]!;
      const k = argv.indexOf('--virtualsize') >= 0 ? argv[argv.indexOf('--virtualsize') + 1]! : argv[4]!;
      const size = extents(Number(k.replace(/K$/, '')) * 1024);
      if (opts.active !== false) {
        mkdirSync(target, { recursive: true });
        writeFileSync(join(target, name), Buffer.alloc(size));
      }
      lines.push(lvLine(name, size, opts.active === false ? '-wi-------' : '-wi-a-----'));
      return {};
    });
    runner.on(['lvremove'], (argv) => {
      const lv = argv[argv.length - 1]!.split('/')[1]!;
      lines = lines.filter((l) => !l.trimStart().startsWith(`${lv}#`));
      rmSync(join(target, lv), { force: true });
      return {};
    });
  }

  /** qemu-img writes the LUKS magic through the descriptor it was handed (as qemu-img does with /dev/fd/3). */
  function scriptQemuImg(answer?: Error): void {
    runner.on(['qemu-img'], (argv, options) => {
      const obj = argv[argv.indexOf('--object') + 1] ?? '';
      const file = /file=(.*)$/.exec(obj)?.[1] ?? '';
      const fd = options.fds?.[0];
      seen = {
        argv,
        options,
        passphrase: file ? readFileSync(file, 'utf8') : undefined,
        mode: file ? statSync(file).mode & 0o777 : undefined,
        fdTarget: fd === undefined ? undefined : readlinkSync(`/proc/self/fd/${fd}`),
      };
      if (answer) throw answer;
      if (fd !== undefined) writeSync(fd, LUKS_MAGIC, 0, LUKS_MAGIC.length, 0);
      return {};
    });
  }

  it('lvcreate gets the capacity plus 2 MiB (libvirt 9.0), qemu-img create -f luks formats the LV through the node the agent opened, for the capacity asked, the passphrase in a 0600 file', async () => {
    scriptLvcreate();
    scriptQemuImg();
    const planned = await backend.createVol(ctx, luks('secure', 10 * MiB));
    expect(runner.argvs).to.deep.equal([], 'createVol runs nothing');
    await backend.buildVol(ctx, planned, { preallocMetadata: false, createId: 'c1' });
    const lvcreate = runner.callsOf('lvcreate');
    expect(lvcreate).to.deep.equal([['lvcreate', '--name', 'secure', '-L', '12288K', VG, '--yes', '--addtag', 'cistern.create.c1']]);
    expect(seen, 'qemu-img ran').not.to.equal(undefined);
    const file = /file=(.*)$/.exec(seen!.argv[seen!.argv.indexOf('--object') + 1]!)![1]!;
    expect(seen!.argv).to.deep.equal(['qemu-img', 'create', '-f', 'luks', '--object', `secret,id=secure_encrypt0,file=${file}`, '-o', 'key-secret=secure_encrypt0', '--', '/dev/fd/3', '10240K']);
    expect(seen!.passphrase).to.equal(PASSPHRASE);
    expect(seen!.mode).to.equal(0o600);
    expect(seen!.argv.join(' ')).not.to.contain(PASSPHRASE);
    expect(seen!.fdTarget).to.equal(join(target, 'secure'));
    expect(existsSync(dirname(file)), 'the passphrase directory is removed').to.equal(false);
    const node = join(target, 'secure');
    expect(readFileSync(node).subarray(0, 6)).to.deep.equal(LUKS_MAGIC);
    expect(statSync(node).mode & 0o777).to.equal(0o600);
    // the order libvirt 9.0 runs them: lvcreate, qemu-img, then the LV read back
    expect(runner.argvs.map((a) => a[0])).to.deep.equal(['lvcreate', 'lvs', 'qemu-img']);
  });

  it('the new LV shows its whole size with its <encryption> (libvirt 9.0 reads a format-less LV plainly) until a pool refresh, which drops the <encryption>', async () => {
    scriptLvcreate();
    scriptQemuImg();
    const planned = await backend.createVol(ctx, luks('secure', 10 * MiB));
    await backend.buildVol(ctx, planned, { preallocMetadata: false });
    const read = await backend.refreshVol!(ctx, planned);
    expect([read.capacity, read.allocation]).to.deep.equal([BigInt(12 * MiB), BigInt(12 * MiB)]);
    expect(read.target?.encryption?.format).to.equal('luks');
    expect(read.target?.encryption?.secrets.map((s) => s.uuid)).to.deep.equal([UUID]);
    // read again, as after a wipe or a vol-info: still known as encrypted
    const again = await backend.refreshVol!(ctx, read);
    expect(again.target?.encryption?.format).to.equal('luks');
    const listed = (await backend.refreshPool!(ctx)).volumes.find((v) => v.name === 'secure')!;
    expect([listed.capacity, listed.allocation, listed.target?.encryption]).to.deep.equal([BigInt(12 * MiB), BigInt(12 * MiB), undefined]);
  });

  it('a sparse LV (allocation below the capacity) takes the header room on its virtual size only, as libvirt 9.0 builds it', async () => {
    scriptLvcreate();
    scriptQemuImg();
    const planned = await backend.createVol(ctx, luks('thin', 10 * MiB, { allocation: 4 * MiB }));
    await backend.buildVol(ctx, planned, { preallocMetadata: false, createId: 'c2' });
    expect(runner.callsOf('lvcreate')).to.deep.equal([['lvcreate', '--name', 'thin', '-L', '4096K', '--type', 'snapshot', '--virtualsize', '12288K', VG, '--yes', '--addtag', 'cistern.create.c2']]);
    expect(seen!.argv[seen!.argv.length - 1]).to.equal('10240K');
  });

  it('a failed qemu-img removes the LV this create made (by its tag) and the passphrase file, and says why', async () => {
    scriptLvcreate();
    scriptQemuImg(new CommandFailedError(['qemu-img'], 1, "qemu-img: /dev/fd/3: Could not write LUKS header: No space left"));
    const planned = await backend.createVol(ctx, luks('secure', 10 * MiB));
    const err = await rejects(backend.buildVol(ctx, planned, { preallocMetadata: false, createId: 'c3' }));
    expect(err.message).to.contain('Could not write LUKS header');
    expect(runner.callsOf('lvremove')).to.deep.equal([['lvremove', '-f', '--select', 'lv_tags={cistern.create.c3}', `${VG}/secure`]]);
    const file = /file=(.*)$/.exec(seen!.argv[seen!.argv.indexOf('--object') + 1]!)![1]!;
    expect(existsSync(dirname(file))).to.equal(false);
    expect(lines).to.deep.equal([]);
  });

  it('an LV lvcreate leaves inactive has no node to format: FAILED_PRECONDITION, no qemu-img, the LV removed', async () => {
    scriptLvcreate({ active: false });
    scriptQemuImg();
    const planned = await backend.createVol(ctx, luks('secure', 10 * MiB));
    const err = await rejects(backend.buildVol(ctx, planned, { preallocMetadata: false, createId: 'c4' }));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.match(/not active/);
    expect(runner.callsOf('qemu-img')).to.deep.equal([]);
    expect(runner.callsOf('lvremove')).to.deep.equal([['lvremove', '-f', '--select', 'lv_tags={cistern.create.c4}', `${VG}/secure`]]);
  });

  it('refuses before anything runs: an encryption other than luks, not exactly one secret, a snapshot (libvirt 9.0: "cannot set backing store for raw volume", once the LV is made), no passphrase', async () => {
    scriptLvcreate();
    scriptQemuImg();
    const cases: Array<[VolumeDefinition, PoolContext, string, RegExp]> = [
      [luks('a', 8 * MiB, { encFormat: 'qcow' }), ctx, 'INVALID_ARGUMENT', /encryption\.format.*only supports LUKS.*'qcow'.*allowed: luks/],
      [luks('a', 8 * MiB, { encFormat: '' }), ctx, 'INVALID_ARGUMENT', /encryption\.format.*only supports LUKS.*'default'/],
      [luks('a', 8 * MiB, { secrets: 0 }), ctx, 'INVALID_ARGUMENT', /encryption\.secrets.*single <secret type='passphrase'>.*got 0/],
      [luks('a', 8 * MiB, { secrets: 2 }), ctx, 'INVALID_ARGUMENT', /encryption\.secrets.*got 2/],
      [luks('a', 8 * MiB, { backing: `${target}/origin` }), ctx, 'INVALID_ARGUMENT', /backing_store.*encrypted/],
      [luks('a', 8 * MiB), { ...ctx, secrets: new Map() }, 'FAILED_PRECONDITION', /passphrase secret '6f1e1c2a-3b4d-4e5f-8a9b-000000000065' of volume 'a' was not provided/],
    ];
    for (const [volume, c, code, message] of cases) {
      const err = await rejects(
        (async () => {
          const planned = await backend.createVol(c, volume);
          await backend.buildVol(c, planned, { preallocMetadata: false });
        })(),
      );
      const label = `${volume.target?.encryption?.format} x${volume.target?.encryption?.secrets.length} ${volume.backingStore?.path ?? ''}`;
      expect(err.code, label).to.equal(code);
      expect(err.message, label).to.match(message);
      expect(runner.argvs, label).to.deep.equal([]);
    }
  });

  it('a clone into an encrypted LV is UNIMPLEMENTED before anything runs (libvirt 9.0 copies raw bytes over the new LUKS header)', async () => {
    scriptLvcreate();
    scriptQemuImg();
    const src = join(root, 'src.img');
    writeFileSync(src, Buffer.alloc(MiB, 0x5a));
    const source = { pool: pool(root), volume: VolumeDefinition.fromPartial({ name: 'src.img', capacity: BigInt(MiB), target: { path: src, format: 'raw' } }) };
    const err = await rejects(backend.buildVolFrom!(ctx, luks('copy', 8 * MiB), source, { preallocMetadata: false }));
    expect(err.code).to.equal('UNIMPLEMENTED');
    expect(err.message).to.match(/encrypted logical volume/);
    expect(runner.argvs).to.deep.equal([]);
  });

  describe('without allowRegularFiles (as on a host): the node must be the LV', () => {
    const real = new LogicalBackend();

    it('a regular file where the LV node should be is not handed to qemu-img: FAILED_PRECONDITION, the LV removed', async () => {
      scriptLvcreate();
      scriptQemuImg();
      const planned = await real.createVol(ctx, luks('secure', 10 * MiB));
      const err = await rejects(real.buildVol(ctx, planned, { preallocMetadata: false, createId: 'c5' }));
      expect(err.code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.match(/not a block device/);
      expect(runner.callsOf('qemu-img')).to.deep.equal([]);
      expect(runner.callsOf('lvremove')).to.deep.equal([['lvremove', '-f', '--select', 'lv_tags={cistern.create.c5}', `${VG}/secure`]]);
    });
  });
});
