// An agent that loses its revision floor (a new or wiped --root, a reinstalled machine that
// keeps its host id) counts its revisions again from below what a running coordinator holds
// of the host. The coordinator takes that new boot's sync whole: the changes the agent makes
// afterwards are shown, not dropped as older than what it held.
import { expect } from 'chai';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { useStack, useTempDir, waitFor } from '../support/index.js';
import { createVolume, dirPool } from './reliability-helpers.js';

describe('revisions that go back with a lost --root (real nats-server, coordinator, agent a)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'], agentArgs: ['--heartbeat-ms', '300'] });
  const scratch = useTempDir('cistern-revisions-it-');
  const MiB = 1024n * 1024n;

  it("shows the changes of a restarted agent whose revisions start below the ones it had", async () => {
    const { api } = ctx.stack;
    const floor = join(ctx.stack.roots.a!, 'revision-floor');
    // the first boot counts from far ahead of its clock, as an agent that restarted often does
    await ctx.stack.stopAgent('a');
    writeFileSync(floor, `${BigInt(Date.now()) * 1000n + 10n ** 13n}\n`);
    await ctx.stack.addAgent('a');
    await api.definePool({ host: 'a', definition: dirPool('rev', join(scratch.path, 'rev')), xml: '', requestId: '', validate: false });
    await api.buildPool({ name: 'hosts/a/pools/rev', flags: undefined, requestId: '' });
    await api.startPool({ name: 'hosts/a/pools/rev', build: false, buildFlags: undefined, requestId: '' });
    await api.setPoolAutostart({ name: 'hosts/a/pools/rev', autostart: true, requestId: '' });
    await createVolume(ctx.stack, 'hosts/a/pools/rev', 'v', String(1n * MiB));

    // the root loses its floor: the next boot counts from the clock, 10^13 below
    const coordinatorLog = ctx.stack.coordinator.process;
    const resetsBefore = coordinatorLog.logs().split("host's revisions went back").length;
    await ctx.stack.stopAgent('a');
    rmSync(floor);
    await ctx.stack.addAgent('a');
    // the host shows online at its first heartbeat; its state is taken whole when its sync is
    // applied, which may come a moment later (until then, as after any restart, reads show the
    // state from before it)
    await waitFor("the new boot's sync taken whole", () => coordinatorLog.logs().split("host's revisions went back").length > resetsBefore);
    const name = 'hosts/a/pools/rev/volumes/v';
    await api.resizeVolume({ name, capacity: 6n * MiB, allocate: false, delta: false, shrink: false, requestId: '' });
    expect((await api.getVolume({ name, refresh: false })).definition?.capacity).to.equal(6n * MiB);
    await createVolume(ctx.stack, 'hosts/a/pools/rev', 'w', String(2n * MiB));
    await api.deleteVolume({ name, requestId: '' });
    const listed = await api.listVolumes({ parent: 'hosts/a/pools/rev', pageSize: 0, pageToken: '' });
    expect(listed.volumes.map((v) => [v.definition?.name, v.definition?.capacity])).to.deep.equal([['w', 2n * MiB]]);
  });
});
