// WatchEvents fan-out against real processes: many watchers at once (live ones on the shared
// tail, late ones replaying from an after_sequence while events keep coming, filtered and
// not) each get exactly the events they asked for, in stream order; a watcher that stops
// reading holds no one back and, reading again, gets every event once, in order. The
// reference is the stream itself, read directly over NATS.
import { expect } from 'chai';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { EventPublisher } from '../../libs/bus/events.js';
import { EVENT_STREAM } from '../../libs/bus/subjects.js';
import { Event, EventKind, type StorageServiceClient, type WatchEventsRequest } from '../../libs/proto/cistern/v1/storage.js';
import { connectClient, useStack, waitFor } from '../support/index.js';
import { watchEvents, type EventWatch } from '../support/grpc-expect.js';

type Follower = EventWatch;

const follow = (client: StorageServiceClient, request: Partial<WatchEventsRequest>): Follower => watchEvents(client, request);

/** Every stored event up to `last`, read straight from the stream. */
async function storedEvents(nc: NatsConnection, last: bigint): Promise<Event[]> {
  const consumer = await jetstream(nc).consumers.get(EVENT_STREAM, { deliver_policy: DeliverPolicy.All });
  const out: Event[] = [];
  const messages = await consumer.consume();
  for await (const m of messages) {
    const e = Event.decode(m.data);
    e.sequence = BigInt(m.seq);
    out.push(e);
    if (e.sequence >= last) break;
  }
  await messages.close();
  return out;
}

const seqs = (events: Event[]): bigint[] => events.map((e) => e.sequence);

describe('WatchEvents fan-out (real nats-server, coordinator, agent a)', function () {
  this.timeout(180_000);
  const ctx = useStack({ hosts: ['a'] });
  let nc: NatsConnection;
  let publisher: EventPublisher;
  let done = 0;

  before(async () => {
    nc = await connect({ servers: ctx.stack.natsUrl });
    publisher = new EventPublisher(nc);
  });
  after(async () => {
    await nc?.close();
  });

  /** `n` OPERATION_PROGRESS events of host a, spread over `pools`; the last stored sequence. */
  async function publish(n: number, pools: string[]): Promise<bigint> {
    for (let i = 0; i < n; i++) {
      done++;
      publisher.publish(
        Event.fromPartial({
          kind: EventKind.OPERATION_PROGRESS,
          host: 'a',
          pool: pools[i % pools.length]!,
          volume: 'v',
          time: new Date(),
          principal: 'fanout-test',
          progress: { operation: 'fanout', done: BigInt(done), total: 1n << 40n },
        }),
      );
      if (i % 500 === 499) await publisher.flush();
    }
    return publisher.flush();
  }

  it('gives each of many watchers exactly the events it asked for, in stream order, also to those that replay from an after_sequence meanwhile', async () => {
    const { client } = ctx.stack;
    const history = await publish(300, ['p1', 'p2']);
    const live = [
      ...Array.from({ length: 12 }, () => follow(client, {})),
      ...Array.from({ length: 4 }, () => follow(client, { pools: ['hosts/a/pools/p1'] })),
      ...Array.from({ length: 4 }, () => follow(client, { pools: ['p2'], kinds: [EventKind.OPERATION_PROGRESS] })),
    ];
    await Promise.all(live.map((w) => w.ready));
    const from = history - 250n;
    const firstBatch = await publish(200, ['p1', 'p2', 'p3']);
    // late watchers replay history while events keep coming
    const late = [
      { after: from, w: follow(client, { afterSequence: from }) },
      { after: from + 100n, w: follow(client, { afterSequence: from + 100n, pools: ['p3'] }) },
      { after: from + 200n, w: follow(client, { afterSequence: from + 200n, hosts: ['a'] }) },
      { after: firstBatch - 10n, w: follow(client, { afterSequence: firstBatch - 10n, pools: ['hosts/a/pools/p1'] }) },
    ];
    const last = await publish(800, ['p1', 'p2', 'p3']);
    const stored = await storedEvents(nc, last);
    const expected = (after: bigint, accept: (e: Event) => boolean) => seqs(stored.filter((e) => e.sequence > after && accept(e)));
    const all = () => true;
    const pool = (p: string) => (e: Event) => e.host === 'a' && e.pool === p;
    const wanted = new Map<Follower, bigint[]>();
    live.forEach((w, i) => wanted.set(w, expected(history, i < 12 ? all : i < 16 ? pool('p1') : pool('p2'))));
    late.forEach(({ after, w }, i) => wanted.set(w, expected(after, [all, pool('p3'), (e: Event) => e.host === 'a', pool('p1')][i]!)));
    await waitFor('every watcher has its last event', () =>
      [...wanted].every(([w, want]) => w.failure() !== undefined || (w.events.at(-1)?.sequence ?? 0n) >= want.at(-1)!),
    { timeoutMs: 90_000 });
    for (const [w, want] of wanted) {
      w.call.cancel();
      expect(w.failure()).to.equal(undefined);
      expect(seqs(w.events)).to.deep.equal(want);
    }
    // what they received is the stored event, not only its sequence
    const bySeq = new Map(stored.map((e) => [e.sequence, e]));
    for (const e of late[0]!.w.events) expect(e).to.deep.equal(bySeq.get(e.sequence));
  });

  it('a watcher that stops reading holds no one back; reading again it gets every event once, in order', async () => {
    const slowClient = connectClient(ctx.stack.address);
    try {
      const slow = follow(slowClient, { pools: ['hosts/a/pools/s'] });
      const fast = follow(ctx.stack.client, { pools: ['hosts/a/pools/s'] });
      await Promise.all([slow.ready, fast.ready]);
      const first = await publish(1, ['s']);
      await waitFor('the first event', () => slow.events.length === 1);
      slow.call.pause();
      // more than the shared tail keeps (16,384 events): it has to continue on its own consumer
      const last = await publish(20_000, ['s']);
      await waitFor('the fast watcher has them all', () => fast.events.at(-1)?.sequence === last || fast.failure() !== undefined, { timeoutMs: 90_000 });
      expect(fast.failure()).to.equal(undefined);
      expect(slow.events.length, 'the paused watcher is behind').to.be.below(20_001);
      slow.call.resume();
      await waitFor('the slow watcher has them all', () => slow.events.at(-1)?.sequence === last || slow.failure() !== undefined, { timeoutMs: 90_000 });
      // and it is live again
      const next = await publish(1, ['s']);
      await waitFor('both have the next', () => slow.events.at(-1)?.sequence === next && fast.events.at(-1)?.sequence === next);
      slow.call.cancel();
      fast.call.cancel();
      expect(slow.failure()).to.equal(undefined);
      const want = seqs((await storedEvents(nc, next)).filter((e) => e.sequence >= first && e.pool === 's'));
      expect(want).to.have.length(20_002);
      expect(seqs(slow.events)).to.deep.equal(want);
      expect(seqs(fast.events)).to.deep.equal(want);
    } finally {
      slowClient.close();
    }
  });
});
