// DeleteHost's rules, decided before anything changes (services/coordinator/handlers/hosts.ts):
// which host may be forgotten, and the error a caller gets otherwise.
import { expect } from 'chai';
import { FailedPreconditionError, NotFoundError, type CisternError } from '../../../libs/errors/errors.js';
import { toGrpcError } from '../../../libs/errors/grpc-status.js';
import { status } from '@grpc/grpc-js';
import { Host } from '../../../libs/proto/cistern/v1/storage.js';
import { checkHostDeletable, type HostDeletionFacts } from '../../../services/coordinator/handlers/hosts.js';
import type { HostEntry } from '../../../services/coordinator/hosts/entry.js';

const entry = (online: boolean): HostEntry => ({
  host: Host.fromPartial({ hostId: 'h1', name: 'hosts/h1', online, lastSeen: new Date('2026-01-02T03:04:05.000Z') }),
  bootId: 1n,
  intervalMs: 2000,
  lastHeartbeatAt: 0,
  online,
  synced: true,
  syncAsks: 0,
});

const facts = (over: Partial<HostDeletionFacts>): HostDeletionFacts => ({ host: 'h1', entry: entry(false), alive: false, catalogPools: [], force: false, ...over });

function refusal(f: HostDeletionFacts): CisternError {
  try {
    checkHostDeletable(f);
  } catch (err) {
    return err as CisternError;
  }
  throw new Error('expected a refusal');
}

describe('DeleteHost rules', () => {
  it('an offline host without pools in the catalog may be deleted, with or without force', () => {
    expect(() => checkHostDeletable(facts({}))).to.not.throw();
    expect(() => checkHostDeletable(facts({ force: true }))).to.not.throw();
  });

  it('a host whose agent is alive is FAILED_PRECONDITION, naming the host and why', () => {
    const online = refusal(facts({ entry: entry(true), alive: true }));
    expect(online).to.be.instanceOf(FailedPreconditionError);
    expect(online.message).to.equal(
      "host 'h1' is online (last seen 2026-01-02T03:04:05.000Z); stop its agent first: a running agent registers the host again at its next heartbeat",
    );
    expect(online.details).to.include({ host: 'h1' });
    expect(toGrpcError(online).code).to.equal(status.FAILED_PRECONDITION);
    // heartbeating again, its full sync awaited: alive too, and force does not change that
    const back = refusal(facts({ alive: true, force: true }));
    expect(back.message).to.match(/^host 'h1' is back: its agent heartbeats again .*stop its agent first/);
  });

  it('a host this coordinator has not seen gone for three heartbeat intervals is FAILED_PRECONDITION, with force too, saying when to retry', () => {
    const early = refusal(facts({ gone: { goneMs: 1500, neededMs: 6000, syncedSinceOffline: false }, catalogPools: ['images'], force: true }));
    expect(early).to.be.instanceOf(FailedPreconditionError);
    // the wait is counted from when the host went offline, itself 3 silent intervals after its
    // last heartbeat: the message must not say the rule is 6 s without a heartbeat, which a
    // caller who just watched the host go offline 7 s after stopping its agent sees as broken
    expect(early.message).to.equal(
      "host 'h1' is not known to be gone yet: this coordinator has seen it offline for 1.5 s only (it may have just started, or the host just went offline) and its agent may still be running; a host is gone once this coordinator has seen it offline, with no heartbeat and no sync, for 6.0 s (3 heartbeat intervals): retry in 4.5 s",
    );
    expect(early.details).to.deep.equal({ host: 'h1', retryAfterMs: '4500' });
    expect(toGrpcError(early).code).to.equal(status.FAILED_PRECONDITION);
    const synced = refusal(facts({ gone: { goneMs: 200, neededMs: 6000, syncedSinceOffline: true }, force: true }));
    expect(synced.message).to.match(/^host 'h1' is not known to be gone yet: a full sync of it arrived 0\.2 s ago, after it went offline: its agent may be running; .*retry in 5\.8 s$/);
    expect(() => checkHostDeletable(facts({ gone: { goneMs: 6000, neededMs: 6000, syncedSinceOffline: false }, catalogPools: ['images'], force: true }))).to.not.throw();
  });

  it('persistent pools in the catalog: FAILED_PRECONDITION listing them, unless force', () => {
    const one = refusal(facts({ catalogPools: ['images'] }));
    expect(one).to.be.instanceOf(FailedPreconditionError);
    expect(one.message).to.equal(
      "host 'h1' still has 1 persistent pool in the catalog (images); undefine it first, or delete the host with force to remove its definition too",
    );
    const many = refusal(facts({ catalogPools: Array.from({ length: 12 }, (_, i) => `p${String(i).padStart(2, '0')}`) }));
    expect(many.message).to.contain('still has 12 persistent pools in the catalog (p00, p01, p02, p03, p04, p05, p06, p07, p08, p09 and 2 more)');
    // joined with '/', which no pool name holds (',' may be in one)
    expect(many.details.pools).to.equal('p00/p01/p02/p03/p04/p05/p06/p07/p08/p09/p10/p11');
    expect(refusal(facts({ catalogPools: ['b,c', 'a'] })).details.pools).to.equal('a/b,c');
    expect(() => checkHostDeletable(facts({ catalogPools: ['images'], force: true }))).to.not.throw();
  });

  it('a host known to no one is NOT_FOUND; one the registry forgot but with pools left in the catalog can still be deleted', () => {
    const unknown = refusal(facts({ host: 'nope', entry: undefined }));
    expect(unknown).to.be.instanceOf(NotFoundError);
    expect(unknown.message).to.match(/^host 'nope' is not known/);
    expect(toGrpcError(unknown).code).to.equal(status.NOT_FOUND);
    expect(refusal(facts({ entry: undefined, catalogPools: ['left'] }))).to.be.instanceOf(FailedPreconditionError);
    expect(() => checkHostDeletable(facts({ entry: undefined, catalogPools: ['left'], force: true }))).to.not.throw();
  });
});

describe('DeleteHost access', () => {
  it('needs the admin role, and is audited as a mutating call', async () => {
    const { METHODS } = await import('../../../services/coordinator/call-guard.js');
    expect(METHODS.DeleteHost).to.deep.equal({ name: 'DeleteHost', role: 'admin', mutating: true });
  });
});
