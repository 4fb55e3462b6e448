// The backend of a pool type: a type this build's protobuf has no name for is a newer version's
// (a pool defined by a newer coordinator during a rolling upgrade, docs/upgrades.md); its refusal
// names the type's number, what this host supports, and what to do, not "UNRECOGNIZED".
import { expect } from 'chai';
import '../../../libs/backends/index.js';
import { getBackend } from '../../../libs/backends/registry.js';
import { UnimplementedError } from '../../../libs/errors/errors.js';
import { PoolType } from '../../../libs/proto/cistern/v1/storage.js';

describe('backend registry', () => {
  it('a pool type this build does not know is UNIMPLEMENTED naming its number, the types served and the upgrade', () => {
    let err: unknown;
    try {
      getBackend(42 as PoolType);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(UnimplementedError);
    const message = (err as Error).message;
    expect(message).to.not.include('UNRECOGNIZED');
    expect(message).to.include('pool type 42');
    expect(message).to.include('dir, fs, netfs, logical, disk, iscsi, iscsi-direct, scsi, mpath');
    expect(message).to.match(/newer/);
    expect((err as UnimplementedError).details).to.deep.include({ type: '42' });
  });

  it('a known type finds its backend', () => {
    expect(getBackend(PoolType.POOL_TYPE_DIR).type).to.equal(PoolType.POOL_TYPE_DIR);
  });
});
