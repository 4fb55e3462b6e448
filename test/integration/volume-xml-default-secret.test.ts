// GetVolumeXML of a LUKS volume names the secret of usage type 'volume' whose usage id is the
// volume's path, as libvirt 9.0's vol-dumpxml does after a pool refresh
// (storageBackendLoadDefaultSecrets): the image does not record its secret, so a volume read
// from disk, which every Cistern volume is, has none of its own. Scripts copy that uuid into a
// domain's <disk><encryption>. Side by side on this machine: a luks volume made with the secret
// whose usage is its path printed <secret type='passphrase' uuid='...'/> in virsh vol-dumpxml
// before and after pool-refresh, and an empty <encryption format='luks'> in cisternctl's.
import { expect } from 'chai';
import { join } from 'node:path';
import { PoolDefinition, PoolType, Secret, SecretUsageType } from '../../libs/proto/cistern/v1/storage.js';
import { hasTool, makeTempDir, startStack, type Stack } from '../support/index.js';
import { writeSecretKey } from '../support/secret-key.js';

describe('GetVolumeXML of a LUKS volume names the secret of its path, as libvirt after a refresh', function () {
  // each LUKS create runs the key slot's PBKDF (2 s of CPU time)
  this.timeout(180_000);
  let stack: Stack | undefined;
  let tmp: { path: string; remove: () => Promise<void> } | undefined;
  let target: string;

  before(async function () {
    this.timeout(120_000);
    if (!hasTool('qemu-img')) this.skip(); // skip reason: qemu-img is not installed (Debian package qemu-utils)
    tmp = makeTempDir('cistern-default-secret-');
    target = join(tmp.path, 'pool');
    stack = await startStack({ hosts: ['a'], coordinatorArgs: ['--secret-key-file', writeSecretKey(tmp.path)] });
  });
  after(async function () {
    this.timeout(60_000);
    await stack?.stop();
    await tmp?.remove();
  });

  const luksXml = (name: string, uuid: string) =>
    `<volume><name>${name}</name><capacity unit='M'>8</capacity><target><format type='raw'/>` +
    `<encryption format='luks'><secret type='passphrase' uuid='${uuid}'/></encryption></target></volume>`;
  const encryptionOf = (xml: string) => /<encryption[^]*<\/encryption>/.exec(xml)?.[0];

  it('prints the path secret, and none for a volume whose path no secret is for', async () => {
    const api = stack!.api;
    await api.definePool({ host: 'a', definition: PoolDefinition.fromPartial({ name: 'enc', type: PoolType.POOL_TYPE_DIR, target: { path: target } }), xml: '', requestId: '', validate: false });
    await api.startPool({ name: 'hosts/a/pools/enc', build: true, buildFlags: undefined, requestId: '' });
    const secret = await api.defineSecret({ secret: Secret.fromPartial({ usageType: SecretUsageType.SECRET_USAGE_TYPE_VOLUME, usageId: join(target, 'v') }), xml: '', requestId: '', validate: false });
    await api.setSecretValue({ name: secret.name, value: Buffer.from('passw0rd') });
    await api.createVolume({ parent: 'hosts/a/pools/enc', definition: undefined, xml: luksXml('v', secret.uuid), requestId: '' } as never);
    // made with the same secret, whose usage is another path: libvirt after a refresh prints none
    await api.createVolume({ parent: 'hosts/a/pools/enc', definition: undefined, xml: luksXml('w', secret.uuid), requestId: '' } as never);

    for (const refresh of [false, true]) {
      const v = await api.getVolumeXml({ name: 'hosts/a/pools/enc/volumes/v', refresh });
      expect(encryptionOf(v.xml), `refresh ${refresh}`).to.equal(
        `<encryption format='luks'>\n      <secret type='passphrase' uuid='${secret.uuid}'/>\n    </encryption>`,
      );
      const w = await api.getVolumeXml({ name: 'hosts/a/pools/enc/volumes/w', refresh });
      expect(encryptionOf(w.xml), `refresh ${refresh}`).to.equal(`<encryption format='luks'>\n    </encryption>`);
    }
    await api.refreshPool({ name: 'hosts/a/pools/enc', requestId: '' });
    const again = await api.getVolumeXml({ name: 'hosts/a/pools/enc/volumes/v', refresh: false });
    expect(encryptionOf(again.xml)).to.contain(`uuid='${secret.uuid}'`);
    // the structured volume is what the agent read: the XML is where libvirt's lookup shows
    const vol = await api.getVolume({ name: 'hosts/a/pools/enc/volumes/v', refresh: false });
    expect(vol.definition?.target?.encryption?.format).to.equal('luks');
  });

  it('prints no secret once the path secret is undefined', async () => {
    const api = stack!.api;
    const listed = await api.listSecrets({ pageSize: 0, pageToken: '' });
    const s = listed.secrets.find((x) => x.usageId === join(target, 'v'))!;
    await api.undefineSecret({ name: s.name, requestId: '' });
    const v = await api.getVolumeXml({ name: 'hosts/a/pools/enc/volumes/v', refresh: false });
    expect(encryptionOf(v.xml)).to.equal(`<encryption format='luks'>\n    </encryption>`);
  });
});
