// libvirt <secret> XML: what virsh 9.0's secret-dumpxml prints (virSecretDefFormat), read
// back as it was written. The expected documents were printed by a private libvirtd 9.0.
import { expect } from 'chai';
import { Secret, SecretUsageType } from '../../../libs/proto/cistern/v1/storage.js';
import { formatSecretXml, parseSecretXml, secretUsageTypeName } from '../../../libs/xml/secret.js';

describe('secret XML', () => {
  it('prints an iscsi secret as libvirt 9.0 does, the description escaped', () => {
    const secret = Secret.create({
      uuid: '86d58299-8498-43b0-afa9-259128e57158',
      private: true,
      description: 'CHAP for <t1> & "x"',
      usageType: SecretUsageType.SECRET_USAGE_TYPE_ISCSI,
      usageId: 'libvirtiscsi-s25',
    });
    expect(formatSecretXml(secret)).to.equal(
      "<secret ephemeral='no' private='yes'>\n" +
        '  <uuid>86d58299-8498-43b0-afa9-259128e57158</uuid>\n' +
        '  <description>CHAP for &lt;t1&gt; &amp; &quot;x&quot;</description>\n' +
        "  <usage type='iscsi'>\n" +
        '    <target>libvirtiscsi-s25</target>\n' +
        '  </usage>\n' +
        '</secret>\n',
    );
  });

  it('prints a volume secret without description, and one without usage', () => {
    expect(formatSecretXml(Secret.create({ uuid: '0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f', usageType: SecretUsageType.SECRET_USAGE_TYPE_VOLUME, usageId: '/var/lib/x.img' }))).to.equal(
      "<secret ephemeral='no' private='no'>\n" +
        '  <uuid>0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f</uuid>\n' +
        "  <usage type='volume'>\n" +
        '    <volume>/var/lib/x.img</volume>\n' +
        '  </usage>\n' +
        '</secret>\n',
    );
    expect(formatSecretXml(Secret.create({ uuid: '2aa1f882-be5a-4f07-9565-7da0af4e4e86', ephemeral: true }))).to.equal(
      "<secret ephemeral='yes' private='no'>\n  <uuid>2aa1f882-be5a-4f07-9565-7da0af4e4e86</uuid>\n</secret>\n",
    );
  });

  it('reads back what it prints, for each usage type', () => {
    for (const [usageType, usageId] of [
      [SecretUsageType.SECRET_USAGE_TYPE_ISCSI, 'iqn.2026-11.test:t'],
      [SecretUsageType.SECRET_USAGE_TYPE_VOLUME, '/srv/a&b.img'],
      [SecretUsageType.SECRET_USAGE_TYPE_CEPH, 'client.admin'],
    ] as const) {
      const secret = Secret.create({ uuid: '6c7b0b60-3c69-4c5b-9d23-1f8d2f0d7a11', description: "it's", usageType, usageId, private: true });
      expect(parseSecretXml(formatSecretXml(secret))).to.deep.equal(secret);
    }
  });

  it('names usage types as libvirt does', () => {
    expect(secretUsageTypeName(SecretUsageType.SECRET_USAGE_TYPE_CEPH)).to.equal('ceph');
    expect(secretUsageTypeName(SecretUsageType.SECRET_USAGE_TYPE_UNSPECIFIED)).to.equal('');
  });
});

describe('secret XML refusals', () => {
  it('names the root element it found, and a namespace it is in', () => {
    expect(() => parseSecretXml('<pool/>')).to.throw(/^xml: unexpected root element <pool>, expecting <secret>$/);
    expect(() => parseSecretXml("<secret xmlns='urn:x'/>")).to.throw(/root element <secret> is in namespace 'urn:x'; libvirt's <secret> is in no namespace/);
    expect(() => parseSecretXml("<secret><usage type='tls'><name>x</name></usage></secret>")).to.throw(/secret\/usage\/@type.*'tls' is not one of iscsi, volume, ceph/);
  });
});

describe('secret XML uuid', () => {
  // libvirt's virUUIDParse takes 32 hex digits with or without dashes (basictypes.rng allows
  // both): virsh secret-define of <uuid>1a81f5b284037b23c8d621ccc2f80d6f</uuid> defines secret
  // 1a81f5b2-8403-7b23-c8d6-21ccc2f80d6f on libvirt 9.0, as a pool's <uuid> here does
  it('reads a uuid written without dashes, or in capitals, as libvirt does', () => {
    expect(parseSecretXml('<secret><uuid>1a81f5b284037b23c8d621ccc2f80d6f</uuid></secret>').uuid).to.equal('1a81f5b2-8403-7b23-c8d6-21ccc2f80d6f');
    expect(parseSecretXml('<secret><uuid> 1A81F5B2-8403-7B23-C8D6-21CCC2F80D6F </uuid></secret>').uuid).to.equal('1a81f5b2-8403-7b23-c8d6-21ccc2f80d6f');
  });

  it('refuses a malformed uuid naming the element and what is expected', () => {
    expect(() => parseSecretXml('<secret><uuid>1a81f5b2-8403</uuid></secret>')).to.throw(/^xml: secret\/uuid: malformed uuid '1a81f5b2-8403'; expected 32 hexadecimal digits/);
  });
});
