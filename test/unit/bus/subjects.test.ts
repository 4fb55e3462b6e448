import { expect } from 'chai';
import { catalogKeys, nameToken, subjects, tokenToName } from '../../../libs/bus/subjects.js';

describe('bus subjects', () => {
  it('keeps safe pool names readable in subjects', () => {
    expect(subjects.events('a', 'default')).to.equal('cistern.events.a.default');
    expect(subjects.agentOp('a', 'CreateVolume')).to.equal('cistern.agent.a.CreateVolume');
  });

  it('encodes names that are not one safe subject token, reversibly', () => {
    for (const name of ['my.pool', 'with space', '*', '>', 'ünï', '~x', '=x', '_host', `${'é'.repeat(127)}a`]) {
      const token = nameToken(name);
      expect(token, name).to.not.equal(name);
      // one subject token, and a key the JetStream KV client accepts (@nats-io/kv validKeyRe)
      expect(token, name).to.match(/^[-=\w]+$/);
      expect(tokenToName(token)).to.equal(name);
    }
    expect(subjects.events('a', '_host')).to.not.equal(subjects.events('a', undefined));
  });

  it('builds catalog keys that parse back', () => {
    const key = catalogKeys.pool('h1', 'pool.with.dots');
    expect(key.split('.')).to.have.length(3);
    expect(catalogKeys.parsePool(key)).to.deep.equal({ host: 'h1', pool: 'pool.with.dots' });
    expect(catalogKeys.parsePool('hosts.h1')).to.equal(undefined);
  });
});
