// The ids JetStream deduplicates stored events by. An event made by a call is named by the
// change it reports (its state's revision), so a repeat of it is stored once and no other
// change is ever taken for it. A host or reconcile event is named by its request id, which
// every coordinator gives the same change.
import { expect } from 'chai';
import { changeDedupeId, namedChangeDedupeId } from '../../../libs/bus/events.js';
import { Event, EventKind, type DeepPartial } from '../../../libs/proto/cistern/v1/storage.js';

type EventInput = DeepPartial<Event>;

const poolEvent = (partial: EventInput) =>
  Event.fromPartial({ requestId: 'req-1', principal: 'alice', kind: EventKind.POOL_STARTED, host: 'h1', pool: 'p', poolState: { revision: 7n }, ...partial });
const volumeEvent = (partial: EventInput) =>
  poolEvent({ kind: EventKind.VOLUME_CREATED, volume: 'v', volumeState: { revision: 9n }, ...partial });

describe('event dedupe id of a change made by a call', () => {
  it('is the same for the same change sent again', () => {
    expect(changeDedupeId(volumeEvent({}))).to.equal(changeDedupeId(volumeEvent({ time: new Date() })));
    expect(changeDedupeId(poolEvent({}))).to.not.equal(undefined);
  });

  it('differs for another change under the same request id: a retry that does the work again after an agent restart', () => {
    expect(changeDedupeId(volumeEvent({ volumeState: { revision: 10n } }))).to.not.equal(changeDedupeId(volumeEvent({})));
    // a volume event is named by the volume's revision, not by the pool sizes it carries
    expect(changeDedupeId(volumeEvent({ poolState: { revision: 8n } }))).to.equal(changeDedupeId(volumeEvent({})));
  });

  it("differs between two principals' requests that chose the same request id", () => {
    expect(changeDedupeId(volumeEvent({ principal: 'bob' }))).to.not.equal(changeDedupeId(volumeEvent({})));
  });

  it('differs by host, kind, pool and volume', () => {
    const ids = [volumeEvent({}), volumeEvent({ host: 'h2' }), volumeEvent({ kind: EventKind.VOLUME_DELETED }), volumeEvent({ pool: 'q' }), volumeEvent({ volume: 'w' })].map(changeDedupeId);
    expect(new Set(ids).size).to.equal(ids.length);
  });

  it('is none without a request id, without a revision, and for progress events', () => {
    expect(changeDedupeId(volumeEvent({ requestId: '' }))).to.equal(undefined);
    expect(changeDedupeId(volumeEvent({ volumeState: { revision: 0n } }))).to.equal(undefined);
    expect(changeDedupeId(poolEvent({ kind: EventKind.POOL_DEFINED, poolState: undefined }))).to.equal(undefined);
    expect(changeDedupeId(volumeEvent({ kind: EventKind.OPERATION_PROGRESS }))).to.equal(undefined);
  });
});

describe('event dedupe id of a change its request id names (host and reconcile events)', () => {
  const hostEvent = (partial: EventInput) => Event.fromPartial({ requestId: 'host-online:h1:5:s1', principal: 'coordinator', kind: EventKind.HOST_ONLINE, host: 'h1', ...partial });

  it('is the same from every coordinator, whatever the state carries', () => {
    expect(namedChangeDedupeId(hostEvent({}))).to.equal(namedChangeDedupeId(hostEvent({ time: new Date(), hostState: { hostId: 'h1', online: true } })));
  });

  it('differs by host, kind, pool and volume', () => {
    const ids = [hostEvent({}), hostEvent({ host: 'h2' }), hostEvent({ kind: EventKind.HOST_OFFLINE }), hostEvent({ pool: 'q' }), hostEvent({ volume: 'v' })].map(namedChangeDedupeId);
    expect(new Set(ids).size).to.equal(ids.length);
  });

  it('is none without a request id, and none for progress events', () => {
    expect(namedChangeDedupeId(hostEvent({ requestId: '' }))).to.equal(undefined);
    expect(namedChangeDedupeId(hostEvent({ kind: EventKind.OPERATION_PROGRESS }))).to.equal(undefined);
  });
});
