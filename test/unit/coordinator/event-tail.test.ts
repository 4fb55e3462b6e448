// WatchEvents fan-out: the shared tail and the per-call sessions over an in-memory stream.
// What a subscriber sees: every matching event once, in stream order, whether it follows the
// shared tail, replays on its own consumer, joins the tail, or falls behind and catches up;
// a slow subscriber never holds back the others; caught-up subscribers share one reader.
import { expect } from 'chai';
import { Event, EventKind } from '../../../libs/proto/cistern/v1/storage.js';
import { COORDINATOR_ONLY_KINDS } from '../../../libs/bus/events.js';
import { subjects } from '../../../libs/bus/subjects.js';
import type { EventSource, RawEvent, RawEventReader, StreamBounds } from '../../../services/coordinator/event-log.js';
import { EventTail, encodeWithSequence, serializeEventResponse, tailEntry } from '../../../services/coordinator/event-tail.js';
import { WatchSession } from '../../../services/coordinator/event-watch.js';
import { MAX_BATCH } from '../../../services/coordinator/retained-batches.js';
import { matches, narrowSubject, parseEventFilter } from '../../../services/coordinator/handlers/events.js';

interface Stored {
  seq: bigint;
  subject: string;
  data: Uint8Array;
}

function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/** An in-memory event stream with ordered readers, as event-log.ts gives them. */
class FakeStream implements EventSource {
  msgs: Stored[] = [];
  readers = new Set<{ wake: () => void; fail: (err: Error) => void; subject?: string }>();
  /** every read opened: start sequence and subject */
  opened: Array<{ start: bigint; subject?: string }> = [];
  private first = 1n;

  /** an event on the subject its publisher uses (a coordinator's kinds on the coordinator's, the others on the agent's) */
  publish(host: string, pool: string, volume = '', kind = EventKind.VOLUME_CHANGED, claimedHost = host): bigint {
    const subject = (COORDINATOR_ONLY_KINDS.has(kind) ? subjects.coordinatorEvents : subjects.agentEvents)(host, pool || undefined);
    return this.publishOn(subject, Event.fromPartial({ kind, host: claimedHost, pool, volume }));
  }

  publishOn(subject: string, event: Event): bigint {
    const seq = this.first + BigInt(this.msgs.length);
    const data = Event.encode(event).finish();
    this.msgs.push({ seq, subject, data });
    for (const r of this.readers) r.wake();
    return seq;
  }

  /** drops the oldest stored events (retention) */
  dropOldest(n: number): void {
    this.msgs.splice(0, n);
    this.first += BigInt(n);
  }

  get last(): bigint {
    return this.first + BigInt(this.msgs.length) - 1n;
  }

  async bounds(): Promise<StreamBounds> {
    return { first: this.first, last: this.last };
  }

  async lastSequence(subject = 'cistern.events.>'): Promise<bigint> {
    for (let i = this.msgs.length - 1; i >= 0; i--) if (subjectMatches(subject, this.msgs[i]!.subject)) return this.msgs[i]!.seq;
    return 0n;
  }

  /** readers opened with this subject (undefined: the whole stream) still open */
  openReaders(): number {
    return this.readers.size;
  }

  /** every open reader fails (a consumer error) */
  failReaders(): void {
    for (const r of [...this.readers]) r.fail(new Error('consumer failed'));
  }

  async read(start: bigint, subject?: string): Promise<RawEventReader> {
    this.opened.push({ start, subject });
    let wake: (() => void) | undefined;
    let closed = false;
    let failure: Error | undefined;
    const handle = {
      subject,
      wake: () => wake?.(),
      fail: (err: Error) => {
        failure = err;
        wake?.();
      },
    };
    this.readers.add(handle);
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const stream = this;
    return {
      async close() {
        closed = true;
        stream.readers.delete(handle);
        wake?.();
      },
      async *[Symbol.asyncIterator](): AsyncGenerator<RawEvent> {
        let next = start;
        try {
          while (!closed) {
            if (failure) throw failure;
            const idx = Number((next > stream.first ? next : stream.first) - stream.first);
            const m = stream.msgs.slice(idx).find((x) => !subject || subjectMatches(subject, x.subject));
            if (m) {
              next = m.seq + 1n;
              yield { seq: m.seq, data: m.data, subject: m.subject };
              continue;
            }
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
          }
        } finally {
          stream.readers.delete(handle);
        }
      },
    };
  }
}

