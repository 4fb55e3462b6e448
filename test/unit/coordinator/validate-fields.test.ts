// Errors about a structured definition name the request's field, as a client sent it.
import { expect } from 'chai';
import { checkPoolType, checkPoolTypes, checkResizeCapacity, definitionErrorsUnderRequest, poolDefinitionFrom, volumeDefinitionFrom } from '../../../services/coordinator/validate.js';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';
import { FindPoolSourcesRequest, PoolDefinition, PoolType, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { findPoolSources } from '../../../services/coordinator/handlers/pools.js';
import type { CallContext, CoordinatorServices } from '../../../services/coordinator/context.js';

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

  it('CreatePool: an agent refusing a definition field it names without the pool. prefix (source.devices) is the request\'s field too', async () => {
    const agent = Promise.reject(new InvalidArgumentError('source.devices', "pool 'p' needs exactly one source device, it has 2"));
    const err = await refusal(definitionErrorsUnderRequest('pool', { xml: '' }, agent));
    expect(err.field).to.equal('definition.source.devices');
    const fromXml = await refusal(definitionErrorsUnderRequest('pool', { xml: '<pool/>' }, Promise.reject(new InvalidArgumentError('source.devices[0].path', 'is not absolute'))));
    expect(fromXml.field).to.equal('xml');
    expect(fromXml.message).to.contain('source.devices[0].path: is not absolute');
    // the request's own fields stay as they are
    const own = await refusal(definitionErrorsUnderRequest('pool', { xml: '' }, Promise.reject(new InvalidArgumentError('request_id', 'reused'))));
    expect(own.field).to.equal('request_id');
  });

  it("pools: a structured definition is held to the XML form's limits, naming the repeated field", async () => {
    // accepted before: 20,000 devices made a document DefinePool refused, and past 1 MiB the
    // catalog write failed INTERNAL with a NATS message
    const devices = Array.from({ length: 10_001 }, (_, i) => ({ path: `/dev/sd${i}` }));
    const logical = PoolDefinition.fromPartial({ name: 'vg', type: PoolType.POOL_TYPE_LOGICAL, source: { name: 'vg', devices } });
    const err = await refusal(poolDefinitionFrom(logical, ''));
    expect(err.field).to.equal('definition.source.devices');
    expect(err.message).to.match(/^definition\.source\.devices: has 10001 entries \(10001 repeated entries in all\); at most 10000 in all are allowed, as in the XML form/);
    const big = PoolDefinition.fromPartial({ name: 'vg', type: PoolType.POOL_TYPE_LOGICAL, source: { name: 'vg', devices: devices.slice(0, 9000).map((d) => ({ path: `${d.path}${'x'.repeat(120)}` })) } });
    const bytes = await refusal(poolDefinitionFrom(big, ''));
    expect(bytes.field).to.equal('definition');
    expect(bytes.message).to.match(/^definition: is \d+ bytes encoded; at most 1048576 are allowed/);
  });

  it('volumes: definition.<field> (or the clone field given), never volume.<field>', async () => {
    const noCapacity = VolumeDefinition.fromPartial({ name: 'v' });
    expect((await refusal(volumeDefinitionFrom(noCapacity, '', dir))).field).to.equal('definition.capacity');
    const badFormat = VolumeDefinition.fromPartial({ name: 'v', capacity: 1024n, target: { format: 'nope' } });
    const err = await refusal(volumeDefinitionFrom(badFormat, '', dir, { defField: 'new_volume' }));
    expect(err.field).to.match(/^new_volume\.target\.format$/);
    // given as XML, errors name the request's xml field; the message names the element and its line
    const xmlErr = await refusal(volumeDefinitionFrom(undefined, "<volume><name>v</name><capacity>1</capacity><target><format type='nope'/></target></volume>", dir));
    expect(xmlErr.field).to.equal('xml');
    expect(xmlErr.message).to.match(/^xml: volume\/target\/format\/@type: unknown volume format type 'nope'/);
    expect(xmlErr.details).to.include({ field: 'xml', line: '1' });
  });
});

