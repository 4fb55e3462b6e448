// The netfs backend against a real userspace NFS server: nfs-ganesha (VFS FSAL) with its
// own rpcbind inside a network namespace this test creates (the namespace's loopback,
// 127.0.0.1), and FindPoolSources running `showmount` in that namespace. This kernel has
// no NFS client, so mounting an export cannot be done here: the mount / umount command
// lines are checked with the recording runner (test/unit/backends/netfs.test.ts).
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { NetfsBackend, parseShowmountExports } from '../../libs/backends/netfs.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { CommandRunner, RunOptions, RunResult } from '../../libs/backends/runner.js';
import { NotFoundError } from '../../libs/errors/errors.js';
import { PoolSource } from '../../libs/proto/cistern/v1/storage.js';
import { makeTempDir, registerCleanup } from '../support/cleanup.js';
import { ServiceProcess, waitFor } from '../support/process.js';
import { hasTool } from '../support/index.js';
import { rejects } from '../support/rejects.js';

/** Runs every command inside a network namespace. */
class NetnsRunner implements CommandRunner {
  constructor(
    private readonly ns: string,
    private readonly inner: CommandRunner = new ExecRunner(),
  ) {}
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    return this.inner.run(['ip', 'netns', 'exec', this.ns, ...argv], options);
  }
}

/**
 * Files rpcbind and ganesha leave under /run, which the namespace shares with the host
 * (a network namespace has no /run of its own): removed after the test if it made them.
 */
const RPCBIND_FILES = ['/run/rpcbind.sock', '/run/rpcbind.lock', '/run/rpcbind/rpcbind.xdr', '/run/rpcbind/portmap.xdr'];
const GANESHA_RUN_DIR = '/run/ganesha';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (ip netns add)';
  const missing = ['ip', 'rpcbind', 'ganesha.nfsd', 'showmount', 'rpcinfo'].filter((t) => !hasTool(t));
  if (missing.length > 0) {
    return `needs ${missing.join(', ')} (Debian: iproute2, rpcbind, nfs-ganesha, nfs-ganesha-vfs, nfs-common; bash scripts/setup.sh installs them)`;
  }
  if (existsSync('/run/rpcbind.sock')) {
    return 'an rpcbind already runs on this host (/run/rpcbind.sock exists): ganesha would register its services with that one instead of the test\'s';
  }
  return undefined;
}

