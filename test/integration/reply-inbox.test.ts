// The request path the coordinator calls agents with and agents publish events with
// (libs/bus/reply-inbox.ts), against a real nats-server: every way a request ends, and that
// nothing is left waiting after it.
import { expect } from 'chai';
import { headers, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { connectBus } from '../../libs/bus/connect.js';
import { jetstreamManager } from '@nats-io/jetstream';
import { EventPublisher, ensureEventStream } from '../../libs/bus/events.js';
import { EVENT_STREAM } from '../../libs/bus/subjects.js';
import { NoRespondersError, ReplyInbox, ReplyTimeoutError } from '../../libs/bus/reply-inbox.js';
import { Event, EventKind } from '../../libs/proto/cistern/v1/storage.js';
import { isBusUnreachable } from '../../libs/errors/errors.js';
import { startNats, type NatsServer } from '../support/nats.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (m: Msg): string => new TextDecoder().decode(m.data);

describe('reply inbox (real nats-server)', function () {
  this.timeout(30_000);
  let nats: NatsServer;
  let server: NatsConnection;
  let client: NatsConnection;
  /** Requests the 'hold' responder has not answered yet. */
  const held: Msg[] = [];

  before(async () => {
    nats = await startNats();
    server = await connectBus({ servers: nats.url, name: 'responder' });
    client = await connectBus({ servers: nats.url, name: 'requester', inboxPrefix: '_INBOX_agent_x' });
    server.subscribe('echo', {
      callback: (_err, m) => {
        m.respond(bytes(`echo ${text(m)} ${m.headers?.get('Id') ?? ''}`));
      },
    });
    server.subscribe('hold', { callback: (_err, m) => void held.push(m) });
    await server.flush();
  });

  after(async () => {
    await client?.close();
    await server?.close();
    await nats?.stop();
  });

  it('answers concurrent requests each with its own reply, under the connection inbox prefix', async () => {
    const inbox = ReplyInbox.of(client);
    expect(ReplyInbox.of(client)).to.equal(inbox);
    const seen: string[] = [];
    const spy = server.subscribe('echo-prefix', {
      callback: (_err, m) => {
        seen.push(m.reply ?? '');
        m.respond(m.data);
      },
    });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => inbox.request('echo', bytes(String(i)), { timeoutMs: 5_000 })));
    expect(answers.map(text)).to.deep.equal(Array.from({ length: 20 }, (_, i) => `echo ${i} `));
    await inbox.request('echo-prefix', bytes('x'), { timeoutMs: 5_000 });
    expect(seen[0]).to.match(/^_INBOX_agent_x\./);
    spy.unsubscribe();
    expect(inbox.pending).to.equal(0);
  });

  it('sends the headers given', async () => {
    const h = headers();
    h.set('Id', 'abc');
    expect(text(await ReplyInbox.of(client).request('echo', bytes('h'), { timeoutMs: 5_000, headers: h }))).to.equal('echo h abc');
  });

  it('fails at once with no responders when nobody subscribes to the subject', async () => {
    const started = Date.now();
    const err = await ReplyInbox.of(client).request('nobody.listens', bytes(''), { timeoutMs: 20_000 }).then(
      () => expect.fail('answered'),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(NoRespondersError);
    expect((err as NoRespondersError).isNoResponders()).to.equal(true);
    expect(isBusUnreachable(err), 'read as a bus that did not answer').to.equal(true);
    expect(Date.now() - started).to.be.below(10_000); // not the timeout
    expect(ReplyInbox.of(client).pending).to.equal(0);
  });

  it('times out, stops waiting, and drops the late reply', async () => {
    const inbox = ReplyInbox.of(client);
    const err = await inbox.request('hold', bytes('late'), { timeoutMs: 200 }).then(
      () => expect.fail('answered'),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ReplyTimeoutError);
    expect((err as Error).message).to.match(/timeout/);
    expect(isBusUnreachable(err)).to.equal(true);
    expect(inbox.pending).to.equal(0);
    held.shift()!.respond(bytes('too late'));
    // the next request gets its own answer, not the late one
    expect(text(await inbox.request('echo', bytes('next'), { timeoutMs: 5_000 }))).to.equal('echo next ');
  });

  it('an aborted signal ends the wait at once with what the caller says', async () => {
    const inbox = ReplyInbox.of(client);
    const controller = new AbortController();
    const pending = inbox.request('hold', bytes('abort me'), { timeoutMs: 60_000, signal: controller.signal, aborted: () => new Error('gave up') });
    while (held.length === 0) await new Promise((r) => setTimeout(r, 10));
    expect(inbox.pending).to.equal(1);
    controller.abort();
    const err = await pending.then(
      () => expect.fail('answered'),
      (e: unknown) => e,
    );
    expect((err as Error).message).to.equal('gave up');
    expect(inbox.pending).to.equal(0);
    held.shift()!.respond(bytes('ignored'));
  });

  it('a closed connection fails the requests that wait, and refuses new ones', async () => {
    const own = await connectBus({ servers: nats.url, name: 'closing' });
    const inbox = ReplyInbox.of(own);
    const pending = inbox.request('hold', bytes('never'), { timeoutMs: 60_000 });
    while (held.length === 0) await new Promise((r) => setTimeout(r, 10));
    await own.close();
    const err = await pending.then(
      () => expect.fail('answered'),
      (e: unknown) => e,
    );
    expect((err as Error).message).to.match(/closed/);
    expect(isBusUnreachable(err)).to.equal(true);
    expect(inbox.pending).to.equal(0);
    await inbox.request('echo', bytes('x'), { timeoutMs: 1_000 }).then(
      () => expect.fail('answered'),
      (e: unknown) => expect((e as Error).message).to.match(/closed/),
    );
    held.shift();
  });

  it('EventPublisher: stored events report their stream sequence; the same change again is stored once, another change under the same request id is stored', async () => {
    await ensureEventStream(client, { storage: 'memory' });
    const publisher = new EventPublisher(client);
    const event = Event.fromPartial({ kind: EventKind.POOL_STARTED, host: 'h1', pool: 'p1', requestId: 'req-1', principal: 'alice', poolState: { revision: 5n } });
    publisher.publish(event);
    publisher.publish(Event.fromPartial({ ...event, pool: 'p2' }));
    const last = await publisher.flush();
    expect(last > 0n).to.equal(true);
    // the same change again: JetStream's duplicate window drops it
    expect(await publisher.publishNow(event)).to.equal(last);
    // the work done again (a retry after an agent restart undid it), or another principal's request id
    const again = await publisher.publishNow(Event.fromPartial({ ...event, poolState: { revision: 6n } }));
    expect(again).to.equal(last + 1n);
    expect(await publisher.publishNow(Event.fromPartial({ ...event, principal: 'bob' }))).to.equal(last + 2n);
  });

  it('EventPublisher: an event no stream takes is reported not stored, and flush fails', async () => {
    // no stream for the events' subjects any more: nothing answers their publish
    await (await jetstreamManager(client)).streams.delete(EVENT_STREAM);
    const notStored: Event[] = [];
    const publisher = new EventPublisher(server, (e) => notStored.push(e));
    publisher.publish(Event.fromPartial({ kind: EventKind.POOL_STARTED, host: 'h1', pool: 'p1' }));
    const err = await publisher.flush().then(
      () => expect.fail('flushed'),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(NoRespondersError);
    expect(notStored.map((e) => e.pool)).to.deep.equal(['p1']);
  });
});
