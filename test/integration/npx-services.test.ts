// The README starts the coordinator and agents with `npx cistern-coordinator ... &` and
// `npx cistern-agent ... &`. npx (npm exec) runs a bin as npm -> sh -c -> node: a SIGTERM to
// the npx process (`kill $!`, a script stopping what it started) ends npm and the shell, which
// do not pass it on, and used to leave the service running with no parent, still holding its
// port or its host id (the next agent for that host is refused: "another agent already serves
// host ..."). A service started by npx now stops as on SIGTERM when npx is gone.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, makeTempDir, registerCleanup, repoRoot, startNats, waitFor } from '../support/index.js';
import { trackPid, untrackPid } from '../support/cleanup.js';
import { hasExited, readProcStat } from '../../libs/os/proc.js';

/** The node process of bin `bin` whose command line has `marker` (npm and sh have it too). */
function serviceProcess(bin: string, marker: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (/(^|\/)node$/.test(argv[0] ?? '') && (argv[1] ?? '').endsWith(`/${bin}`) && argv.includes(marker)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

describe('services started by npx stop when npx is stopped', function () {
  this.timeout(120_000);

  for (const bin of ['cistern-agent', 'cistern-coordinator'] as const) {
    it(`${bin}: a SIGTERM to the npx process stops the service too`, async () => {
      const nats = await startNats();
      registerCleanup(`${bin} npx nats`, () => nats.stop());
      const tmp = makeTempDir(`cistern-npx-${bin}-`);
      registerCleanup(`${bin} npx dir`, () => tmp.remove());
      const marker = join(tmp.path, 'data');
      const args =
        bin === 'cistern-agent'
          ? ['--nats', nats.url, '--host-id', 'npx-a', '--root', marker]
          : ['--nats', nats.url, '--listen', `127.0.0.1:${await freePort()}`, '--data', marker];
      const npx = spawn('npx', [bin, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
      trackPid(npx.pid!);
      let output = '';
      npx.stdout!.on('data', (b: Buffer) => (output += b.toString()));
      npx.stderr!.on('data', (b: Buffer) => (output += b.toString()));
      const npxExited = new Promise<void>((resolve) => npx.once('exit', () => resolve()));

      const ready = bin === 'cistern-agent' ? '"agent serving"' : '"coordinator serving"';
      const pid = await waitFor(`${bin} to serve under npx`, () => (output.includes(ready) ? serviceProcess(bin, marker) : undefined), {
        timeoutMs: 60_000,
        context: () => output,
      });
      const startTime = readProcStat(pid)!.startTime;
      registerCleanup(`${bin} under npx`, () => {
        if (!hasExited(pid, startTime)) process.kill(pid, 'SIGKILL');
      });
      trackPid(pid);

      npx.kill('SIGTERM');
      await npxExited;
      untrackPid(npx.pid!);
      await waitFor(`${bin} (pid ${pid}) to stop after npx`, () => hasExited(pid, startTime) || undefined, { timeoutMs: 20_000, context: () => output });
      untrackPid(pid);
      expect(hasExited(pid, startTime)).to.equal(true);
    });
  }
});
