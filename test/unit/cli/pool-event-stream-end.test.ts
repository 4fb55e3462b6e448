// pool-event when the stream ends under it (a coordinator shutting down: UNAVAILABLE). The
// coordinator's message says a watcher resumes after the last sequence it received, but text
// output shows no sequences: the error must name it, and the count of what was shown must
// still be printed (found by review h30).
import { expect } from 'chai';
import { Event, EventKind, type WatchEventsRequest } from '../../../libs/proto/cistern/v1/storage.js';
import { OutOfRangeError, UnavailableError } from '../../../libs/errors/errors.js';
import { FakeApi, pool, run } from './fake-api.js';

const SHUTDOWN = 'this coordinator is shutting down; call again (another coordinator, or this one once restarted); a watcher resumes after the last sequence it received';

class EndingApi extends FakeApi {
  /** what ends the stream */
  ending: Error = new UnavailableError(SHUTDOWN);
  /** where the server positioned the watch (x-cistern-start-sequence); undefined: it never was */
  start: bigint | undefined = 41n;
  override async *watchEvents(r: unknown, _signal?: AbortSignal, onPositioned?: (startSequence?: bigint) => void): AsyncGenerator<Event> {
    this.calls.push({ method: 'watchEvents', request: r });
    if (this.start !== undefined) onPositioned?.(this.start);
    for (const e of this.events) yield e;
    throw this.ending;
  }
}

describe('cisternctl pool-event when the event stream ends', () => {
  function api(): EndingApi {
    const a = new EndingApi(['a']);
    a.pools = [pool('a', 'scratch')];
    a.events = [
      Event.create({ sequence: 41n, kind: EventKind.POOL_STARTED, host: 'a', pool: 'scratch' }),
      // received, not shown (another class): still the point to resume after
      Event.create({ sequence: 42n, kind: EventKind.VOLUME_CREATED, host: 'a', pool: 'scratch', volume: 'v' }),
    ];
    return a;
  }

  it('prints what it showed, then the sequence to resume after, then the reason', async () => {
    const r = await run(api(), ['pool-event', '--loop', '--event', 'lifecycle']);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal("event 'lifecycle' for storage pool scratch: Started\nevents received: 1\n\n");
    expect(r.stderr).to.equal(`error: the event stream ended after sequence 42: resume with --after 42\nerror: ${SHUTDOWN}\n`);
  });

  it('--json: the same error (the lines carry their sequences too)', async () => {
    const r = await run(api(), ['pool-event', '--loop', '--json']);
    expect(r.code).to.equal(1);
    expect(r.stdout.split('\n').filter(Boolean)).to.have.length(2);
    expect(r.stderr).to.equal(`error: the event stream ended after sequence 42: resume with --after 42\nerror: ${SHUTDOWN}\n`);
  });

  it('with nothing received, the sequence before where the server positioned it: a plain watch run again would miss what came meanwhile', async () => {
    // without it the user's only choice was to watch from "now" again, and the events published
    // between the stream's end and the new watch were lost without a word
    const a = api();
    a.events = [];
    a.start = 58n;
    const r = await run(a, ['pool-event', '--loop', '--event', 'lifecycle']);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal('events received: 0\n\n');
    expect(r.stderr).to.equal(`error: the event stream ended after sequence 57: resume with --after 57\nerror: ${SHUTDOWN}\n`);
  });

  it('with nothing received after --after SEQ, resume with the same --after', async () => {
    const a = api();
    a.events = [];
    a.start = 8n;
    const r = await run(a, ['pool-event', '--loop', '--after', '7', '--json']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(`error: the event stream ended after sequence 7: resume with --after 7\nerror: ${SHUTDOWN}\n`);
    expect((a.callsOf('watchEvents')[0] as WatchEventsRequest).afterSequence).to.equal(7n);
  });

  it('a watch the server never positioned (refused, or cut before it was): only the reason', async () => {
    const a = api();
    a.events = [];
    a.start = undefined;
    const r = await run(a, ['pool-event', '--loop']);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal('\n');
    expect(r.stderr).to.equal(`error: ${SHUTDOWN}\n`);
  });

  it('a watcher that fell behind retention (OUT_OF_RANGE) is not told to resume where it would be refused again', async () => {
    // --after 42 again is refused with the same OUT_OF_RANGE: the events after 42 are gone, and
    // the reason already says where the stream now begins and that the state must be read again
    const behind = 'events after sequence 42 are no longer retained (this watcher fell behind the stream\'s retention); the oldest available sequence is 90';
    const a = api();
    a.ending = new OutOfRangeError(behind);
    const r = await run(a, ['pool-event', '--loop', '--event', 'lifecycle']);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal("event 'lifecycle' for storage pool scratch: Started\nevents received: 1\n\n");
    expect(r.stderr).to.equal(`error: ${behind}\n`);
  });
});
