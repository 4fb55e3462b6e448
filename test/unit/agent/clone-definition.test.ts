// vol-create-from / CloneVolume: what the new volume takes of its source's definition.
import { expect } from 'chai';
import { VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { cloneDefinition } from '../../../services/agent/handlers/volume-ops.js';

const source = VolumeDefinition.fromPartial({
  name: 'q1',
  capacity: 10n << 20n,
  target: { path: '/p/q1', format: 'qcow2', compat: '1.1', clusterSize: 65536n, lazyRefcounts: true, nocow: true, permissions: { mode: 0o644, owner: 1000n, group: 1001n } },
});

describe('cloneDefinition', () => {
  it('into another format: none of the source format\'s layout (cluster size, compat, lazy refcounts)', () => {
    const raw = cloneDefinition(source, VolumeDefinition.fromPartial({ name: 'r1', target: { format: 'raw' } }));
    expect(raw.target).to.deep.include({ format: 'raw', compat: '', clusterSize: 0n, lazyRefcounts: false, path: '' });
    expect(raw.capacity).to.equal(10n << 20n);
  });

  it('given as XML: only what the XML gave (libvirt parses only the new document); the capacity at least the source\'s', () => {
    // what the coordinator reads from <volume><name>nf</name><capacity>1000</capacity></volume> in a dir pool
    const read = VolumeDefinition.fromPartial({ name: 'nf', capacity: 1000n, target: { path: '/p/nf', format: 'raw' } });
    const made = cloneDefinition(source, read, true);
    expect(made.name).to.equal('nf');
    expect(made.capacity).to.equal(10n << 20n);
    expect(made.target).to.deep.include({ format: 'raw', path: '', compat: '', clusterSize: 0n, lazyRefcounts: false, nocow: false, permissions: undefined, encryption: undefined });
    // the same read as a structured definition lays it over the source's
    expect(cloneDefinition(source, read).target).to.deep.include({ format: 'raw', nocow: true, permissions: { mode: 0o644, owner: 1000n, group: 1001n, label: '' } });
  });

  it('into the same format: the source\'s layout, unless the request gives its own', () => {
    expect(cloneDefinition(source, VolumeDefinition.fromPartial({ name: 'c1' })).target).to.deep.include({ format: 'qcow2', compat: '1.1', clusterSize: 65536n });
    expect(cloneDefinition(source, VolumeDefinition.fromPartial({ name: 'c2', target: { format: 'qcow2', clusterSize: 2097152n } })).target?.clusterSize).to.equal(2097152n);
  });
});
