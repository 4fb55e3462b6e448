// cisternctl's progress bar against real processes: run in a pseudo-terminal (util-linux
// `script`), a vol-wipe of a 64 MiB volume draws a bar from the agent's OPERATION_PROGRESS
// events and then prints virsh's message; through pipes it prints virsh's output only.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { entryPoints, useStack, useTempDir } from '../support/index.js';
import { trackPid, untrackPid } from '../support/cleanup.js';
import { createVolume, startDirPool } from './reliability-helpers.js';

const POOL = 'hosts/a/pools/bar';

/** Single-quoted for the shell `script -c` runs the command with. */
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs cisternctl in a pseudo-terminal; stdout and stderr both arrive on the terminal. */
function cliInTerminal(args: string[], server: string): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, entryPoints.cli, ...args].map(q).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      env: { ...process.env, CISTERN_SERVER: server },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pid = child.pid;
    if (pid !== undefined) trackPid(pid);
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => out.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      if (pid !== undefined) untrackPid(pid);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (pid !== undefined) untrackPid(pid);
      resolve({ code, output: Buffer.concat(out).toString('utf8') });
    });
  });
}

describe('cisternctl progress bar (real processes, pseudo-terminal)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-cli-progress-');

  before(async function () {
    this.timeout(60_000);
    await startDirPool(ctx.stack, 'a', 'bar', join(scratch.path, 'bar'));
    // no <allocation>: libvirt allocates the whole 64 MiB
    await createVolume(ctx.stack, POOL, 'w64.img', String(64 * 1024 * 1024));
  });

  it('vol-wipe of a 64 MiB volume on a terminal draws a bar up to 100 % and prints virsh\'s message', async () => {
    const r = await cliInTerminal(['vol-wipe', 'w64.img', '--pool', 'bar'], ctx.stack.address);
    expect(r.code, r.output).to.equal(0);
    // the terminal turns \n into \r\n; the bar redraws itself with \r
    const lines = r.output.split(/\r\n|\r|\n/).map((l) => l.trimEnd());
    const bars = lines.filter((l) => l.startsWith('wipe w64.img: ['));
    expect(bars, r.output).to.not.be.empty;
    expect(bars.at(-1)).to.equal('wipe w64.img: [==============================] 100% 64.00 MiB / 64.00 MiB');
    expect(lines).to.include('Vol w64.img wiped');
    expect(lines.indexOf('Vol w64.img wiped')).to.be.greaterThan(lines.lastIndexOf(bars.at(-1)!));
  });

  it('the same vol-wipe through pipes prints virsh\'s output only (no bar)', async () => {
    const r = await ctx.stack.cli(['vol-wipe', 'w64.img', '--pool', 'bar']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('Vol w64.img wiped\n\n');
    expect(r.stderr).to.equal('');
  });

  it('vol-clone on a terminal draws the clone\'s bar and prints virsh\'s message', async () => {
    const r = await cliInTerminal(['vol-clone', 'w64.img', 'c64.img', '--pool', 'bar'], ctx.stack.address);
    expect(r.code, r.output).to.equal(0);
    const lines = r.output.split(/\r\n|\r|\n/).map((l) => l.trimEnd());
    expect(lines.filter((l) => l.startsWith('clone c64.img: [')).at(-1), r.output)
      .to.equal('clone c64.img: [==============================] 100% 64.00 MiB / 64.00 MiB');
    expect(lines).to.include('Vol c64.img cloned from w64.img');
  });
});
