// The installed cisternctl (package.json "bin": dist/cli/cisternctl.mjs, made by `npm run build`)
// loads its bundle with a V8 code cache; a missing, foreign or damaged cache must change nothing
// but start-up time.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../support/index.js';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string> };
const bin = join(repoRoot, pkg.bin.cisternctl!);
const dir = join(repoRoot, 'dist', 'cli');

function cli(launcher: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [launcher, ...args], { encoding: 'utf8', env: { ...process.env, CISTERN_SERVER: '127.0.0.1:1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('cli launcher (the installed bin and its code cache)', function () {
  this.timeout(60_000);
  let tmp = '';
  before(function () {
    if (!existsSync(join(dir, 'cisternctl.cjs'))) this.skip(); // scripts/bundle-cli.mjs not run (npm run build does)
    tmp = mkdtempSync(join(tmpdir(), 'cisternctl-launcher-'));
  });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('package.json bin runs the CLI: help, version, and an error with its exit code', () => {
    expect(cli(bin, ['--version'])).to.include({ status: 0, stdout: '0.1.0\n' });
    const help = cli(bin, ['help', 'vol-list']);
    expect(help.status).to.equal(0);
    expect(help.stdout).to.contain('vol-list');
    const err = cli(bin, ['vol-list']);
    expect(err.status).to.equal(1);
    expect(err.stderr).to.match(/^error: /);
  });

  it('prints the same without a cache, with one from another build, and with a damaged one', () => {
    for (const f of ['cisternctl.mjs', 'cisternctl.cjs']) copyFileSync(join(dir, f), join(tmp, f));
    const launcher = join(tmp, 'cisternctl.mjs');
    const expected = cli(bin, ['help']);
    const cacheFile = join(tmp, 'cisternctl.cache');
    const real = existsSync(join(dir, 'cisternctl.cache')) ? readFileSync(join(dir, 'cisternctl.cache')) : Buffer.from('x\n');
    const nl = real.indexOf(10);
    const caches: Array<[string, Buffer | undefined]> = [
      ['none', undefined],
      ['another build', Buffer.concat([Buffer.from(`${'0'.repeat(64)}\n`), real.subarray(nl + 1)])],
      ['damaged', Buffer.concat([real.subarray(0, nl + 1), Buffer.alloc(Math.max(0, real.length - nl - 1), 0x5a)])],
      ['truncated', real.subarray(0, Math.floor(real.length / 2))],
      ['empty', Buffer.alloc(0)],
    ];
    for (const [what, data] of caches) {
      rmSync(cacheFile, { force: true });
      if (data) writeFileSync(cacheFile, data);
      expect(cli(launcher, ['help']), what).to.deep.equal(expected);
    }
  });
});
