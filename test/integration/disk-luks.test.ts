// LUKS-encrypted partitions in a dos disk pool through the whole stack, against what libvirt
// 9.0 does with the same request on a 200 MiB loop device (side by side, a private libvirtd
// with its storage and secret drivers): vol-create of <volume><name>loopNp1</name><capacity
// unit='M'>20</capacity><target><format type='none'/><encryption format='luks'><secret
// type='passphrase' uuid='U'/></encryption></target></volume> made partition 1 from byte 1024
// to 23239679 (20 MiB plus libvirt's 2 MiB of LUKS header room, to the cylinder's end) and ran
// `qemu-img create -f luks --object secret,id=loopNp1_encrypt0,file=... -o
// key-secret=loopNp1_encrypt0 /dev/loopNp1 20646K` (blkid -p: TYPE="crypto_LUKS"); vol-dumpxml
// then printed capacity and allocation 21141504 (the partition less 2 MiB), physical 23238656
// and the <encryption format='luks'> with the secret's uuid. After pool-refresh libvirt reads
// the partition again as any other: capacity 23238656, no <encryption>. Upload, download and
// wipe act on the partition's bytes.
//
// Refused before anything is written (libvirt writes first and then fails): an encryption other
// than LUKS ("storage pool only supports LUKS encrypted volumes"), an extended partition (libvirt
// runs qemu-img on its 1024-byte node, which fails with "Cannot grow device files" after it
// zeroed the extended boot record: the table then no longer reads), and no passphrase.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { status } from '@grpc/grpc-js';
import { Secret, SecretUsageType, WipeAlgorithm } from '../../libs/proto/cistern/v1/storage.js';
import { attachLoop, type LoopDevice, loopDevicesAvailable, makeTempDir, registerCleanup, startStack, hasTool, type Stack } from '../support/index.js';
import { writeSecretKey } from '../support/secret-key.js';
import { download, upload } from '../support/volume-data.js';
import { expectCode } from '../support/grpc-expect.js';

const PASSPHRASE = 'h59-luks-partition';

