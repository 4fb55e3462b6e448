// vol-create-from / CloneVolume: what the new volume takes of its source's definition.
import { expect } from 'chai';
import { VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { cloneDefinition } from '../../../services/agent/handlers/volume-ops.js';

const source = VolumeDefinition.fromPartial({
  name: 'q1',
  capacity: 10n << 20n,
  target: { path: '/p/q1', format: 'qcow2', compat: '1.1', clusterSize: 65536n, lazyRefcounts: true },
});

describe('cloneDefinition', () => {
  it('into another format: none of the source format\'s layout (cluster size, compat, lazy refcounts)', () => {
    const raw = cloneDefinition(source, VolumeDefinition.fromPartial({ name: 'r1', target: { format: 'raw' } }));
    expect(raw.target).to.deep.include({ format: 'raw', compat: '', clusterSize: 0n, lazyRefcounts: false, path: '' });
    expect(raw.capacity).to.equal(10n << 20n);
  });

  it('into the same format: the source\'s layout, unless the request gives its own', () => {
    expect(cloneDefinition(source, VolumeDefinition.fromPartial({ name: 'c1' })).target).to.deep.include({ format: 'qcow2', compat: '1.1', clusterSize: 65536n });
    expect(cloneDefinition(source, VolumeDefinition.fromPartial({ name: 'c2', target: { format: 'qcow2', clusterSize: 2097152n } })).target?.clusterSize).to.equal(2097152n);
  });
});
