// A coordinator that stands still (SIGSTOP, a paused VM, swapped out) for longer than three
// heartbeats, with real processes: the heartbeats of that time wait unread in its socket, and
// it must not blame the agents for its own silence. An agent that really died meanwhile is
// still found gone.
import { expect } from 'chai';
import { join } from 'node:path';
import { useStack, useTempDir } from '../support/index.js';
import { EventKind } from '../../libs/proto/cistern/v1/storage.js';
import { createVolume, kindName, startDirPool, watch } from './reliability-helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('coordinator stalled (SIGSTOP) longer than three heartbeats', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a', 'b'], agentArgs: ['--heartbeat-ms', '300'] });
  const scratch = useTempDir('cistern-stall-it-');

  it('takes no live host offline after SIGCONT, serves at once, and still finds the agent that died meanwhile', async () => {
    const { client } = ctx.stack;
    const pool = 'hosts/a/pools/stall';
    await startDirPool(ctx.stack, 'a', 'stall', join(scratch.path, 'stall'));
    const w = watch(client, { hosts: ['a', 'b'], kinds: [EventKind.HOST_OFFLINE, EventKind.HOST_ONLINE, EventKind.VOLUME_CREATED] });
    await w.ready;
    const coordinator = ctx.stack.coordinator.process;
    coordinator.signal('SIGSTOP');
    try {
      // b's agent dies while nobody listens; a keeps heartbeating into the stopped coordinator's socket
      await ctx.stack.stopAgent('b', { kill: true });
      await sleep(4_000); // more than three of the 300 ms heartbeats, and than the stall threshold
    } finally {
      coordinator.signal('SIGCONT');
    }
    // a call right after the pause goes through: a was never declared offline
    await createVolume(ctx.stack, pool, 'after.img', '4096');
    await ctx.stack.waitForHosts(['b'], { online: false });
    await ctx.stack.waitForHosts(['a']);
    w.cancel();
    expect(w.failure()).to.equal(undefined);
    expect(w.events.map((e) => `${kindName(e)} ${e.host || e.volume}`)).to.deep.equal(['VOLUME_CREATED a', 'HOST_OFFLINE b']);
    const logs = coordinator.logs();
    expect(logs).to.match(/this coordinator stood still/);
    const offline = logs.split('\n').filter((l) => l.includes('host offline: heartbeats stopped'));
    expect(offline.map((l) => (JSON.parse(l) as { host: string }).host)).to.deep.equal(['b']);
    await ctx.stack.addAgent('b');
  });
});
