// Hosts when the bus fails (real nats-server, coordinator, agents a and b). A HOST_OFFLINE the
// stream refused (full, discarding new events, when host b goes away) is stored once the stream
// takes events again, and a watcher learns that b is gone. While the coordinator itself is cut
// off from NATS, ListHosts, GetHost and host-list say that what they show is its last word.
import { expect } from 'chai';
import { connect } from '@nats-io/transport-node';
import { DiscardPolicy, jetstreamManager } from '@nats-io/jetstream';
import { registerCleanup, useStack, waitFor } from '../support/index.js';
import type { Host } from '../../libs/proto/cistern/v1/storage.js';
import { EventKind } from '../../libs/proto/cistern/v1/storage.js';
import { EVENT_STREAM } from '../../libs/bus/subjects.js';
import { kindName, watch } from './reliability-helpers.js';

describe('hosts when the bus fails (real processes)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a', 'b'], agentArgs: ['--heartbeat-ms', '300'] });

  it('a HOST_OFFLINE refused while the stream was full is published again and reaches a watcher once the stream takes events', async () => {
    const nc = await connect({ servers: ctx.stack.natsUrl });
    const closeNats = registerCleanup('host event retry test NATS connection', () => nc.close());
    const jsm = await jetstreamManager(nc);
    const { config, state } = await jsm.streams.info(EVENT_STREAM);
    const w = watch(ctx.stack.client, { hosts: ['b'], kinds: [EventKind.HOST_OFFLINE] });
    await w.ready;
    const coordinatorLog = ctx.stack.coordinator.process;
    const refusedBefore = coordinatorLog.logs().split('host event').length;
    // the stream refuses every new event, as a JetStream that cannot store does
    await jsm.streams.update(EVENT_STREAM, { ...config, max_msgs: state.messages, discard: DiscardPolicy.New });
    const restore = registerCleanup('event stream limits', () => jsm.streams.update(EVENT_STREAM, config).then(() => undefined));
    try {
      await ctx.stack.stopAgent('b', { kill: true });
      await ctx.stack.waitForHosts(['b'], { online: false });
      // the coordinator tried to publish HOST_OFFLINE, and was refused
      await waitFor('the refused HOST_OFFLINE in the coordinator log', () => coordinatorLog.logs().split('host event').length > refusedBefore, {
        context: () => coordinatorLog.logTail(),
      });
      expect(w.events.map(kindName)).to.deep.equal([]);
    } finally {
      await restore();
    }
    await waitFor('HOST_OFFLINE of b', () => w.events.length > 0 || w.failure(), { timeoutMs: 30_000, context: () => coordinatorLog.logTail() });
    w.cancel();
    expect(w.failure()).to.equal(undefined);
    expect(w.events.map((e) => [kindName(e), e.host, e.hostState?.online])).to.deep.equal([['HOST_OFFLINE', 'b', false]]);
    await closeNats();
  });

  it('while the coordinator is cut off from NATS, host reads are marked stale since the disconnect, and host-list says unknown', async () => {
    const { api } = ctx.stack;
    await ctx.stack.waitForHosts(['a']);
    const before = await api.getHost({ name: 'hosts/a' });
    expect([before.stale, before.staleSince]).to.deep.equal([false, undefined]);
    const cutAt = Date.now();
    await ctx.stack.nats!.kill();
    let during: Host[];
    try {
      during = await waitFor('ListHosts to say its view is stale', async () => {
        const { hosts } = await api.listHosts({ pageSize: 0, pageToken: '' });
        return hosts.every((h) => h.stale) ? hosts : undefined;
      });
      const a = during.find((h) => h.hostId === 'a')!;
      // as last known, and since when it is only that
      expect(a.online).to.equal(true);
      expect(a.staleSince!.getTime()).to.be.at.least(cutAt - 1_000);
      const got = await api.getHost({ name: 'hosts/a' });
      expect([got.stale, got.staleSince?.getTime()]).to.deep.equal([true, a.staleSince!.getTime()]);
      const plain = await ctx.stack.cli(['host-list']);
      expect(plain.code, plain.stderr).to.equal(0);
      expect(plain.stdout).to.match(/^ a\s+\S+\s+unknown\s/m);
      const json = await ctx.stack.cli(['host-list', '--json']);
      expect(JSON.parse(json.stdout).find((h: { name: string }) => h.name === 'a')).to.deep.include({ online: true, stale: true, staleSince: a.staleSince!.toISOString() });
    } finally {
      await ctx.stack.nats!.restart();
    }
    await waitFor('host reads to be current again', async () => {
      const { hosts } = await api.listHosts({ pageSize: 0, pageToken: '' });
      return hosts.length > 0 && hosts.every((h) => !h.stale && h.staleSince === undefined);
    }, { timeoutMs: 60_000 });
  });
});
