// The role each method needs (METHODS in services/coordinator/call-guard.ts), held to the
// table in docs/security.md: a role lowered in the code, or a method missing from either,
// fails here. And the per-client limits: calls and open Session streams are counted apart,
// per principal with tokens and per peer address without.
import { expect } from 'chai';
import { METHODS, openGuard } from '../../../services/coordinator/call-guard.js';
import { documentedMethodRoles, storageServiceRpcs } from '../../support/security-doc.js';
import { createLogger } from '../../../libs/log/logger.js';
import { ResourceExhaustedError } from '../../../libs/errors/errors.js';

describe('call guard: the role of every method', () => {
  it('every method of StorageService needs the role docs/security.md gives it', () => {
    const documented = Object.fromEntries(documentedMethodRoles());
    const coded = Object.fromEntries(Object.values(METHODS).map((m) => [m.name, m.role]));
    expect(coded).to.deep.equal(documented);
  });

  it('the table covers every rpc but Session, whose calls are each judged as their own method', () => {
    const rpcs = storageServiceRpcs().filter((m) => m !== 'Session');
    expect([...documentedMethodRoles().keys()].sort()).to.deep.equal([...rpcs].sort());
    expect(Object.keys(METHODS).sort()).to.deep.equal([...rpcs].sort());
  });

  it('every entry is keyed by its own name', () => {
    for (const [key, spec] of Object.entries(METHODS)) expect(spec.name).to.equal(key);
  });
});

const quiet = createLogger('error', {}, () => undefined);

describe('call guard limits', () => {
  it('open sessions are limited per peer address without tokens, apart from calls, and free again when released', () => {
    const guard = openGuard(quiet, { maxCallsPerClient: 1, maxSessionsPerClient: 2 });
    const first = guard.admitSession!('anonymous', 'ipv4:127.0.0.1:40001');
    guard.admitSession!('anonymous', 'ipv4:127.0.0.1:40002');
    // the same address from a third port is the same client
    expect(() => guard.admitSession!('anonymous', 'ipv4:127.0.0.1:40003'))
      .to.throw(ResourceExhaustedError, /too many open Session streams from this client \(2 allowed\)/)
      .with.property('details')
      .that.deep.includes({ limit: '2' });
    // another address is another client; a call still has its own slot
    guard.admitSession!('anonymous', 'ipv4:127.0.0.2:40001');
    const call = guard.admit!('anonymous', 'ipv4:127.0.0.1:40001');
    expect(() => guard.admit!('anonymous', 'ipv4:127.0.0.1:40001')).to.throw(ResourceExhaustedError, /too many concurrent calls/);
    call();
    // a release counts once, however often it is called
    first();
    first();
    guard.admitSession!('anonymous', 'ipv4:127.0.0.1:40004');
    expect(() => guard.admitSession!('anonymous', 'ipv4:127.0.0.1:40005')).to.throw(ResourceExhaustedError);
  });
});
