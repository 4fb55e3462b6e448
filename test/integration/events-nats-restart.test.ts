// Event delivery across a nats-server restart (SIGTERM and kill -9, same port and store):
// the coordinator's event readers (its cache reader, the shared tail under every live
// WatchEvents, a watcher's own replay consumer) read again from the next sequence as soon as
// the connection is back. Before, the client library recreated each ordered consumer but
// pulled only what its count of the lost pull left: after a few events, nothing more until
// two idle heartbeats were missed, 25-45 s in which no watcher, not even one opened after the
// restart, received anything, and pool calls waited 10 s for their event. The bounds below
// (10 s) are a correctness bound, far from the normal case (well under a second) and far
// below that stall. The stall shows only after more events than the readers' pull had left
// (under 100): hence the load around the restart and the bursts after it.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { connectBus } from '../../libs/bus/connect.js';
import { ensureEventStream, EventPublisher } from '../../libs/bus/events.js';
import { EVENT_STREAM, subjects } from '../../libs/bus/subjects.js';
import { readRawEvents, type RawEventReader } from '../../services/coordinator/event-log.js';
import { startNats, useStack, useTempDir, waitFor, type NatsServer } from '../support/index.js';
import { Event, EventKind } from '../../libs/proto/cistern/v1/storage.js';
import { createVolume, dirPool, grpcCode, kindName, watch, type Watcher } from './reliability-helpers.js';

const BOUND_MS = 10_000;
/** More events than the ordered consumers' pull (100 messages) has left at any time. */
const BURST = 150;

const strictlyIncreasing = (events: Event[]): boolean => events.every((e, i) => i === 0 || e.sequence > events[i - 1]!.sequence);

