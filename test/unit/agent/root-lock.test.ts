// The --root lock (services/agent/root-lock.ts): held by a live agent it refuses another,
// wherever that agent runs on this kernel (another pid namespace: a container over the same
// bind-mounted root); left by one that is gone (kill -9, nothing released) it is taken over at
// once; an agent's stop gives it back.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RootLock, RootTakenError, ROOT_LOCK } from '../../../services/agent/root-lock.js';
import { readProcStat } from '../../../libs/os/proc.js';
import { silentLogger } from '../../../libs/log/logger.js';
import { makeTempDir, ServiceProcess, waitFor, distDir } from '../../support/index.js';

const HOLDER = join(distDir, 'test', 'support', 'root-lock-holder.js');

/** unshare(1) can make a pid namespace here (root, or a kernel that lets users have one). */
const pidNamespaces = spawnSync('unshare', ['--pid', '--fork', '--kill-child', '--mount-proc', 'true']).status === 0;

/** Another agent's process holding `root` as host `host`; `wrap` runs it under another program (unshare). */
async function holder(root: string, host: string, wrap: string[] = []): Promise<{ proc: ServiceProcess; pid: number }> {
  const argv = [...wrap, process.execPath, HOLDER, root, host];
  const proc = ServiceProcess.spawn({ name: `root lock holder ${host}`, command: argv[0]!, args: argv.slice(1) });
  const pid = await waitFor(
    'the holder to lock the root',
    () => {
      const out = proc.logs();
      if (!proc.alive || out.startsWith('refused')) throw new Error(`holder did not lock: ${out}`);
      const m = /^locked ([0-9]+)$/m.exec(out);
      return m ? Number(m[1]) : undefined;
    },
    { timeoutMs: 20_000 },
  );
  return { proc, pid };
}

function refusal(root: string, host: string, pid: number): string {
  return `--root '${root}' is in use by the agent of host '${host}' (pid ${pid}): give each agent a --root of its own`;
}

/** The refusal's message of a take that must fail with RootTakenError. */
async function takeRefused(root: string, host: string, log: typeof silentLogger): Promise<string> {
  const outcome = await RootLock.take(root, host, log).then(
    (lock) => {
      lock.release();
      return undefined;
    },
    (err: unknown) => err,
  );
  expect(outcome).to.be.instanceOf(RootTakenError);
  return (outcome as Error).message;
}

describe('agent --root lock', () => {
  let tmp: { path: string; remove: () => Promise<void> };
  beforeEach(() => {
    tmp = makeTempDir('cistern-root-lock-');
  });

  it('a live holder (another process) is refused, naming its host and pid, stopped (SIGSTOP) too; it keeps the root', async () => {
    const a = await holder(tmp.path, 'a');
    try {
      expect(await takeRefused(tmp.path, 'b', silentLogger)).to.equal(refusal(tmp.path, 'a', a.pid));
      a.proc.signal('SIGSTOP');
      try {
        expect(await takeRefused(tmp.path, 'b', silentLogger)).to.equal(refusal(tmp.path, 'a', a.pid));
      } finally {
        a.proc.signal('SIGCONT');
      }
      expect(a.proc.alive).to.equal(true);
    } finally {
      await a.proc.dispose();
    }
  });

  it('a holder in another pid namespace (a container over the same root) is refused, naming its host and its own pid', async function () {
    if (!pidNamespaces) this.skip();
    const a = await holder(tmp.path, 'a', ['unshare', '--pid', '--fork', '--kill-child', '--mount-proc']);
    try {
      expect(await takeRefused(tmp.path, 'b', silentLogger)).to.equal(refusal(tmp.path, 'a', a.pid));
      expect(a.proc.alive).to.equal(true);
    } finally {
      await a.proc.dispose();
    }
  });

  it("a holder of another machine name (a container's own hostname) is named with it, its pid being of no use here", async function () {
    if (!pidNamespaces) this.skip();
    const a = await holder(tmp.path, 'a', ['unshare', '--pid', '--uts', '--fork', '--kill-child', '--mount-proc', 'sh', '-c', 'hostname cistern-pod-x && exec "$@"', 'sh']);
    try {
      expect(await takeRefused(tmp.path, 'b', silentLogger)).to.equal(`--root '${tmp.path}' is in use by the agent of host 'a' (pid ${a.pid} on 'cistern-pod-x'): give each agent a --root of its own`);
    } finally {
      await a.proc.dispose();
    }
  });

  it('the root of a holder killed outright (kill -9, nothing released) is taken at once, and given back at stop', async () => {
    const a = await holder(tmp.path, 'a');
    await a.proc.kill();
    await a.proc.dispose();
    const lock = await RootLock.take(tmp.path, 'b', silentLogger);
    expect(await takeRefused(tmp.path, 'c', silentLogger)).to.equal(refusal(tmp.path, 'b', process.pid));
    lock.release();
    expect(existsSync(join(tmp.path, ROOT_LOCK)), 'a stop leaves nothing under the root').to.equal(false);
    const c = await holder(tmp.path, 'c');
    await c.proc.dispose();
  });

  it('a file there that no agent holds (written by hand) is taken', async () => {
    writeFileSync(join(tmp.path, ROOT_LOCK), 'junk');
    (await RootLock.take(tmp.path, 'b', silentLogger)).release();
    expect(existsSync(join(tmp.path, ROOT_LOCK))).to.equal(false);
  });

  it('the link an earlier version left: a live holder is refused, a dead one is replaced', async () => {
    const path = join(tmp.path, ROOT_LOCK);
    const parent = readProcStat(process.ppid)!;
    symlinkSync(`${process.ppid}:${parent.startTime}:a`, path);
    expect(await takeRefused(tmp.path, 'b', silentLogger)).to.equal(refusal(tmp.path, 'a', process.ppid));
    expect(lstatSync(path).isSymbolicLink()).to.equal(true);
    const dead = `${spawnSync('true').pid}:1:a`;
    spawnSync('ln', ['-sfn', dead, path]);
    const lock = await RootLock.take(tmp.path, 'b', silentLogger);
    // the dangling link was not followed: no file named after the dead holder appeared
    expect(existsSync(join(tmp.path, dead))).to.equal(false);
    expect(lstatSync(path).isSymbolicLink()).to.equal(false);
    expect(await takeRefused(tmp.path, 'c', silentLogger)).to.equal(refusal(tmp.path, 'b', process.pid));
    lock.release();
  });
});
