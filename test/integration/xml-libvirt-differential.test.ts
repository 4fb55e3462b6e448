// Cistern's XML layer against libvirt 9.0's own parser, on mutated copies of libvirt's fixtures.
// The reference is virsh's test driver (test:///default), which parses pool and volume XML with
// the same code as libvirtd's storage driver (virStoragePoolDefParseString,
// virStorageVolDefParseString) and keeps everything in memory: nothing touches a disk.
//
// What must hold for every mutation:
// - a pool or volume libvirt refuses, Cistern refuses too (Cistern may refuse more: it checks
//   names and paths before anything runs as root, see docs/xml.md);
// - a pool both accept prints the same `pool-dumpxml` (runtime sizes and uuid aside).
// The suite runs a fixed sample of the mutations; CISTERN_XML_DIFF_ALL=1 runs all of them
// (about 5,000 pool and 6,000 volume cases, several minutes).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { formatPoolXml, OUT_OF_SCOPE_POOL_TYPES } from '../../libs/xml/index.js';
import { poolDefinitionFrom, volumeDefinitionFrom } from '../../services/coordinator/validate.js';
import type { PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { hasTool } from '../support/tools.js';
import { fixture, fixtureNames } from '../unit/xml/helpers.js';
import { xmlMutations, type XmlMutation } from '../support/xml-mutations.js';

const ALL = process.env.CISTERN_XML_DIFF_ALL === '1';
/** Mutations per fixture in the sampled run, spread evenly over the fixture's list. */
const SAMPLE = 16;

function sample(list: XmlMutation[], seed: number): XmlMutation[] {
  if (ALL || list.length <= SAMPLE) return list;
  const stride = list.length / SAMPLE;
  return Array.from({ length: SAMPLE }, (_, i) => list[Math.floor(i * stride + (seed % Math.max(1, Math.floor(stride))))]!);
}

/** One virsh process with the test driver: its state lives only as long as the process. */
function virsh(commands: string): { stdout: string; stderr: string } {
  const r = spawnSync('virsh', ['-q', '-c', 'test:///default', commands], { encoding: 'utf8', timeout: 30_000 });
  return { stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function quoted(name: string): string {
  return `'${name.replace(/'/g, "'\\''")}'`;
}

function firstText(xml: string, tag: string): string {
  return new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)?.[1] ?? '';
}

/** Runtime values the test driver fills in and a definition does not carry. */
function normalised(xml: string): string {
  return xml
    .replace(/<(capacity|allocation|available) unit='bytes'>\d+</g, "<$1 unit='bytes'>0<")
    .replace(/<uuid>[^<]*<\/uuid>/, '<uuid/>')
    .trim();
}

function typeOf(xml: string): string {
  return /<pool type=["']([^"']+)["']/.exec(xml)?.[1] ?? '';
}

async function cisternPool(xml: string): Promise<{ def?: PoolDefinition; error?: string }> {
  try {
    return { def: await poolDefinitionFrom(undefined, xml) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

describe('xml: differential against libvirt 9.0\'s parser (virsh test driver)', function () {
  this.timeout(ALL ? 0 : 300_000);
  let dir: string;

  before(function () {
    if (!hasTool('virsh')) this.skip();
    dir = mkdtempSync(join(tmpdir(), 'cistern-xmldiff-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const poolFixtures = fixtureNames('storagepoolxml2xmlin').filter((n) => !OUT_OF_SCOPE_POOL_TYPES.includes(typeOf(fixture('storagepoolxml2xmlin', n))));
  poolFixtures.forEach((name, index) => {
    it(`pool ${name}: nothing libvirt refuses is accepted, and what both accept prints alike`, async () => {
      const original = fixture('storagepoolxml2xmlin', name);
      const mismatches: string[] = [];
      for (const mutation of sample(xmlMutations(original, 'pool'), index)) {
        const file = join(dir, 'pool.xml');
        writeFileSync(file, mutation.xml);
        const ours = await cisternPool(mutation.xml);
        const lookup = ours.def?.name ?? firstText(mutation.xml, 'name');
        const theirs = virsh(`pool-define ${file}; pool-dumpxml ${quoted(lookup)}`);
        const refused = /Failed to define pool/.test(theirs.stderr);
        if (refused && ours.def) {
          mismatches.push(`${mutation.what}: libvirt refuses (${theirs.stderr.trim().replace(/\s+/g, ' ')}), Cistern accepts`);
        } else if (!refused && ours.def) {
          // libvirt prints an fc_host adapter's empty parent='' back; Cistern's model has no empty parent
          const expected = normalised(theirs.stdout).replace(/ parent=''/, '');
          const actual = normalised(formatPoolXml(ours.def));
          if (expected !== actual) mismatches.push(`${mutation.what}: pool-dumpxml differs\n--- libvirt\n${expected}\n--- Cistern\n${actual}`);
        }
      }
      expect(mismatches, mismatches.join('\n')).to.deep.equal([]);
    });
  });

  const volumeCases: [string, string[]][] = [
    ['pool-dir', ['vol-file', 'vol-file-backing', 'vol-qcow2', 'vol-qcow2-lazy', 'vol-qcow2-nocow', 'vol-luks-cipher']],
    ['pool-disk', ['vol-partition']],
    ['pool-logical', ['vol-logical', 'vol-logical-backing']],
  ];
  volumeCases.forEach(([poolName, volumes], poolIndex) => {
    for (const [volIndex, volume] of volumes.entries()) {
      it(`volume ${volume} in ${poolName}: nothing libvirt refuses is accepted`, async () => {
        const poolXml = fixture('storagepoolxml2xmlin', `${poolName}.xml`);
        const pool = (await cisternPool(poolXml)).def!;
        const poolFile = join(dir, 'vol-pool.xml');
        writeFileSync(poolFile, poolXml);
        const mismatches: string[] = [];
        for (const mutation of sample(xmlMutations(fixture('storagevolxml2xmlin', `${volume}.xml`), 'volume'), poolIndex * 7 + volIndex)) {
          const file = join(dir, 'vol.xml');
          writeFileSync(file, mutation.xml);
          let accepted = true;
          try {
            await volumeDefinitionFrom(undefined, mutation.xml, pool);
          } catch {
            accepted = false;
          }
          if (!accepted) continue;
          const theirs = virsh(`pool-define ${poolFile}; pool-start ${quoted(pool.name)}; vol-create --pool ${quoted(pool.name)} ${file}`);
          const error = theirs.stderr.split('\n').filter((l) => l.startsWith('error:') && !/Failed to create vol/.test(l)).join(' ');
          if (!error) continue;
          // The test driver's own limits, not the parser's: its pools are small, and it parses
          // without VIR_VOL_XML_PARSE_OPT_CAPACITY, which libvirtd's storage driver passes (a
          // volume with a backing store may leave out its capacity).
          if (/Not enough free space in pool/.test(error)) continue;
          if (/missing capacity element/.test(error) && /<backingStore>/.test(mutation.xml)) continue;
          mismatches.push(`${mutation.what}: libvirt refuses (${error}), Cistern accepts`);
        }
        expect(mismatches, mismatches.join('\n')).to.deep.equal([]);
      });
    }
  });
});