describe('events across a nats-server restart (real nats-server, coordinator, agent a)', function () {
  this.timeout(180_000);
  const ctx = useStack({ hosts: ['a'], agentArgs: ['--heartbeat-ms', '300'] });
  const scratch = useTempDir('cistern-events-restart-it-');
  let nc: NatsConnection;
  let publisher: EventPublisher;
  let progress = 0;

  before(async () => {
    // reconnects by itself, as the services' connections do
    nc = await connectBus({ servers: ctx.stack.natsUrl, name: 'events-restart-test' });
    publisher = new EventPublisher(nc);
  });
  after(async () => {
    await nc?.close();
  });

  const publishProgress = (pool: string): void =>
    publisher.publish(
      Event.fromPartial({
        kind: EventKind.OPERATION_PROGRESS,
        host: 'a',
        pool,
        volume: 'v',
        time: new Date(),
        principal: 'restart-test',
        progress: { operation: 'load', done: BigInt(++progress), total: 1n << 40n },
      }),
    );

  /** `n` OPERATION_PROGRESS events of host a, pool `pool`, stored when it returns. */
  async function burst(n: number, pool: string): Promise<void> {
    for (let i = 0; i < n; i++) publishProgress(pool);
    await publisher.flush();
  }

  /** Events every few ms until stopped (those published while NATS is down may be lost). */
  function load(pool: string): { stop(): Promise<void> } {
    const timer = setInterval(() => publishProgress(pool), 5);
    return {
      async stop() {
        clearInterval(timer);
        await publisher.flush().catch(() => undefined);
      },
    };
  }

  /** Waits (bounded) until `w` has the VOLUME_CREATED of `volume`; how long it took. */
  async function arrival(w: Watcher, volume: string, what: string): Promise<number> {
    const start = Date.now();
    await waitFor(`${what} to receive the VOLUME_CREATED of ${volume}`, () => w.failure() ?? w.events.some((e) => e.kind === EventKind.VOLUME_CREATED && e.volume === volume), {
      timeoutMs: BOUND_MS,
      context: () => `${what} has: ${w.events.map((e) => `${e.sequence} ${kindName(e)} ${e.volume}`).slice(-10).join('; ')}`,
    });
    expect(w.failure(), what).to.equal(undefined);
    return Date.now() - start;
  }

  for (const how of ['SIGTERM', 'kill -9'] as const) {
    it(`${how}: live watchers, and watchers opened after the restart, get the next changes promptly, with no gap and no duplicate`, async () => {
      const { api, client } = ctx.stack;
      const nats = ctx.stack.nats!;
      const tag = how === 'SIGTERM' ? 'term' : 'kill';
      const pool = `hosts/a/pools/${tag}`;
      await api.createPool({ host: 'a', definition: dirPool(tag, join(scratch.path, tag)), xml: '', build: true, buildFlags: undefined, requestId: '' });

      // live watchers across the restart: every event (the shared tail), and one pool (its
      // stream subject: a narrow consumer until it catches up, then the tail)
      const all = watch(client, {});
      const onePool = watch(client, { pools: [pool] });
      await Promise.all([all.ready, onePool.ready]);
      await createVolume(ctx.stack, pool, 'before.img', '4096');
      await arrival(all, 'before.img', 'the live watcher');
      const first = all.events.find((e) => e.volume === 'before.img')!.sequence;

      const coordinatorLogAt = ctx.stack.coordinator.process.logs().length;
      // under load, as in production: a reader may be between two pulls when the server goes
      const running = load(tag);
      await new Promise((r) => setTimeout(r, 300));
      if (how === 'kill -9') await nats.kill();
      await nats.restart();
      await running.stop();

      // the change: retried (same request id: a retry is the same call) until the
      // coordinator reaches the agent over NATS again
      await waitFor(
        'a create after the restart',
        async () => (await grpcCode(createVolume(ctx.stack, pool, 'after1.img', '4096', { requestId: `${tag}-after1`, deadlineMs: 5_000 }))).code === status.OK,
        { timeoutMs: 60_000, intervalMs: 250, context: () => ctx.stack.logs() },
      );
      const delays = [await arrival(all, 'after1.img', 'the live watcher'), await arrival(onePool, 'after1.img', 'the live pool watcher')];
      // a burst, as under load: more events than a reader's pull asked for before the restart
      await burst(BURST, tag);
      // the cache reader: a pool call waits (at most 10 s, then logs it) until the cache has
      // applied the call's event
      await api.refreshPool({ name: pool, requestId: '' });
      await createVolume(ctx.stack, pool, 'after2.img', '4096');
      delays.push(await arrival(all, 'after2.img', 'the live watcher'), await arrival(onePool, 'after2.img', 'the live pool watcher'));

      // watchers opened after the restart: live, and a replay from before it
      const fresh = watch(client, {});
      const replay = watch(client, { pools: [pool], afterSequence: first - 1n });
      await Promise.all([fresh.ready, replay.ready]);
      await burst(BURST, tag);
      await createVolume(ctx.stack, pool, 'after3.img', '4096');
      for (const [w, what] of [
        [all, 'the live watcher'],
        [onePool, 'the live pool watcher'],
        [fresh, 'a watcher opened after the restart'],
        [replay, 'a replay opened after the restart'],
      ] as const) {
        delays.push(await arrival(w, 'after3.img', what));
      }

      await api.refreshPool({ name: pool, requestId: '' });
      const since = ctx.stack.coordinator.process.logs().slice(coordinatorLogAt);
      expect(since, 'the coordinator had to answer before its cache applied an event').not.to.include('event not applied in time');
      expect(since, 'the coordinator says why its readers restarted').to.match(/event stream reader restarted/);

      for (const w of [all, onePool, fresh, replay]) w.cancel();
      // every sequence once, in order, and none the stream holds missing: the reference is
      // a replay opened now (a consumer of its own over the stored events)
      const last = all.events.find((e) => e.volume === 'after3.img')!.sequence;
      const refAll = watch(client, { afterSequence: first - 1n });
      const refPool = watch(client, { pools: [pool], afterSequence: first - 1n });
      await waitFor('the reference replays', () => [refAll, refPool].every((w) => w.events.some((e) => e.sequence >= last)));
      refAll.cancel();
      refPool.cancel();
      const upTo = (w: Watcher, from = first): bigint[] => w.events.filter((e) => e.sequence >= from && e.sequence <= last).map((e) => e.sequence);
      for (const w of [all, onePool, fresh, replay]) expect(strictlyIncreasing(w.events), upTo(w).join()).to.equal(true);
      expect(upTo(all), 'the live watcher').to.deep.equal(upTo(refAll));
      expect(upTo(onePool), 'the live pool watcher').to.deep.equal(upTo(refPool));
      expect(upTo(replay), 'the replay').to.deep.equal(upTo(refPool));
      const freshFrom = fresh.events[0]!.sequence;
      expect(upTo(fresh, freshFrom), 'the watcher opened after the restart').to.deep.equal(upTo(refAll, freshFrom));
      expect(delays.every((d) => d < BOUND_MS), delays.join()).to.equal(true);
    });
  }
});

