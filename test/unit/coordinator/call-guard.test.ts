// The role each method needs (METHODS in services/coordinator/call-guard.ts), held to the
// table in docs/security.md: a role lowered in the code, or a method missing from either,
// fails here.
import { expect } from 'chai';
import { METHODS } from '../../../services/coordinator/call-guard.js';
import { documentedMethodRoles, storageServiceRpcs } from '../../support/security-doc.js';

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
