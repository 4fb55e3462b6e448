import { expect } from 'chai';
import { MAX_ULLONG, parseCount, parseSize, parseWrappingCount } from '../../../cli/size.js';
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

  it('rejects unknown units, negatives, fractions and sizes beyond 2^63-1 in virsh\'s words, then says which option and what is allowed', () => {
    const messages = (text: string, option = 'capacity'): string[] => {
      try {
        parseSize(text, option);
      } catch (e) {
        expect(e).to.be.instanceOf(UsageError);
        return (e as UsageError).messages;
      }
      throw new Error(`${text} was accepted`);
    };
    // first lines as `virsh -c test:///default vol-create-as default-pool v SIZE` prints them
    expect(messages('10XB')).to.deep.equal(['Malformed size 10XB',
      "invalid argument: unknown suffix 'XB' in <capacity>; allowed: b, K, KiB, KB, M, MiB, MB, G, GiB, GB, T, TiB, TB, P, PiB, PB, E, EiB, EB"]);
    expect(messages('1.5G')[1]).to.match(/^invalid argument: unknown suffix '\.5G' in <capacity>/);
    expect(messages('1 M', 'allocation')).to.include.members(['Malformed size 1 M']); // virsh: no blank before the unit
    expect(messages('1 M', 'allocation')[1]).to.match(/^invalid argument: unknown suffix ' M' in <allocation>/);
    expect(messages('abc')).to.deep.equal(['Malformed size abc',
      'invalid argument: <capacity> must be a non-negative integer with an optional unit (b, K, KiB, KB, M, MiB, MB, G, GiB, GB, T, TiB, TB, P, PiB, PB, E, EiB, EB)']);
    expect(messages('-5')[0]).to.equal('Malformed size -5');
    expect(messages('0x10')[1]).to.match(/unknown suffix 'x10'/);
    expect(messages('')).to.deep.equal(["Failed to get option 'capacity': Option argument is empty"]);
    expect(messages('8E')).to.deep.equal(['Malformed size 8E',
      'numerical overflow: value too large: 8E (<capacity> is at most 9223372036854775807 bytes)']);
    expect(messages('9223372036854775808')[0]).to.equal('Malformed size 9223372036854775808');
    expect(parseSize(' 1M')).to.equal(1024n * 1024n); // strtoull skips leading blanks
    expect(parseSize('+5')).to.equal(5n);
    expect(parseSize('010')).to.equal(10n);
    expect(parseSize('9223372036854775807')).to.equal((1n << 63n) - 1n);
  });

  it('skips only C\'s blanks before a size, as strtoull does, and says which character is wrong', () => {
    const messages = (text: string): string[] => {
      try {
        parseSize(text, 'capacity');
      } catch (e) {
        expect(e).to.be.instanceOf(UsageError);
        return (e as UsageError).messages;
      }
      throw new Error(`${JSON.stringify(text)} was accepted`);
    };
    // virsh 9.0: `vol-create-as default-pool v $'\u00a01G'` is `error: Malformed size \u00a01G`; strtoull's
    // isspace is the C locale's (space, \t \n \v \f \r), and a pasted no-break space is none of them
    for (const [text, code] of [['\u00a01G', 'U+00A0'], ['\u30001G', 'U+3000'], ['\u20281G', 'U+2028'], ['\ufeff1G', 'U+FEFF'], ['\uff11G', 'U+FF11']]) {
      const m = messages(text!);
      expect(m[0], code).to.equal(`Malformed size ${text}`);
      expect(m[1], code).to.match(/^invalid argument: <capacity> must be a non-negative integer with an optional unit \(b, K, /);
      expect(m[1], code).to.include(`${code} is not an ASCII digit or blank`);
    }
    for (const blank of ['\t', '\n', '\v', '\f', '\r', ' ']) expect(parseSize(`${blank}1G`), JSON.stringify(blank)).to.equal(1n << 30n);
    // a blank between the number and its unit: the suffix is unknown (as virsh says), and why
    for (const text of ['1 G', '1\tG', '1\u00a0G']) {
      expect(messages(text)[1], JSON.stringify(text)).to.match(/: no blank may come between the number and its unit; allowed: b, K, /);
    }
    expect(messages('1\uff27')[1]).to.include('U+FF27 is not an ASCII letter');
  });

  it('reads --offset, --length and --timeout numbers as virsh does: blanks and + first, nothing after, base 10', () => {
    // accepted by virsh 9.0 (vol-download --length, pool-event --timeout): '+100', ' 100', '\t1', '0100'
    expect(parseCount('+100', 'length')).to.equal(100n);
    expect(parseCount(' 100', 'length')).to.equal(100n);
    expect(parseCount('\t1', 'timeout')).to.equal(1n);
    expect(parseCount('0100', 'length')).to.equal(100n);
    expect(parseCount('18446744073709551615', 'length', MAX_ULLONG)).to.equal(MAX_ULLONG);
    // refused by virsh 9.0 with this message: '100 ', '-0', '1K', '', 2^64
    for (const [text, max] of [['100 ', undefined], ['-0', undefined], ['1K', undefined], ['', undefined], ['18446744073709551616', MAX_ULLONG],
      ['9223372036854775808', undefined]] as const) {
      expect(() => parseCount(text, 'length', max), JSON.stringify(text)).to.throw(UsageError, `Numeric value '${text}' for <length> option is malformed or out of range`);
    }
  });

  it('reads --length as virsh 9.0 does (vshCommandOptULongLongWrap): a negative number wraps modulo 2^64', () => {
    // accepted by virsh 9.0's vol-download --length: '-1' and '-0' download the whole volume,
    // '-18446744073709551615' one byte
    expect(parseWrappingCount('-1', 'length')).to.equal(MAX_ULLONG);
    expect(parseWrappingCount(' -3', 'length')).to.equal(MAX_ULLONG - 2n);
    expect(parseWrappingCount('-0', 'length')).to.equal(0n);
    expect(parseWrappingCount('-18446744073709551615', 'length')).to.equal(1n);
    expect(parseWrappingCount('+7', 'length')).to.equal(7n);
    // refused by virsh 9.0 with this message
    for (const text of ['- 3', '+-3', '-1K', '-', '', '-18446744073709551616', '18446744073709551616', '1 ']) {
      expect(() => parseWrappingCount(text, 'length'), JSON.stringify(text)).to.throw(UsageError, `Numeric value '${text}' for <length> option is malformed or out of range`);
    }
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
