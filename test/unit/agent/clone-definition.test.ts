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

  it('allocation: from XML, not given = the capacity as raised to the source\'s; structured, not given = the source\'s', () => {
    const thick = VolumeDefinition.fromPartial({ name: 'fa', capacity: 5n << 20n, allocation: 5n << 20n, target: { path: '/p/fa', format: 'raw' } });
    const sparse = { ...thick, allocation: 4096n };
    // vol-create-from with <capacity>1000</capacity> and no <allocation>: storageVolCreateXMLFrom
    const xml = VolumeDefinition.fromPartial({ name: 'x', capacity: 1000n, target: { format: 'raw' } });
    expect(cloneDefinition(sparse, xml, true)).to.deep.include({ capacity: 5n << 20n, allocation: 5n << 20n });
    expect(cloneDefinition(sparse, { ...xml, capacity: 8n << 20n }, true)).to.deep.include({ capacity: 8n << 20n, allocation: 8n << 20n });
    expect(cloneDefinition(thick, { ...xml, allocation: 0n }, true).allocation).to.equal(0n);
    // vol-clone: the source's allocation, as in the source's XML virsh sends
    expect(cloneDefinition(thick, VolumeDefinition.fromPartial({ name: 'fa-c' }))).to.deep.include({ capacity: 5n << 20n, allocation: 5n << 20n });
    expect(cloneDefinition(sparse, VolumeDefinition.fromPartial({ name: 'fa-c' })).allocation).to.equal(4096n);
    expect(cloneDefinition(thick, VolumeDefinition.fromPartial({ name: 'fa-c', allocation: 0n })).allocation).to.equal(0n);
  });

  it('into the same format: the source\'s layout, unless the request gives its own', () => {
    expect(cloneDefinition(source, VolumeDefinition.fromPartial({ name: 'c1' })).target).to.deep.include({ format: 'qcow2', compat: '1.1', clusterSize: 65536n });
    expect(cloneDefinition(source, VolumeDefinition.fromPartial({ name: 'c2', target: { format: 'qcow2', clusterSize: 2097152n } })).target?.clusterSize).to.equal(2097152n);
  });
});
