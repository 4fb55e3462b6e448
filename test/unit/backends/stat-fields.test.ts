// A volume's <timestamps> as libvirt 9.0's virStorageVolTimestampFormat prints them: the
// seconds of the stat's struct timespec as an unsigned long long, then '.' and the nine digits of
// its (always non-negative) tv_nsec when that is not 0. Files dated before 1970 (a broken
// tarball, `touch -d 1960-01-01`) have a negative tv_sec and a tv_nsec in [0, 1e9).
import { closeSync, openSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { makeTempDir } from '../../support/index.js';
import { formatTimestamp, timestampsOf } from '../../../libs/backends/stat-fields.js';

describe('volume timestamps as libvirt prints them', () => {
  it('print seconds, and nine digits of nanoseconds when there are any', () => {
    expect(formatTimestamp(1_795_853_551_222_351_245n)).to.equal('1795853551.222351245');
    expect(formatTimestamp(1_577_836_800_500_000_000n)).to.equal('1577836800.500000000');
    expect(formatTimestamp(1_577_836_800_000_000_000n)).to.equal('1577836800');
    expect(formatTimestamp(0n)).to.equal('0');
  });

  it('print a time before 1970 as libvirt 9.0 does: tv_sec as unsigned, tv_nsec never negative', () => {
    // 1960-01-01T00:00:00.25Z: tv_sec -315619200, tv_nsec 250000000; libvirt 9.0 prints
    // 18446744073393932416.250000000 (seen in its vol-dumpxml of such a file)
    expect(formatTimestamp(-315_619_199_750_000_000n)).to.equal('18446744073393932416.250000000');
    // one second before the epoch: tv_sec -1, tv_nsec 0
    expect(formatTimestamp(-1_000_000_000n)).to.equal('18446744073709551615');
    // half a second before it: tv_sec -1, tv_nsec 500000000
    expect(formatTimestamp(-500_000_000n)).to.equal('18446744073709551615.500000000');
  });

  it('read a file dated before 1970 into timestamps with no minus sign', () => {
    const file = join(makeTempDir('cistern-stat-fields-').path, 'old');
    closeSync(openSync(file, 'w'));
    // a Date: node's utimes takes a negative number of seconds for 'now'
    utimesSync(file, new Date(-315_619_199_750), new Date(-315_619_199_750));
    const ts = timestampsOf(statSync(file, { bigint: true }));
    expect(ts.mtime).to.equal('18446744073393932416.250000000');
    expect(ts.atime).to.equal('18446744073393932416.250000000');
  });
});
