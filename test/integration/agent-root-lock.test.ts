// One --root, one agent. An agent's root holds what only that agent may read and change: the
// journal of its creates in flight (a start removes what the entries name), the pools it runs
// (restored at its next start), its revision floor. A second agent on the same root (a second
// host id on one machine, both with the default root) would remove the first one's volumes
// being created as "interrupted" and restore the first one's running pools as its own host's.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { useStack } from '../support/index.js';
import { startAgent } from '../support/services.js';
import { CreatePoolRequest, ListHostsRequest, ListPoolsRequest, PoolState } from '../../libs/proto/cistern/v1/storage.js';

describe('one agent per --root', function () {
  this.timeout(90_000);
  const ctx = useStack({ hosts: ['a'], agentArgs: ['--heartbeat-ms', '300'] });

  it('a second agent on a root in use refuses to start (exit 2, naming the root and the agent using it), touching nothing', async () => {
    const { stack } = ctx;
    const target = join(stack.roots.a!, 'images');
    await stack.api.createPool(CreatePoolRequest.fromPartial({ host: 'a', xml: `<pool type='dir'><name>images</name><target><path>${target}</path></target></pool>`, build: true }));
    const pid = stack.agents.get('a')!.process.pid;
    const other = await startAgent({ natsUrl: stack.natsUrl, hostId: 'b', root: stack.roots.a, args: ['--heartbeat-ms', '300'] });
    const exit = await Promise.race([other.process.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 20_000))]);
    const stderr = other.process.logs();
    await other.stop();
    expect(exit, stderr).to.deep.equal({ code: 2, signal: null });
    expect(stderr).to.contain(`cistern-agent: --root '${stack.roots.a}' is in use by the agent of host 'a' (pid ${pid}): give each agent a --root of its own`);
    const { hosts } = await stack.api.listHosts(ListHostsRequest.fromPartial({}));
    expect(hosts.map((h) => h.hostId)).to.deep.equal(['a']);
    const { pools } = await stack.api.listPools(ListPoolsRequest.fromPartial({}));
    expect(pools.map((p) => p.name)).to.deep.equal(['hosts/a/pools/images']);
  });

  it('a second agent in another pid namespace (a container over the same root) refuses to start too, touching nothing', async function () {
    if (spawnSync('unshare', ['--pid', '--fork', '--kill-child', '--mount-proc', 'true']).status !== 0) this.skip();
    const { stack } = ctx;
    const pid = stack.agents.get('a')!.process.pid;
    // its pid means nothing there: the pid of host a's agent is some other process, or none
    const other = await startAgent({
      natsUrl: stack.natsUrl,
      hostId: 'b',
      root: stack.roots.a,
      args: ['--heartbeat-ms', '300'],
      wrap: ['unshare', '--pid', '--fork', '--kill-child', '--mount-proc'],
    });
    const exit = await Promise.race([other.process.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 20_000))]);
    const stderr = other.process.logs();
    await other.stop();
    expect(exit, stderr).to.deep.equal({ code: 2, signal: null });
    expect(stderr).to.contain(`cistern-agent: --root '${stack.roots.a}' is in use by the agent of host 'a' (pid ${pid}): give each agent a --root of its own`);
    const { hosts } = await stack.api.listHosts(ListHostsRequest.fromPartial({}));
    expect(hosts.map((h) => [h.hostId, h.online])).to.deep.equal([['a', true]]);
    const { pools } = await stack.api.listPools(ListPoolsRequest.fromPartial({}));
    expect(pools.map((p) => [p.name, p.state])).to.deep.equal([['hosts/a/pools/images', PoolState.POOL_STATE_RUNNING]]);
  });

  it('a root whose agent was killed (kill -9: nothing released) is taken by the next agent, which restores its pools', async () => {
    const { stack } = ctx;
    await stack.restartAgent('a', { kill: true });
    await stack.waitForHosts(['a']);
    const { pools } = await stack.api.listPools(ListPoolsRequest.fromPartial({ host: 'a' }));
    expect(pools.map((p) => [p.name, p.state])).to.deep.equal([['hosts/a/pools/images', PoolState.POOL_STATE_RUNNING]]);
  });
});
