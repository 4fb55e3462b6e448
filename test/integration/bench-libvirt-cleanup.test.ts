// The benchmarks' teardown of libvirt pools (bench/context.ts) when the one virsh session is
// gone: Ctrl-C in a terminal reaches the whole foreground process group, and virsh reading
// commands from a pipe dies of SIGINT before the bench's handler asks it to destroy the pools.
// With BENCH_LIBVIRT_URI (someone's running libvirtd) those pools would outlive the run, and
// the next run's pool-create-as of the same names would fail. A private libvirtd (storage
// driver only, bench/libvirt.ts) stands in for that daemon here.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Ctx, sizesFromEnv } from '../../bench/context.js';
import { startLibvirtd, VirshSession, type LibvirtDaemon } from '../../bench/libvirt.js';
import { hasTool } from '../support/tools.js';

describe('bench: libvirt pools are destroyed at the end even when the virsh session died', function () {
  this.timeout(60_000);
  let work: string | undefined;
  let daemon: LibvirtDaemon | undefined;
  let session: VirshSession | undefined;
  const virsh = (...args: string[]) => spawnSync('virsh', ['-q', '-c', daemon!.uri, ...args], { encoding: 'utf8' });

  before(async function () {
    // skip reason: libvirtd (Debian libvirt-daemon) is not installed
    if (!hasTool('libvirtd') || !hasTool('virsh')) this.skip();
    work = mkdtempSync(join(tmpdir(), 'cistern-bench-cleanup-'));
    daemon = await startLibvirtd();
  });

  after(async () => {
    await session?.close().catch(() => undefined);
    if (daemon) {
      virsh('pool-destroy', 'lv-cleanup-a');
      virsh('pool-destroy', 'lv-cleanup-b');
      await daemon.stop();
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('dropAll destroys them with a virsh of its own', async () => {
    session = new VirshSession(daemon!.uri);
    const ctx = new Ctx(sizesFromEnv({}), work!, session, daemon!.uri, undefined, () => undefined);
    await ctx.libvirtPool('lv-cleanup-a');
    await ctx.libvirtPool('lv-cleanup-b');
    expect(virsh('pool-list', '--name').stdout).to.contain('lv-cleanup-a');
    const gone = new Promise<void>((r) => session!.proc.once('exit', () => r()));
    session.proc.kill('SIGINT');
    await gone;
    await ctx.dropAll();
    const left = virsh('pool-list', '--all', '--name');
    expect(left.status, left.stderr).to.equal(0);
    const names = left.stdout.split('\n').map((l) => l.trim());
    expect(names).to.not.include('lv-cleanup-a');
    expect(names).to.not.include('lv-cleanup-b');
  });
});
