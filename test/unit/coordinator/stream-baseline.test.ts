// The stream's view of one host (stream-baseline.ts): a returning host that this coordinator
// never synced is reconciled against it. It is the host's events, folded as the coordinator's
// own view follows the stream, up to the sequence the coordinator had read.
import { expect } from 'chai';
import { Event, EventKind, Pool, PoolDefinition, PoolState, PoolType, Volume } from '../../../libs/proto/cistern/v1/storage.js';
import type { RawEvent, RawEventReader } from '../../../services/coordinator/event-log.js';
import { readStreamBaseline, StreamBaselines } from '../../../services/coordinator/stream-baseline.js';

interface Stored {
  seq: bigint;
  subject: string;
  data: Uint8Array;
}

const matches = (filter: string, subject: string): boolean => subject.startsWith(filter.slice(0, -1));

/** Stored messages; a reader yields those on its subject from `start`, then waits for more until closed. */
function fakeStream(msgs: Stored[]) {
  const opened: Array<{ start: bigint; subject?: string }> = [];
  let closedReaders = 0;
  return {
    opened,
    closedReaders: () => closedReaders,
    async lastSequence(subject = 'cistern.events.>'): Promise<bigint> {
      const on = msgs.filter((m) => matches(subject, m.subject));
      return on.length ? on[on.length - 1]!.seq : 0n;
    },
    async read(start: bigint, subject?: string): Promise<RawEventReader> {
      opened.push({ start, subject });
      let closed = false;
      let wake: (() => void) | undefined;
      return {
        async close() {
          if (!closed) closedReaders++;
          closed = true;
          wake?.();
        },
        async *[Symbol.asyncIterator](): AsyncGenerator<RawEvent> {
          for (const m of msgs) {
            if (closed) return;
            if (m.seq >= start && (!subject || matches(subject, m.subject))) yield m;
          }
          if (!closed) await new Promise<void>((resolve) => (wake = resolve));
        },
      };
    },
  };
}

const poolState = (name: string, state: PoolState, revision: bigint) =>
  Pool.fromPartial({ name: `hosts/a/pools/${name}`, host: 'a', definition: PoolDefinition.fromPartial({ name, type: PoolType.POOL_TYPE_DIR, target: { path: `/srv/${name}` } }), state, revision });
const volumeState = (pool: string, name: string, revision: bigint) =>
  Volume.fromPartial({ name: `hosts/a/pools/${pool}/volumes/${name}`, host: 'a', pool, revision, definition: { name, key: `/srv/${pool}/${name}`, target: { path: `/srv/${pool}/${name}`, format: 'raw' } } });

function stored(seq: number, event: Partial<Event>, subjectHost = event.host ?? 'a'): Stored {
  return { seq: BigInt(seq), subject: `cistern.events.${subjectHost}.${event.pool || '_host'}`, data: Event.encode(Event.fromPartial(event)).finish() };
}

describe("the stream's view of a host (stream-baseline.ts)", () => {
  const history = [
    stored(1, { kind: EventKind.POOL_STARTED, host: 'a', pool: 'p', poolState: poolState('p', PoolState.POOL_STATE_RUNNING, 1n) }),
    stored(2, { kind: EventKind.POOL_STARTED, host: 'b', pool: 'p', poolState: poolState('p', PoolState.POOL_STATE_RUNNING, 1n) }),
    stored(3, { kind: EventKind.VOLUME_CREATED, host: 'a', pool: 'p', volume: 'v1', volumeState: volumeState('p', 'v1', 2n) }),
    // another host's agent speaking for a (its subject is a's): skipped, as the coordinator's view skips it
    stored(4, { kind: EventKind.VOLUME_CREATED, host: 'b', pool: 'p', volume: 'forged', volumeState: volumeState('p', 'forged', 3n) }, 'a'),
    { seq: 5n, subject: 'cistern.events.a.p', data: new Uint8Array([0xff, 0xff, 0xff]) },
    stored(6, { kind: EventKind.VOLUME_CREATED, host: 'a', pool: 'p', volume: 'v2', volumeState: volumeState('p', 'v2', 4n) }),
    stored(7, { kind: EventKind.POOL_STARTED, host: 'a', pool: 'q', poolState: poolState('q', PoolState.POOL_STATE_RUNNING, 5n) }),
    stored(8, { kind: EventKind.VOLUME_DELETED, host: 'a', pool: 'p', volume: 'v1', volumeState: volumeState('p', 'v1', 6n) }),
  ];

  it("folds the host's own events from its subject, up to the sequence given, and closes its reader", async () => {
    const stream = fakeStream(history);
    const { cache, events, through } = await readStreamBaseline(stream, 'a', 6n);
    expect(stream.opened).to.deep.equal([{ start: 1n, subject: 'cistern.events.a.>' }]);
    expect(stream.closedReaders()).to.equal(1);
    expect(cache.poolsOfHost('a')).to.deep.equal(['p']);
    expect(cache.volumeNames('a', 'p')).to.deep.equal(['v1', 'v2']);
    expect(cache.poolsOfHost('b')).to.deep.equal([]);
    expect([events, through]).to.deep.equal([3, 6n]);
    // up to the host's newest event when the bound lies beyond it (no wait for events to come)
    const all = await readStreamBaseline(stream, 'a', 100n);
    expect(all.cache.poolsOfHost('a').sort()).to.deep.equal(['p', 'q']);
    expect(all.cache.volumeNames('a', 'p')).to.deep.equal(['v2']);
    expect(all.through).to.equal(8n);
  });

  it('stops at the first event past the bound when none lies on it', async () => {
    const stream = fakeStream(history);
    const { cache, through } = await readStreamBaseline(stream, 'a', 2n); // 2: an event of b
    expect(through).to.equal(1n);
    expect(cache.poolsOfHost('a')).to.deep.equal(['p']);
    expect(cache.volumeNames('a', 'p')).to.deep.equal([]);
    expect(stream.closedReaders()).to.equal(1);
  });

  it('a host without events: an empty view, and no reader opened', async () => {
    const stream = fakeStream(history);
    const { cache, events } = await readStreamBaseline(stream, 'c', 8n);
    expect(events).to.equal(0);
    expect(cache.poolsOfHost('c')).to.deep.equal([]);
    expect(stream.opened).to.deep.equal([]);
  });

  it('gives up when the events it waits for do not come (removed meanwhile)', async () => {
    const stream = fakeStream(history.slice(0, 3));
    stream.lastSequence = async () => 8n; // the stream said 8 before retention took it
    let failure: unknown;
    await readStreamBaseline(stream, 'a', 8n, 20).catch((err) => (failure = err));
    expect(String(failure)).to.match(/no event of host 'a' came for 20 ms, at sequence 3 of 8/);
    expect(stream.closedReaders()).to.equal(1);
  });

  it('reads a few hosts at a time, the others in turn', async () => {
    let running = 0;
    let most = 0;
    const slow = {
      lastSequence: async () => 1n,
      read: async (): Promise<RawEventReader> => {
        running++;
        most = Math.max(most, running);
        return {
          close: async () => undefined,
          async *[Symbol.asyncIterator](): AsyncGenerator<RawEvent> {
            await new Promise((r) => setTimeout(r, 5));
            running--;
            yield history[0]!;
          },
        };
      },
    };
    const baselines = new StreamBaselines(slow, 2);
    const views = await Promise.all(['a', 'a', 'a', 'a', 'a'].map((h) => baselines.read(h, 1n)));
    expect(views.map((v) => v.events)).to.deep.equal([1, 1, 1, 1, 1]);
    expect(most).to.equal(2);
  });
});
