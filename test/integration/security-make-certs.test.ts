// scripts/make-certs.sh as README.md and docs/security.md run it: `bash scripts/make-certs.sh
// --out DIR --hosts a,b` from the repository root, and with relative paths from elsewhere.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect } from 'chai';
import { makeTempDir } from '../support/cleanup.js';
import { repoRoot } from '../support/paths.js';

const FILES = ['ca.crt', 'ca.key', 'server.crt', 'server.key', 'client.crt', 'client.key', 'tokens.json', 'admin.token', 'operator.token', 'viewer.token', 'secret.key'];
const PRIVATE = FILES.filter((f) => !f.endsWith('.crt'));

function expectCerts(dir: string): void {
  for (const f of FILES) expect(existsSync(join(dir, f)), f).to.equal(true);
  for (const f of PRIVATE) expect(statSync(join(dir, f)).mode & 0o777, f).to.equal(0o600);
  expect(readdirSync(join(dir, 'nats')).sort()).to.deep.equal(['agent-a.pass', 'agent-b.pass', 'coordinator.pass', 'events-reader.pass', 'nats-auth.conf']);
  execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), join(dir, 'server.crt'), join(dir, 'client.crt')], { stdio: 'pipe' });
}

describe('security: scripts/make-certs.sh', function () {
  this.timeout(60_000);

  it('runs by a relative path from the repository root, as the README says (--hosts: NATS users too)', () => {
    const out = join(makeTempDir('cistern-certs-').path, 'certs');
    const r = spawnSync('bash', ['scripts/make-certs.sh', '--out', out, '--hosts', 'a,b'], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expectCerts(out);
    // a second run refuses to replace the CA, --force replaces it
    const again = spawnSync('bash', ['scripts/make-certs.sh', '--out', out, '--hosts', 'a,b'], { cwd: repoRoot, encoding: 'utf8' });
    expect(again.status).to.equal(1);
    expect(again.stderr).to.match(/already holds a CA; use --force/);
    const forced = spawnSync('bash', ['scripts/make-certs.sh', '--out', out, '--hosts', 'a,b', '--force'], { cwd: repoRoot, encoding: 'utf8' });
    expect(forced.status, forced.stderr).to.equal(0);
    expectCerts(out);
  });

  it('runs with a relative script path and a relative --out from another directory', () => {
    const cwd = makeTempDir('cistern-certs-').path;
    const script = relative(cwd, join(repoRoot, 'scripts', 'make-certs.sh'));
    const r = spawnSync('bash', [script, '--out', './certs', '--hosts', 'a,b'], { cwd, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expectCerts(join(cwd, 'certs'));
  });

  it('stops before writing anything when --hosts cannot be done (no nats-config.mjs beside it)', () => {
    const dir = makeTempDir('cistern-certs-').path;
    mkdirSync(join(dir, 'scripts'));
    copyFileSync(join(repoRoot, 'scripts', 'make-certs.sh'), join(dir, 'scripts', 'make-certs.sh'));
    const r = spawnSync('bash', ['scripts/make-certs.sh', '--out', 'certs', '--hosts', 'a'], { cwd: dir, encoding: 'utf8' });
    expect(r.status).to.equal(1);
    expect(r.stderr).to.match(/nats-config\.mjs is missing/);
    expect(existsSync(join(dir, 'certs'))).to.equal(false);
  });
});
