// Whether a pool document carries its uuid decides whether DefinePool with a request id makes
// one up (handlers/pools.ts uuidOfRequest): a uuid the client wrote, however it wrote it, is kept.
import { expect } from 'chai';
import { poolDefinitionAsGiven, poolDefinitionFrom } from '../../../services/coordinator/validate.js';

const UUID = '70a7eb15-6c34-ee9c-bf57-69e8e5ff3fb2';
const doc = (uuid: string): string => `<pool type='dir'><name>p</name>${uuid}<target><path>/srv/p</path></target></pool>`;

describe('poolDefinitionAsGiven: the uuid a pool document carries', () => {
  const written: Array<[string, string]> = [
    ['as canonical', `<uuid>${UUID}</uuid>`],
    ['in capitals without dashes', `<uuid>${UUID.replace(/-/g, '').toUpperCase()}</uuid>`],
    ['with a hex character reference', `<uuid>&#x37;${UUID.slice(1)}</uuid>`],
    ['with a decimal character reference for a dash', `<uuid>${UUID.slice(0, 8)}&#45;${UUID.slice(9)}</uuid>`],
    ['in a CDATA section', `<uuid><![CDATA[${UUID}]]></uuid>`],
  ];
  for (const [how, element] of written) {
    it(`keeps a uuid written ${how}`, async () => {
      const xml = doc(element);
      const def = await poolDefinitionFrom(undefined, xml);
      expect(def.uuid).to.equal(UUID);
      expect(poolDefinitionAsGiven(def, { xml }).uuid).to.equal(UUID);
    });
  }

  it('leaves out the uuid the reader made up for a document without one', async () => {
    const xml = doc('');
    const def = await poolDefinitionFrom(undefined, xml);
    expect(def.uuid).to.match(/^[0-9a-f-]{36}$/);
    expect(poolDefinitionAsGiven(def, { xml }).uuid).to.equal('');
  });
});
