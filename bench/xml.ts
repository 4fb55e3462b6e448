// Documents per second for parsing and formatting a pool and a volume document (libs/xml).
// Run: npx tsc -p . && node dist/bench/xml.js [seconds-per-case]
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatPoolXml, formatVolumeXml, parsePoolXml, parseVolumeXml } from '../libs/xml/index.js';

const here = dirname(fileURLToPath(import.meta.url));
// beside the checkout (../shared), else where this workplace keeps them, as the unit tests look
const fixtures =
  process.env.CISTERN_LIBVIRT_FIXTURES ??
  [resolve(here, '..', '..', '..', 'shared', 'fixtures', 'libvirt'), '/work/shared/fixtures/libvirt'].find((p) => existsSync(p)) ??
  resolve(here, '..', '..', '..', 'shared', 'fixtures', 'libvirt');
const read = (dir: string, name: string) => readFileSync(join(fixtures, dir, name), 'utf8');

const poolXml = read('storagepoolxml2xmlin', 'pool-iscsi-vendor-product.xml');
const dirPoolXml = read('storagepoolxml2xmlin', 'pool-dir.xml');
const volXml = read('storagevolxml2xmlin', 'vol-luks-cipher.xml');
const dirPool = parsePoolXml(dirPoolXml);
const pool = parsePoolXml(poolXml);
const vol = parseVolumeXml(volXml, dirPool);

const seconds = Number(process.argv[2] ?? 1);

function measure(fn: () => unknown): { perSec: number; usPerDoc: number } {
  for (let i = 0; i < 2000; i++) fn(); // warm up
  let n = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(seconds * 1e9));
  let elapsed = 0n;
  while (elapsed < budget) {
    for (let i = 0; i < 200; i++) fn();
    n += 200;
    elapsed = process.hrtime.bigint() - start;
  }
  const s = Number(elapsed) / 1e9;
  return { perSec: n / s, usPerDoc: (s * 1e6) / n };
}

const rows: Array<[string, string, () => unknown]> = [
  ['pool (iscsi, auth)', 'parse', () => parsePoolXml(poolXml)],
  ['pool (iscsi, auth)', 'format', () => formatPoolXml(pool)],
  ['volume (luks file)', 'parse', () => parseVolumeXml(volXml, dirPool)],
  ['volume (luks file)', 'format', () => formatVolumeXml(vol, dirPool)],
];

console.log('libs/xml throughput (one document per operation)');
console.log(`${'document'.padEnd(22)}${'operation'.padEnd(11)}${'docs/s'.padStart(12)}${'us/doc'.padStart(10)}`);
for (const [doc, op, fn] of rows) {
  const r = measure(fn);
  console.log(`${doc.padEnd(22)}${op.padEnd(11)}${Math.round(r.perSec).toString().padStart(12)}${r.usPerDoc.toFixed(1).padStart(10)}`);
}
