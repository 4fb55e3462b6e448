// The README's first command: `npm start` (scripts/stack.mjs) runs a nats-server, a
// coordinator and an agent with a default dir pool, answers cisternctl, comes back with the
// same pool after a restart, and SIGTERM stops every process it started.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { AbortWait, freePort, repoRoot, runCli, useTempDir, waitFor } from '../support/index.js';
import { trackPid, untrackPid } from '../support/cleanup.js';

const HOST = 'e2e-start';

/** Pids of the processes whose command line names `dir` (what the stack started under it). */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').some((arg) => arg.startsWith(dir))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

interface RunningStack {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** `extra` options come first: the launcher takes the first of an option given twice. */
function startStack(data: string, listen: string, natsPort: number, extra: string[] = [], env: Record<string, string> = {}): RunningStack {
  return launch([...extra, '--data', data, '--listen', listen, '--nats-port', String(natsPort), '--host-id', HOST], env);
}

/** scripts/stack.mjs with exactly `argv`, this environment's NATS_URL and CISTERN_LISTEN cleared, `env` added. */
function launch(argv: string[], env: Record<string, string> = {}): RunningStack {
  const child = spawn(process.execPath, [join(repoRoot, 'scripts', 'stack.mjs'), ...argv], {
    cwd: repoRoot,
    env: { ...process.env, NATS_URL: '', CISTERN_LISTEN: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackPid(child.pid!);
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    untrackPid(child.pid!);
    resolve(code);
  }));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function untilRunning(stack: RunningStack): Promise<void> {
  await waitFor('npm start to say it is running', async () => {
    if (stack.child.exitCode !== null) throw new AbortWait(new Error(`the stack exited with ${stack.child.exitCode}`));
    return stack.stdout().includes('Cistern is running') || undefined;
  }, { timeoutMs: 90_000 }).catch((e: Error) => {
    throw new Error(`${e.message}\nstdout:\n${stack.stdout()}\nstderr:\n${stack.stderr()}`);
  });
}

/**
 * The exit code of a start expected to end by itself; one that comes up instead is stopped and
 * reported as running, so the test fails on the assertion, not on a timeout.
 */
async function endOf(stack: RunningStack): Promise<number | null | 'running'> {
  const ran = await Promise.race([
    stack.exited.then(() => false),
    waitFor('the stack to say it is running', async () => stack.stdout().includes('Cistern is running') || undefined, { timeoutMs: 90_000 }).then(() => true),
  ]);
  if (!ran) return stack.exited;
  stack.child.kill('SIGTERM');
  await stack.exited;
  return 'running';
}

async function stop(stack: RunningStack, data: string): Promise<void> {
  stack.child.kill('SIGTERM');
  expect(await stack.exited).to.equal(0);
  // nothing it started outlives it (nats-server, coordinator, agent are named by the data dir)
  await waitFor('the stack\'s processes to exit', async () => processesUnder(data).length === 0 || undefined, { timeoutMs: 15_000 });
}

describe('npm start (scripts/stack.mjs)', function () {
  this.timeout(240_000);
  let running: RunningStack | undefined;
  let data: string | undefined;

  // registered before useTempDir's: runs before the directory is removed
  after(async function () {
    running?.child.kill('SIGTERM');
    await running?.exited;
    // whatever is left under this test's data dir, by its exact pid
    if (data) for (const pid of processesUnder(data)) process.kill(pid, 'SIGKILL');
  });
  const scratch = useTempDir('cistern-npm-start-');

  it('runs the stack with a default dir pool, answers cisternctl, keeps the pool across a restart, and stops everything on SIGTERM', async function () {
    data = join(scratch.path, 'data');
    const port = await freePort();
    const natsPort = await freePort();
    const server = `127.0.0.1:${port}`;

    running = startStack(data, server, natsPort);
    await untilRunning(running);
    expect(running.stderr()).to.include('stack: defined pool default');
    // nats-server, coordinator, agent, besides the stack script itself
    expect(processesUnder(data).filter((pid) => pid !== running!.child.pid)).to.have.length(3);

    const hosts = await runCli(['host-list'], { server });
    expect(hosts.stdout).to.match(new RegExp(`^ ${HOST}\\s+\\S+\\s+online\\s+1\\s`, 'm'));
    const pools = await runCli(['pool-list', '--all'], { server });
    expect(pools.stdout).to.match(/^ default\s+active\s+yes\s*$/m);
    const created = await runCli(['vol-create-as', 'default', 'v1', '1M'], { server });
    expect(created.stdout).to.equal('Vol v1 created\n\n');
    await stop(running, data);

    running = startStack(data, server, natsPort);
    await untilRunning(running);
    expect(running.stderr()).to.not.include('defined pool default');
    const volumes = await runCli(['vol-list', 'default'], { server });
    expect(volumes.stdout).to.match(/^ v1\s+\S+\/pools\/default\/v1\s*$/m);
    await stop(running, data);
    running = undefined;
  });

  // A second `npm start` on one machine (another clone, another data dir) finds 127.0.0.1:50051
  // taken. It used to start nats-server and a coordinator that could not listen, meanwhile ask
  // whatever answered on that port for its hosts, print 'coordinator on 127.0.0.1:50051' when
  // that was another stack's, and then stop with 'coordinator exited unexpectedly (code 1)'.
  it('refuses a --listen address already in use before it starts anything, naming the address and the flag', async function () {
    const busyData = join(scratch.path, 'busy');
    // held, not served: a connection is dropped at once (one left open would keep close() waiting)
    const taken: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => taken.listen({ host: '127.0.0.1', port: 0 }, resolve));
    try {
      const port = (taken.address() as { port: number }).port;
      const stack = startStack(busyData, `127.0.0.1:${port}`, await freePort());
      const timer = setTimeout(() => stack.child.kill('SIGTERM'), 30_000);
      const code = await stack.exited;
      clearTimeout(timer);
      expect(code, stack.stderr()).to.equal(2);
      expect(stack.stderr()).to.include(`127.0.0.1:${port} is in use`);
      expect(stack.stderr()).to.include('--listen');
      expect(stack.stderr()).to.not.include('coordinator on');
      expect(processesUnder(busyData)).to.deep.equal([]);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  // A second `npm start` in the same checkout, with another --listen as the port-in-use refusal
  // suggests, took the same data dir: a second nats-server on the same JetStream store (each
  // with its own view of the catalog, both writing its files) and a second agent for the same
  // host and root, unseen by the one-agent-per-host check because it was on the other NATS.
  it('refuses a second stack on a data dir a running stack uses, and starts on it once that one is gone', async function () {
    data = join(scratch.path, 'shared');
    const first = `127.0.0.1:${await freePort()}`;
    running = startStack(data, first, await freePort());
    await untilRunning(running);
    const services = processesUnder(data).filter((pid) => pid !== running!.child.pid).sort();
    expect(services).to.have.length(3);

    const second = startStack(data, `127.0.0.1:${await freePort()}`, await freePort());
    const code = await endOf(second);
    expect(code, second.stderr()).to.equal(2);
    expect(second.stderr()).to.include(`the data dir ${data} is in use by another Cistern stack (pid ${running.child.pid}, coordinator ${first})`);
    expect(second.stderr()).to.include('--data DIR');
    expect(second.stderr()).to.not.include('nats-server');
    // the first stack is untouched and still serves
    expect(processesUnder(data).filter((pid) => pid !== running!.child.pid).sort()).to.deep.equal(services);
    expect((await runCli(['pool-list', '--all'], { server: first })).stdout).to.match(/^ default\s+active\s+yes\s*$/m);

    // a stack killed outright holds the data dir no longer
    running.child.kill('SIGKILL');
    await running.exited;
    await waitFor('the killed stack\'s services to exit', async () => processesUnder(data!).length === 0 || undefined, { timeoutMs: 15_000 });
    running = startStack(data, first, await freePort());
    await untilRunning(running);
    await stop(running, data);
    running = undefined;
  });

  // Each of these used to start something first: `--host-id bad/id` made hosts/bad/id under the
  // data dir, started nats-server and the coordinator, then died on its agent's log file name
  // (ENOENT); `--nats-port abc` ran on a random port as if nothing were wrong; `--nats-port 70000`
  // and `--listen foo` ended as 'exited unexpectedly ... see <log>'.
  const refusals: { args: string[]; env: Record<string, string>; says: string }[] = [
    { args: ['--host-id', 'bad/id'], env: {}, says: "--host-id: host id 'bad/id' is not valid; allowed: 1-64 of A-Z a-z 0-9 _ -, not starting with '-'" },
    // --opt=value, as the services themselves take it: read as the value, not 'unknown option'
    { args: ['--host-id=bad/id'], env: {}, says: "--host-id: host id 'bad/id' is not valid; allowed: 1-64 of A-Z a-z 0-9 _ -, not starting with '-'" },
    { args: [], env: { CISTERN_HOST_ID: '../x' }, says: "CISTERN_HOST_ID: host id '../x' is not valid; allowed: 1-64 of A-Z a-z 0-9 _ -" },
    { args: ['--nats-port', 'abc'], env: {}, says: "--nats-port: 'abc' is not a port number; allowed: 0 to 65535 (0: any free port)" },
    { args: ['--nats-port', '70000'], env: {}, says: "--nats-port: '70000' is not a port number; allowed: 0 to 65535" },
    { args: ['--listen', 'foo'], env: {}, says: "--listen: 'foo' is not HOST:PORT (e.g. 127.0.0.1:50051, [::1]:50051)" },
    // port 0 is some free port the launcher would not know: it waited 60 s for 127.0.0.1:0
    { args: ['--listen', '127.0.0.1:0'], env: {}, says: "--listen: '127.0.0.1:0' is not HOST:PORT with a port from 1 to 65535" },
  ];
  for (const { args, env, says } of refusals) {
    it(`refuses ${args.join(' ') || Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')} before it starts or makes anything, naming the setting and what it takes`, async function () {
      const dir = join(scratch.path, `bad-${Math.random().toString(36).slice(2)}`);
      // a bad --listen has to win over the valid one startStack adds; a bad CISTERN_HOST_ID
      // needs startStack's --host-id left out, so these start the launcher themselves
      const base = ['--data', dir, '--nats-port', String(await freePort())];
      const argv = [...args, ...base, ...(args.includes('--listen') ? [] : ['--listen', `127.0.0.1:${await freePort()}`])];
      const stack = launch(argv, { CISTERN_HOST_ID: '', ...env });
      const code = await endOf(stack);
      const err = stack.stderr();
      expect(code, err).to.equal(2);
      expect(err).to.include(says);
      expect(existsSync(dir), 'the data dir was made').to.equal(false);
      expect(processesUnder(dir)).to.deep.equal([]);
    });
  }

  // A setting meant for a service (README's configuration table: the coordinator reads
  // CISTERN_EVENT_MAX_AGE, the launcher passes its environment on) that the service refuses
  // used to end as 'coordinator exited unexpectedly (code 2, signal null); see <log>': the
  // reason was only in the log file.
  it('says why a service it started exited, not only where its log is', async function () {
    const dir = join(scratch.path, 'refused');
    const stack = startStack(dir, `127.0.0.1:${await freePort()}`, await freePort(), [], { CISTERN_EVENT_MAX_AGE: '1s' });
    const code = await endOf(stack);
    expect(code, stack.stderr()).to.equal(1);
    expect(stack.stderr()).to.include('coordinator exited unexpectedly (code 2');
    expect(stack.stderr()).to.include("cistern-coordinator: CISTERN_EVENT_MAX_AGE: '1s' is out of range; allowed: from 2m");
    await waitFor('the stack\'s processes to exit', async () => processesUnder(dir).length === 0 || undefined, { timeoutMs: 15_000 });
  });
});
