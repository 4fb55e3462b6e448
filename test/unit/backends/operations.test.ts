// A backend's `operations` is what the agent offers for its pool type (libvirt: the callbacks a
// backend fills in), and the agent calls the method of the same name: a listed operation without
// its method would fail at run time as "not a function", and a method left out of the list is
// refused as UNIMPLEMENTED although it works.
import { expect } from 'chai';
import '../../../libs/backends/index.js';
import { BACKEND_OPERATIONS } from '../../../libs/backends/backend.js';
import { registeredBackends } from '../../../libs/backends/registry.js';
import { PoolType } from '../../../libs/proto/cistern/v1/storage.js';

describe('backend operations', () => {
  it('every registered backend lists exactly the operations it has a method for', () => {
    const backends = registeredBackends();
    expect(backends.map((b) => PoolType[b.type])).to.include.members(['POOL_TYPE_DIR', 'POOL_TYPE_LOGICAL', 'POOL_TYPE_ISCSI']);
    for (const backend of backends) {
      const methods = BACKEND_OPERATIONS.filter((op) => typeof (backend as unknown as Record<string, unknown>)[op] === 'function');
      expect([...backend.operations].sort(), PoolType[backend.type]).to.deep.equal([...methods].sort());
    }
  });
});
