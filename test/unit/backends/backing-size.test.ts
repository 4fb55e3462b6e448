// The virtual size of a backing store qemu-img has to report (formats without a header size
// read in-process): read as digits, never rounded through a JavaScript number, and a missing
// size is a clear refusal, not a TypeError (review h8).
import { expect } from 'chai';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { backingVirtualSize } from '../../../libs/backends/dir/backing-size.js';
import type { ImageLayer } from '../../../libs/backends/image-references.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import type { CisternError } from '../../../libs/errors/errors.js';
import { rejects } from '../../support/rejects.js';

describe('backing store virtual size from qemu-img info', () => {
  const layer = (fd: number): ImageLayer =>
    ({ name: 'base.vmdk', real: '/x/base.vmdk', fd, stat: fstatSync(fd, { bigint: true }), format: 'vmdk', probe: {} }) as unknown as ImageLayer;

  it('takes sizes past 2^53 exactly, and refuses an answer without one', async () => {
    const fd = openSync('/dev/null', 'r');
    try {
      const exact = new RecordingRunner().on(['qemu-img'], { stdout: '{\n    "virtual-size": 9007199254740993,\n    "format": "vmdk"\n}\n' });
      expect(await backingVirtualSize({ runner: exact }, layer(fd), 'qemu-img')).to.equal(9007199254740993n);
      const none = new RecordingRunner().on(['qemu-img'], { stdout: '{"format": "vmdk"}' });
      const err = await rejects(backingVirtualSize({ runner: none }, layer(fd), 'qemu-img'));
      expect((err as CisternError).code).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.match(/qemu-img info gave no virtual size for the backing store \(vmdk\)/);
    } finally {
      closeSync(fd);
    }
  });
});
