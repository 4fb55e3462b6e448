// The programs an agent runs die with it. A kill -9 of the agent's pid alone (the OOM killer,
// an operator) used to leave a running scrub or qemu-img convert behind, still writing to a
// volume the restarted agent considers free (it even removes a partial clone while the orphan
// writes it). Here the agent alone is killed, never its process group, as those would be.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { registerCleanup, useStack, useTempDir, waitFor, type AgentHandle } from '../support/index.js';
import { WipeAlgorithm, type CloneVolumeRequest } from '../../libs/proto/cistern/v1/storage.js';
import { childPids, hasExited, readProcStat, type ProcStat } from '../../libs/os/proc.js';
import { createVolume, fillWithData, grpcCode, startDirPool } from './reliability-helpers.js';

const MiB = 1024 * 1024;

/** Its command line, or '' once it is gone. */
function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** Kills of the tools the tests found, run after each test. */
const started: Array<() => Promise<void>> = [];

/** A tool that outlived its test is killed by its exact pid (and start time, so never a newer process with that pid). */
function killIfRunning(tool: ProcStat): void {
  if (!hasExited(tool.pid, tool.startTime)) process.kill(tool.pid, 'SIGKILL');
}

/** Waits for a child of the agent whose command line starts with `command` (the running tool) and returns it. */
async function toolUnder(agent: AgentHandle, command: string): Promise<ProcStat> {
  const tool = await waitFor(
    `'${command}' to run under agent pid ${agent.process.pid}`,
    () =>
      childPids(agent.process.pid)
        .map(readProcStat)
        .find((s) => s !== undefined && s.state !== 'Z' && cmdline(s.pid).startsWith(command)),
    { timeoutMs: 60_000, intervalMs: 20, context: () => agent.process.logTail() },
  );
  started.push(registerCleanup(`${tool.comm} (pid ${tool.pid})`, () => killIfRunning(tool)));
  return tool;
}

/**
 * SIGKILL to the agent's pid only (not its process group), as the OOM killer sends it. The tool
 * is stopped (SIGSTOP) first, so that it can neither finish nor die of a broken pipe (scrub's
 * progress) on its own while the test looks: only a signal from the kernel can end it then.
 */
async function killAgentAlone(agent: AgentHandle, tool: ProcStat): Promise<void> {
  process.kill(tool.pid, 'SIGSTOP');
  await waitFor(`${tool.comm} (pid ${tool.pid}) to stop`, () => readProcStat(tool.pid)?.state === 'T');
  process.kill(agent.process.pid, 'SIGKILL');
  await agent.process.exited;
}

/**
 * `sleep 1000` with `env`, standing for a program an agent started (or, `detached`, a daemon one
 * of its tools started: its own session); killed by its exact pid after the test.
 */
function sleeper(env: Record<string, string>, detached = false): ProcStat {
  const child = spawn('sleep', ['1000'], { stdio: 'ignore', env: { ...process.env, ...env }, detached });
  child.unref();
  const stat = readProcStat(child.pid!)!;
  started.push(registerCleanup(`sleep (pid ${stat.pid})`, () => killIfRunning(stat)));
  return stat;
}

async function expectGone(tool: ProcStat): Promise<void> {
  // generous: the kernel signals the child as the agent exits; this only allows for a busy machine
  await waitFor(`${tool.comm} (pid ${tool.pid}) to die with the agent`, () => hasExited(tool.pid, tool.startTime), { timeoutMs: 10_000 });
}