describe('event stream readers across a nats-server restart (real nats-server)', function () {
  this.timeout(120_000);
  let nats: NatsServer;
  let nc: NatsConnection;
  let publisher: EventPublisher;
  let done = 0;

  before(async () => {
    nats = await startNats();
    nc = await connectBus({ servers: nats.url, name: 'event-readers-restart-test' });
    await ensureEventStream(nc);
    publisher = new EventPublisher(nc);
  });
  after(async () => {
    await nc?.close();
    await nats?.stop();
  });

  async function publish(n: number, pools: string[]): Promise<bigint> {
    for (let i = 0; i < n; i++) {
      publisher.publish(
        Event.fromPartial({ kind: EventKind.OPERATION_PROGRESS, host: 'r', pool: pools[i % pools.length]!, volume: 'v', progress: { operation: 'x', done: BigInt(++done), total: 1n << 40n } }),
      );
    }
    return publisher.flush();
  }

  /** Reads into `into` until closed. */
  function collect(reader: RawEventReader, into: bigint[]): Promise<void> {
    return (async () => {
      for await (const raw of reader) into.push(raw.seq);
    })();
  }

  it('a live reader of every event and one of one subject read again from the next sequence, say so once, and a reader closed meanwhile ends', async () => {
    const first = (await publish(10, ['p1', 'p2'])) + 1n;
    const lines: Array<{ msg: string; fields: Record<string, unknown> }> = [];
    const log = {
      info: (msg: string, fields?: Record<string, unknown>) => lines.push({ msg, fields: fields ?? {} }),
      warn: (msg: string, fields?: Record<string, unknown>) => lines.push({ msg, fields: fields ?? {} }),
    };
    const all: bigint[] = [];
    const p1: bigint[] = [];
    const allReader = await readRawEvents(nc, first, { log, reader: 'all' });
    const p1Reader = await readRawEvents(nc, first, { filterSubject: subjects.agentEvents('r', 'p1'), log, reader: 'p1' });
    const closedWhileDown = await readRawEvents(nc, first);
    const reading = [collect(allReader, all), collect(p1Reader, p1)];
    const ended = collect(closedWhileDown, []);
    const before = await publish(30, ['p1', 'p2']);
    await waitFor('the readers to catch up', () => all.includes(before) && p1.length === 15);

    await nats.kill();
    // the reader ends although the server it reads is down
    await closedWhileDown.close();
    await ended;
    await nats.restart();
    // more than an ordered consumer's pull (100) holds, on two subjects
    const last = await waitFor('publishing after the restart', () => publish(250, ['p1', 'p2']).catch(() => undefined), { timeoutMs: 30_000, intervalMs: 100 });
    await waitFor('every event after the restart', () => all.includes(last) && p1.length >= 15 + 125, {
      timeoutMs: BOUND_MS,
      context: () => `all: ${all.length} up to ${all[all.length - 1]}, p1: ${p1.length}`,
    });
    await Promise.all([allReader.close(), p1Reader.close()]);
    await Promise.all(reading);

    // every sequence once, in order: all of them for `all`; for p1, those stored on p1
    const stored = await storedSequences(nc, first, last);
    const seen = new Set(all);
    expect(seen.size, 'no duplicate').to.equal(all.length);
    expect(all.filter((s) => s <= last)).to.deep.equal(stored.map((e) => e.seq));
    expect(p1).to.deep.equal(stored.filter((e) => e.subject === subjects.agentEvents('r', 'p1')).map((e) => e.seq));
    const restarts = lines.filter((l) => l.msg === 'event stream reader restarted');
    expect(restarts.map((l) => l.fields.reader).sort()).to.deep.equal(['all', 'p1']);
    expect(restarts.every((l) => l.fields.why === 'the connection to NATS dropped')).to.equal(true);
  });
});

/** The stored messages with sequences from `first` to `last`, read with a consumer of their own. */
async function storedSequences(nc: NatsConnection, first: bigint, last: bigint): Promise<Array<{ seq: bigint; subject: string }>> {
  const consumer = await jetstream(nc).consumers.get(EVENT_STREAM, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Number(first) });
  const messages = await consumer.consume();
  const out: Array<{ seq: bigint; subject: string }> = [];
  for await (const m of messages) {
    out.push({ seq: BigInt(m.seq), subject: m.subject });
    if (BigInt(m.seq) >= last) break;
  }
  return out;
}