/** A gRPC stream stand-in: collects what it is sent; `hold()` makes it stop draining. */
class FakeSink {
  received: Event[] = [];
  private held = false;
  private pending: Buffer[] = [];
  private drainCb: (() => void) | undefined;
  constructor(private readonly window = 4) {}

  write = (bytes: Buffer): boolean => {
    if (this.held) {
      this.pending.push(bytes);
      return this.pending.length < this.window;
    }
    this.received.push(Event.decode(bytes));
    return true;
  };

  onDrain = (cb: () => void): void => {
    this.drainCb = cb;
    if (!this.held) this.release();
  };

  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    for (const b of this.pending.splice(0)) this.received.push(Event.decode(b));
    const cb = this.drainCb;
    this.drainCb = undefined;
    cb?.();
  }

  seqs(): bigint[] {
    return this.received.map((e) => e.sequence);
  }
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 20_000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}

/** How a session ended: its error, or undefined (a session still running after many turns is stopped first). */
async function outcome(w: { done: Promise<void>; stop(): Promise<void> }): Promise<unknown> {
  let settled = false;
  const result = w.done.then(
    () => undefined,
    (err: unknown) => err,
  );
  void result.then(() => (settled = true));
  for (let i = 0; i < 20_000 && !settled; i++) await new Promise((r) => setImmediate(r));
  if (!settled) await w.stop().catch(() => undefined);
  return result;
}

interface Watching {
  session: WatchSession;
  sink: FakeSink;
  done: Promise<void>;
  stop(): Promise<void>;
}

function watch(
  tail: EventTail,
  source: FakeStream,
  start: bigint,
  req: { hosts?: string[]; pools?: string[]; kinds?: EventKind[] } = {},
  opts: { window?: number } = {},
): Watching {
  const filter = parseEventFilter({ hosts: req.hosts ?? [], pools: req.pools ?? [], kinds: req.kinds ?? [] });
  const sink = new FakeSink(opts.window);
  const abort = new AbortController();
  tail.acquire();
  const session = new WatchSession({
    tail,
    source,
    accept: (e) => matches(filter, e),
    subject: narrowSubject(filter),
    sink,
    signal: abort.signal,
  });
  const done = session.run(start).finally(() => tail.release());
  return {
    session,
    sink,
    done,
    stop: async () => {
      abort.abort();
      await done;
    },
  };
}

const seqRange = (from: bigint, to: bigint): bigint[] => {
  const out: bigint[] = [];
  for (let s = from; s <= to; s++) out.push(s);
  return out;
};