describe('the programs an agent runs die with it (real processes, kill -9 of the agent pid alone)', function () {
  this.timeout(240_000);
  const ctx = useStack({ hosts: ['a'], agentArgs: ['--heartbeat-ms', '300'] });
  const scratch = useTempDir('cistern-children-it-');
  const pool = 'hosts/a/pools/kids';
  const path = () => join(scratch.path, 'kids');

  before(async function () {
    this.timeout(120_000);
    await startDirPool(ctx.stack, 'a', 'kids', path());
    await createVolume(ctx.stack, pool, 'src.img', String(512 * MiB), { allocation: '0' });
    fillWithData(join(path(), 'src.img'), 512);
  });
  // the stack needs its agent back even after a failed test
  afterEach(async function () {
    this.timeout(60_000);
    for (const kill of started.splice(0)) await kill();
    const agent = ctx.stack.agents.get('a');
    if (agent && !agent.process.alive) await ctx.stack.stopAgent('a');
    if (!ctx.stack.agents.has('a')) await ctx.stack.addAgent('a');
  });

  const volumeNames = async () => (await ctx.stack.api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' })).volumes.map((v) => v.definition?.name);

  it('a scrub wipe: scrub dies with the agent; the restarted agent serves the volume', async () => {
    const { api } = ctx.stack;
    const agent = ctx.stack.agents.get('a')!;
    const wipe = grpcCode(api.wipeVolume({ name: `${pool}/volumes/src.img`, algorithm: WipeAlgorithm.WIPE_ALGORITHM_GUTMANN, requestId: '' }, { deadlineMs: 120_000 }));
    const scrub = await toolUnder(agent, 'scrub -f -p gutmann');
    // forked by the agent's main thread, which lives as long as the agent (the parent death
    // signal follows the thread that forked)
    expect(readFileSync(`/proc/${agent.process.pid}/task/${agent.process.pid}/children`, 'utf8').split(' ')).to.include(String(scrub.pid));
    // and tagged with the agent process that started it, for the sweep at its next start
    const agentStat = readProcStat(agent.process.pid)!;
    expect(readFileSync(`/proc/${scrub.pid}/environ`, 'latin1').split('\0')).to.include(
      `CISTERN_AGENT_CHILD=a:${agent.process.pid}:${agentStat.startTime}:${agentStat.session}`,
    );
    await killAgentAlone(agent, scrub);
    await expectGone(scrub);
    await ctx.stack.stopAgent('a');
    await ctx.stack.addAgent('a');
    expect((await wipe).code).to.not.equal(0);
    expect(await volumeNames()).to.deep.equal(['src.img']);
    // the volume is free for the next operation
    await api.wipeVolume({ name: `${pool}/volumes/src.img`, algorithm: WipeAlgorithm.WIPE_ALGORITHM_ZERO, requestId: '' }, { deadlineMs: 120_000 });
    fillWithData(join(path(), 'src.img'), 512);
  });

  it('a clone by qemu-img convert: qemu-img dies with the agent, and the restart removes the partial clone it no longer writes', async () => {
    const { api } = ctx.stack;
    const agent = ctx.stack.agents.get('a')!;
    const request: CloneVolumeRequest = {
      parent: pool,
      source: `${pool}/volumes/src.img`,
      definition: undefined,
      // a qcow2 copy of a raw volume: qemu-img convert does it
      xml: "<volume><name>dst.qcow2</name><capacity>0</capacity><target><format type='qcow2'/></target></volume>",
      preallocMetadata: false,
      reflink: false,
      requestId: 'children-clone-1',
      validate: false,
    };
    const clone = grpcCode(api.cloneVolume(request, { deadlineMs: 120_000 }));
    const convert = await toolUnder(agent, 'qemu-img convert');
    await killAgentAlone(agent, convert);
    await expectGone(convert);
    expect(existsSync(join(path(), 'dst.qcow2')), 'the partial clone is on disk while the agent is down').to.equal(true);
    await ctx.stack.stopAgent('a');
    const restarted = await ctx.stack.addAgent('a');
    expect((await clone).code).to.not.equal(0);
    expect(existsSync(join(path(), 'dst.qcow2'))).to.equal(false);
    expect(readdirSync(join(restarted.root, 'journal'))).to.deep.equal([]);
    expect(await volumeNames()).to.deep.equal(['src.img']);
  });

  it('a program that escaped the parent death signal (its agent died before setpriv set it) is killed by the next start of its agent; daemons are not', async () => {
    const agent = ctx.stack.agents.get('a')!;
    const agentStart = readProcStat(agent.process.pid)!.startTime;
    // The tag names the agent process and its session. A process cannot join the agent's session,
    // so the test's sleepers name their own (this process's) as the agent's.
    const session = readProcStat(process.pid)!.session;
    const deadAgent = `${agent.process.pid}:${agentStart}:${session}`;
    // what that race leaves: a program of this agent process that nothing kills when it dies
    const escaped = sleeper({ CISTERN_AGENT_CHILD: `a:${deadAgent}` });
    // left alone: one of host b's agent, one of a running agent of host a (this process stands in
    // for it), and a daemon a tool of the dead agent started (its own session, like dmeventd)
    const otherHost = sleeper({ CISTERN_AGENT_CHILD: `b:${deadAgent}` });
    const liveAgent = sleeper({ CISTERN_AGENT_CHILD: `a:${process.pid}:${readProcStat(process.pid)!.startTime}:${session}` });
    const daemon = sleeper({ CISTERN_AGENT_CHILD: `a:${deadAgent}` }, true);
    expect(daemon.session).to.not.equal(session);
    process.kill(agent.process.pid, 'SIGKILL');
    await agent.process.exited;
    await ctx.stack.stopAgent('a');
    expect(hasExited(escaped.pid, escaped.startTime), 'the escaped program runs while its agent is down').to.equal(false);
    const restarted = await ctx.stack.addAgent('a');
    expect(hasExited(escaped.pid, escaped.startTime), 'killed by the restarted agent').to.equal(true);
    for (const spared of [otherHost, liveAgent, daemon]) expect(hasExited(spared.pid, spared.startTime), `pid ${spared.pid}`).to.equal(false);
    expect(restarted.process.logs()).to.match(new RegExp(`killed the programs an earlier run of this agent left running.*"pid":${escaped.pid},`));
  });
});
