// Sizes as libvirt reads them: no unit = bytes, K/KiB = 1024, KB = 1000 ... E, case-insensitive,
// at most 2^63-1; and the virsh-style human-readable form.
import { expect } from 'chai';
import { parseSize, MAX_SIZE_BYTES } from '../../../libs/xml/units.js';
import { formatVolumeXml, parsePoolXml, parseVolumeXml } from '../../../libs/xml/index.js';
import { expectInvalid } from './helpers.js';

describe('xml units: parseSize', () => {
  const cases: Array<[string, string | undefined, bigint]> = [
    ['123', undefined, 123n],
    ['123', '', 123n],
    ['1', 'b', 1n],
    ['2', 'byte', 2n],
    ['3', 'Bytes', 3n],
    ['1', 'K', 1024n],
    ['1', 'KiB', 1024n],
    ['1', 'kib', 1024n],
    ['1', 'KB', 1000n],
    ['1', 'kb', 1000n],
    ['1', 'M', 1024n ** 2n],
    ['1', 'MiB', 1024n ** 2n],
    ['1', 'MB', 1000n ** 2n],
    ['5', 'G', 5n * 1024n ** 3n],
    ['5', 'GiB', 5n * 1024n ** 3n],
    ['10', 'GB', 10n * 1000n ** 3n],
    ['1', 'T', 1024n ** 4n],
    ['1', 'TiB', 1024n ** 4n],
    ['1', 'TB', 1000n ** 4n],
    ['1', 'P', 1024n ** 5n],
    ['1', 'PB', 1000n ** 5n],
    ['7', 'E', 7n * 1024n ** 6n],
    ['9', 'EB', 9n * 1000n ** 6n],
    ['9223372036854775807', undefined, MAX_SIZE_BYTES],
    // strtoull skips blanks before the number; libvirt refuses one after it (below)
    [' 42', 'bytes', 42n],
  ];
  for (const [value, unit, bytes] of cases) {
    it(`'${value}' with unit ${unit === undefined ? '(none)' : `'${unit}'`} is ${bytes} bytes`, () => {
      expect(parseSize(value, unit, 'capacity')).to.equal(bytes);
    });
  }

  it('refuses values above 2^63-1, naming the field and the limit', () => {
    expectInvalid(() => parseSize('9223372036854775808', undefined, 'capacity'), 'capacity', 'too large', '9223372036854775807');
    expectInvalid(() => parseSize('8', 'E', 'capacity'), 'too large');
    expectInvalid(() => parseSize('8388608', 'TiB', 'capacity'), 'too large');
    expectInvalid(() => parseSize('99999999999999999999999', undefined, 'capacity'), 'capacity');
  });

  it('refuses unknown units, listing the allowed ones', () => {
    expectInvalid(() => parseSize('1', 'KiBB', 'allocation'), "unknown unit 'KiBB'", 'K/KiB/KB');
    expectInvalid(() => parseSize('1', 'X', 'allocation'), "unknown unit 'X'");
    expectInvalid(() => parseSize('1', 'Zi', 'allocation'), 'unknown unit');
  });

  it('refuses negative, fractional and non-numeric values', () => {
    for (const v of ['-1', '1.5', 'ten', '', '0x10', '1e3', ' 42 ', '42\n']) expectInvalid(() => parseSize(v, undefined, 'capacity'), 'not a non-negative integer');
  });
});

describe('xml units: in documents', () => {
  const pool = parsePoolXml("<pool type='dir'><name>p</name><target><path>/srv/p</path></target></pool>");
  it("output is always unit='bytes' whatever unit the input used", () => {
    const vol = parseVolumeXml("<volume><name>v</name><capacity unit='KB'>3</capacity><allocation unit='k'>1</allocation></volume>", pool);
    const xml = formatVolumeXml(vol, pool);
    expect(xml).to.contain("<capacity unit='bytes'>3000</capacity>");
    expect(xml).to.contain("<allocation unit='bytes'>1024</allocation>");
  });
  it('an oversized capacity is refused with the element and line', () => {
    expectInvalid(() => parseVolumeXml("<volume>\n<name>v</name>\n<capacity unit='E'>9</capacity>\n</volume>", pool), 'volume/capacity', 'too large', '(line 3)');
  });
  it('allocation defaults to capacity', () => {
    const vol = parseVolumeXml("<volume><name>v</name><capacity unit='M'>2</capacity></volume>", pool);
    expect(vol.allocation).to.equal(2n * 1024n * 1024n);
  });
});
