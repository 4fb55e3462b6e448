// HOST_ONLINE / HOST_OFFLINE the stream refused are published again, backing off, until stored
// or for a bounded time; a refused one is given up once a newer event of its host was published,
// so an outdated state is never stored after the current one.
import { expect } from 'chai';
import { Event, EventKind } from '../../../libs/proto/cistern/v1/storage.js';
import { HostEventPublisher } from '../../../services/coordinator/hosts/host-event-publisher.js';
import { HostRegistry } from '../../../services/coordinator/hosts.js';
import { Heartbeat } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { silentLogger } from '../../../libs/log/logger.js';

const hostEvent = (kind: EventKind, host: string, requestId: string): Event => Event.fromPartial({ kind, host, requestId });
const label = (e: Event): string => `${EventKind[e.kind]} ${e.host}`;

/** A stream that refuses the first `refusals` publishes, then stores. */
function refusingStream(refusals: number) {
  const stored: Event[] = [];
  let attempts = 0;
  return {
    stored,
    attempts: () => attempts,
    publish: async (e: Event): Promise<void> => {
      attempts++;
      if (attempts <= refusals) throw new Error('maximum messages exceeded');
      stored.push(e);
    },
  };
}

describe('host event publisher', () => {
  it('publishes a refused event again until the stream takes it', async () => {
    const stream = refusingStream(3);
    const p = new HostEventPublisher({ publish: stream.publish, log: silentLogger, delaysMs: [1, 2, 4] });
    p.emit(hostEvent(EventKind.HOST_OFFLINE, 'b', 'host-offline:b:1:s1'));
    await p.settled();
    expect(stream.attempts()).to.equal(4);
    expect(stream.stored.map(label)).to.deep.equal(['HOST_OFFLINE b']);
  });

  it('gives up after its time is up', async () => {
    const stream = refusingStream(Infinity);
    const p = new HostEventPublisher({ publish: stream.publish, log: silentLogger, delaysMs: [5], retryForMs: 30 });
    p.emit(hostEvent(EventKind.HOST_OFFLINE, 'b', 'x'));
    await p.settled();
    expect(stream.attempts()).to.be.within(2, 7);
    expect(stream.stored).to.deep.equal([]);
  });

  it('a refused event is given up once a newer one of its host was published: the stream never ends with the outdated state', async () => {
    let refuse = true;
    const stored: Event[] = [];
    const p = new HostEventPublisher({
      publish: async (e) => {
        if (refuse && e.kind === EventKind.HOST_OFFLINE) throw new Error('refused');
        stored.push(e);
      },
      log: silentLogger,
      delaysMs: [20],
    });
    p.emit(hostEvent(EventKind.HOST_OFFLINE, 'b', 'off'));
    p.emit(hostEvent(EventKind.HOST_OFFLINE, 'c', 'off-c'));
    p.emit(hostEvent(EventKind.HOST_ONLINE, 'b', 'on'));
    refuse = false;
    await p.settled();
    // b's offline was overtaken by its return; c's is stored on its next attempt
    expect(stored.map(label)).to.deep.equal(['HOST_ONLINE b', 'HOST_OFFLINE c']);
  });

  it('keeps nothing of a host once its events are stored or given up, and a later event of it still supersedes an older one', async () => {
    let refuse = true;
    const stored: Event[] = [];
    const p = new HostEventPublisher({
      publish: async (e) => {
        if (refuse) throw new Error('refused');
        stored.push(e);
      },
      log: silentLogger,
      delaysMs: [5],
      retryForMs: 1_000,
    });
    for (let i = 0; i < 100; i++) p.emit(hostEvent(EventKind.HOST_OFFLINE, `gone-${i}`, `off-${i}`));
    expect(p.hostsInFlight).to.equal(100);
    refuse = false;
    await p.settled();
    expect(p.hostsInFlight).to.equal(0);
    expect(stored).to.have.length(100);

    // the host comes back after its state was dropped: numbering starts again, and the order
    // rule still holds between its new events
    stored.length = 0;
    refuse = true;
    p.emit(hostEvent(EventKind.HOST_OFFLINE, 'gone-0', 'off-again'));
    p.emit(hostEvent(EventKind.HOST_ONLINE, 'gone-0', 'on-again'));
    refuse = false;
    await p.settled();
    expect(stored.map(label)).to.deep.equal(['HOST_ONLINE gone-0']);
    expect(p.hostsInFlight).to.equal(0);
  });

  it('the host registry publishes its host events again while the stream refuses them', async () => {
    const stream = refusingStream(2);
    let now = 1_000_000;
    const hosts = new HostRegistry({ log: silentLogger, now: () => now, publish: stream.publish, hostEventRetryDelaysMs: [1] });
    hosts.onHeartbeat(Heartbeat.fromPartial({ host: { hostId: 'b' }, bootId: 1n, intervalMs: 1000 }));
    hosts.onSync('b', undefined, 's1');
    await hosts.hostEventsSettled();
    // HOST_ONLINE refused twice, then stored
    expect(stream.attempts()).to.equal(3);
    expect(stream.stored.map(label)).to.deep.equal(['HOST_ONLINE b']);
    now += 10_000;
    hosts.tick();
    await hosts.hostEventsSettled();
    expect(hosts.isOnline('b')).to.equal(false);
    expect(stream.stored.map(label)).to.deep.equal(['HOST_ONLINE b', 'HOST_OFFLINE b']);
    hosts.stop();
  });
});
