// Looking a block volume up by its kernel device name, as libvirt's storageVolLookupByPath:
// a disk pool whose target is a /dev/disk/by-* style directory names its partitions by the
// links there, and `virsh vol-info /dev/loop0p1` still finds the partition (libvirt turns the
// path into the pool's stable form with virStorageBackendStablePath). This machine has no
// udev: the stable directory is a hand-made one under /dev, with a link to the partition,
// removed by its exact path afterwards; the loop device is detached by name.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { attachLoop, type LoopDevice, loopDevicesAvailable, outcomeOf, registerCleanup, useStack, hasTool } from '../support/index.js';

const usable = loopDevicesAvailable() && hasTool('parted') && hasTool('partx');

describe('LookupVolume by the kernel name of a volume whose path is a stable link', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  let loop: LoopDevice | undefined;
  let stableDir = '';
  let dropPartitions: (() => Promise<void>) | undefined;
  let dropDir: (() => Promise<void>) | undefined;

  before(function () {
    if (!usable) this.skip(); // needs root, loop devices, parted and partx
    loop = attachLoop(32 * 1024 * 1024, 'it-stable');
    const device = loop.device;
    dropPartitions = registerCleanup(`partitions of ${device}`, () => {
      try {
        execFileSync('partx', ['-d', '--', device], { stdio: 'pipe' });
      } catch {
        // none left
      }
    });
    // under /dev, so it is a stable directory (libvirt's virStorageBackendPoolPathIsStable)
    const dir = mkdtempSync('/dev/cistern-by-it-');
    stableDir = dir;
    dropDir = registerCleanup(`stable link directory ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  });
  after(async () => {
    await dropPartitions?.();
    await loop?.detach();
    await dropDir?.();
  });

  it('finds the partition by its kernel name, by another link to it, and not by a device of no volume', async () => {
    const api = ctx.stack.api;
    const device = loop!.device;
    const base = basename(device);
    const pool = 'hosts/a/pools/stable';
    await api.definePool({
      host: 'a',
      definition: undefined,
      xml: `<pool type='disk'><name>stable</name><source><device path='${device}'/><format type='gpt'/></source><target><path>${stableDir}</path></target></pool>`,
      requestId: '',
      validate: false,
    });
    await api.startPool({ name: pool, build: true, buildFlags: { overwrite: false, noOverwrite: true }, requestId: '' });
    await api.createVolume({
      parent: pool,
      definition: undefined,
      xml: `<volume><name>${base}p1</name><capacity unit='MiB'>4</capacity><target><format type='linux'/></target></volume>`,
      preallocMetadata: false,
      requestId: '',
      validate: false,
    });
    // udev's by-path link, made by hand (relative, as udev makes them); a refresh names the partition by it
    const stable = join(stableDir, 'pci-0000:00:1f.2-ata-1-part1');
    symlinkSync(`../${base}p1`, stable);
    await api.refreshPool({ name: pool, requestId: '' });
    const listed = await api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' });
    expect(listed.volumes.map((v) => v.definition?.target?.path)).to.deep.equal([stable]);

    // the stable path itself, as before
    const exact = await api.lookupVolume({ host: 'a', key: '', path: stable });
    expect(exact.name).to.equal(`${pool}/volumes/${base}p1`);
    // the kernel name: libvirt's vol-info /dev/loop0p1
    const byKernel = await api.lookupVolume({ host: 'a', key: '', path: `${device}p1` });
    expect(byKernel.name).to.equal(`${pool}/volumes/${base}p1`);
    expect(byKernel.definition?.target?.path).to.equal(stable);
    // another link to the partition, outside the pool's target (a by-id link of a by-path pool):
    // libvirt compares what the links lead to (virFileLinkPointsTo), so it is found too
    const alias = join(stableDir, '..', `cistern-it-alias-${base}p1`);
    symlinkSync(`${device}p1`, alias);
    const dropAlias = registerCleanup(`link ${alias}`, () => rmSync(alias, { force: true }));
    try {
      const byAlias = await api.lookupVolume({ host: 'a', key: '', path: alias });
      expect(byAlias.name).to.equal(`${pool}/volumes/${base}p1`);
    } finally {
      await dropAlias();
    }
    // not normalised as given: cleaned first, as libvirt's virFileSanitizePath
    const unclean = await api.lookupVolume({ host: 'a', key: '', path: `//dev//${base}p1/` });
    expect(unclean.name).to.equal(`${pool}/volumes/${base}p1`);

    // the whole disk is no volume of the pool: NOT_FOUND, naming the path
    const whole = await outcomeOf(api.lookupVolume({ host: 'a', key: '', path: device }));
    expect(status[whole.code]).to.equal('NOT_FOUND');
    expect(whole.message).to.contain(`'${device}'`);
    // cisternctl's vol-path and vol-info take the kernel name too (virsh's do)
    const cliPath = await ctx.stack.cli(['vol-path', `${device}p1`]);
    expect(cliPath.stderr).to.equal('');
    expect(cliPath.stdout.trim()).to.equal(stable);
    const cliPool = await ctx.stack.cli(['vol-pool', `${device}p1`]);
    expect(cliPool.stdout.trim()).to.equal('stable');

    // stopped, the pool's volumes are no longer found, by either name (libvirt looks in active pools)
    await api.stopPool({ name: pool, requestId: '' });
    const stopped = await outcomeOf(api.lookupVolume({ host: 'a', key: '', path: `${device}p1` }));
    expect(status[stopped.code]).to.equal('NOT_FOUND');
    await api.undefinePool({ name: pool, requestId: '' });
  });
});
