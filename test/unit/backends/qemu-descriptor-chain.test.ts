// The json: spec a clone hands qemu-img for a source chain it got as descriptors: every layer's
// format given, its backing the next layer spelled out or null, files only as /dev/fd/N.
import { expect } from 'chai';
import { qemuDescriptorChain } from '../../../libs/backends/qemu-img-argv.js';

describe('qemuDescriptorChain: a source chain as the descriptors qemu-img was handed', () => {
  it('spells out every layer, closes the last, and never names a file', () => {
    const spec = qemuDescriptorChain(
      [
        { format: 'qcow2', blockDevice: false },
        { format: 'qed', blockDevice: false },
        { format: 'raw', blockDevice: true },
      ],
      4,
    );
    expect(JSON.parse(spec.slice('json:'.length))).to.deep.equal({
      driver: 'qcow2',
      backing: {
        driver: 'qed',
        backing: { driver: 'raw', file: { driver: 'host_device', filename: '/dev/fd/6' } },
        file: { driver: 'file', filename: '/dev/fd/5' },
      },
      file: { driver: 'file', filename: '/dev/fd/4' },
    });
  });

  it('a last layer of a format that may name a backing file gets backing null; raw gets none', () => {
    expect(qemuDescriptorChain([{ format: 'qcow2', blockDevice: false }], 4)).to.equal('json:{"driver":"qcow2","backing":null,"file":{"driver":"file","filename":"/dev/fd/4"}}');
    expect(qemuDescriptorChain([{ format: 'raw', blockDevice: false }], 4)).to.equal('json:{"driver":"raw","file":{"driver":"file","filename":"/dev/fd/4"}}');
  });
});
