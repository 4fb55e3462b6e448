// What the readers of the event stream believe of a stored event: its subject vouches for its
// host, and for a coordinator's kind only when a coordinator's user could have published it.
import { expect } from 'chai';
import { COORDINATOR_ONLY_KINDS } from '../../../libs/bus/events.js';
import { subjects } from '../../../libs/bus/subjects.js';
import { EventKind } from '../../../libs/proto/cistern/v1/storage.js';
import { untrustedEvent } from '../../../services/coordinator/event-log.js';

const agentKinds = [EventKind.POOL_STARTED, EventKind.POOL_REFRESHED, EventKind.VOLUME_CREATED, EventKind.VOLUME_DELETED, EventKind.OPERATION_PROGRESS];

describe('which stored events the readers believe (untrustedEvent)', () => {
  it("refuses a coordinator's kind under an agent's subject, whatever its principal, and takes it under a coordinator's", () => {
    expect([...COORDINATOR_ONLY_KINDS].map((k) => EventKind[k]).sort()).to.deep.equal(['HOST_DELETED', 'HOST_OFFLINE', 'HOST_ONLINE', 'POOL_DEFINED', 'POOL_UNDEFINED']);
    for (const kind of COORDINATOR_ONLY_KINDS) {
      for (const pool of [undefined, 'p']) {
        expect(untrustedEvent(subjects.agentEvents('a', pool), { host: 'a', pool: pool ?? '', kind }), EventKind[kind]).to.match(/only coordinators publish .* under an agent's subject/);
        expect(untrustedEvent(subjects.coordinatorEvents('a', pool), { host: 'a', pool: pool ?? '', kind }), EventKind[kind]).to.equal(undefined);
      }
    }
    // agents' kinds from either: coordinators publish reconcile events of those kinds
    for (const kind of agentKinds) {
      expect(untrustedEvent(subjects.agentEvents('a', 'p'), { host: 'a', pool: 'p', kind })).to.equal(undefined);
      expect(untrustedEvent(subjects.coordinatorEvents('a', 'p'), { host: 'a', pool: 'p', kind })).to.equal(undefined);
    }
  });

  it("refuses an event naming another host than its subject's, from either origin", () => {
    for (const subject of [subjects.agentEvents('b', 'p'), subjects.coordinatorEvents('b', 'p'), 'cistern.events.b.p']) {
      expect(untrustedEvent(subject, { host: 'a', pool: 'p', kind: EventKind.POOL_STARTED }), subject).to.equal('naming another host than its subject');
    }
  });

  it("takes an older version's four-token subject by its host alone, and refuses a subject that is no event subject", () => {
    expect(untrustedEvent('cistern.events.a._host', { host: 'a', pool: '', kind: EventKind.HOST_DELETED })).to.equal(undefined);
    expect(untrustedEvent('cistern.events.a.p', { host: 'a', pool: 'p', kind: EventKind.POOL_STARTED })).to.equal(undefined);
    for (const subject of ['cistern.events.a.p.x', 'cistern.events.a.p.a.more', 'cistern.heartbeat.a']) {
      expect(untrustedEvent(subject, { host: 'a', pool: 'p', kind: EventKind.POOL_STARTED }), subject).to.equal('stored under a subject that is no event subject');
    }
  });
});

describe('an event names the pool of its subject', () => {
  // a pool-filtered watcher reads the pool's subject, an unfiltered one everything: an event
  // under one pool's subject naming another would be shown to one and not the other (found by
  // review h35); readers refuse it, as one naming another host
  it('refuses an event whose pool is not its subject\'s, or a host event under a pool\'s subject', () => {
    expect(untrustedEvent(subjects.agentEvents('a', 'p'), { host: 'a', pool: 'q', kind: EventKind.VOLUME_CREATED })).to.equal('naming another pool than its subject');
    expect(untrustedEvent(subjects.agentEvents('a', 'p'), { host: 'a', pool: '', kind: EventKind.POOL_STARTED })).to.equal('naming another pool than its subject');
    expect(untrustedEvent(subjects.agentEvents('a', undefined), { host: 'a', pool: 'p', kind: EventKind.VOLUME_CREATED })).to.equal('naming another pool than its subject');
    expect(untrustedEvent(subjects.agentEvents('a', 'my pool'), { host: 'a', pool: 'my pool', kind: EventKind.VOLUME_CREATED })).to.equal(undefined);
    expect(untrustedEvent(subjects.coordinatorEvents('a', undefined), { host: 'a', pool: '', kind: EventKind.HOST_ONLINE })).to.equal(undefined);
  });

  // a four-token subject is an older version's, written with that version's encoding of the
  // name (a pool named '_host' as itself before 4aca557, '=' instead of '~' for a while before
  // 10cdf03); a replay filtered to a pool reads every subject while such events lie ahead and
  // filters them by their pool itself (handlers/events.ts replaySubject), so filtered and
  // unfiltered watchers see them alike: taken by their host alone, as docs/events.md says
  it("takes an older version's four-token event by its host alone, whatever its pool token", () => {
    expect(untrustedEvent('cistern.events.a._host', { host: 'a', pool: '_host', kind: EventKind.VOLUME_CREATED })).to.equal(undefined);
    expect(untrustedEvent('cistern.events.a.=bXkgcG9vbA', { host: 'a', pool: 'my pool', kind: EventKind.VOLUME_CREATED })).to.equal(undefined);
    expect(untrustedEvent('cistern.events.a.p', { host: 'a', pool: 'q', kind: EventKind.VOLUME_CREATED })).to.equal(undefined);
    expect(untrustedEvent('cistern.events.b.p', { host: 'a', pool: 'p', kind: EventKind.VOLUME_CREATED })).to.equal('naming another host than its subject');
  });
});
