// The package's bins (package.json "bin") are what `npx cistern-agent` runs through
// node_modules/.bin, as the README shows. npm marks their targets executable only when it
// installs the package, and in a clone dist/ is built after `npm ci`: tsc writes files 0644,
// and `npx cistern-agent` failed with "sh: 1: cistern-agent: Permission denied".
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const bins = Object.entries((JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin);

describe('the package bins after a build', () => {
  it('npm run build ends by marking every bin executable (scripts/bin-modes.mjs)', () => {
    const build = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.build!;
    expect(build).to.match(/tsc -p tsconfig\.json && node scripts\/bin-modes\.mjs$/);
  });

  it('bin-modes.mjs makes each bin file of a tree executable and leaves its other bits', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cistern-bin-modes-'));
    try {
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ bin: Object.fromEntries(bins) }));
      for (const [, file] of bins) {
        mkdirSync(dirname(join(dir, file)), { recursive: true });
        writeFileSync(join(dir, file), '#!/usr/bin/env node\n');
        chmodSync(join(dir, file), 0o640);
      }
      execFileSync(process.execPath, [join(repoRoot, 'scripts', 'bin-modes.mjs'), dir]);
      for (const [name, file] of bins) expect(statSync(join(dir, file)).mode & 0o777, name).to.equal(0o751);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const [name, file] of bins) {
    it(`${name} (${file}) is executable in this build`, () => {
      expect(statSync(join(repoRoot, file)).mode & 0o111, `${file} mode`).to.equal(0o111);
    });
  }
});
