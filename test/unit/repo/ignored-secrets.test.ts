// What the README's secure setup writes into the checkout (scripts/make-certs.sh's output: a
// CA key, the secret key, bearer tokens, NATS passwords; nats-server's JetStream store, which
// holds the catalog and the encrypted secret values) must stay out of the Docker build context
// (`docker compose up --build` copies the checkout into the image with `COPY . .`) and out of
// git. The directories are read from the README and make-certs.sh themselves, so moving them
// there without updating the ignore files fails here.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../support/index.js';

function ignorePatterns(file: string): string[] {
  return readFileSync(join(repoRoot, file), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/** Whether a top-level directory `dir` is ignored by one of `patterns` (a plain name, with or without slashes). */
function ignoresDir(patterns: string[], dir: string): boolean {
  return patterns.some((p) => p.replace(/^\.?\//, '').replace(/\/$/, '') === dir);
}

/** The top-level directories the README's secure setup and make-certs.sh's default write. */
function secureSetupDirs(): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const block = /## Secure setup[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const makeCerts = readFileSync(join(repoRoot, 'scripts', 'make-certs.sh'), 'utf8');
  const dirs = [
    /make-certs\.sh --out (\S+)/.exec(block)?.[1],
    /nats-server -js -sd (\S+)/.exec(block)?.[1],
    /^out=(\S+)$/m.exec(makeCerts)?.[1],
  ];
  expect(dirs.every(Boolean), `README's secure setup or make-certs.sh no longer has its output dirs: ${JSON.stringify(dirs)}`).to.equal(true);
  return dirs.map((d) => d!.replace(/^\.\//, '').replace(/\/$/, ''));
}

describe('secure setup output is neither in the Docker build context nor in git', () => {
  const dirs = secureSetupDirs();
  for (const file of ['.dockerignore', '.gitignore']) {
    for (const dir of dirs) {
      it(`${file} ignores ${dir}/`, () => {
        expect(ignoresDir(ignorePatterns(file), dir), `${file} does not ignore ${dir}/`).to.equal(true);
      });
    }
  }
});
