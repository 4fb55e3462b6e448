// ownWrite: where a catalog call's retry finds its own write in the key's history.
import { expect } from 'chai';
import { CatalogPool } from '../../../libs/proto/cistern/agent/v1/agent.js';
import type { CatalogRevision } from '../../../libs/bus/catalog.js';
import { ownWrite } from '../../../services/coordinator/catalog-retries.js';

const at = (revision: number, definedBy?: string, autostart = false): CatalogRevision => ({
  revision,
  written: new Date(revision * 1000),
  value: definedBy === undefined ? undefined : CatalogPool.create({ persistent: true, definedBy, autostart }),
});
const mine = (v: CatalogPool): boolean => v.definedBy === 'm';

describe('ownWrite (catalog call retries)', () => {
  it('none: no revision carries the mark, or the history is empty', () => {
    expect(ownWrite([], mine)).to.equal(undefined);
    expect(ownWrite([at(1, ''), at(2, 'x'), at(3)], mine)).to.equal(undefined);
  });

  it('the write still the newest revision, continued by writes that keep it (an autostart change)', () => {
    const found = ownWrite([at(1, 'x'), at(2, 'm'), at(3, 'm', true)], mine);
    expect([found?.write.revision, found?.latest?.revision]).to.deep.equal([2, 3]);
  });

  it('changed since: a later write without it, or a delete marker, leaves no latest', () => {
    expect(ownWrite([at(2, 'm'), at(3, 'x')], mine)?.latest).to.equal(undefined);
    const deleted = ownWrite([at(2, 'm'), at(3)], mine);
    expect([deleted?.write.revision, deleted?.latest]).to.deep.equal([2, undefined]);
  });

  it('the newest run of it: written, changed, written again by a repeat of the same call', () => {
    const found = ownWrite([at(1, 'm'), at(2, 'x'), at(4, 'm')], mine);
    expect([found?.write.revision, found?.latest?.revision]).to.deep.equal([4, 4]);
  });
});
