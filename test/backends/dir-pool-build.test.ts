// A dir pool build as root, next to someone who can write in the target's parent: the owner and
// mode go to the directory the build made and opened, never to a name (which, swapped for a
// link between the mkdir and the chown, would hand /etc to the pool's owner). The swap itself
// falls between two system calls of the agent with no tool in between, so what is pinned is
// the calls: the build runs in a child process under strace, and no chmod or chown of it may
// take a path. The honest cases libvirt 9.0 allows (missing parents, a target that is a link
// to a directory) still build.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirBackend } from '../../libs/backends/dir.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import { PoolType, Tristate, type PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { hasTool, makeTempDir } from '../support/index.js';
import { rejects } from '../support/rejects.js';

const DIR_BACKEND = fileURLToPath(new URL('../../libs/backends/dir.js', import.meta.url));
const EXEC_RUNNER = fileURLToPath(new URL('../../libs/backends/exec-runner.js', import.meta.url));

interface Perms {
  mode: number;
  owner: number;
  group: number;
}

function poolDef(path: string, perms?: Perms): PoolDefinition {
  return {
    type: PoolType.POOL_TYPE_DIR,
    name: 'p',
    uuid: '',
    source: undefined,
    target: { path, permissions: perms ? { mode: perms.mode, owner: BigInt(perms.owner), group: BigInt(perms.group), label: '' } : undefined },
    features: undefined,
    mountOptions: [],
  };
}

/** Builds the pool in a child node process under strace; every mkdir/chmod/chown-family call it made. */
function tracedBuild(dir: string, target: string, perms: Perms): string[] {
  const log = join(dir, 'strace.log');
  const script = `
    const { DirBackend } = await import(${JSON.stringify(DIR_BACKEND)});
    const { ExecRunner } = await import(${JSON.stringify(EXEC_RUNNER)});
    const perms = ${JSON.stringify(perms)};
    const pool = { type: ${PoolType.POOL_TYPE_DIR}, name: 'p', uuid: '', source: undefined, mountOptions: [], features: undefined,
      target: { path: ${JSON.stringify(target)}, permissions: { mode: perms.mode, owner: BigInt(perms.owner), group: BigInt(perms.group), label: '' } } };
    await new DirBackend().buildPool({ runner: new ExecRunner(), pool }, { overwrite: false, noOverwrite: false });`;
  execFileSync(
    'strace',
    ['-f', '-qq', '-e', 'trace=mkdir,mkdirat,chmod,fchmod,fchmodat,chown,fchown,fchownat,lchown', '-o', log, '--', process.execPath, '--input-type=module', '-e', script],
    { stdio: 'pipe' },
  );
  return readFileSync(log, 'utf8')
    .split('\n')
    .map((l) => l.replace(/^\d+\s+/, ''))
    .filter((l) => /^(mkdir|mkdirat|chmod|fchmod|fchmodat|chown|fchown|fchownat|lchown)\(/.test(l));
}

describe('dir pool build: owner and mode through the directory opened, not its name', function () {
  this.timeout(60_000);
  before(function () {
    if (process.getuid?.() !== 0 || !hasTool('strace')) this.skip(); // skip reason: needs root (the owner change) and strace
  });

  it('a new target: made in its parent opened once, its owner and mode set with fchown/fchmod; no chmod or chown takes a path', async () => {
    const tmp = makeTempDir('cistern-pool-build-');
    try {
      const target = join(tmp.path, 'parents', 'pool');
      const calls = tracedBuild(tmp.path, target, { mode: 0o750, owner: 65534, group: 65534 });
      const st = statSync(target);
      expect(st.mode & 0o777).to.equal(0o750);
      expect([st.uid, st.gid]).to.deep.equal([65534, 65534]);
      // the target's own mkdir names it in the opened parent, never by its path
      const made = calls.filter((c) => c.includes('"/proc/self/fd/'));
      expect(made, calls.join('\n')).to.have.length(1);
      expect(made[0]).to.match(/^mkdir(at)?\(.*"\/proc\/self\/fd\/\d+\/pool"/);
      expect(calls.some((c) => c.includes(`"${target}"`)), calls.join('\n')).to.equal(false);
      // owner and mode: on a descriptor only
      const perms = calls.filter((c) => /^(l?chown|fchownat|chmod|fchmodat|fchown|fchmod)\(/.test(c));
      expect(perms.map((c) => c.slice(0, c.indexOf('(')))).to.have.members(['fchown', 'fchmod']);
    } finally {
      await tmp.remove();
    }
  });

  it('a build that fails after the mkdir (cow asked for off btrfs) removes the directory it made, through its parent; a directory there before stays', async () => {
    const tmp = makeTempDir('cistern-pool-build-');
    try {
      const target = join(tmp.path, 'pool');
      const pool = { ...poolDef(target), features: { cow: Tristate.TRISTATE_NO } };
      const err = await rejects(new DirBackend().buildPool({ runner: new ExecRunner(), pool }, { overwrite: false, noOverwrite: false }));
      expect(err.code, err.message).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.contain('not btrfs');
      expect(existsSync(target)).to.equal(false);
      mkdirSync(target);
      await rejects(new DirBackend().buildPool({ runner: new ExecRunner(), pool }, { overwrite: false, noOverwrite: false }));
      expect(statSync(target).isDirectory()).to.equal(true);
    } finally {
      await tmp.remove();
    }
  });

  it('a target that is a link to a directory when the build starts is followed, as libvirt follows it; its directory gets the mode', async () => {
    const tmp = makeTempDir('cistern-pool-build-');
    try {
      const real = join(tmp.path, 'srv-images');
      mkdirSync(real, { mode: 0o755 });
      const link = join(tmp.path, 'images');
      symlinkSync(real, link);
      await new DirBackend().buildPool({ runner: new ExecRunner(), pool: poolDef(link, { mode: 0o700, owner: -1, group: -1 }) }, { overwrite: false, noOverwrite: false });
      expect(statSync(real).mode & 0o777).to.equal(0o700);
    } finally {
      await tmp.remove();
    }
  });
});