function partedPrint(device: string): string {
  return execFileSync('parted', ['-m', '-s', device, 'unit', 'B', 'print'], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
}

function blkidType(node: string): string {
  try {
    return execFileSync('blkid', ['-p', '-s', 'TYPE', '-o', 'value', '--', node], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

const usable = loopDevicesAvailable() && hasTool('parted') && hasTool('partx') && hasTool('qemu-img') && hasTool('blkid');

describe('LUKS-encrypted partitions in a disk pool, as libvirt 9.0 makes them', function () {
  // each LUKS create runs the key slot's PBKDF (2 s of CPU time)
  this.timeout(180_000);
  const ctx: { stack: Stack } = { stack: undefined as never };
  let tmp: { path: string; remove: () => Promise<void> } | undefined;
  let loop: LoopDevice | undefined;
  let dropPartitions: (() => Promise<void>) | undefined;
  let base = '';
  let secretUuid = '';
  const pool = 'hosts/a/pools/crypt';

  const luksXml = (name: string, opts: { format?: string; encryption?: string; uuid?: string } = {}) =>
    `<volume><name>${name}</name><capacity unit='M'>20</capacity><target><format type='${opts.format ?? 'none'}'/>` +
    `<encryption format='${opts.encryption ?? 'luks'}'><secret type='passphrase' uuid='${opts.uuid ?? secretUuid}'/></encryption></target></volume>`;

  before(async function () {
    this.timeout(120_000);
    if (!usable) this.skip(); // needs root, loop devices, parted, partx, blkid and qemu-img
    tmp = makeTempDir('cistern-disk-luks-');
    ctx.stack = await startStack({ hosts: ['a'], coordinatorArgs: ['--secret-key-file', writeSecretKey(tmp.path)] });
    loop = attachLoop(200 * 1024 * 1024, 'it-luks');
    const device = loop.device;
    base = device.slice('/dev/'.length);
    dropPartitions = registerCleanup(`partitions of ${device}`, () => {
      try {
        execFileSync('partx', ['-d', '--', device], { stdio: 'pipe' });
      } catch {
        // none left
      }
    });
    const api = ctx.stack.api;
    await api.definePool({
      host: 'a',
      definition: undefined,
      xml: `<pool type='disk'><name>crypt</name><source><device path='${device}'/><format type='dos'/></source><target><path>/dev</path></target></pool>`,
      requestId: '',
      validate: false,
    });
    await api.startPool({ name: pool, build: true, buildFlags: { overwrite: true, noOverwrite: false }, requestId: '' });
    const secret = await api.defineSecret({
      secret: Secret.fromPartial({ usageType: SecretUsageType.SECRET_USAGE_TYPE_VOLUME, usageId: `${device}p1` }),
      xml: '',
      requestId: '',
      validate: false,
    });
    secretUuid = secret.uuid;
    await api.setSecretValue({ name: secret.name, value: Buffer.from(PASSPHRASE) });
  });
  after(async function () {
    this.timeout(60_000);
    await ctx.stack?.stop();
    await dropPartitions?.();
    await loop?.detach();
    await tmp?.remove();
  });

  it('creates the partition 2 MiB larger than asked and formats it LUKS with the passphrase; dumpxml shows the payload size', async () => {
    const api = ctx.stack.api;
    const name = `${base}p1`;
    const created = await api.createVolume({ parent: pool, definition: undefined, xml: luksXml(name), requestId: '', preallocMetadata: false, validate: false });
    // libvirt 9.0's partition on the same disk, for the same request
    expect(partedPrint(loop!.device)).to.contain('\n1:1024B:23239679B:23238656B:');
    expect(blkidType(`/dev/${name}`)).to.equal('crypto_LUKS');
    // the passphrase opens it: qemu reads the LUKS payload
    const info = JSON.parse(
      execFileSync(
        'qemu-img',
        ['info', '--output=json', '--object', `secret,id=s0,data=${PASSPHRASE}`, '--image-opts', `driver=luks,key-secret=s0,file.filename=/dev/${name}`],
        { encoding: 'utf8' },
      ),
    ) as { 'virtual-size': number };
    expect(info['virtual-size']).to.be.greaterThan(20 * 1024 * 1024);
    expect(created.definition?.capacity).to.equal(21141504n);
    expect(created.definition?.target?.encryption?.format).to.equal('luks');
    for (const refresh of [false, true]) {
      const xml = (await api.getVolumeXml({ name: `${pool}/volumes/${name}`, refresh })).xml;
      expect(xml, `refresh ${refresh}`).to.contain("<capacity unit='bytes'>21141504</capacity>");
      expect(xml, `refresh ${refresh}`).to.contain("<allocation unit='bytes'>21141504</allocation>");
      expect(xml, `refresh ${refresh}`).to.contain("<physical unit='bytes'>23238656</physical>");
      expect(xml, `refresh ${refresh}`).to.contain(`<encryption format='luks'>\n      <secret type='passphrase' uuid='${secretUuid}'/>\n    </encryption>`);
    }
  });

  it('a pool refresh reads it as libvirt 9.0 does: the whole partition, no encryption', async () => {
    const api = ctx.stack.api;
    await api.refreshPool({ name: pool, requestId: '' });
    const xml = (await api.getVolumeXml({ name: `${pool}/volumes/${base}p1`, refresh: false })).xml;
    expect(xml).to.contain("<capacity unit='bytes'>23238656</capacity>");
    expect(xml).not.to.contain('<encryption');
  });

  it('download, upload and wipe act on the raw bytes of the partition', async () => {
    const name = `${pool}/volumes/${base}p1`;
    const head = await download(ctx.stack, name, 0n, 6n);
    expect(head.equals(Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]))).to.equal(true);
    await upload(ctx.stack, name, Buffer.from('not luks any more'), 0n);
    expect((await download(ctx.stack, name, 0n, 17n)).toString()).to.equal('not luks any more');
    await ctx.stack.api.wipeVolume({ name, algorithm: WipeAlgorithm.WIPE_ALGORITHM_ZERO, requestId: '' });
    const all = await download(ctx.stack, name);
    expect(all.length).to.equal(23238656);
    expect(all.every((b) => b === 0)).to.equal(true);
  });

  it('deletes it as any partition', async () => {
    await ctx.stack.api.deleteVolume({ name: `${pool}/volumes/${base}p1`, requestId: '' });
    expect(partedPrint(loop!.device)).not.to.match(/\n1:/);
  });

  it('refuses, with the table unchanged: another encryption, an extended partition, no passphrase', async () => {
    const api = ctx.stack.api;
    const before = partedPrint(loop!.device);
    const create = (xml: string) => api.createVolume({ parent: pool, definition: undefined, xml, requestId: '', preallocMetadata: false, validate: false });
    await expectCode(create(luksXml(`${base}p1`, { encryption: 'qcow' })), status.INVALID_ARGUMENT, /encryption.*luks/i);
    await expectCode(create(luksXml(`${base}p1`, { format: 'extended' })), status.INVALID_ARGUMENT, /extended/);
    const bare = await api.defineSecret({
      secret: Secret.fromPartial({ usageType: SecretUsageType.SECRET_USAGE_TYPE_VOLUME, usageId: '/nowhere/h59' }),
      xml: '',
      requestId: '',
      validate: false,
    });
    try {
      await expectCode(create(luksXml(`${base}p1`, { uuid: bare.uuid })), status.FAILED_PRECONDITION);
    } finally {
      await api.undefineSecret({ name: bare.name, requestId: '' });
    }
    expect(partedPrint(loop!.device)).to.equal(before);
    const listed = await api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' });
    expect(listed.volumes.map((v) => v.name)).to.deep.equal([]);
  });
});
