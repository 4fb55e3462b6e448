// Bidi controls and other invisible format characters in new names. libvirt takes any UTF-8 but
// '/' in a name, so a volume named 'a\u202Egpj.exe' lists as 'aexe.jpg', and one named
// 'vm1\u200B.img' as 'vm1.img', beside the real one: cisternctl's listings, error messages and
// logs could be made to show one object under another's name. New pool and volume names and
// secret usage ids refuse them; names already on a host (a refresh lists what is in a dir pool)
// stay reachable, and are shown with the characters escaped wherever Cistern echoes them.
import { expect } from 'chai';
import { poolDefinitionFrom, volumeDefinitionFrom } from '../../../services/coordinator/validate.js';
import { checkSecretDefinition } from '../../../services/coordinator/secrets/store.js';
import { checkExistingVolumeName, printable } from '../../../libs/api/names.js';
import { parsePoolName, parseVolumeName } from '../../../libs/api/resource-names.js';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';
import { PoolDefinition, PoolType, Secret, SecretUsageType, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';

async function refusal(p: Promise<unknown> | (() => unknown)): Promise<InvalidArgumentError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(err).to.be.instanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error('expected INVALID_ARGUMENT');
}

const dir = PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: '/srv/p' } });

// U+202A-202E and U+2066-2069 (bidi embeddings, overrides, isolates), U+200E/F and U+061C
// (marks), U+200B (zero width space), U+2060 (word joiner), U+FEFF, U+00AD (soft hyphen),
// U+2028/2029 (line and paragraph separators: a line break in a log)
const SPOOFS: [string, string][] = [
  ['a\u202Egpj.exe', 'U+202E'],
  ['\u202Ax', 'U+202A'],
  ['x\u2066y\u2069', 'U+2066'],
  ['x\u2069', 'U+2069'],
  ['x\u200Fy', 'U+200F'],
  ['x\u061Cy', 'U+061C'],
  ['vm1\u200B.img', 'U+200B'],
  ['x\u2060y', 'U+2060'],
  ['\uFEFFx', 'U+FEFF'],
  ['x\u00ADy', 'U+00AD'],
  ['x\u2028y', 'U+2028'],
  ['x\u2029y', 'U+2029'],
];

describe('invisible and direction-changing characters in names', () => {
  for (const [name, code] of SPOOFS) {
    it(`a new pool or volume name, or a secret usage id, with ${code} is refused naming the field, the character and the rule`, async () => {
      for (const [field, err] of [
        ['definition.name', await refusal(poolDefinitionFrom({ ...dir, name }, ''))],
        ['xml', await refusal(poolDefinitionFrom(undefined, `<pool type='dir'><name>${name}</name><target><path>/srv/p</path></target></pool>`))],
        ['definition.name', await refusal(volumeDefinitionFrom(VolumeDefinition.fromPartial({ name, capacity: 1024n }), '', dir))],
        ['xml', await refusal(volumeDefinitionFrom(undefined, `<volume><name>${name}</name><capacity>1024</capacity></volume>`, dir))],
        [
          'secret.usage_id',
          await refusal(() => checkSecretDefinition(Secret.fromPartial({ usageType: SecretUsageType.SECRET_USAGE_TYPE_CEPH, usageId: name }))),
        ],
      ] as const) {
        expect(err.field, err.message).to.equal(field);
        expect(err.message).to.contain(`contains ${code}`);
        expect(err.message).to.match(/invisible or direction-changing/);
        // the message itself shows the name escaped, not reordered or hidden
        expect(err.message).to.contain(`\\u${code.slice(2).toLowerCase()}`);
        expect(err.message).to.not.match(/[\u00AD\u061C\u200B-\u200F\u2028-\u202E\u2060-\u2069\uFEFF]/);
      }
    });
  }

  it('a name with such a character already on a host is still reachable, and is echoed escaped', () => {
    for (const [name] of SPOOFS) {
      expect(() => checkExistingVolumeName(name, 'volume')).to.not.throw();
      expect(parseVolumeName(`hosts/a/pools/p/volumes/${name}`).volume).to.equal(name);
      expect(parsePoolName(`hosts/a/pools/${name}`).pool).to.equal(name);
      expect(printable(name)).to.not.match(/[\u00AD\u061C\u200B-\u200F\u2028-\u202E\u2060-\u2069\uFEFF]/);
    }
    expect(printable('a\u202Egpj.exe')).to.equal('a\\u202egpj.exe');
  });

  it('takes names libvirt takes that only look unusual: scripts, emoji, joiners inside a word', async () => {
    for (const name of ['ünïcødé', 'دیسک‌اصلی', '👩‍💻.img', 'диск', '磁盘']) {
      expect((await poolDefinitionFrom({ ...dir, name }, '')).name).to.equal(name);
      expect((await volumeDefinitionFrom(VolumeDefinition.fromPartial({ name, capacity: 1024n }), '', dir)).name).to.equal(name);
    }
  });
});
