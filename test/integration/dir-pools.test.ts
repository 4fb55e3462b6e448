// Issue 2, end to end: dir pools on two hosts through gRPC, NATS and the agents,
// from the API and from cisternctl, with volumes checked by qemu-img itself.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import {
  EventKind,
  PoolState,
  PoolType,
  VolumeDefinition,
  WipeAlgorithm,
  type PoolDefinition,
  type Volume,
} from '../../libs/proto/cistern/v1/storage.js';
import { download, upload, useStack, waitFor } from '../support/index.js';
import { watch } from './reliability-helpers.js';

const run = promisify(execFile);
const MiB = 1024n * 1024n;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface QemuInfo {
  format: string;
  'virtual-size': number;
  'backing-filename'?: string;
  'backing-filename-format'?: string;
}
async function qemuInfo(path: string): Promise<QemuInfo> {
  const { stdout } = await run('qemu-img', ['info', '--output=json', '-U', path]);
  return JSON.parse(stdout) as QemuInfo;
}

function dirPool(name: string, path: string): PoolDefinition {
  return {
    type: PoolType.POOL_TYPE_DIR,
    name,
    uuid: '',
    source: undefined,
    target: { path, permissions: undefined },
    features: undefined,
    mountOptions: [],
  };
}

function volume(name: string, capacity: bigint, format: string, extra: Partial<VolumeDefinition> = {}): VolumeDefinition {
  return {
    type: 0,
    name,
    key: '',
    capacity,
    allocation: 0n,
    sourceDevices: [],
    target: {
      path: '',
      format,
      permissions: undefined,
      timestamps: undefined,
      compat: '',
      nocow: false,
      clusterSize: 0n,
      lazyRefcounts: false,
      extendedL2: false,
      encryption: undefined,
    },
    backingStore: undefined,
    ...extra,
  };
}

async function expectCode(p: Promise<unknown>, code: status, message?: RegExp): Promise<Error> {
  const err = (await p.then(
    () => undefined,
    (e: unknown) => e,
  )) as (Error & { code?: number; details?: string }) | undefined;
  expect(err, 'expected the call to fail').to.not.equal(undefined);
  expect(err!.code, err!.message).to.equal(code);
  if (message) expect(err!.details ?? err!.message).to.match(message);
  return err!;
}

