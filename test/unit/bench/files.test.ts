// The refresh/list pool the benchmarks fill (bench/files.ts): the mix bench/README.md describes,
// the same on both sides.
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GiB, populatePoolDir, type Template } from '../../../bench/files.js';
import { makeTempDir } from '../../support/index.js';

describe('bench pool files (bench/files)', () => {
  it('uses every qcow2 template and every raw size from 1 to 8 GiB', async () => {
    const tmp = makeTempDir('cistern-bench-files-');
    try {
      // stand-ins for the qemu-img templates: what matters is which one each file copies
      const templates: Template[] = [1, 2, 4, 8].map((g) => {
        const path = join(tmp.path, `tmpl-${g}G.qcow2`);
        writeFileSync(path, `template ${g}G`);
        return { path, virtualSize: g * GiB };
      });
      const dir = join(tmp.path, 'pool');
      populatePoolDir(dir, 32, templates);
      const names = readdirSync(dir).sort();
      const qcow2 = names.filter((n) => n.endsWith('.qcow2'));
      const raw = names.filter((n) => n.endsWith('.img'));
      expect(qcow2).to.have.length(16);
      expect(raw).to.have.length(16);
      const copied = new Set(qcow2.map((n) => readFileSync(join(dir, n), 'utf8')));
      expect([...copied].sort()).to.deep.equal(['template 1G', 'template 2G', 'template 4G', 'template 8G']);
      const sizes = new Set(raw.map((n) => statSync(join(dir, n)).size / GiB));
      expect([...sizes].sort((a, b) => a - b)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
      // every fifth raw file holds 64 KiB of data
      const withData = raw.filter((n) => statSync(join(dir, n)).blocks * 512 >= 64 * 1024);
      expect(withData).to.have.length(4);
    } finally {
      await tmp.remove();
    }
  });
});
