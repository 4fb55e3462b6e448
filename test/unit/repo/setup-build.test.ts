// scripts/setup.sh builds only when the build is stale (README: "Run again, it does nothing").
// Run here on a minimal tree of its own, with a stand-in `npm` that records what it is asked,
// so no real build or install runs. `npm run build` also bundles cisternctl
// (scripts/bundle-cli.mjs -> dist/cli/cisternctl.mjs, the `cisternctl` bin that npx runs and
// npm start tells you to use): a changed bundler or a missing bundle is a stale build too.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, useTempDir } from '../../support/index.js';

describe('scripts/setup.sh: when it builds', function () {
  this.timeout(30_000);
  const scratch = useTempDir('cistern-setup-');

  /** A tree setup.sh takes as installed and built, the stamp one minute old, the sources older. */
  function builtTree(): string {
    const root = join(scratch.path, `tree-${Math.random().toString(36).slice(2)}`);
    for (const dir of ['scripts', 'proto', 'libs/proto/cistern', 'services', 'cli', 'test', 'bench', 'node_modules', 'dist/cli', 'bin']) {
      mkdirSync(join(root, dir), { recursive: true });
    }
    copyFileSync(join(repoRoot, 'scripts', 'setup.sh'), join(root, 'scripts', 'setup.sh'));
    for (const f of ['scripts/bundle-cli.mjs', 'scripts/generate-proto.sh', 'tsconfig.json', 'proto/x.proto', 'cli/x.ts']) writeFileSync(join(root, f), '\n');
    writeFileSync(join(root, 'package.json'), '{"name":"t","dependencies":{},"devDependencies":{}}\n');
    writeFileSync(join(root, 'package-lock.json'), '{"packages":{"":{"dependencies":{},"devDependencies":{}}}}\n');
    writeFileSync(join(root, 'node_modules', '.package-lock.json'), '{}\n');
    writeFileSync(join(root, 'dist', 'cli', 'cisternctl.mjs'), '\n');
    // npm: records its arguments; a build leaves nothing else behind
    writeFileSync(join(root, 'bin', 'npm'), `#!/bin/sh\necho "$*" >> "${join(root, 'npm-calls')}"\n`);
    chmodSync(join(root, 'bin', 'npm'), 0o755);
    const old = new Date(Date.now() - 3_600_000);
    for (const f of ['scripts/bundle-cli.mjs', 'scripts/generate-proto.sh', 'tsconfig.json', 'proto/x.proto', 'cli/x.ts', 'package.json', 'package-lock.json', 'node_modules/.package-lock.json']) {
      utimesSync(join(root, f), old, old);
    }
    writeFileSync(join(root, 'dist', '.build-stamp'), '');
    const stamp = new Date(Date.now() - 60_000);
    utimesSync(join(root, 'dist', '.build-stamp'), stamp, stamp);
    return root;
  }

  function setup(root: string): string[] {
    rmSync(join(root, 'npm-calls'), { force: true });
    execFileSync('bash', [join(root, 'scripts', 'setup.sh')], {
      cwd: root,
      env: { ...process.env, PATH: `${join(root, 'bin')}:${process.env.PATH}`, CISTERN_SKIP_APT: '1', CISTERN_FORCE_BUILD: '' },
      stdio: 'pipe',
    });
    return existsSync(join(root, 'npm-calls')) ? readFileSync(join(root, 'npm-calls'), 'utf8').trim().split('\n') : [];
  }

  it('does nothing when the build is newer than every source', () => {
    expect(setup(builtTree())).to.deep.equal([]);
  });

  it('builds when a source is newer than the build', () => {
    const root = builtTree();
    writeFileSync(join(root, 'cli', 'x.ts'), 'changed\n');
    expect(setup(root)).to.deep.equal(['run build --silent']);
  });

  it('builds when the cisternctl bundler changed since the build', () => {
    const root = builtTree();
    writeFileSync(join(root, 'scripts', 'bundle-cli.mjs'), 'changed\n');
    expect(setup(root)).to.deep.equal(['run build --silent']);
  });

  it('builds when the cisternctl bundle is missing', () => {
    const root = builtTree();
    rmSync(join(root, 'dist', 'cli', 'cisternctl.mjs'));
    expect(setup(root)).to.deep.equal(['run build --silent']);
  });
});
