import { expect } from 'chai';
import { catalogKeys, nameToken, subjects, tokenToName } from '../../../libs/bus/subjects.js';

describe('bus subjects', () => {
  it('keeps safe pool names readable in subjects', () => {
    expect(subjects.events('a', 'default')).to.equal('cistern.events.a.default');
    expect(subjects.agentOp('a', 'CreateVolume')).to.equal('cistern.agent.a.CreateVolume');
  });

  it('encodes names that are not one safe subject token, reversibly', () => {
    for (const name of ['my.pool', 'with space', '*', '>', 'ünï', '~x', 'a'.repeat(255)]) {
      const token = nameToken(name);
      expect(token, name).to.match(/^[A-Za-z0-9_~-]+$/);
      expect(tokenToName(token)).to.equal(name);
    }
  });

  it('builds catalog keys that parse back', () => {
    const key = catalogKeys.pool('h1', 'pool.with.dots');
    expect(key.split('.')).to.have.length(3);
    expect(catalogKeys.parsePool(key)).to.deep.equal({ host: 'h1', pool: 'pool.with.dots' });
    expect(catalogKeys.parsePool('hosts.h1')).to.equal(undefined);
  });
});
