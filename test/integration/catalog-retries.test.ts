// The retry of a catalog call (DefinePool, UndefinePool) whose coordinator died publishes the
// call's event only if the stream does not hold it (services/coordinator/catalog-retries.ts).
// Within JetStream's 2 minute duplicate window the call's duplicate id sees to it; past it the
// retry looks for the event itself, which this test checks with events stored under ids of
// their own (as after the window).
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectBus } from '../../libs/bus/connect.js';
import { ensureEventStream, EventPublisher } from '../../libs/bus/events.js';
import { Event, EventKind } from '../../libs/proto/cistern/v1/storage.js';
import { publishedSince } from '../../services/coordinator/catalog-retries.js';
import { startNats, type NatsServer } from '../support/nats.js';

describe('a catalog call\'s event looked for in the stream (real nats-server)', function () {
  this.timeout(30_000);
  let nats: NatsServer;
  let nc: NatsConnection;
  let coordinator: EventPublisher;
  let agent: EventPublisher;
  const undefined_ = (pool: string, principal: string, requestId: string) =>
    Event.fromPartial({ kind: EventKind.POOL_UNDEFINED, host: 'h1', pool, principal, requestId, time: new Date() });

  before(async () => {
    nats = await startNats();
    nc = await connectBus({ servers: nats.url, name: 'test-catalog-retries' });
    await ensureEventStream(nc, { storage: 'memory' });
    coordinator = new EventPublisher(nc, undefined, () => undefined, 'coordinator');
    agent = new EventPublisher(nc, undefined, () => undefined, 'agent');
  });
  after(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('finds the call\'s event on the pool\'s coordinator subject, also behind later ones, and nothing else', async () => {
    const since = new Date(Date.now() - 1000);
    expect(await publishedSince(nc, EventKind.POOL_UNDEFINED, 'h1', 'p', 'alice', 'r1', since), 'an empty subject').to.equal(false);
    await coordinator.publishNow(undefined_('p', 'alice', 'r1'), randomUUID());
    expect(await publishedSince(nc, EventKind.POOL_UNDEFINED, 'h1', 'p', 'alice', 'r1', since), 'the newest event').to.equal(true);
    // later events of the pool (another caller's, another kind) and of other pools
    await coordinator.publishNow(undefined_('p', 'bob', 'r1'), randomUUID());
    await coordinator.publishNow(Event.fromPartial({ kind: EventKind.POOL_DEFINED, host: 'h1', pool: 'p', principal: 'alice', requestId: 'r2' }), randomUUID());
    await coordinator.publishNow(undefined_('q', 'alice', 'r1'), randomUUID());
    expect(await publishedSince(nc, EventKind.POOL_UNDEFINED, 'h1', 'p', 'alice', 'r1', since), 'behind later events').to.equal(true);
    expect(await publishedSince(nc, EventKind.POOL_DEFINED, 'h1', 'p', 'alice', 'r1', since), 'another kind').to.equal(false);
    expect(await publishedSince(nc, EventKind.POOL_UNDEFINED, 'h1', 'p', 'carol', 'r1', since), 'another caller').to.equal(false);
    expect(await publishedSince(nc, EventKind.POOL_UNDEFINED, 'h1', 'p', 'alice', 'r3', since), 'another request id').to.equal(false);
    expect(await publishedSince(nc, EventKind.POOL_UNDEFINED, 'h1', 'other', 'alice', 'r1', since), 'another pool').to.equal(false);
    // written before the time looked from (beyond the clock slack): not the call's
    expect(await publishedSince(nc, EventKind.POOL_UNDEFINED, 'h1', 'p', 'alice', 'r1', new Date(Date.now() + 10 * 60_000)), 'older than asked').to.equal(false);
  });

  it('an agent cannot stand in for the coordinator: the same event under the agent\'s subject is not found', async () => {
    const since = new Date(Date.now() - 1000);
    await agent.publishNow(undefined_('forged', 'alice', 'r9'), randomUUID());
    expect(await publishedSince(nc, EventKind.POOL_UNDEFINED, 'h1', 'forged', 'alice', 'r9', since)).to.equal(false);
  });
});
