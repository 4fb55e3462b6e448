import { expect } from 'chai';
import { checkSecretDefinition, parseSecretName } from '../../../services/coordinator/secrets/store.js';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';
import { Secret, SecretUsageType } from '../../../libs/proto/cistern/v1/storage.js';

const UUID = '0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f';

describe('DefineSecret: which uuid a definition gets', () => {
  it('takes the uuid from name when only name is given', () => {
    const def = checkSecretDefinition(Secret.fromPartial({ name: `secrets/${UUID}`, usageType: SecretUsageType.SECRET_USAGE_TYPE_ISCSI, usageId: 'iqn.x' }));
    expect(def.uuid).to.equal(UUID);
    expect(def.name).to.equal(`secrets/${UUID}`);
  });

  it('takes it from uuid, and accepts a name that agrees', () => {
    expect(checkSecretDefinition(Secret.fromPartial({ uuid: UUID })).name).to.equal(`secrets/${UUID}`);
    expect(checkSecretDefinition(Secret.fromPartial({ uuid: UUID, name: `secrets/${UUID}` })).uuid).to.equal(UUID);
  });

  it('refuses a name and a uuid that disagree, naming the field', () => {
    const other = '11111111-2222-3333-4444-555555555555';
    expect(() => checkSecretDefinition(Secret.fromPartial({ uuid: UUID, name: `secrets/${other}` })))
      .to.throw(InvalidArgumentError, `secret.name: names secret 'secrets/${other}' but uuid is '${UUID}'`);
  });

  it('generates a uuid when neither is given', () => {
    const a = checkSecretDefinition(Secret.fromPartial({}));
    const b = checkSecretDefinition(Secret.fromPartial({}));
    expect(a.uuid).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(a.uuid).to.not.equal(b.uuid);
    expect(a.name).to.equal(`secrets/${a.uuid}`);
  });
});

describe('DefineSecret: the description', () => {
  // libvirt 9.0 keeps a <description> as written, lines and tabs included (a private
  // libvirtd's secret-dumpxml prints 'line one\n\tline two' back)
  it('keeps a description of several lines, with tabs, as libvirt does', () => {
    const description = 'line one\n\tline two';
    expect(checkSecretDefinition(Secret.fromPartial({ uuid: UUID, description })).description).to.equal(description);
  });

  it('still refuses other control characters, naming the field', () => {
    expect(() => checkSecretDefinition(Secret.fromPartial({ uuid: UUID, description: 'a\x1b[2Jb' }))).to.throw(InvalidArgumentError, /secret\.description: .*control character/);
    expect(() => checkSecretDefinition(Secret.fromPartial({ uuid: UUID, description: 'a\rb' }))).to.throw(InvalidArgumentError, /secret\.description/);
  });
});

describe('a secret named by its uuid', () => {
  // virsh secret-dumpxml/secret-set-value/secret-undefine look a secret up with
  // virSecretLookupByUUIDString, whose virUUIDParse takes 32 hex digits without dashes too
  it('takes the uuid without dashes, as libvirt does, and gives it canonical', () => {
    expect(parseSecretName('0a81f5b284037b23c8d621ccc2f80d6f')).to.equal(UUID);
    expect(parseSecretName('secrets/0A81F5B284037B23C8D621CCC2F80D6F')).to.equal(UUID);
  });

  it('still refuses what is not 32 hex digits, naming the field', () => {
    expect(() => parseSecretName('0a81f5b284037b23c8d621ccc2f80d6', 'name')).to.throw(InvalidArgumentError, /^name: /);
    expect(() => parseSecretName('0a81f5b2-8-4037b23c8d621ccc2f80d6f', 'name')).to.throw(InvalidArgumentError, /^name: .*32 hexadecimal digits/);
  });
});
