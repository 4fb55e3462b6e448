import { expect } from 'chai';
import { catalogKeys, keyToken, nameToken, parseEventSubject, subjects, tokenToName } from '../../../libs/bus/subjects.js';
import { tokenAfter } from '../../../libs/bus/delivered-subject.js';

describe('bus subjects', () => {
  it('keeps safe pool names readable in subjects', () => {
    expect(subjects.agentEvents('a', 'default')).to.equal('cistern.events.a.default.a');
    expect(subjects.agentOp('a', 'CreateVolume')).to.equal('cistern.agent.a.CreateVolume');
  });

  it('encodes names that are not one safe subject token, reversibly', () => {
    for (const name of ['my.pool', 'with space', '*', '>', 'ünï', '~x', '=x', `${'é'.repeat(127)}a`]) {
      const token = nameToken(name);
      expect(token, name).to.match(/^~[-\w]+$/); // as stored events' subjects have it (docs/events.md)
      expect(tokenToName(token)).to.equal(name);
      // a key the JetStream KV client accepts (@nats-io/kv validKeyRe)
      const key = keyToken(name);
      expect(key, name).to.match(/^=[-\w]+$/);
      expect(tokenToName(key)).to.equal(name);
    }
    for (const safe of ['images', '_scratch', 'a-b_c']) expect([nameToken(safe), keyToken(safe)]).to.deep.equal([safe, safe]);
  });

  it('never gives a pool the subject of its host\'s own events', () => {
    for (const make of [subjects.agentEvents, subjects.coordinatorEvents]) {
      const hostEvents = make('a', undefined);
      expect(hostEvents).to.match(/^cistern\.events\.a\._host\.[ac]$/);
      const pool = make('a', '_host');
      expect(pool).to.not.equal(hostEvents);
      expect(tokenToName(pool.split('.')[3]!)).to.equal('_host');
    }
  });

  it("names an event's origin in its subject's last token, which the filters take both of", () => {
    expect(subjects.agentEvents('a', 'p')).to.equal('cistern.events.a.p.a');
    expect(subjects.coordinatorEvents('a', 'p')).to.equal('cistern.events.a.p.c');
    expect(subjects.coordinatorEvents('a', undefined)).to.equal('cistern.events.a._host.c');
    expect(subjects.eventsOfPool('*', 'my pool')).to.equal('cistern.events.*.~bXkgcG9vbA.*');
    expect(parseEventSubject('cistern.events.a.p.a')).to.deep.equal({ host: 'a', poolToken: 'p', origin: 'agent' });
    expect(parseEventSubject('cistern.events.a._host.c')).to.deep.equal({ host: 'a', poolToken: '_host', origin: 'coordinator' });
    // an older version's four tokens
    expect(parseEventSubject('cistern.events.a.p')).to.deep.equal({ host: 'a', poolToken: 'p', origin: 'legacy' });
    for (const none of ['cistern.events.a.p.x', 'cistern.events.a.p.a.b', 'cistern.events.a', 'cistern.heartbeat.a.p.a', 'cistern.events..p.a']) {
      expect(parseEventSubject(none), none).to.equal(undefined);
    }
  });

  it("takes a sync's or secret request's host only from its own subject, not from a stored event's", () => {
    expect(tokenAfter(subjects.syncPrefix, subjects.sync('a'))).to.equal('a');
    expect(tokenAfter(subjects.poolSecretsPrefix, subjects.poolSecrets('h-1'))).to.equal('h-1');
    // what a push consumer delivers keeps the subject it was stored under: the last token is
    // the origin ('a'), which a host may be named too
    for (const other of [subjects.agentEvents('b', 'p'), 'cistern.sync', 'cistern.sync.', 'cistern.sync.a.b', 'cistern.syncx.a', 'x.cistern.sync.a']) {
      expect(tokenAfter(subjects.syncPrefix, other), other).to.equal(undefined);
    }
  });

  it('builds catalog keys that parse back', () => {
    const key = catalogKeys.pool('h1', 'pool.with.dots');
    expect(key.split('.')).to.have.length(3);
    expect(catalogKeys.parsePool(key)).to.deep.equal({ host: 'h1', pool: 'pool.with.dots' });
    expect(catalogKeys.parsePool('hosts.h1')).to.equal(undefined);
  });
});
