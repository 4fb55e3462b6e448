// What a device holds before a build may overwrite it (blkid -p), and the refusal that
// names it: empty, a filesystem, a partition table, or several signatures at once.
import { expect } from 'chai';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { probeDeviceContent, requireEmptyDevice } from '../../../libs/backends/device-probe.js';
import { rejects } from '../../support/rejects.js';

describe('device probe (blkid -p)', () => {
  const device = '/dev/loop9';
  const argv = ['blkid', '-p', '-o', 'export', '--', device];

  it('exit 2 is an empty device; exit 0 names what it found', async () => {
    const runner = new RecordingRunner({ strict: true });
    runner.on(['blkid'], { exitCode: 2 });
    expect(await probeDeviceContent(runner, device)).to.deep.equal({ empty: true });
    const found = new RecordingRunner({ strict: true });
    found.on(['blkid'], { stdout: `DEVNAME=${device}\nTYPE=ext4\nUSAGE=filesystem\n` });
    const err = await rejects(requireEmptyDevice(found, device));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.match(/holds ext4 data; build with overwrite/);
    expect(found.argvs).to.deep.equal([argv]);
  });

  it('several signatures (exit 8, "ambivalent result"): FAILED_PRECONDITION saying so, not an internal error', async () => {
    // seen on a loop device holding vfat with an ext4 superblock copied over it:
    // "blkid: /dev/loop0: ambivalent result (probably more filesystems on the device, use wipefs(8) ...)", exit 8
    const runner = new RecordingRunner({ strict: true });
    runner.on(['blkid'], { exitCode: 8, stderr: `blkid: ${device}: ambivalent result (probably more filesystems on the device, use wipefs(8) to see more details)\n` });
    expect(await probeDeviceContent(runner, device)).to.deep.equal({ empty: false, ambivalent: true });
    const err = await rejects(requireEmptyDevice(runner, device));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.match(/holds more than one signature .*build with overwrite/);
  });
});
