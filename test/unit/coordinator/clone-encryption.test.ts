// The encryption a structured clone inherits from a LUKS source (secrets/clone-encryption.ts):
// filled with the secret of the source's path in the catalog's pool, and only where the agent
// would otherwise inherit an encryption naming no secret.
import { expect } from 'chai';
import { PoolDefinition, PoolType, SecretUsageType, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { withInheritedEncryption } from '../../../services/coordinator/secrets/clone-encryption.js';
import type { SecretStore } from '../../../services/coordinator/secrets/store.js';

const looked: string[] = [];
const store = {
  findByUsage: async (type: SecretUsageType, id: string) => {
    looked.push(id);
    return type === SecretUsageType.SECRET_USAGE_TYPE_VOLUME && id === '/srv/enc/src' ? { uuid: 'u-src' } : undefined;
  },
} as unknown as SecretStore;

const dirPool = PoolDefinition.fromPartial({ name: 'enc', type: PoolType.POOL_TYPE_DIR, target: { path: '/srv/enc' } });
// the path as an agent reports it: not what the secret is looked up by
const source = VolumeDefinition.fromPartial({ name: 'src', target: { path: '/srv/other/elsewhere', format: 'raw', encryption: { format: 'luks', secrets: [] } } });

describe('withInheritedEncryption', () => {
  beforeEach(() => looked.splice(0));

  it('a clone naming only its name gets the source\'s encryption with the secret of the catalog pool\'s path', async () => {
    const def = await withInheritedEncryption(store, VolumeDefinition.fromPartial({ name: 'c' }), { pool: dirPool, volume: source });
    expect(looked).to.deep.equal(['/srv/enc/src']);
    expect(def.name).to.equal('c');
    expect(def.target?.encryption).to.deep.include({ format: 'luks', secrets: [{ type: 'passphrase', uuid: 'u-src', usage: '' }] });
    // nothing else of the target is set: the agent keeps the source's format and the clone's path is its own
    expect(def.target?.format).to.equal('');
    expect(def.target?.path).to.equal('');
  });

  it('the same format named keeps it and fills the secret', async () => {
    const def = await withInheritedEncryption(store, VolumeDefinition.fromPartial({ name: 'c', target: { format: 'raw' } }), { pool: dirPool, volume: source });
    expect(def.target?.format).to.equal('raw');
    expect(def.target?.encryption?.secrets.map((s) => s.uuid)).to.deep.equal(['u-src']);
  });

  it('leaves the definition as given: own encryption, another format, no secret for the path, a block pool, a plain or named source', async () => {
    const own = VolumeDefinition.fromPartial({ name: 'c', target: { encryption: { format: 'luks', secrets: [{ type: 'passphrase', uuid: 'mine', usage: '' }] } } });
    expect(await withInheritedEncryption(store, own, { pool: dirPool, volume: source })).to.equal(own);
    const qcow2 = VolumeDefinition.fromPartial({ name: 'c', target: { format: 'qcow2' } });
    expect(await withInheritedEncryption(store, qcow2, { pool: dirPool, volume: source })).to.equal(qcow2);
    const plain = VolumeDefinition.fromPartial({ name: 'c' });
    const otherName = { ...source, name: 'nosecret' };
    expect(await withInheritedEncryption(store, plain, { pool: dirPool, volume: otherName })).to.equal(plain);
    const logical = PoolDefinition.fromPartial({ name: 'vg', type: PoolType.POOL_TYPE_LOGICAL, target: { path: '/dev/vg' } });
    expect(await withInheritedEncryption(store, plain, { pool: logical, volume: source })).to.equal(plain);
    const unencrypted = VolumeDefinition.fromPartial({ name: 'src', target: { format: 'raw' } });
    expect(await withInheritedEncryption(store, plain, { pool: dirPool, volume: unencrypted })).to.equal(plain);
    const named = VolumeDefinition.fromPartial({ name: 'src', target: { format: 'raw', encryption: { format: 'luks', secrets: [{ type: 'passphrase', uuid: 'x', usage: '' }] } } });
    expect(await withInheritedEncryption(store, plain, { pool: dirPool, volume: named })).to.equal(plain);
    expect(await withInheritedEncryption(store, plain, { pool: dirPool, volume: undefined })).to.equal(plain);
    expect(looked).to.deep.equal(['/srv/enc/nosecret']);
  });
});
