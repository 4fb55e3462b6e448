// The read-only connection's table (cli/read-only.ts) against the coordinator's table of
// methods: every method that changes something is refused, so a method marked mutating there
// and forgotten here fails this test; and the proxy sends nothing for a refused call.
import { expect } from 'chai';
import { METHODS } from '../../../services/coordinator/call-guard.js';
import { READ_ONLY_REFUSED, readOnlyApi, type ApiMethod } from '../../../cli/read-only.js';
import { ReadOnlyError } from '../../../cli/errors.js';
import { FakeApi } from './fake-api.js';

/** The RPC a StorageApi method calls: definePool -> DefinePool, getPoolXml -> GetPoolXML. */
function rpcOf(method: string): string {
  return (method.charAt(0).toUpperCase() + method.slice(1)).replace(/Xml$/, 'XML').replace(/Bytes$/, '');
}

describe('cisternctl read-only connection table', () => {
  it('refuses every method the coordinator marks as changing something', () => {
    const forgotten = Object.values(METHODS)
      .filter((m) => m.mutating)
      .map((m) => m.name)
      .filter((rpc) => !Object.entries(READ_ONLY_REFUSED).some(([method, refused]) => rpcOf(method) === rpc && refused));
    expect(forgotten).to.deep.equal([]);
  });

  it('names only methods the coordinator has', () => {
    const unknown = Object.keys(READ_ONLY_REFUSED).map(rpcOf).filter((rpc) => !METHODS[rpc]);
    expect(unknown).to.deep.equal([]);
  });

  it('a refused call throws before anything reaches the API; reads go through', async () => {
    const api = new FakeApi(['a']);
    const ro = readOnlyApi(api);
    expect(() => ro.startPool({ name: 'hosts/a/pools/p' } as never)).to.throw(ReadOnlyError, 'operation forbidden: read only access prevents virStoragePoolCreate');
    await ro.listHosts({} as never);
    expect(api.calls.map((c) => c.method)).to.deep.equal(['listHosts']);
    const refused = (Object.entries(READ_ONLY_REFUSED) as Array<[ApiMethod, string | null]>).filter(([, r]) => r).length;
    expect(refused).to.be.greaterThan(0);
  });
});
