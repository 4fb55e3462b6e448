// The LVM commands a logical pool's start and refresh run, answered for a recording runner:
// one VG on /dev/sdb with 120 MiB, 88 MiB of it free. Tests of agent handlers over the logical
// backend add their own lvs / lvcreate / lvremove behaviour on top.
import { RecordingRunner } from '../../libs/backends/recording-runner.js';

export function lvmPoolRunner(vg: string): RecordingRunner {
  return new RecordingRunner({ strict: true })
    .on(['udevadm', 'settle'], {})
    .on(['vgscan'], {})
    .on(['pvs'], { stdout: `  /dev/sdb ${vg}\n` })
    .on(['vgchange'], {})
    .on(['vgs'], { stdout: '  125829120:92274688\n' });
}
