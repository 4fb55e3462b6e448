// Property-based fuzzing of the XML layer with fast-check: at least 10,000 generated documents
// per run (truncated, mutated, random unicode, huge numbers, wrong namespaces, hostile markup).
// Properties: only InvalidArgumentError is ever thrown; every run finishes (mocha's timeout
// catches a hang); an accepted document formats into XML that parses back to the same message
// and formats identically again.
import { expect } from 'chai';
import fc from 'fast-check';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';
import { formatPoolXml, formatVolumeXml, parsePoolSourceXml, parsePoolXml, parseVolumeXml } from '../../../libs/xml/index.js';
import type { PoolDefinition, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { fixture, fixtureNames } from './helpers.js';

const POOL_SEEDS = [
  ...fixtureNames('storagepoolxml2xmlin').map((n) => fixture('storagepoolxml2xmlin', n)),
  ...fixtureNames('storagepoolxml2xmlout').map((n) => fixture('storagepoolxml2xmlout', n)),
  `<pool type='fs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'><name>f</name><features><cow state='yes'/></features><source><device path='/dev/sdb1' part_separator='yes'/><format type='xfs'/></source><target><path>/mnt/f</path></target><fs:mount_opts><fs:option name='sync'/></fs:mount_opts></pool>`,
  `<pool type='netfs'><name>n</name><source><host name='a' port='2049'/><dir path='/e'/><format type='nfs'/><protocol ver='3'/><vendor name='v'/><product name='p'/></source><target><path>/mnt/n</path></target></pool>`,
];
const VOL_SEEDS = [
  ...fixtureNames('storagevolxml2xmlin').map((n) => fixture('storagevolxml2xmlin', n)),
  ...fixtureNames('storagevolxml2xmlout').map((n) => fixture('storagevolxml2xmlout', n)),
  `<volume><name>c</name><capacity unit='G'>1</capacity><target><format type='qcow2'/><clusterSize unit='KiB'>64</clusterSize><compat>1.1</compat><nocow/></target></volume>`,
];
const POOLS: PoolDefinition[] = ['pool-dir.xml', 'pool-disk.xml', 'pool-logical.xml', 'pool-iscsi.xml', 'pool-netfs.xml', 'pool-scsi.xml', 'pool-iscsi-direct.xml', 'pool-mpath.xml', 'pool-fs.xml'].map((n) =>
  parsePoolXml(fixture('storagepoolxml2xmlin', n)),
);

const HOSTILE = [
  '<!DOCTYPE pool>',
  '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>',
  '<!ENTITY e SYSTEM "file:///etc/passwd">',
  '&e;',
  '&amp;',
  '&#0;',
  '&#x10FFFF;',
  '&#xD800;',
  '&',
  '<',
  '>',
  ']]>',
  '<![CDATA[x]]>',
  '<![CDATA[',
  '<!-- c -->',
  '<!--',
  '<?pi x?>',
  '<?xml version="1.0"?>',
  '<a>',
  '</a>',
  '<a/>',
  '<x:y/>',
  "<pool type='dir'/>",
  "xmlns='urn:wrong'",
  "xmlns:fs='urn:wrong'",
  "a='1' a='2'",
  '\u0000',
  '\uFFFE',
  '\uD800',
  '\u0085',
  '\r\n',
];

const unicode = fc.string({ unit: 'binary', maxLength: 24 });
const hugeNumber = fc.oneof(
  fc.bigInt({ min: 0n, max: 1n << 70n }).map(String),
  fc.constantFrom('9223372036854775807', '9223372036854775808', '18446744073709551615', '18446744073709551616', '-1', '4294967295', '0777', '1e9', '0x10', ''),
);
const unit = fc.constantFrom('', 'b', 'bytes', 'K', 'KiB', 'KB', 'M', 'g', 'GiB', 'T', 'P', 'E', 'EiB', 'EB', 'Z', 'KiBB');

function splice(s: string, at: number, del: number, ins: string): string {
  const i = s.length ? at % (s.length + 1) : 0;
  return s.slice(0, i) + ins + s.slice(i + del);
}

const NAMESPACE_TRICKS: Array<(s: string) => string> = [
  (s) => s.replace(/<(pool|volume|source)\b/, "<$1 xmlns='urn:wrong'"),
  (s) => s.replace(/<name>([^<]*)<\/name>/, "<x:name xmlns:x='urn:x'>$1</x:name>"),
  (s) => s.replace(/<target>/, '<target xmlns="http://libvirt.org/schemas/storagepool/fs/1.0">'),
  (s) => s.replace(/xmlns:fs='[^']*'/, "xmlns:fs='urn:wrong'"),
  (s) => s.replace(/<(pool|volume)\b/, '<$1 xmlns:fs="http://libvirt.org/schemas/storagepool/fs/1.0"').replace(/<\/(pool|volume)>/, '<fs:mount_opts><fs:option name="ro"/></fs:mount_opts></$1>'),
  (s) => s.replace(/<(\w+)/, '<q:$1').replace(/<\/(\w+)>\s*$/, '</q:$1>'),
  (s) => s.replace(/<format /, '<fs:format '),
  (s) => s.replace(/xmlns:fs=/, 'xmlns:fs2='),
];

/** Documents derived from seeds by every kind of damage. */
function documents(seeds: string[]): fc.Arbitrary<string> {
  const seed = fc.constantFrom(...seeds);
  return fc.oneof(
    // truncated
    fc.tuple(seed, fc.nat()).map(([s, n]) => s.slice(0, n % (s.length + 1))),
    // mutated: a random stretch replaced by random unicode
    fc.tuple(seed, fc.nat(), fc.nat(8), unicode).map(([s, at, del, ins]) => splice(s, at, del, ins)),
    // hostile markup inserted anywhere
    fc.tuple(seed, fc.nat(), fc.constantFrom(...HOSTILE)).map(([s, at, ins]) => splice(s, at, 0, ins)),
    // huge or odd numbers and units in place of a number
    fc.tuple(seed, fc.nat(20), hugeNumber, unit).map(([s, k, num, u]) => {
      let i = 0;
      return s.replace(/>\s*(-?\d+)\s*</g, (m) => (i++ === k % 6 ? ` unit='${u}'>${num}<` : m)).replace(/(port|unique_id|size)='[^']*'/, `$1='${num}'`);
    }),
    // wrong namespaces
    fc.tuple(seed, fc.constantFrom(...NAMESPACE_TRICKS)).map(([s, f]) => f(s)),
    // lines deleted, duplicated, swapped
    fc.tuple(seed, fc.nat(), fc.nat(), fc.constantFrom('del', 'dup', 'swap')).map(([s, a, b, op]) => {
      const lines = s.split('\n');
      const i = a % lines.length;
      const j = b % lines.length;
      if (op === 'del') lines.splice(i, 1);
      else if (op === 'dup') lines.splice(i, 0, lines[i]!);
      else [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      return lines.join('\n');
    }),
    // attribute and text values replaced by random unicode
    fc.tuple(seed, fc.nat(30), unicode).map(([s, k, v]) => {
      let i = 0;
      const esc = v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;');
      return s.replace(/'[^'<]*'|>[^<>\s][^<>]*</g, (m) => (i++ === k ? (m.startsWith("'") ? `'${esc}'` : `>${esc}<`) : m));
    }),
    // untouched seeds
    seed,
  );
}

/** Pure noise, partly shaped like XML. */
const noise = fc.oneof(
  unicode,
  fc.array(fc.oneof(fc.constantFrom(...HOSTILE), unicode, fc.constantFrom('<pool>', '</pool>', "<pool type='dir'>", '<name>x</name>', '<volume>', '</volume>')), { maxLength: 12 }).map((a) => a.join('')),
);

let documentsTried = 0;
let accepted = 0;

function onlyInvalidArgument(fn: () => void): void {
  documentsTried++;
  try {
    fn();
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    expect(e.message, 'an error message names what was wrong').to.be.a('string').and.not.equal('');
  }
}

/** volumes: nocow is read but, as in libvirt, not printed; everything else must survive. */
function comparable(v: VolumeDefinition): VolumeDefinition {
  return { ...v, target: v.target ? { ...v.target, nocow: false } : v.target };
}

describe('xml fuzz (fast-check, >= 10,000 documents)', function () {
  this.timeout(120_000);

  it('pool documents: only InvalidArgumentError; accepted ones round-trip to the same message', () => {
    fc.assert(
      fc.property(documents(POOL_SEEDS), (doc) => {
        onlyInvalidArgument(() => {
          const m1 = parsePoolXml(doc);
          accepted++;
          const x1 = formatPoolXml(m1);
          const m2 = parsePoolXml(x1);
          expect(m2).to.deep.equal(m1);
          expect(formatPoolXml(m2)).to.equal(x1);
        });
      }),
      { numRuns: 4500 },
    );
  });

  it('volume documents in every kind of pool: only InvalidArgumentError; accepted ones round-trip', () => {
    fc.assert(
      fc.property(documents(VOL_SEEDS), fc.constantFrom(...POOLS), fc.boolean(), (doc, pool, cloning) => {
        onlyInvalidArgument(() => {
          const m1 = parseVolumeXml(doc, pool, { cloning });
          accepted++;
          const x1 = formatVolumeXml(m1, pool);
          const m2 = parseVolumeXml(x1, pool, { cloning });
          // a clone's allocation left out stays unset, and prints as the capacity
          expect(comparable(m2)).to.deep.equal(comparable({ ...m1, allocation: m1.allocation ?? m2.allocation }));
          expect(formatVolumeXml(m2, pool)).to.equal(x1);
        });
      }),
      { numRuns: 4500 },
    );
  });

  it('noise and <source> specs: only InvalidArgumentError', () => {
    fc.assert(
      fc.property(noise, (doc) => {
        onlyInvalidArgument(() => parsePoolXml(doc));
        onlyInvalidArgument(() => parseVolumeXml(doc, POOLS[0]!));
        onlyInvalidArgument(() => parsePoolSourceXml(doc));
      }),
      { numRuns: 400 },
    );
    fc.assert(
      fc.property(documents(["<source><host name='h'/><dir path='/x'/><format type='nfs'/></source>", "<source><device path='/dev/sdb'/><name>vg</name><format type='lvm2'/></source>"]), (doc) => {
        onlyInvalidArgument(() => parsePoolSourceXml(doc, POOLS[4]!.type));
      }),
      { numRuns: 300 },
    );
  });

  after(() => {
    // the run really exercised the parser with at least 10,000 documents, and accepted some
    expect(documentsTried).to.be.at.least(10_000);
    expect(accepted).to.be.greaterThan(100);
  });
});
