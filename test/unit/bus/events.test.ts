// The id JetStream deduplicates stored events by: a retried request's events once, and no
// two different events (another host, pool, volume or kind) taken for one.
import { expect } from 'chai';
import { dedupeId } from '../../../libs/bus/events.js';
import { Event, EventKind } from '../../../libs/proto/cistern/v1/storage.js';

const event = (partial: Partial<Event>) => Event.fromPartial({ requestId: 'req-1', kind: EventKind.POOL_STARTED, host: 'h1', pool: 'p', ...partial });

describe('event dedupe id', () => {
  it('is the same for the same event again (a retried request)', () => {
    expect(dedupeId(event({}))).to.equal(dedupeId(event({ time: new Date() })));
  });

  it("differs between two hosts' events with the same request id, kind, pool and volume", () => {
    expect(dedupeId(event({ host: 'h1' }))).to.not.equal(dedupeId(event({ host: 'h2' })));
  });

  it('differs by kind, pool and volume', () => {
    const ids = [event({}), event({ kind: EventKind.POOL_STOPPED }), event({ pool: 'q' }), event({ volume: 'v' })].map(dedupeId);
    expect(new Set(ids).size).to.equal(ids.length);
  });

  it('is none without a request id, and none for progress events', () => {
    expect(dedupeId(event({ requestId: '' }))).to.equal(undefined);
    expect(dedupeId(event({ kind: EventKind.OPERATION_PROGRESS }))).to.equal(undefined);
  });
});
