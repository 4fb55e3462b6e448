// Clones to and from partitions of a disk pool through the whole stack, whatever the
// partition holds: libvirt 9.0 reads a block volume as raw (storageBackendCreateQemuImgSetInput)
// and copies its bytes, so a partition holding NTFS (type 0x07, which a disk pool reads as
// format 'none') or anything else clones as its bytes. Each direction: a partition into
// another partition of its pool (virsh vol-clone), a partition into a dir pool, a dir pool's
// raw file into a partition, by name only (the definition over the source's) and from XML
// (vol-create-from). The copies are compared byte for byte.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PoolDefinition, PoolType, VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { attachLoop, type LoopDevice, loopDevicesAvailable, makeTempDir, registerCleanup, useStack, hasTool } from '../support/index.js';

const MiB = 1024 * 1024;
const usable = loopDevicesAvailable() && hasTool('parted') && hasTool('partx') ;

describe('clones to and from partitions of a disk pool copy bytes, whatever the partition holds', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  let loop: LoopDevice | undefined;
  let dropPartitions: (() => Promise<void>) | undefined;
  let tmp: { path: string; remove: () => Promise<void> } | undefined;
  let base = '';
  const disk = 'hosts/a/pools/parts';
  const dir = 'hosts/a/pools/files';
  const ntfs = Buffer.concat([Buffer.from([0xeb, 0x52, 0x90]), Buffer.from('NTFS    '), randomBytes(4 * MiB - 11)]);

  before(async function () {
    if (!usable) this.skip(); // needs root, loop devices, parted and partx
    loop = attachLoop(128 * MiB, 'it-clones');
    const device = loop.device;
    base = device.slice('/dev/'.length);
    dropPartitions = registerCleanup(`partitions of ${device}`, () => {
      try {
        execFileSync('partx', ['-d', '--', device], { stdio: 'pipe' });
      } catch {
        // none left
      }
    });
    tmp = makeTempDir('cistern-disk-clones-');
    const api = ctx.stack.api;
    await api.definePool({
      host: 'a',
      definition: undefined,
      xml: `<pool type='disk'><name>parts</name><source><device path='${device}'/><format type='dos'/></source><target><path>/dev</path></target></pool>`,
      requestId: '',
      validate: false,
    });
    await api.startPool({ name: disk, build: true, buildFlags: { overwrite: true, noOverwrite: false }, requestId: '' });
    await api.definePool({ host: 'a', definition: PoolDefinition.fromPartial({ name: 'files', type: PoolType.POOL_TYPE_DIR, target: { path: join(tmp.path, 'files') } }), xml: '', requestId: '', validate: false });
    await api.startPool({ name: dir, build: true, buildFlags: undefined, requestId: '' });
    // an NTFS partition: type 0x07, an NTFS boot sector, 4 MiB of data
    await api.createVolume({ parent: disk, definition: VolumeDefinition.fromPartial({ name: `${base}p1`, capacity: BigInt(4 * MiB) }), xml: '', requestId: '', preallocMetadata: false, validate: false });
    // the MBR's first entry's type byte (offset 446 + 4)
    const fd = openSync(device, 'r+');
    writeSync(fd, Buffer.from([0x07]), 0, 1, 450);
    closeSync(fd);
    writeFileSync(`/dev/${base}p1`, ntfs);
    await api.refreshPool({ name: disk, requestId: '' });
  });
  after(async () => {
    await dropPartitions?.();
    await loop?.detach();
    await tmp?.remove();
  });

  const clone = (parent: string, source: string, name: string, xml = '') =>
    ctx.stack.api.cloneVolume({ parent, source, definition: xml ? undefined : VolumeDefinition.fromPartial({ name }), xml, requestId: '', preallocMetadata: false, reflink: false, validate: false });
  const head = (path: string, n: number) => readFileSync(path).subarray(0, n);

  it('a partition into another partition of its pool (vol-clone)', async () => {
    const made = await clone(disk, `${disk}/volumes/${base}p1`, `${base}p2`);
    expect(made.definition?.capacity! >= BigInt(4 * MiB)).to.equal(true);
    expect(head(`/dev/${base}p2`, ntfs.length).equals(ntfs)).to.equal(true);
  });

  it('a partition into a dir pool, by name and from XML', async () => {
    await clone(dir, `${disk}/volumes/${base}p1`, 'by-name.img');
    expect(head(join(tmp!.path, 'files', 'by-name.img'), ntfs.length).equals(ntfs)).to.equal(true);
    const xml = `<volume><name>from-xml.img</name><capacity unit='M'>4</capacity><target><format type='raw'/></target></volume>`;
    await clone(dir, `${disk}/volumes/${base}p1`, '', xml);
    expect(head(join(tmp!.path, 'files', 'from-xml.img'), ntfs.length).equals(ntfs)).to.equal(true);
  });

  it("a dir pool's raw file into a partition, by name and from XML", async () => {
    const data = randomBytes(3 * MiB);
    writeFileSync(join(tmp!.path, 'files', 'src.img'), data);
    await ctx.stack.api.refreshPool({ name: dir, requestId: '' });
    await clone(disk, `${dir}/volumes/src.img`, `${base}p3`);
    expect(head(`/dev/${base}p3`, data.length).equals(data)).to.equal(true);
    const xml = `<volume><name>${base}p4</name><capacity unit='M'>3</capacity></volume>`;
    await clone(disk, `${dir}/volumes/src.img`, '', xml);
    expect(head(`/dev/${base}p4`, data.length).equals(data)).to.equal(true);
  });
});
