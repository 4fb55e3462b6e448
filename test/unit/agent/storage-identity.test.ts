// The agent's view of a pool's storage: two names of one directory or one block device are
// the same storage (storage-claims.ts refuses a second pool over it), different ones are not.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdapterType, PoolDefinition, PoolType, type DeepPartial, type SourceAdapter } from '../../../libs/proto/cistern/v1/storage.js';
import { repoRoot } from '../../support/paths.js';
import { storageIdentities } from '../../../services/agent/storage-identity.js';

describe('storage identities', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'cistern-identity-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const dirPool = (path: string) => PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'p', target: { path } });
  const diskPool = (path: string) => PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DISK, name: 'd', source: { devices: [{ path }] } });

  it('a directory and a symlink to it are one; another directory is not; a missing one has none', async () => {
    mkdirSync(join(dir, 'a'));
    mkdirSync(join(dir, 'b'));
    symlinkSync(join(dir, 'a'), join(dir, 'link'));
    const [a] = await storageIdentities(dirPool(join(dir, 'a')));
    const [link] = await storageIdentities(dirPool(join(dir, 'link')));
    const [b] = await storageIdentities(dirPool(join(dir, 'b')));
    expect(a!.key).to.equal(link!.key);
    expect(link!.path).to.equal(join(dir, 'link'));
    expect(b!.key).to.not.equal(a!.key);
    expect(await storageIdentities(dirPool(join(dir, 'not-yet')))).to.deep.equal([]);
  });

  it('a block device and a symlink to it are one (/dev/disk/by-id, a udev alias)', async function () {
    const device = readdirSync('/dev').map((n) => join('/dev', n)).find((p) => {
      try {
        return statSync(p).isBlockDevice();
      } catch {
        return false;
      }
    });
    if (!device) this.skip(); // skip reason: this machine has no block device in /dev
    symlinkSync(device!, join(dir, 'disk-alias'));
    const [real] = await storageIdentities(diskPool(device!));
    const [alias] = await storageIdentities(diskPool(join(dir, 'disk-alias')));
    expect(real!.key).to.match(/^blk:/);
    expect(alias!.key).to.equal(real!.key);
  });

  it('types whose storage is not a local path have none', async () => {
    const iscsi = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_ISCSI, name: 'i', source: { devices: [{ path: dir }] } });
    expect(await storageIdentities(iscsi)).to.deep.equal([]);
  });

  it("scsi pools: the SCSI host the adapter names here, however it names it (libvirt's SourceFindDuplicate resolves them)", async () => {
    // fixture: host5 is the fc_host with wwnn 20000000c9831b4b at PCI 0000:05:00.0, unique_id 5;
    // the agent's sysfs root as its backends take it (hostRoots: CISTERN_SYSFS_ROOT)
    const saved = process.env.CISTERN_SYSFS_ROOT;
    process.env.CISTERN_SYSFS_ROOT = join(repoRoot, 'test', 'fixtures', 'sysfs', 'fc-host', 'sys');
    try {
      const scsi = (adapter: DeepPartial<SourceAdapter>) => PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_SCSI, name: 's', source: { adapter } });
      const fc = await storageIdentities(scsi({ type: AdapterType.ADAPTER_TYPE_FC_HOST, wwnn: '20000000c9831b4b', wwpn: '10000000c9831b4b' }));
      const byName = await storageIdentities(scsi({ type: AdapterType.ADAPTER_TYPE_SCSI_HOST, name: 'scsi_host5' }));
      const byPci = await storageIdentities(
        scsi({ type: AdapterType.ADAPTER_TYPE_SCSI_HOST, hasParentAddress: true, uniqueId: 5, parentAddress: { domain: 0, bus: 5, slot: 0, function: 0 } }),
      );
      const other = await storageIdentities(scsi({ type: AdapterType.ADAPTER_TYPE_SCSI_HOST, name: 'host4' }));
      expect(fc).to.have.length(1);
      expect(fc[0]).to.include({ path: 'host5', what: 'SCSI host' });
      expect(byName[0]!.key).to.equal(fc[0]!.key);
      expect(byPci[0]!.key).to.equal(fc[0]!.key);
      expect(other[0]!.key).to.not.equal(fc[0]!.key);
      // a vHBA not created yet, a PCI address with no host: nothing to compare (the start creates or fails)
      expect(await storageIdentities(scsi({ type: AdapterType.ADAPTER_TYPE_FC_HOST, wwnn: '2001001b32a9da4e', wwpn: '2101001b32a9da4e' }))).to.deep.equal([]);
      expect(
        await storageIdentities(scsi({ type: AdapterType.ADAPTER_TYPE_SCSI_HOST, hasParentAddress: true, uniqueId: 9, parentAddress: { domain: 0, bus: 5, slot: 0, function: 0 } })),
      ).to.deep.equal([]);
    } finally {
      if (saved === undefined) delete process.env.CISTERN_SYSFS_ROOT;
      else process.env.CISTERN_SYSFS_ROOT = saved;
    }
  });
});
