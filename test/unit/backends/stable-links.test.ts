// The agent's half of a lookup by kernel name (libvirt's virStorageBackendStablePath as
// storageVolLookupByPath uses it): which entries of a stable directory lead to the device a
// /dev path names, on a fixture /dev tree (regular files stand in for device nodes: the
// comparison is libvirt's, device and inode, whatever the file is).
import { expect } from 'chai';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PoolType } from '../../../libs/proto/cistern/v1/storage.js';
import { deviceIdentity, stableLinksTo } from '../../../libs/backends/stable-links.js';
import { isStableTargetDir, looksUpThroughStableLinks } from '../../../libs/backends/pool-kinds.js';
import { useTempDir } from '../../support/index.js';

describe('stable links of a device (lookup by kernel name)', () => {
  const scratch = useTempDir('cistern-stable-links-');
  let dev = '';
  beforeEach(() => {
    dev = join(scratch.path, `dev-${Math.random().toString(36).slice(2)}`);
    mkdirSync(join(dev, 'disk', 'by-path'), { recursive: true });
    mkdirSync(join(dev, 'disk', 'by-id'), { recursive: true });
    for (const n of ['sdb', 'sdb1', 'sdb2', 'sdc']) writeFileSync(join(dev, n), n);
    // relative links, as udev makes them
    symlinkSync('../../sdb1', join(dev, 'disk', 'by-path', 'pci-0000:00:1f.2-ata-2-part1'));
    symlinkSync('../../sdb2', join(dev, 'disk', 'by-path', 'pci-0000:00:1f.2-ata-2-part2'));
    symlinkSync('../../sdb1', join(dev, 'disk', 'by-id', 'wwn-0x5000-part1'));
    symlinkSync('../../sdb1', join(dev, 'disk', 'by-id', 'ata-X-part1'));
    symlinkSync('../../gone', join(dev, 'disk', 'by-path', 'dangling'));
  });

  it('finds the links that lead to the device, by name, as host paths', async () => {
    const id = await deviceIdentity('/dev/sdb1', dev);
    expect(id).to.be.a('string');
    expect(await stableLinksTo('/dev/disk/by-path', id!, dev)).to.deep.equal(['/dev/disk/by-path/pci-0000:00:1f.2-ata-2-part1']);
    // two links to one device (by-id has wwn- and ata- names): both, sorted
    expect(await stableLinksTo('/dev/disk/by-id/', id!, dev)).to.deep.equal(['/dev/disk/by-id/ata-X-part1', '/dev/disk/by-id/wwn-0x5000-part1']);
    // a link names the device as its kernel name does
    expect(await deviceIdentity('/dev/disk/by-id/wwn-0x5000-part1', dev)).to.equal(id);
  });

  it('a device no link leads to, a missing one, and a missing directory have none', async () => {
    const sdc = await deviceIdentity('/dev/sdc', dev);
    expect(await stableLinksTo('/dev/disk/by-path', sdc!, dev)).to.deep.equal([]);
    expect(await deviceIdentity('/dev/sdz', dev)).to.equal(undefined);
    expect(await stableLinksTo('/dev/disk/by-uuid', sdc!, dev)).to.deep.equal([]);
  });

  it('does not follow a path out of /dev, though a link of the pool leads to the same file', async () => {
    // the agent runs as root: /dev/x -> /etc/shadow must not tell whether a pool's link leads there
    const outside = join(scratch.path, `outside-${Math.random().toString(36).slice(2)}`);
    writeFileSync(outside, 'secret');
    symlinkSync(outside, join(dev, 'escape'));
    symlinkSync(outside, join(dev, 'disk', 'by-path', 'leads-out'));
    expect(await deviceIdentity('/dev/escape', dev)).to.equal(undefined);
    // and a path not under /dev at all is nothing to resolve
    expect(await deviceIdentity(outside, dev)).to.equal(undefined);
    expect(await deviceIdentity('/dev', dev)).to.equal(undefined);
  });

  it("takes libvirt's pool types and stable targets only", () => {
    expect(isStableTargetDir('/dev/disk/by-path')).to.equal(true);
    expect(isStableTargetDir('/dev')).to.equal(false);
    expect(isStableTargetDir('/dev/')).to.equal(false);
    expect(isStableTargetDir('/var/lib/libvirt/images')).to.equal(false);
    for (const t of [PoolType.POOL_TYPE_DISK, PoolType.POOL_TYPE_ISCSI, PoolType.POOL_TYPE_SCSI, PoolType.POOL_TYPE_MPATH, PoolType.POOL_TYPE_DIR]) {
      expect(looksUpThroughStableLinks(t, '/dev/disk/by-path'), PoolType[t]).to.equal(true);
      expect(looksUpThroughStableLinks(t, '/dev'), PoolType[t]).to.equal(false);
      expect(looksUpThroughStableLinks(t, undefined), PoolType[t]).to.equal(false);
    }
    // logical: "already have stable paths" (virStorageBackendStablePath); iscsi-direct: paths compared as given
    expect(looksUpThroughStableLinks(PoolType.POOL_TYPE_LOGICAL, '/dev/vg0')).to.equal(false);
    expect(looksUpThroughStableLinks(PoolType.POOL_TYPE_ISCSI_DIRECT, '/dev/disk/by-path')).to.equal(false);
  });
});
