// A HOST_OFFLINE the stream refused (real nats-server, coordinator, agents a and b): the stream
// is full and discards new events when host b goes away; once it takes events again, the
// coordinator's HOST_OFFLINE is stored all the same, and a watcher learns that b is gone.
import { expect } from 'chai';
import { connect } from '@nats-io/transport-node';
import { DiscardPolicy, jetstreamManager } from '@nats-io/jetstream';
import { registerCleanup, useStack, waitFor } from '../support/index.js';
import { EventKind } from '../../libs/proto/cistern/v1/storage.js';
import { EVENT_STREAM } from '../../libs/bus/subjects.js';
import { kindName, watch } from './reliability-helpers.js';

describe('host events the stream refused (real processes)', function () {
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
});