describe('dir pools end to end (nats-server, coordinator, agents a and b)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a', 'b'] });
  const poolPath = (host: string, name: string) => join(ctx.stack.roots[host]!, 'e2e', name);

  it('runs the whole pool lifecycle on both hosts through the API', async () => {
    const api = ctx.stack.api;
    for (const host of ['a', 'b']) {
      const path = poolPath(host, 'life');
      const name = `hosts/${host}/pools/life`;
      const defined = await api.definePool({ host, definition: dirPool('life', path), xml: '', requestId: '', validate: false });
      expect(defined.state).to.equal(PoolState.POOL_STATE_INACTIVE);
      expect(defined.persistent).to.equal(true);
      expect(existsSync(path)).to.equal(false);

      await api.buildPool({ name, flags: undefined, requestId: '' });
      expect(statSync(path).isDirectory()).to.equal(true);
      const started = await api.startPool({ name, build: false, buildFlags: undefined, requestId: '' });
      expect(started.state).to.equal(PoolState.POOL_STATE_RUNNING);
      expect(started.capacity > 0n).to.equal(true);
      await api.setPoolAutostart({ name, autostart: true, requestId: '' });
      expect((await api.getPool({ name })).autostart).to.equal(true);

      const listed = await api.listPools({ host, types: [PoolType.POOL_TYPE_DIR], pageSize: 0, pageToken: '' });
      expect(listed.pools.map((p) => p.name)).to.include(name);

      await api.stopPool({ name, requestId: '' });
      expect((await api.getPool({ name })).state).to.equal(PoolState.POOL_STATE_INACTIVE);
      await api.deletePool({ name, requestId: '' });
      expect(existsSync(path)).to.equal(false);
      await api.undefinePool({ name, requestId: '' });
      await expectCode(api.getPool({ name }), status.NOT_FOUND);
    }
  });

  it('builds first when only an overwrite flag is given, as libvirt does (pool-start --no-overwrite)', async () => {
    const api = ctx.stack.api;
    const path = poolPath('a', 'flagged');
    const name = 'hosts/a/pools/flagged';
    await api.definePool({ host: 'a', definition: dirPool('flagged', path), xml: '', requestId: '', validate: false });
    // neither build nor a flag: no build, the missing target directory is refused
    await expectCode(api.startPool({ name, build: false, buildFlags: { overwrite: false, noOverwrite: false }, requestId: '' }), status.FAILED_PRECONDITION, /does not exist; build the pool first/);
    // a flag alone builds, and a dir pool has nothing to format: libvirt's own refusal
    for (const buildFlags of [{ overwrite: true, noOverwrite: false }, { overwrite: false, noOverwrite: true }]) {
      await expectCode(api.startPool({ name, build: false, buildFlags, requestId: '' }), status.FAILED_PRECONDITION, /no source device specified when formatting/);
      await expectCode(
        api.createPool({ host: 'b', definition: dirPool('flagged', poolPath('b', 'flagged')), xml: '', build: false, buildFlags, requestId: '' }),
        status.FAILED_PRECONDITION,
        /no source device specified when formatting/,
      );
    }
    expect(existsSync(path)).to.equal(false);
    await api.undefinePool({ name, requestId: '' });
  });

  it('runs the same lifecycle through cisternctl, printing what virsh prints', async () => {
    const cli = (args: string[]) => ctx.stack.cli(args);
    for (const host of ['a', 'b']) {
      const path = poolPath(host, 'clipool');
      const pool = `${host}/clipool`;
      // like virsh, messages name the pool as the user typed it; a new pool as listings name it (HOST/POOL: two hosts)
      const steps: Array<[string[], RegExp]> = [
        [['pool-define-as', 'clipool', 'dir', '--target', path, '--host', host], new RegExp(`^Pool ${pool} defined$`, 'm')],
        [['pool-build', pool], new RegExp(`^Pool ${pool} built$`, 'm')],
        [['pool-start', pool], new RegExp(`^Pool ${pool} started$`, 'm')],
        [['pool-autostart', pool], new RegExp(`^Pool ${pool} marked as autostarted$`, 'm')],
        [['vol-create-as', pool, 'v1.qcow2', '16M', '--format', 'qcow2'], /^Vol v1.qcow2 created$/m],
        [['vol-list', pool], /v1\.qcow2\s+\/.*clipool\/v1\.qcow2/],
        [['pool-info', pool], /^State:\s+running$/m],
        [['vol-delete', 'v1.qcow2', '--pool', pool], /^Vol v1.qcow2 deleted$/m],
        [['pool-destroy', pool], new RegExp(`^Pool ${pool} destroyed$`, 'm')],
        [['pool-delete', pool], new RegExp(`^Pool ${pool} deleted$`, 'm')],
        [['pool-undefine', pool], new RegExp(`^Pool ${pool} has been undefined$`, 'm')],
      ];
      for (const [args, expected] of steps) {
        const r = await cli(args);
        expect(r.code, `${args.join(' ')}\n${r.stderr}`).to.equal(0);
        expect(r.stdout, args.join(' ')).to.match(expected);
      }
      expect(existsSync(path)).to.equal(false);
    }
    const listing = await cli(['pool-list', '--all', '--json']);
    expect(listing.code).to.equal(0);
    expect(listing.stdout).not.to.contain('clipool');
    const missing = await cli(['pool-info', 'a/clipool']);
    expect(missing.code).to.not.equal(0);
    expect(missing.stderr).to.match(/clipool/);
  });

  it('cisternctl as virsh: --xpath on the real XML, a line that does not parse runs nothing, malformed sizes', async () => {
    const cli = (args: string[]) => ctx.stack.cli(args);
    const path = poolPath('a', 'xp');
    await ctx.stack.api.createPool({ host: 'a', definition: dirPool('xp', path), xml: '', build: true, buildFlags: undefined, requestId: '' });
    expect(await cli(['pool-dumpxml', 'a/xp', '--xpath', '/pool/target/path/text()'])).to.include({ code: 0, stdout: `${path}\n\n`, stderr: '' });
    expect((await cli(['pool-dumpxml', 'a/xp', '--xpath', '/pool/@type | /pool/name', '--wrap'])).stdout)
      .to.equal('<nodes type="dir">\n  <name>xp</name>\n</nodes>\n\n');
    expect(await cli(['vol-create-as', 'a/xp', 'v.qcow2', '1M', '--format', 'qcow2'])).to.include({ code: 0 });
    expect((await cli(['vol-dumpxml', 'v.qcow2', 'a/xp', '--xpath', '//format/@type'])).stdout).to.equal(' type="qcow2"\n\n');
    const notNodes = await cli(['vol-dumpxml', 'v.qcow2', 'a/xp', '--xpath', 'count(//format)']);
    expect([notNodes.code, notNodes.stdout]).to.deep.equal([1, '\n']);
    expect(notNodes.stderr).to.match(/^error: internal error: Incorrect xpath 'count\(\/\/format\)'\n/);
    // the good part of a line is not run when another part does not parse
    const line = await cli(['vol-delete v.qcow2 a/xp; pool-list --bogus']);
    expect(line).to.include({ code: 1, stdout: '', stderr: "error: command 'pool-list' doesn't support option --bogus\n" });
    expect(existsSync(join(path, 'v.qcow2'))).to.equal(true);
    const size = await cli(['vol-create-as', 'a/xp', 'w', '10XB']);
    expect([size.code, size.stdout]).to.deep.equal([1, '\n']);
    expect(size.stderr).to.match(/^error: Malformed size 10XB\nerror: invalid argument: unknown suffix 'XB' in <capacity>/);
    expect(await cli(['--version'])).to.include({ code: 0, stdout: '0.1.0\n' });
    await cli(['vol-delete v.qcow2 a/xp; pool-destroy a/xp']);
  });

  describe('volumes in a running pool on host a', () => {
    const parent = 'hosts/a/pools/vols';
    const volName = (v: string) => `${parent}/volumes/${v}`;

    before(async () => {
      await ctx.stack.api.createPool({
        host: 'a',
        definition: dirPool('vols', poolPath('a', 'vols')),
        xml: '',
        build: true,
        buildFlags: undefined,
        requestId: '',
      });
    });

    it('creates a volume of every creatable format, as qemu-img sees it', async () => {
      const api = ctx.stack.api;
      for (const format of ['raw', 'qcow2', 'qcow', 'qed', 'vmdk', 'vpc', 'vdi']) {
        const created = await api.createVolume({
          parent,
          definition: volume(`f.${format}`, 64n * MiB, format),
          xml: '',
          preallocMetadata: false,
          requestId: '', validate: false,
        });
        const path = created.definition!.target!.path;
        expect(path).to.equal(join(poolPath('a', 'vols'), `f.${format}`));
        const info = await qemuInfo(path);
        expect(info.format, format).to.equal(format);
        // vpc rounds the size to its CHS geometry, as with libvirt
        if (format === 'vpc') expect(info['virtual-size']).to.be.within(63 * 1024 * 1024, 65 * 1024 * 1024);
        else expect(info['virtual-size'], format).to.equal(64 * 1024 * 1024);
        expect(created.definition!.target!.format).to.equal(format);
      }
      const backed = await api.createVolume({
        parent,
        definition: volume('overlay.qcow2', 64n * MiB, 'qcow2', {
          backingStore: { path: join(poolPath('a', 'vols'), 'f.raw'), format: 'raw', permissions: undefined, timestamps: undefined },
        }),
        xml: '',
        preallocMetadata: false,
        requestId: '', validate: false,
      });
      const info = await qemuInfo(backed.definition!.target!.path);
      expect(info['backing-filename']).to.equal(join(poolPath('a', 'vols'), 'f.raw'));
      expect(info['backing-filename-format']).to.equal('raw');
      expect(backed.definition!.backingStore?.path).to.equal(join(poolPath('a', 'vols'), 'f.raw'));

      const xml = await api.createVolume({
        parent,
        definition: undefined,
        xml: "<volume><name>x.qcow2</name><capacity unit='G'>1</capacity><target><format type='qcow2'/><compat>1.1</compat><features><lazy_refcounts/></features></target></volume>",
        preallocMetadata: true,
        requestId: '', validate: false,
      });
      expect((await qemuInfo(xml.definition!.target!.path))['virtual-size']).to.equal(1024 ** 3);
      const listed = await api.listVolumes({ parent, pageSize: 0, pageToken: '' });
      expect(listed.volumes.map((v) => v.name.split('/').pop())).to.include.members(['f.raw', 'f.qcow2', 'overlay.qcow2', 'x.qcow2']);
    });

    it("shows a qcow2 volume's <clusterSize> as virsh 9.0 does: after a create only as requested, after pool-refresh as the image has it", async () => {
      const api = ctx.stack.api;
      const plain = await api.createVolume({ parent, definition: undefined, xml: "<volume><name>cs.qcow2</name><capacity unit='M'>8</capacity><target><format type='qcow2'/></target></volume>", preallocMetadata: false, requestId: '', validate: false });
      const sized = await api.createVolume({
        parent,
        definition: undefined,
        xml: "<volume><name>cs128.qcow2</name><capacity unit='M'>8</capacity><target><format type='qcow2'/><clusterSize unit='KiB'>128</clusterSize></target></volume>",
        preallocMetadata: false,
        requestId: '', validate: false,
      });
      expect(plain.definition!.target!.clusterSize).to.equal(0n);
      expect((await api.getVolumeXml({ name: plain.name, refresh: false })).xml).to.not.contain('<clusterSize');
      expect((await api.getVolumeXml({ name: sized.name, refresh: false })).xml).to.contain("<clusterSize unit='B'>131072</clusterSize>");
      const info = async (path: string) => JSON.parse((await run('qemu-img', ['info', '--output=json', '-U', path])).stdout) as { 'cluster-size': number };
      expect((await info(plain.definition!.target!.path))['cluster-size']).to.equal(65536);
      expect((await info(sized.definition!.target!.path))['cluster-size']).to.equal(131072);

      await api.refreshPool({ name: parent, requestId: '' });
      expect((await api.getVolumeXml({ name: plain.name, refresh: false })).xml).to.contain("<clusterSize unit='B'>65536</clusterSize>");
      expect((await api.getVolumeXml({ name: sized.name, refresh: false })).xml).to.contain("<clusterSize unit='B'>131072</clusterSize>");
      for (const v of [plain, sized]) await api.deleteVolume({ name: v.name, requestId: '' });
    });

    it('uploads, downloads, clones, resizes and wipes', async () => {
      const api = ctx.stack.api;
      await api.createVolume({ parent, definition: volume('data.img', 8n * MiB, 'raw'), xml: '', preallocMetadata: false, requestId: '', validate: false });
      const payload = randomBytes(3 * 1024 * 1024 + 17);
      expect(await upload(ctx.stack, volName('data.img'), payload, 1024n)).to.equal(BigInt(payload.length));
      const back = await download(ctx.stack, volName('data.img'), 1024n, BigInt(payload.length));
      expect(sha(back)).to.equal(sha(payload));

      // clone raw -> raw and raw -> qcow2: same guest-visible bytes
      const rawClone = await api.cloneVolume({ parent, source: volName('data.img'), definition: volume('copy.img', 0n, 'raw', { capacity: undefined }), xml: '', preallocMetadata: false, reflink: false, requestId: '', validate: false });
      expect(rawClone.definition!.capacity).to.equal(8n * MiB);
      const whole = await download(ctx.stack, volName('data.img'));
      expect(sha(await download(ctx.stack, volName('copy.img')))).to.equal(sha(whole));
      const qClone = await api.cloneVolume({ parent, source: volName('data.img'), definition: volume('copy.qcow2', 0n, 'qcow2', { capacity: undefined }), xml: '', preallocMetadata: false, reflink: false, requestId: '', validate: false });
      expect((await qemuInfo(qClone.definition!.target!.path)).format).to.equal('qcow2');
      const { stdout: cmp } = await run('qemu-img', ['compare', '-U', '-f', 'raw', '-F', 'qcow2', join(poolPath('a', 'vols'), 'data.img'), qClone.definition!.target!.path]);
      expect(cmp).to.match(/Images are identical/);

      // resize: grow, refuse a shrink without the flag, shrink with it
      const grown = await api.resizeVolume({ name: volName('copy.img'), capacity: 16n * MiB, allocate: false, delta: false, shrink: false, requestId: '' });
      expect(grown.definition!.capacity).to.equal(16n * MiB);
      expect(statSync(join(poolPath('a', 'vols'), 'copy.img')).size).to.equal(16 * 1024 * 1024);
      await expectCode(api.resizeVolume({ name: volName('copy.img'), capacity: 4n * MiB, allocate: false, delta: false, shrink: false, requestId: '' }), status.INVALID_ARGUMENT, /shrink/);
      expect(statSync(join(poolPath('a', 'vols'), 'copy.img')).size).to.equal(16 * 1024 * 1024);
      // by a delta with the flag (vol-resize copy.img -4M --shrink): 4 MiB off the capacity
      const shrunk = await api.resizeVolume({ name: volName('copy.img'), capacity: 4n * MiB, allocate: false, delta: true, shrink: true, requestId: '' });
      expect(shrunk.definition!.capacity).to.equal(12n * MiB);
      expect(statSync(join(poolPath('a', 'vols'), 'copy.img')).size).to.equal(12 * 1024 * 1024);
      const qGrown = await api.resizeVolume({ name: volName('copy.qcow2'), capacity: 4n * MiB, allocate: false, delta: true, shrink: false, requestId: '' });
      expect((await qemuInfo(qGrown.definition!.target!.path))['virtual-size']).to.equal(12 * 1024 * 1024);

      // wipe: every byte reads back zero
      await api.wipeVolume({ name: volName('data.img'), algorithm: WipeAlgorithm.WIPE_ALGORITHM_ZERO, requestId: '' });
      const wiped = await download(ctx.stack, volName('data.img'));
      expect(wiped.length).to.equal(8 * 1024 * 1024);
      expect(wiped.every((b) => b === 0)).to.equal(true);
    });

    it('uploads past the end of a raw and a qcow2 file as libvirt does (the file grows); a download from past the end is empty', async () => {
      const api = ctx.stack.api;
      const data = randomBytes(4096);
      await api.createVolume({ parent, definition: volume('tail.img', MiB, 'raw'), xml: '', preallocMetadata: false, requestId: '', validate: false });
      expect(await upload(ctx.stack, volName('tail.img'), data, 8n * MiB)).to.equal(4096n);
      const raw = await api.getVolume({ name: volName('tail.img'), refresh: false });
      expect(raw.definition!.capacity).to.equal(8n * MiB + 4096n);
      expect(sha(await download(ctx.stack, volName('tail.img'), 8n * MiB))).to.equal(sha(data));
      expect((await download(ctx.stack, volName('tail.img'), 8n * MiB + 4096n)).length).to.equal(0);
      expect((await download(ctx.stack, volName('tail.img'), 100n * MiB, 10n)).length).to.equal(0);

      // the bytes go into the qcow2 file as they are, past its virtual size (capacity) too;
      // its header is untouched, so the capacity stays
      const q = await api.createVolume({ parent, definition: volume('tail.qcow2', MiB, 'qcow2'), xml: '', preallocMetadata: false, requestId: '', validate: false });
      expect(await upload(ctx.stack, volName('tail.qcow2'), data, 2n * MiB)).to.equal(4096n);
      const path = q.definition!.target!.path;
      expect(statSync(path).size).to.equal(2 * 1024 * 1024 + 4096);
      const info = await qemuInfo(path);
      expect([info.format, info['virtual-size']]).to.deep.equal(['qcow2', 1024 * 1024]);
      const after = await api.getVolume({ name: volName('tail.qcow2'), refresh: false });
      expect(after.definition!.capacity).to.equal(MiB);
      expect(after.definition!.physical).to.equal(2n * MiB + 4096n);
      for (const v of ['tail.img', 'tail.qcow2']) await api.deleteVolume({ name: volName(v), requestId: '' });
    });

    it('a clone given as XML is what the XML says (pool default format, mode 0600, the agent\'s owner), as libvirt; a structured one keeps what it leaves out from its source', async () => {
      const api = ctx.stack.api;
      const target = { ...volume('', 0n, 'qcow2').target!, permissions: { mode: 0o644, owner: 1000n, group: 1001n, label: '' } };
      await api.createVolume({ parent, definition: volume('perm.qcow2', 8n * MiB, 'qcow2', { target }), xml: '', preallocMetadata: false, requestId: '', validate: false });
      const clone = (how: { xml: string } | { definition: VolumeDefinition }) =>
        api.cloneVolume({ parent, source: volName('perm.qcow2'), definition: undefined, xml: '', ...how, preallocMetadata: false, reflink: false, requestId: '', validate: false });
      const onDisk = async (v: Volume) => {
        const st = statSync(v.definition!.target!.path);
        return { format: (await qemuInfo(v.definition!.target!.path)).format, mode: st.mode & 0o777, uid: st.uid, gid: st.gid };
      };

      // vol-create-from: libvirt parses only the new XML
      const fromXml = await clone({ xml: '<volume><name>nf</name><capacity>1000</capacity></volume>' });
      expect(fromXml.definition!.target!.format).to.equal('raw');
      expect(fromXml.definition!.capacity).to.equal(8n * MiB);
      expect(await onDisk(fromXml)).to.deep.equal({ format: 'raw', mode: 0o600, uid: process.getuid!(), gid: process.getgid!() });
      // vol-clone (cisternctl sends only the name; virsh the source's XML): the source's format, mode and owner
      const renamed = await clone({ definition: VolumeDefinition.fromPartial({ name: 'same.qcow2' }) });
      expect(renamed.definition!.target!.format).to.equal('qcow2');
      expect(await onDisk(renamed)).to.deep.equal({ format: 'qcow2', mode: 0o644, uid: 1000, gid: 1001 });
      for (const v of ['perm.qcow2', 'nf', 'same.qcow2']) await api.deleteVolume({ name: volName(v), requestId: '' });
    });

    it('a clone is allocated as libvirt allocates it: vol-clone keeps a thick source thick, vol-create-from without <allocation> allocates the raised capacity, and qcow2 --prealloc-metadata then picks falloc', async () => {
      const api = ctx.stack.api;
      const cli = async (args: string[]) => expect(await ctx.stack.cli(args), args.join(' ')).to.include({ code: 0 });
      const allocated = (v: string) => statSync(join(poolPath('a', 'vols'), v)).blocks * 512;
      const fromXml = (xml: string, source: string, preallocMetadata = false) =>
        api.cloneVolume({ parent, source: volName(source), definition: undefined, xml, preallocMetadata, reflink: false, requestId: '', validate: false });
      // virsh vol-clone sends the source's XML: its allocation comes along
      await cli(['vol-create-as', 'a/vols', 'fa', '5M']);
      await cli(['vol-clone', 'fa', 'fa-c', '--pool', 'a/vols']);
      expect(allocated('fa-c')).to.be.at.least(5 * 1024 * 1024);
      expect((await api.getVolume({ name: volName('fa-c'), refresh: false })).definition!.allocation! >= 5n * MiB).to.equal(true);
      await cli(['vol-create-as', 'a/vols', 'sp', '5M', '--allocation', '0']);
      await cli(['vol-clone', 'sp', 'sp-c', '--pool', 'a/vols']);
      expect(allocated('sp-c')).to.equal(0);
      // storageVolCreateXMLFrom: no <allocation> = the capacity once raised to the source's (10 MiB)
      await cli(['vol-create-as', 'a/vols', 'ten', '10M', '--allocation', '0']);
      const full = await fromXml('<volume><name>ten-c</name><capacity>1000</capacity></volume>', 'ten');
      expect(full.definition!.capacity).to.equal(10n * MiB);
      expect(allocated('ten-c')).to.be.at.least(10 * 1024 * 1024);
      // qemu-img preallocation as libvirt picks it: falloc when allocation >= capacity, else metadata
      await fromXml("<volume><name>q-full.qcow2</name><capacity>1000</capacity><target><format type='qcow2'/></target></volume>", 'fa', true);
      expect(allocated('q-full.qcow2')).to.be.at.least(5 * 1024 * 1024);
      await fromXml("<volume><name>q-meta.qcow2</name><capacity>1000</capacity><allocation>0</allocation><target><format type='qcow2'/></target></volume>", 'fa', true);
      expect(allocated('q-meta.qcow2')).to.be.below(1024 * 1024);
      for (const v of ['fa', 'fa-c', 'sp', 'sp-c', 'ten', 'ten-c', 'q-full.qcow2', 'q-meta.qcow2']) await api.deleteVolume({ name: volName(v), requestId: '' });
    });

    it('an allocation above the capacity is accepted, as libvirt: raw grows to it, qcow2 keeps the capacity', async () => {
      const api = ctx.stack.api;
      for (const [name, format] of [['ac', 'raw'], ['ac.qcow2', 'qcow2']]) {
        const r = await ctx.stack.cli(['vol-create-as', 'a/vols', name!, '1M', '--allocation', '2M', '--format', format!]);
        expect(r, r.stderr).to.include({ code: 0 });
      }
      const raw = (await api.getVolume({ name: volName('ac'), refresh: false })).definition!;
      expect([raw.capacity, raw.allocation, raw.physical]).to.deep.equal([2n * MiB, 2n * MiB, 2n * MiB]);
      expect(statSync(join(poolPath('a', 'vols'), 'ac')).size).to.equal(2 * 1024 * 1024);
      expect((await qemuInfo(join(poolPath('a', 'vols'), 'ac.qcow2')))['virtual-size']).to.equal(1024 * 1024);
      for (const v of ['ac', 'ac.qcow2']) await api.deleteVolume({ name: volName(v), requestId: '' });
    });

    it("resize to an absolute 0 is refused as libvirt's virStorageVolResize refuses it, even for a 0-byte volume", async () => {
      const api = ctx.stack.api;
      await api.createVolume({ parent, definition: volume('z0', 0n, 'raw'), xml: '', preallocMetadata: false, requestId: '', validate: false });
      const resize = (delta: boolean, shrink: boolean) => api.resizeVolume({ name: volName('z0'), capacity: 0n, allocate: false, delta, shrink, requestId: '' });
      const err = await expectCode(resize(false, false), status.INVALID_ARGUMENT, /^capacity: cannot be zero without the delta or shrink flag/);
      expect(err.message).to.contain('allowed:');
      const cli = await ctx.stack.cli(['vol-resize', 'z0', '0', '--pool', 'a/vols']);
      expect(cli.code).to.equal(1);
      expect(cli.stderr).to.match(/^error: Failed to change size of volume 'z0' to 0\n.*capacity: cannot be zero without the delta or shrink flag/);
      // with either flag 0 is a size like any other
      expect((await resize(true, false)).definition!.capacity).to.equal(0n);
      expect((await resize(false, true)).definition!.capacity).to.equal(0n);
      await api.deleteVolume({ name: volName('z0'), requestId: '' });
    });

    it("the agent's refusal of a volume names the request's field: definition.* for a structured volume, xml for XML", async () => {
      const api = ctx.stack.api;
      const create = (how: { definition?: VolumeDefinition; xml?: string }) =>
        api.createVolume({ parent, definition: undefined, xml: '', ...how, preallocMetadata: false, requestId: '', validate: false });
      await expectCode(create({ definition: volume('pl', MiB, 'ploop') }), status.INVALID_ARGUMENT, /^definition\.target\.format: volume format 'ploop' cannot be created in a dir pool \(libvirt makes ploop images with the ploop tools/);
      await expectCode(
        create({ xml: "<volume><name>pl</name><capacity>1048576</capacity><target><format type='ploop'/></target></volume>" }),
        status.INVALID_ARGUMENT,
        /^xml: target\.format: volume format 'ploop' cannot be created/,
      );
      // a field of the request itself stays as it is
      const meta = await ctx.stack.cli(['vol-create-as', 'a/vols', 'pm', '1M', '--prealloc-metadata']);
      expect(meta.stderr).to.match(/prealloc_metadata: /);
      expect(existsSync(join(poolPath('a', 'vols'), 'pl'))).to.equal(false);
    });

    it('finds a file dropped into the pool directory by hand after pool-refresh', async () => {
      const api = ctx.stack.api;
      const path = join(poolPath('a', 'vols'), 'by-hand.qcow2');
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', path, '2G']);
      await expectCode(api.getVolume({ name: volName('by-hand.qcow2'), refresh: false }), status.NOT_FOUND);
      await api.refreshPool({ name: parent, requestId: '' });
      const found: Volume = await api.getVolume({ name: volName('by-hand.qcow2'), refresh: false });
      expect(found.definition!.target!.format).to.equal('qcow2');
      expect(found.definition!.capacity).to.equal(2n * 1024n * MiB);
      expect(found.definition!.allocation).to.equal(BigInt(statSync(path).blocks * 512));
      expect(found.definition!.physical).to.equal(BigInt(statSync(path).size));
      expect(found.definition!.key).to.equal(path);
      const byPath = await api.lookupVolume({ host: 'a', key: '', path });
      expect(byPath.name).to.equal(volName('by-hand.qcow2'));
      const xml = await api.getVolumeXml({ name: volName('by-hand.qcow2'), refresh: false });
      expect(xml.xml).to.contain("<format type='qcow2'/>").and.to.contain(`<path>${path}</path>`);
    });


    it("reaches a file named with a leading '-' that pool-refresh lists, as libvirt; creating such a name stays refused", async () => {
      const api = ctx.stack.api;
      const path = join(poolPath('a', 'vols'), '--dash.img');
      writeFileSync(path, Buffer.alloc(64 * 1024, 7));
      await api.refreshPool({ name: parent, requestId: '' });
      const found: Volume = await api.getVolume({ name: volName('--dash.img'), refresh: false });
      expect(found.definition!.key).to.equal(path);
      expect((await api.lookupVolume({ host: 'a', key: '', path })).name).to.equal(volName('--dash.img'));
      expect(await api.getVolumeXml({ name: volName('--dash.img'), refresh: false })).to.have.property('xml').that.contains(`<path>${path}</path>`);
      expect(await download(ctx.stack, volName('--dash.img'), 0n, 16n)).to.deep.equal(Buffer.alloc(16, 7));
      await upload(ctx.stack, volName('--dash.img'), Buffer.alloc(16, 9));
      await api.wipeVolume({ name: volName('--dash.img'), algorithm: WipeAlgorithm.WIPE_ALGORITHM_ZERO, requestId: '' });
      await api.resizeVolume({ name: volName('--dash.img'), capacity: 128n * 1024n, allocate: false, delta: false, shrink: false, requestId: '' });
      expect(statSync(path).size).to.equal(128 * 1024);
      const clone = await api.cloneVolume({ parent, source: volName('--dash.img'), definition: volume('from-dash.img', 0n, 'raw', { capacity: undefined }), xml: '', preallocMetadata: false, reflink: false, requestId: '', validate: false });
      expect(clone.name).to.equal(volName('from-dash.img'));
      await api.deleteVolume({ name: volName('from-dash.img'), requestId: '' });
      await api.deleteVolume({ name: volName('--dash.img'), requestId: '' });
      expect(existsSync(path)).to.equal(false);

      await expectCode(api.createVolume({ parent, definition: volume('-new.img', MiB, 'raw'), xml: '', preallocMetadata: false, requestId: '', validate: false }), status.INVALID_ARGUMENT, /starts with '-'/);
      expect(existsSync(join(poolPath('a', 'vols'), '-new.img'))).to.equal(false);
    });
    it('refreshes the whole pool after an upload, as libvirt does: VOLUME_UPLOADED, then POOL_REFRESHED', async () => {
      await ctx.stack.api.createVolume({ parent, definition: volume('up-ev.img', MiB, 'raw'), xml: '', preallocMetadata: false, requestId: '', validate: false });
      const w = watch(ctx.stack.client, { pools: [parent] });
      await w.ready;
      await upload(ctx.stack, volName('up-ev.img'), randomBytes(65536));
      await waitFor('POOL_REFRESHED', () => w.events.some((e) => e.kind === EventKind.POOL_REFRESHED) || w.failure());
      w.cancel();
      expect(w.failure()).to.equal(undefined);
      // between them only what the refresh found changed (none here, unless earlier tests left some)
      const kinds = w.events
        .filter((e) => e.kind !== EventKind.OPERATION_PROGRESS && e.kind !== EventKind.VOLUME_CHANGED)
        .map((e) => [EventKind[e.kind], e.volume]);
      expect(kinds).to.deep.equal([
        ['VOLUME_UPLOADED', 'up-ev.img'],
        ['POOL_REFRESHED', ''],
      ]);
      const refreshed = w.events.find((e) => e.kind === EventKind.POOL_REFRESHED)!;
      expect(refreshed.poolState?.definition?.name).to.equal('vols');
      expect(refreshed.poolState?.state).to.equal(PoolState.POOL_STATE_RUNNING);
      await ctx.stack.api.deleteVolume({ name: volName('up-ev.img'), requestId: '' });
    });

    it('shows a file dropped into the pool directory by hand once an upload to another volume has ended', async () => {
      const api = ctx.stack.api;
      await api.createVolume({ parent, definition: volume('up-any.img', MiB, 'raw'), xml: '', preallocMetadata: false, requestId: '', validate: false });
      const dropped = join(poolPath('a', 'vols'), 'dropped.raw');
      writeFileSync(dropped, Buffer.alloc(12288, 1));
      await expectCode(api.getVolume({ name: volName('dropped.raw'), refresh: false }), status.NOT_FOUND);
      await upload(ctx.stack, volName('up-any.img'), randomBytes(4096));
      // the upload's answer comes after its refresh: the pool is re-read by then
      const found = await api.getVolume({ name: volName('dropped.raw'), refresh: false });
      expect(found.definition!.capacity).to.equal(12288n);
      expect(found.definition!.key).to.equal(dropped);
      const listed = await api.listVolumes({ parent, pageSize: 0, pageToken: '' });
      expect(listed.volumes.map((v) => v.name)).to.include(volName('dropped.raw'));
      for (const v of ['up-any.img', 'dropped.raw']) await api.deleteVolume({ name: volName(v), requestId: '' });
    });
  });

  it('brings autostart pools back active after an agent restart, and keeps the catalog across a coordinator restart', async () => {
    const api = ctx.stack.api;
    await api.definePool({ host: 'b', definition: dirPool('auto', poolPath('b', 'auto')), xml: '', requestId: '', validate: false });
    await api.startPool({ name: 'hosts/b/pools/auto', build: true, buildFlags: undefined, requestId: '' });
    await api.setPoolAutostart({ name: 'hosts/b/pools/auto', autostart: true, requestId: '' });
    await api.definePool({ host: 'b', definition: dirPool('manual', poolPath('b', 'manual')), xml: '', requestId: '', validate: false });
    await api.startPool({ name: 'hosts/b/pools/manual', build: true, buildFlags: undefined, requestId: '' });
    await api.createVolume({ parent: 'hosts/b/pools/manual', definition: volume('used.img', MiB, 'raw'), xml: '', preallocMetadata: false, requestId: '', validate: false });
    await api.createVolume({ parent: 'hosts/b/pools/auto', definition: volume('keep.img', MiB, 'raw'), xml: '', preallocMetadata: false, requestId: '', validate: false });
    // stopped before the restart: stays stopped; running, but its directory gone meanwhile: down
    await api.definePool({ host: 'b', definition: dirPool('stopped', poolPath('b', 'stopped')), xml: '', requestId: '', validate: false });
    await api.startPool({ name: 'hosts/b/pools/stopped', build: true, buildFlags: undefined, requestId: '' });
    await api.stopPool({ name: 'hosts/b/pools/stopped', requestId: '' });
    await api.definePool({ host: 'b', definition: dirPool('vanished', poolPath('b', 'vanished')), xml: '', requestId: '', validate: false });
    await api.startPool({ name: 'hosts/b/pools/vanished', build: true, buildFlags: undefined, requestId: '' });
    const transient = await api.createPool({ host: 'b', definition: dirPool('passing', poolPath('b', 'passing')), xml: '', build: true, buildFlags: undefined, requestId: '' });

    await ctx.stack.stopAgent('b', { kill: true });
    rmSync(poolPath('b', 'vanished'), { recursive: true });
    await ctx.stack.addAgent('b');
    const auto = await api.getPool({ name: 'hosts/b/pools/auto' });
    expect(auto.state).to.equal(PoolState.POOL_STATE_RUNNING);
    expect(auto.volumeCount).to.equal(1);
    // libvirt keeps a running pool running over a daemon restart when its backend finds it up
    const manual = await api.getPool({ name: 'hosts/b/pools/manual' });
    expect(manual.state).to.equal(PoolState.POOL_STATE_RUNNING);
    expect(manual.autostart).to.equal(false);
    expect(manual.volumeCount).to.equal(1);
    const again = await api.getPool({ name: transient.name });
    expect([again.state, again.persistent]).to.deep.equal([PoolState.POOL_STATE_RUNNING, false]);
    expect((await api.getPool({ name: 'hosts/b/pools/stopped' })).state).to.equal(PoolState.POOL_STATE_INACTIVE);
    expect((await api.getPool({ name: 'hosts/b/pools/vanished' })).state).to.equal(PoolState.POOL_STATE_INACTIVE);
    await api.stopPool({ name: 'hosts/b/pools/manual', requestId: '' });
    await api.stopPool({ name: transient.name, requestId: '' });

    await ctx.stack.restartCoordinator({ kill: true });
    const pools = await api.listPools({ host: 'b', types: [], pageSize: 0, pageToken: '' });
    expect(pools.pools.map((p) => p.name)).to.include.members(['hosts/b/pools/auto', 'hosts/b/pools/manual']);
    expect((await api.getPool({ name: 'hosts/b/pools/auto' })).autostart).to.equal(true);
    expect((await api.getVolume({ name: 'hosts/b/pools/auto/volumes/keep.img', refresh: false })).definition!.capacity).to.equal(MiB);
  });
});
