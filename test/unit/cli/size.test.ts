import { expect } from 'chai';
import { parseSize } from '../../../cli/size.js';
import { prettySize } from '../../../cli/format/size.js';
import { UsageError } from '../../../cli/errors.js';

describe('cli sizes', () => {
  it('reads virsh units: bytes by default, K/KiB = 1024, KB = 1000, up to E', () => {
    expect(parseSize('512')).to.equal(512n);
    expect(parseSize('512b')).to.equal(512n);
    expect(parseSize('1bytes')).to.equal(1n);
    expect(parseSize('1K')).to.equal(1024n);
    expect(parseSize('1k')).to.equal(1024n);
    expect(parseSize('1KiB')).to.equal(1024n);
    expect(parseSize('1KB')).to.equal(1000n);
    expect(parseSize('10M')).to.equal(10n * 1024n * 1024n);
    expect(parseSize('1G')).to.equal(1073741824n);
    expect(parseSize('1GB')).to.equal(1000000000n);
    expect(parseSize('2T')).to.equal(2n * 1024n ** 4n);
    expect(parseSize('1P')).to.equal(1024n ** 5n);
    expect(parseSize('7E')).to.equal(7n * 1024n ** 6n);
  });

  it('rejects unknown units, negatives, fractions and sizes beyond 2^63-1 with virsh\'s "Malformed size"', () => {
    expect(() => parseSize('10X')).to.throw(UsageError, "Malformed size 10X: unknown suffix 'X'");
    expect(() => parseSize('-5')).to.throw(UsageError, 'Malformed size -5');
    expect(() => parseSize('1.5G')).to.throw(UsageError, 'Malformed size 1.5G');
    expect(() => parseSize('1 M')).to.throw(UsageError, 'Malformed size 1 M'); // virsh: no blank before the unit
    expect(parseSize(' 1M')).to.equal(1024n * 1024n); // strtoull skips leading blanks
    expect(() => parseSize('')).to.throw(UsageError);
    expect(() => parseSize('8E')).to.throw(UsageError, 'larger than 9223372036854775807 bytes');
    expect(() => parseSize('9223372036854775808')).to.throw(UsageError);
    expect(parseSize('9223372036854775807')).to.equal((1n << 63n) - 1n);
  });

  it('prints human sizes like virsh (values captured from virsh 9.0)', () => {
    expect(prettySize(270553174016n)).to.equal('251.97 GiB');
    expect(prettySize(23451086848n)).to.equal('21.84 GiB');
    expect(prettySize(247102087168n)).to.equal('230.13 GiB');
    expect(prettySize(10485760n)).to.equal('10.00 MiB');
    expect(prettySize(200704n)).to.equal('196.00 KiB');
    expect(prettySize(1073741824n)).to.equal('1.00 GiB');
    expect(prettySize(0n)).to.equal('0.00 B');
    expect(prettySize(1023n)).to.equal('1023.00 B');
    expect(prettySize(1024n ** 4n)).to.equal('1.00 TiB');
    expect(prettySize(1024n ** 6n)).to.equal('1.00 EiB');
  });

  it('rounds exact ties to even, as printf("%.2lf") does', () => {
    expect(prettySize(1152n)).to.equal('1.12 KiB'); // 1.125
    expect(prettySize(1160n)).to.equal('1.13 KiB'); // 1.1328125
    expect(prettySize(1408n)).to.equal('1.38 KiB'); // 1.375 -> even 8
  });
});
