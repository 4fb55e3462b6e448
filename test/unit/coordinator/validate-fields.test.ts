// Errors about a structured definition name the request's field, as a client sent it.
import { expect } from 'chai';
import { checkResizeCapacity, poolDefinitionFrom, volumeDefinitionFrom } from '../../../services/coordinator/validate.js';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';
import { PoolDefinition, PoolType, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';

async function refusal(p: Promise<unknown>): Promise<InvalidArgumentError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error('expected INVALID_ARGUMENT');
}

const dir = PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: '/srv/p' } });

describe('request fields in INVALID_ARGUMENT for structured definitions', () => {
  it('pools: definition.<field>, the detail kept', async () => {
    const err = await refusal(poolDefinitionFrom({ ...dir, uuid: 'not-a-uuid' }, ''));
    expect(err.field).to.equal('definition.uuid');
    expect(err.message).to.match(/^definition\.uuid: /);
    expect(err.message).to.not.match(/^definition\.uuid: uuid: /);
  });

  it('volumes: definition.<field> (or the clone field given), never volume.<field>', async () => {
    const noCapacity = VolumeDefinition.fromPartial({ name: 'v' });
    expect((await refusal(volumeDefinitionFrom(noCapacity, '', dir))).field).to.equal('definition.capacity');
    const badFormat = VolumeDefinition.fromPartial({ name: 'v', capacity: 1024n, target: { format: 'nope' } });
    const err = await refusal(volumeDefinitionFrom(badFormat, '', dir, { defField: 'new_volume' }));
    expect(err.field).to.match(/^new_volume\.target\.format$/);
    // given as XML, errors name the document's element, with its line
    const xmlErr = await refusal(volumeDefinitionFrom(undefined, "<volume><name>v</name><capacity>1</capacity><target><format type='nope'/></target></volume>", dir));
    expect(xmlErr.field).to.not.match(/^definition/);
  });
});

describe('ResizeVolume capacity', () => {
  it("refuses an absolute 0 as libvirt's virStorageVolResize does, naming the field; 0 with delta or shrink is fine", () => {
    let err: unknown;
    try {
      checkResizeCapacity({ capacity: 0n, delta: false, shrink: false });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).field).to.equal('capacity');
    expect((err as Error).message).to.equal('capacity: cannot be zero without the delta or shrink flag; allowed: a new size above 0 bytes, or 0 with delta or shrink');
    for (const ok of [{ capacity: 0n, delta: true, shrink: false }, { capacity: 0n, delta: false, shrink: true }, { capacity: 1n, delta: false, shrink: false }]) {
      expect(() => checkResizeCapacity(ok)).to.not.throw();
    }
    expect(() => checkResizeCapacity({ capacity: -1n, delta: true, shrink: false })).to.throw(InvalidArgumentError, /out of range/);
  });
});