// What a client reads as BadRequest's field violation (and x-cistern-field): the request field
// it sent the document in, never the reader's own names for places in the document.
describe('request fields in INVALID_ARGUMENT for documents given as XML', () => {
  const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
    ['pool: malformed', () => poolDefinitionFrom(undefined, "<pool type='dir'><name>x</name>"), /^xml: (pool: )?malformed XML/],
    ['pool: wrong root element', () => poolDefinitionFrom(undefined, '<volume/>'), /^xml: unexpected root element <volume>, expecting <pool>/],
    ['pool: unknown type', () => poolDefinitionFrom(undefined, "<pool type='zzz'><name>x</name></pool>"), /^xml: pool\/@type: unsupported pool type 'zzz'/],
    ['pool: relative target', () => poolDefinitionFrom(undefined, "<pool type='dir'><name>x</name><target><path>rel</path></target></pool>"), /^xml: pool\/target\/path: path 'rel' is not absolute/],
    ['pool: no target', () => poolDefinitionFrom(undefined, "<pool type='dir'><name>x</name></pool>"), /^xml: target\.path: missing storage pool target path/],
    ['volume: malformed', () => volumeDefinitionFrom(undefined, '<volume><name>v</name>', dir), /^xml: (volume: )?malformed XML/],
    ['volume: wrong root element', () => volumeDefinitionFrom(undefined, '<pool/>', dir), /^xml: unexpected root element <pool>, expecting <volume>/],
    ['volume: no name', () => volumeDefinitionFrom(undefined, '<volume><capacity>1</capacity></volume>', dir), /^xml: name: missing volume name element/],
  ];
  for (const [what, call, message] of cases) {
    it(`${what}: field xml`, async () => {
      const err = await refusal(call());
      expect(err.field, err.message).to.equal('xml');
      expect(err.details.field).to.equal('xml');
      expect(err.message).to.match(message);
    });
  }

  it('FindPoolSources: field source_xml (its source field is the structured one)', async () => {
    // refused before the host is looked up: no services are needed
    const svc = {} as CoordinatorServices;
    const ctx = {} as CallContext;
    for (const sourceXml of ['<source', '<pool/>']) {
      const err = await refusal(findPoolSources(svc, ctx, FindPoolSourcesRequest.fromPartial({ host: 'a', type: PoolType.POOL_TYPE_LOGICAL, sourceXml })));
      expect(err.field, err.message).to.equal('source_xml');
      expect(err.message).to.match(/^source_xml: /);
    }
  });

  it('CloneVolume names its own xml field when it has another', async () => {
    const err = await refusal(volumeDefinitionFrom(undefined, '<pool/>', dir, { cloning: true, xmlField: 'new_xml' }));
    expect(err.field).to.equal('new_xml');
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

describe('pool types in filters and definitions', () => {
  // ListPools.types and FindPoolSources.type: an unknown or unset enum value says what is allowed
  for (const bad of [0, 99, -1]) {
    it(`refuses ${bad}, naming the field and the values allowed`, async () => {
      let err: InvalidArgumentError | undefined;
      try {
        checkPoolTypes([PoolType.POOL_TYPE_DIR, bad as PoolType], 'types');
      } catch (e) {
        err = e as InvalidArgumentError;
      }
      // a repeated field's refusal names the entry
      expect(err?.field).to.equal('types[1]');
      expect(err?.message).to.match(new RegExp(`^types\\[1\\]: pool type ${bad} is not valid; allowed: POOL_TYPE_DIR \\(1\\) .* POOL_TYPE_MPATH \\(9\\)`));
      expect(() => checkPoolType(bad as PoolType, 'type')).to.throw(InvalidArgumentError, new RegExp(`^type: pool type ${bad} is not valid`));
      const def = await refusal(poolDefinitionFrom({ ...dir, type: bad as PoolType }, ''));
      expect(def.message).to.match(new RegExp(`^definition.type: pool type ${bad} is not valid; allowed: POOL_TYPE_DIR \\(1\\)`));
    });
  }
});
