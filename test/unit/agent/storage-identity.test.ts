// The agent's view of a pool's storage: two names of one directory or one block device are
// the same storage (storage-claims.ts refuses a second pool over it), different ones are not.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PoolDefinition, PoolType } from '../../../libs/proto/cistern/v1/storage.js';
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
});