describe('WatchEvents fan-out (shared tail)', () => {
  let stream: FakeStream;
  let tail: EventTail;
  const open: Watching[] = [];

  beforeEach(() => {
    stream = new FakeStream();
    tail = new EventTail(stream, { ringEvents: 64, idleCloseMs: 0 });
    open.length = 0;
  });
  afterEach(async () => {
    await Promise.all(open.map((w) => w.stop()));
    tail.close();
  });
  const track = (w: Watching): Watching => {
    open.push(w);
    return w;
  };

  it('sends the stored Event with its sequence, as Event.encode would', () => {
    const event = Event.fromPartial({ kind: EventKind.VOLUME_CREATED, host: 'h', pool: 'p', volume: 'v', requestId: 'r' });
    for (const seq of [1n, 127n, 128n, 300n, 2n ** 40n + 5n]) {
      const bytes = encodeWithSequence(Event.encode(event).finish(), seq);
      expect(Event.decode(bytes)).to.deep.equal({ ...event, sequence: seq });
      expect(Event.decode(serializeEventResponse(bytes))).to.deep.equal({ ...event, sequence: seq });
    }
    expect(Event.decode(serializeEventResponse({ ...event, sequence: 9n }))).to.deep.equal({ ...event, sequence: 9n });
  });

  it('gives every caught-up watcher every event once, in order, from one reader of the stream', async () => {
    for (let i = 0; i < 5; i++) stream.publish('a', 'p');
    await tail.open(stream.last + 1n);
    const start = stream.last + 1n;
    const watchers = Array.from({ length: 20 }, () => track(watch(tail, stream, start)));
    const mine = track(watch(tail, stream, start, { pools: ['hosts/b/pools/q'] }));
    for (let i = 0; i < 200; i++) stream.publish(i % 2 ? 'a' : 'b', i % 3 ? 'p' : 'q');
    await until('all delivered', () => watchers.every((w) => w.sink.received.length === 200));
    for (const w of watchers) expect(w.sink.seqs()).to.deep.equal(seqRange(start, stream.last));
    expect(mine.sink.received.every((e) => e.host === 'b' && e.pool === 'q')).to.equal(true);
    expect(mine.sink.received.length).to.equal(34);
    // one reader: the tail's; no watcher opened its own
    expect(stream.opened).to.deep.equal([{ start, subject: undefined }]);
    expect(tail.eventsRead).to.equal(200);
  });

  it('never sends an event whose host is not its subject\'s (another host\'s agent speaking for it), live or replayed', async () => {
    await tail.open(stream.last + 1n);
    const start = stream.last + 1n;
    const live = track(watch(tail, stream, start, { hosts: ['a'] }));
    const all = track(watch(tail, stream, start));
    stream.publish('a', 'p');
    stream.publish('b', 'ghost', '', EventKind.POOL_STARTED, 'a'); // on b's subject, naming a
    stream.publish('a', 'p');
    await until('both genuine events', () => live.sink.received.length === 2 && all.sink.received.length === 2);
    const replay = track(watch(tail, stream, start - 1n));
    await until('the replay', () => replay.sink.received.length === 2);
    for (const w of [live, all, replay]) expect(w.sink.received.map((e) => e.pool)).to.deep.equal(['p', 'p']);
  });

  it("never sends a coordinator's kind stored under an agent's subject (an agent speaking as a coordinator), live or replayed; the coordinator's own and an older version's four-token ones it sends", async () => {
    await tail.open(stream.last + 1n);
    const start = stream.last + 1n;
    const live = track(watch(tail, stream, start, { hosts: ['a'] }));
    const all = track(watch(tail, stream, start));
    const pool = track(watch(tail, stream, start, { pools: ['hosts/a/pools/p'] }));
    const forged = (kind: EventKind, p = ''): Event => Event.fromPartial({ kind, host: 'a', pool: p, principal: 'admin-alice', requestId: 'forged' });
    for (const kind of [EventKind.HOST_DELETED, EventKind.HOST_ONLINE, EventKind.HOST_OFFLINE]) stream.publishOn(subjects.agentEvents('a', undefined), forged(kind));
    for (const kind of [EventKind.POOL_DEFINED, EventKind.POOL_UNDEFINED]) stream.publishOn(subjects.agentEvents('a', 'p'), forged(kind, 'p'));
    stream.publish('a', 'p', '', EventKind.POOL_UNDEFINED); // the coordinator's
    stream.publishOn('cistern.events.a.p', Event.fromPartial({ kind: EventKind.POOL_DEFINED, host: 'a', pool: 'p' })); // an older version's
    stream.publish('a', 'p', '', EventKind.POOL_STARTED); // the agent's
    stream.publishOn(subjects.coordinatorEvents('a', 'p'), Event.fromPartial({ kind: EventKind.POOL_STOPPED, host: 'a', pool: 'p', requestId: 'reconcile-1' }));
    const genuine = ['POOL_UNDEFINED', 'POOL_DEFINED', 'POOL_STARTED', 'POOL_STOPPED'];
    await until('the genuine events', () => [live, all].every((w) => w.sink.received.length === 4));
    const replays = [track(watch(tail, stream, start - 1n)), track(watch(tail, stream, start - 1n, { hosts: ['a'] }))];
    await until('the replays', () => replays.every((w) => w.sink.received.length === 4));
    for (const w of [live, all, ...replays]) expect(w.sink.received.map((e) => EventKind[e.kind])).to.deep.equal(genuine);
    // a pool's subject takes both origins (the four-token one is the tail's: the replay's own
    // consumer does not see it, replaySubject reads everything for such a replay)
    await until('the pool watcher', () => pool.sink.received.length === 4);
    expect(pool.sink.received.map((e) => EventKind[e.kind])).to.deep.equal(genuine);
    const poolReplay = track(watch(tail, stream, start - 1n, { pools: ['hosts/a/pools/p'] }));
    await until('the pool replay', () => poolReplay.sink.received.length === 3);
    expect(poolReplay.sink.received.map((e) => EventKind[e.kind])).to.deep.equal(['POOL_UNDEFINED', 'POOL_STARTED', 'POOL_STOPPED']);
  });

  it('replays from an old sequence on its own consumer, then joins the tail with no gap and no duplicate', async () => {
    for (let i = 0; i < 30; i++) stream.publish('a', 'p');
    await tail.open(stream.last + 1n);
    const live = track(watch(tail, stream, stream.last + 1n));
    const late = track(watch(tail, stream, 11n));
    // events keep coming while it replays
    for (let i = 0; i < 40; i++) {
      stream.publish('a', 'p');
      await new Promise((r) => setImmediate(r));
    }
    await until('the late watcher is on the tail', () => late.session.stats.joins === 1 && late.sink.received.at(-1)?.sequence === stream.last);
    stream.publish('a', 'p');
    await until('the next live event', () => late.sink.received.at(-1)?.sequence === stream.last);
    expect(late.sink.seqs()).to.deep.equal(seqRange(11n, stream.last));
    expect(live.sink.seqs()).to.deep.equal(seqRange(31n, stream.last));
    expect(late.session.stats.fromOwn).to.be.greaterThan(0);
    expect(late.session.stats.fromTail).to.be.greaterThan(0);
    expect(stream.openReaders(), 'its own consumer is closed').to.equal(1);
  });

  it('joins the tail at once when nothing on its subject lies between its cursor and the tail', async () => {
    stream.publish('a', 'quiet');
    for (let i = 0; i < 200; i++) stream.publish('a', 'busy');
    await tail.open(stream.last + 1n);
    // the ring (64) no longer holds the events after sequence 1, but none of them is on the subject
    const w = track(watch(tail, stream, 2n, { pools: ['hosts/a/pools/quiet'] }));
    await until('joined', () => w.session.stats.joins === 1);
    const seq = stream.publish('a', 'quiet');
    stream.publish('a', 'busy');
    await until('the quiet event', () => w.sink.received.length === 1);
    expect(w.sink.seqs()).to.deep.equal([seq]);
    expect(stream.opened.filter((o) => o.subject), 'no consumer of its own was needed').to.deep.equal([]);
  });

  it('a replay older than what the tail keeps reads on its own until it catches up', async () => {
    await tail.open(1n);
    for (let i = 0; i < 300; i++) stream.publish('a', i % 2 ? 'p' : 'q');
    await until('the tail read them', () => tail.last === stream.last);
    const w = track(watch(tail, stream, 1n, { hosts: ['a'], kinds: [EventKind.VOLUME_CHANGED] }));
    await until('joined', () => w.session.stats.joins === 1);
    stream.publish('a', 'p');
    await until('everything', () => w.sink.received.length === 301);
    expect(w.sink.seqs()).to.deep.equal(seqRange(1n, 301n));
    expect(w.session.stats.fromOwn).to.be.at.least(300 - 64);
  });

  it('a slow watcher does not hold back the others, and catches up from the ring of the tail when it reads again', async () => {
    await tail.open(1n);
    const fast = track(watch(tail, stream, 1n));
    const slow = track(watch(tail, stream, 1n));
    slow.sink.hold();
    for (let i = 0; i < 40; i++) stream.publish('a', 'p');
    await until('the fast one has all', () => fast.sink.received.length === 40);
    expect(slow.sink.received.length).to.equal(0);
    slow.sink.release();
    await until('the slow one has all', () => slow.sink.received.length === 40);
    expect(slow.sink.seqs()).to.deep.equal(seqRange(1n, 40n));
    expect(slow.session.stats).to.deep.include({ fellBehind: 0, fromOwn: 0, joins: 1 });
    expect(stream.opened, 'no consumer of its own').to.have.length(1);
  });

  it('a watcher further behind than the ring reaches continues on its own consumer, gets everything once, in order, and rejoins', async () => {
    await tail.open(1n);
    const fast = track(watch(tail, stream, 1n));
    const slow = track(watch(tail, stream, 1n));
    slow.sink.hold();
    for (let i = 0; i < 100; i++) {
      stream.publish('a', 'p');
      await new Promise((r) => setImmediate(r));
    }
    await until('the fast one has all', () => fast.sink.received.length === 100);
    expect(slow.sink.received.length).to.equal(0);
    slow.sink.release();
    await until('the slow one has all and is back on the tail', () => slow.sink.received.length === 100 && slow.session.stats.joins === 2);
    expect(slow.session.stats.fellBehind).to.equal(1);
    expect(slow.session.stats.fromOwn).to.be.greaterThan(0);
    stream.publish('a', 'p');
    await until('both have the next', () => fast.sink.received.length === 101 && slow.sink.received.length === 101);
    expect(slow.sink.seqs()).to.deep.equal(seqRange(1n, 101n));
    expect(fast.sink.seqs()).to.deep.equal(seqRange(1n, 101n));
    expect(fast.session.stats.fellBehind).to.equal(0);
    expect(stream.openReaders(), 'its own consumer is closed').to.equal(1);
  });

  it('a watcher behind the stream\'s retention is told OUT_OF_RANGE after the last event it was sent, never skipped past the events removed', async () => {
    await tail.open(1n);
    const fast = track(watch(tail, stream, 1n));
    const slow = watch(tail, stream, 1n);
    const pool = watch(tail, stream, 1n, { pools: ['hosts/a/pools/p'] });
    slow.sink.hold();
    pool.sink.hold();
    for (let i = 0; i < 100; i++) {
      stream.publish('a', i % 2 ? 'p' : 'q');
      await new Promise((r) => setImmediate(r));
    }
    await until('the fast one has all', () => fast.sink.received.length === 100);
    // retention removes events the held watchers have not been sent yet
    stream.dropOldest(50);
    slow.sink.release();
    pool.sink.release();
    for (const w of [slow, pool]) {
      const failure = (await outcome(w)) as { code?: string; details?: Record<string, string> } | undefined;
      expect(failure?.code).to.equal('OUT_OF_RANGE');
      expect(failure?.details?.oldestSequence).to.equal('51');
      const last = BigInt(failure!.details!.afterSequence!);
      // everything it got is contiguous (for its filter) up to the sequence the error names
      const sent = w.sink.seqs();
      expect(Number(sent.at(-1) ?? 0n)).to.be.at.most(Number(last));
      expect(Number(last)).to.be.below(51);
    }
    expect(slow.sink.seqs()).to.deep.equal(seqRange(1n, slow.sink.seqs().at(-1)!));
    expect(pool.sink.received.every((e) => e.pool === 'p')).to.equal(true);
    // a replay from a cursor retention has passed fails the same way at its first event
    const late = watch(tail, stream, 20n);
    const failure = (await outcome(late)) as { code?: string } | undefined;
    expect(failure?.code).to.equal('OUT_OF_RANGE');
    expect(late.sink.received).to.deep.equal([]);
  });

  it('a filtered replay whose consumer skips events retention removed meanwhile is told OUT_OF_RANGE at the gap, and sent nothing after it', async () => {
    // pool p has the even sequences; a batch is all the session reads ahead of its client
    const n = 4 * MAX_BATCH;
    for (let i = 0; i < n; i++) stream.publish('a', i % 2 ? 'p' : 'q');
    await tail.open(stream.last + 1n);
    const replay = watch(tail, stream, 1n, { pools: ['hosts/a/pools/p'] }, { window: 2 });
    replay.sink.hold();
    await until('it waits for its client', () => stream.opened.some((o) => o.subject !== undefined));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    // retention removes events of p its consumer has not delivered yet
    stream.dropOldest(3 * MAX_BATCH);
    replay.sink.release();
    const failure = (await outcome(replay)) as { code?: string; details?: Record<string, string> } | undefined;
    expect(failure?.code).to.equal('OUT_OF_RANGE');
    expect(failure?.details?.oldestSequence).to.equal(String(3 * MAX_BATCH + 1));
    // it names where the gap begins: up to there it was sent every event of pool p (the even
    // sequences), and nothing after it
    const after = BigInt(failure!.details!.afterSequence!);
    expect(Number(after)).to.be.below(3 * MAX_BATCH + 1);
    const sent = replay.sink.seqs();
    expect(sent.length).to.be.greaterThan(0);
    expect(sent.every((seq, i) => seq === 2n * BigInt(i + 1)), sent.join()).to.equal(true);
    expect(sent.at(-1)! <= after, `sent ${String(sent.at(-1))}, past the gap after ${after}`).to.equal(true);
    expect(sent.at(-1)! + 2n > after, 'no event of p lies between the last one sent and the gap').to.equal(true);
  });

  it('a filtered replay whose consumer delivered its events before retention removed them sends them all: they were read while stored', async () => {
    for (let i = 0; i < 100; i++) stream.publish('a', i % 2 ? 'p' : 'q');
    await tail.open(stream.last + 1n);
    const replay = watch(tail, stream, 1n, { pools: ['hosts/a/pools/p'] }, { window: 2 });
    replay.sink.hold();
    await until('it waits for its client', () => stream.opened.some((o) => o.subject !== undefined));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    stream.dropOldest(60);
    replay.sink.release();
    await until('every event of p', () => replay.sink.received.length === 50);
    expect(replay.sink.seqs()).to.deep.equal(Array.from({ length: 50 }, (_, i) => 2n * BigInt(i + 1)));
    await replay.stop();
  });

  it('keeps at most its byte budget of events', async () => {
    const small = new EventTail(stream, { ringEvents: 1000, ringBytes: 1000, idleCloseMs: 0 });
    await small.open(1n);
    for (let i = 0; i < 200; i++) stream.publish('a', 'p');
    await until('read', () => small.last === 200n);
    let bytes = 0;
    for (let p = small.start; p < small.end; p++) bytes += small.at(p).bytes.length;
    expect(bytes).to.be.at.most(1000);
    expect(small.end - small.start).to.be.below(200);
    expect(small.coveredFrom).to.equal(small.at(small.start).seq);
    small.close();
  });

  it('when the tail stops, its watchers continue on their own consumers from the next sequence', async () => {
    await tail.open(1n);
    const w = track(watch(tail, stream, 1n, { hosts: ['a'] }));
    for (let i = 0; i < 10; i++) stream.publish('a', 'p');
    await until('ten', () => w.sink.received.length === 10);
    stream.failReaders();
    await until('the tail ended', () => tail.ended);
    for (let i = 0; i < 10; i++) stream.publish(i % 2 ? 'a' : 'b', 'p');
    await until('five more', () => w.sink.received.length === 15);
    expect(w.sink.seqs()).to.deep.equal(seqRange(1n, 20n).filter((s) => s <= 10n || s % 2n === 0n));
    expect(stream.opened.at(-1)).to.deep.equal({ start: 11n, subject: 'cistern.events.a.>' });
  });

  it('a watcher positioned ahead of where the tail has read gets nothing before its start', async () => {
    for (let i = 0; i < 50; i++) stream.publish('a', 'p');
    // the tail starts behind the stream's end (it has not read the stored events yet)
    const opening = tail.open(1n);
    const w = track(watch(tail, stream, 51n));
    await opening;
    for (let i = 0; i < 5; i++) stream.publish('a', 'p');
    await until('the new ones', () => w.sink.received.length >= 5 && tail.last === stream.last);
    expect(w.sink.seqs()).to.deep.equal(seqRange(51n, 55n));
    expect(w.session.stats.joins).to.equal(1);
  });

  it('closes its reader once no call uses it', async () => {
    await tail.open(1n);
    const w = watch(tail, stream, 1n);
    stream.publish('a', 'p');
    await until('one', () => w.sink.received.length === 1);
    await w.stop();
    await until('closed', () => tail.ended);
    expect(stream.openReaders()).to.equal(0);
  });
});

describe('event tail memory', () => {
  it("keeps each event in a buffer of its own: a slice of Node's shared pool would keep a whole 8 KiB slab alive", () => {
    const data = Event.encode(Event.fromPartial({ kind: EventKind.VOLUME_CREATED, host: 'a', pool: 'p', volume: 'v' })).finish();
    const entries = [1n, 2n, 3n].map((seq) => tailEntry({ seq, data, subject: 'cistern.events.a.p.a' }));
    for (const { bytes } of entries) expect(bytes.buffer.byteLength, 'the ArrayBuffer behind the entry').to.equal(bytes.length);
    expect(Event.decode(entries[2]!.bytes).sequence).to.equal(3n);
  });
});