describe('netfs FindPoolSources against nfs-ganesha in a network namespace', function () {
  this.timeout(120_000);
  const ns = `cistern-nfs-${process.pid}-${randomBytes(3).toString('hex')}`;
  const backend = new NetfsBackend();
  let runner: NetnsRunner;
  let root: string;
  let exports: string[];
  let rpcbind: ServiceProcess | undefined;
  let ganesha: ServiceProcess | undefined;
  let teardown: (() => Promise<void>) | undefined;

  before(async function () {
    const reason = skipReason();
    if (reason) this.skip();
    const dir = makeTempDir('cistern-nfs-');
    root = dir.path;
    exports = [join(root, 'export1'), join(root, 'export 2')];
    for (const e of exports) mkdirSync(e);
    mkdirSync(join(root, 'recovery'));
    const conf = join(root, 'ganesha.conf');
    writeFileSync(
      conf,
      `NFS_CORE_PARAM { Protocols = 3, 4; Enable_NLM = false; Enable_RQUOTA = false; }
NFSV4 { Graceless = true; RecoveryBackend = fs; RecoveryRoot = "${join(root, 'recovery')}"; }
EXPORT_DEFAULTS { Access_Type = RW; Squash = No_Root_Squash; }
EXPORT { Export_Id = 1; Path = "${exports[0]}"; Pseudo = "${exports[0]}"; Protocols = 3, 4; FSAL { Name = VFS; } }
EXPORT { Export_Id = 2; Path = "${exports[1]}"; Pseudo = "${exports[1]}"; Protocols = 3, 4; FSAL { Name = VFS; }
  CLIENT { Clients = 127.0.0.1, 10.0.0.0/8; Access_Type = RO; } }
LOG { Default_Log_Level = WARN; }
`,
    );

    // Cleanups run newest first: processes stop, then rpcbind's files go, then the namespace.
    const createdFiles = RPCBIND_FILES.filter((f) => !existsSync(f));
    const createdRunDir = !existsSync(GANESHA_RUN_DIR);
    const removeNs = registerCleanup(`network namespace ${ns}`, () => {
      execFileSync('ip', ['netns', 'delete', ns], { stdio: 'pipe' });
    });
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up'], { stdio: 'pipe' });
    const removeFiles = registerCleanup(`rpcbind files of namespace ${ns}`, () => {
      for (const f of createdFiles) rmSync(f, { force: true });
      if (createdRunDir && existsSync(GANESHA_RUN_DIR)) rmdirSync(GANESHA_RUN_DIR);
    });
    rpcbind = ServiceProcess.spawn({ name: `rpcbind (netns ${ns})`, command: 'ip', args: ['netns', 'exec', ns, 'rpcbind', '-f'] });
    await waitFor('rpcbind to answer in the namespace', () => {
      execFileSync('ip', ['netns', 'exec', ns, 'rpcinfo', '-p', '127.0.0.1'], { stdio: 'pipe' });
      return true;
    }, { timeoutMs: 15_000, context: () => rpcbind!.logTail() });
    ganesha = ServiceProcess.spawn({
      name: `ganesha.nfsd (netns ${ns})`,
      command: 'ip',
      args: ['netns', 'exec', ns, 'ganesha.nfsd', '-F', '-f', conf, '-L', join(root, 'ganesha.log'), '-p', join(root, 'ganesha.pid'), '-N', 'NIV_WARN'],
    });
    runner = new NetnsRunner(ns);
    await waitFor('ganesha to register mountd with rpcbind', () => {
      if (!ganesha!.alive) throw new Error(`ganesha.nfsd exited: ${readLog()}`);
      return execFileSync('ip', ['netns', 'exec', ns, 'rpcinfo', '-p', '127.0.0.1'], { encoding: 'utf8' }).includes('mountd');
    }, { timeoutMs: 30_000, context: () => `${ganesha!.logTail()}\n${readLog()}` });

    teardown = async () => {
      await ganesha?.dispose();
      await rpcbind?.dispose();
      await removeFiles();
      await removeNs();
      await dir.remove();
    };

    function readLog(): string {
      const log = join(root, 'ganesha.log');
      return existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-20).join('\n') : '';
    }
  });

  after(async () => {
    await teardown?.();
  });

  it('lists the exports of 127.0.0.1 as nfs sources with host and dir (paths with spaces kept)', async () => {
    const sources = await backend.findPoolSources({ runner }, PoolSource.create({ hosts: [{ name: '127.0.0.1', port: 0 }] }));
    expect(sources).to.deep.equal(
      exports.map((dir) => PoolSource.create({ hosts: [{ name: '127.0.0.1', port: 0 }], dir, format: 'nfs' })),
    );
  });

  it('the same listing as showmount itself prints it', async () => {
    const out = execFileSync('ip', ['netns', 'exec', ns, 'showmount', '--no-headers', '--exports', '127.0.0.1'], { encoding: 'utf8' });
    // showmount's lines: the export path (spaces kept), blanks, the client list
    const lines = out.split('\n').filter((l) => l.trim() !== '');
    expect(lines, out).to.have.length(exports.length);
    for (const e of exports) expect(lines.filter((l) => l.startsWith(`${e} `)), out).to.have.length(1);
    // the backend's parse of that output and its FindPoolSources: one path per line, in
    // showmount's order, each the start of its line
    const parsed = parseShowmountExports(out);
    expect(parsed, out).to.have.length(lines.length);
    parsed.forEach((dir, i) => expect(lines[i]!.startsWith(`${dir} `), `line ${i}: ${lines[i]}`).to.equal(true));
    expect([...parsed].sort()).to.deep.equal([...exports].sort());
    const sources = await backend.findPoolSources({ runner }, PoolSource.create({ hosts: [{ name: '127.0.0.1', port: 0 }] }));
    expect(sources.map((s) => s.dir)).to.deep.equal(parsed);
  });

  it('a host without an NFS server: NOT_FOUND with showmount\'s reason', async () => {
    await ganesha!.stop();
    const err = await rejects(backend.findPoolSources({ runner }, PoolSource.create({ hosts: [{ name: '127.0.0.1', port: 0 }] })));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.match(/^no storage pools were found on host '127\.0\.0\.1': .*RPC/);
  });

  it('mounting an export as a netfs pool', function () {
    // skip reason: this kernel has no NFS client (no nfs in /proc/filesystems, no modprobe, no
    // modules), so `mount -t nfs` cannot work here; and a mount made through `ip netns exec`
    // would live in that command's private mount namespace only. The exact mount / umount
    // command lines for nfs, auto, cifs and glusterfs are asserted with the recording runner
    // (test/unit/backends/netfs.test.ts).
    this.skip();
  });
});
