import { expect } from 'chai';
import { HostSync, ResyncRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { EventKind, Host, Pool, Volume } from '../../../libs/proto/cistern/v1/storage.js';
import { buildSyncChunks, defaultResyncSpreadMs, HostSyncer, MAX_CHUNK_BYTES, MAX_RESYNC_SPREAD_MS, resyncDelayMs } from '../../../services/agent/sync.js';
import { LostEvents, progressEvent, systemActor, volumeEvent } from '../../../services/agent/events.js';
import { silentLogger } from '../../../libs/log/logger.js';

const host = Host.create({ name: 'hosts/h', hostId: 'h', hostname: 'box', online: true });
const volumes = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    Volume.fromPartial({
      name: `hosts/h/pools/p/volumes/vol-${i}`,
      host: 'h',
      pool: 'p',
      revision: BigInt(i),
      definition: { name: `vol-${i}`, key: `/srv/pools/p/vol-${i}`, capacity: 1n << 30n, target: { path: `/srv/pools/p/vol-${i}`, format: 'qcow2' } },
    }),
  );

describe('agent full sync chunking', () => {
  it('an empty host is one chunk with the host and last=true', () => {
    const chunks = buildSyncChunks('s1', { host, pools: [], volumes: [], revision: 7n });
    expect(chunks).to.have.length(1);
    expect(chunks[0]!.host?.hostId).to.equal('h');
    expect(chunks[0]!.last).to.equal(true);
    expect(chunks[0]!.revision).to.equal(7n);
  });

  it('20,000 volumes split into chunks under 512 KiB, numbered, host first, last flag at the end, nothing lost', () => {
    const vols = volumes(20_000);
    const pools = [Pool.fromPartial({ name: 'hosts/h/pools/p', host: 'h', volumeCount: 20_000 })];
    const chunks = buildSyncChunks('s2', { host, pools, volumes: vols, revision: 9n });
    expect(chunks.length).to.be.greaterThan(1);
    chunks.forEach((c, i) => {
      const size = HostSync.encode(c).finish().length;
      expect(size, `chunk ${i}`).to.be.at.most(MAX_CHUNK_BYTES);
      expect(c.chunk).to.equal(i);
      expect(c.syncId).to.equal('s2');
      expect(c.last).to.equal(i === chunks.length - 1);
      expect(c.host !== undefined).to.equal(i === 0);
    });
    const roundTrip = chunks.map((c) => HostSync.decode(HostSync.encode(c).finish()));
    expect(roundTrip.flatMap((c) => c.pools).map((p) => p.name)).to.deep.equal(['hosts/h/pools/p']);
    expect(roundTrip.flatMap((c) => c.volumes).map((v) => v.name)).to.deep.equal(vols.map((v) => v.name));
  });

  it('respects a smaller limit', () => {
    const chunks = buildSyncChunks('s3', { host, pools: [], volumes: volumes(100), revision: 1n }, 4096);
    for (const c of chunks) expect(HostSync.encode(c).finish().length).to.be.at.most(4096);
    expect(chunks.flatMap((c) => c.volumes)).to.have.length(100);
  });

  it('carries the events the stream did not store after the volumes, spread over the chunks, and why it was sent on the first', () => {
    const lost = volumes(60).map((v) => volumeEvent(EventKind.VOLUME_DELETED, 'h', v, systemActor));
    const chunks = buildSyncChunks('s4', { host, pools: [], volumes: volumes(40), revision: 1n, eventsLost: lost, reason: 'event publish failed' }, 4096);
    expect(chunks.length).to.be.greaterThan(2);
    for (const c of chunks) expect(HostSync.encode(c).finish().length).to.be.at.most(4096);
    expect(chunks[0]!.reason).to.equal('event publish failed');
    expect(chunks.flatMap((c) => c.eventsLost).map((e) => e.volume)).to.deep.equal(lost.map((e) => e.volume));
    expect(chunks.flatMap((c) => c.volumes)).to.have.length(40);
  });
});

describe('agent full sync of a state that does not encode', () => {
  it('leaves out the item (told to the caller), not the whole sync', () => {
    // a backend's size past 2^64: Volume.encode throws; the sync used to throw from its timer
    const good = Volume.fromPartial({ name: 'hosts/h/pools/p/volumes/ok', revision: 2n });
    const bad = Volume.fromPartial({ name: 'hosts/h/pools/p/volumes/huge', definition: { name: 'huge', capacity: 1n << 96n } });
    const left: string[] = [];
    const chunks = buildSyncChunks('s', { host: Host.fromPartial({ hostId: 'h' }), pools: [], volumes: [bad, good], revision: 3n }, MAX_CHUNK_BYTES, (what) => left.push(what));
    expect(chunks.flatMap((c) => c.volumes.map((v) => v.name))).to.deep.equal(['hosts/h/pools/p/volumes/ok']);
    expect(left).to.deep.equal(['hosts/h/pools/p/volumes/huge']);
    for (const c of chunks) HostSync.encode(c).finish();
  });
});

describe('agent events the stream did not store', () => {
  const [v0, v1] = volumes(2);

  it('keeps the last one of each pool and volume, no progress, until a sync takes them', () => {
    const lost = new LostEvents();
    lost.note(volumeEvent(EventKind.VOLUME_CREATED, 'h', v0!, systemActor));
    lost.note(volumeEvent(EventKind.VOLUME_CREATED, 'h', v1!, systemActor));
    lost.note(volumeEvent(EventKind.VOLUME_DELETED, 'h', v0!, systemActor));
    lost.note(progressEvent('h', { pool: 'p', volume: 'vol-1' }, 'wipe', 1n, 2n, systemActor));
    expect(lost.take().map((e) => `${EventKind[e.kind]} ${e.volume}`)).to.deep.equal(['VOLUME_CREATED vol-1', 'VOLUME_DELETED vol-0']);
    expect(lost.take()).to.deep.equal([]);
  });

  it('given back by a sync that was not sent, an object lost again since keeps its newer event', () => {
    const lost = new LostEvents();
    lost.note(volumeEvent(EventKind.VOLUME_CREATED, 'h', v0!, systemActor));
    lost.note(volumeEvent(EventKind.VOLUME_CREATED, 'h', v1!, systemActor));
    const taken = lost.take();
    lost.note(volumeEvent(EventKind.VOLUME_DELETED, 'h', v0!, systemActor));
    lost.restore(taken);
    expect(lost.take().map((e) => `${EventKind[e.kind]} ${e.volume}`)).to.deep.equal(['VOLUME_DELETED vol-0', 'VOLUME_CREATED vol-1']);
  });

  it('the next full sync carries them; one that could not be sent leaves them for the sync after it', async () => {
    const sent: HostSync[] = [];
    let down = true;
    const nc = {
      publish: (_subject: string, data: Uint8Array) => {
        if (down) throw new Error('connection closed');
        sent.push(HostSync.decode(data));
      },
      // a coordinator takes the sync whole and confirms it
      request: async (_subject: string, data: Uint8Array) => {
        if (down) throw new Error('connection closed');
        sent.push(HostSync.decode(data));
        return {};
      },
      flush: async () => undefined,
    } as unknown as NatsConnection;
    const lost = new LostEvents();
    const syncer = new HostSyncer(nc, 'h', () => ({ host, pools: [], volumes: [], revision: 3n }), silentLogger, 0, lost);
    lost.note(volumeEvent(EventKind.VOLUME_DELETED, 'h', v0!, systemActor));
    await syncer.request('event publish failed');
    expect(sent).to.deep.equal([]);
    down = false;
    await syncer.request('reconnect');
    expect(sent).to.have.length(1);
    expect(sent[0]!.reason).to.equal('reconnect');
    expect(sent[0]!.eventsLost.map((e) => `${EventKind[e.kind]} ${e.volume} ${e.volumeState?.revision}`)).to.deep.equal(['VOLUME_DELETED vol-0 0']);
    await syncer.request('requested');
    expect(sent[1]!.eventsLost).to.deep.equal([]);
    syncer.stop();
  });

  it('they stay the agent\'s until a coordinator confirms a sync that carried them, and go again on their own', async () => {
    const sent: Array<{ sync: HostSync; asked: boolean }> = [];
    let coordinators = 0;
    const nc = {
      publish: (_subject: string, data: Uint8Array) => void sent.push({ sync: HostSync.decode(data), asked: false }),
      request: async (_subject: string, data: Uint8Array) => {
        sent.push({ sync: HostSync.decode(data), asked: true });
        if (coordinators === 0) throw Object.assign(new Error('503'), { code: '503' }); // no responders
        return {};
      },
      flush: async () => undefined,
    } as unknown as NatsConnection;
    const lost = new LostEvents();
    const retryMs = [100, 200];
    const syncer = new HostSyncer(nc, 'h', () => ({ host, pools: [], volumes: [], revision: 3n }), silentLogger, 0, lost, retryMs);
    const lostIn = (i: number) => sent[i]!.sync.eventsLost.map((e) => `${EventKind[e.kind]} ${e.volume}`);
    try {
      // a sync without events lost is a plain publish
      await syncer.request('start');
      expect(sent.map((s) => s.asked)).to.deep.equal([false]);

      // no coordinator listens when the sync carrying the event goes (one restarting)
      lost.note(volumeEvent(EventKind.VOLUME_DELETED, 'h', v0!, systemActor));
      await syncer.request('event publish failed');
      expect(sent[1]!.asked).to.equal(true);
      expect(lostIn(1)).to.deep.equal(['VOLUME_DELETED vol-0']);
      await new Promise((resolve) => setImmediate(resolve));
      // any sync meanwhile carries them again
      await syncer.request('requested');
      expect(lostIn(2)).to.deep.equal(['VOLUME_DELETED vol-0']);
      await new Promise((resolve) => setImmediate(resolve));

      // and the agent sends one by itself, after the second wait (two syncs went unconfirmed),
      // which a coordinator now confirms
      coordinators = 1;
      const before = sent.length;
      const started = Date.now();
      while (sent.length === before && Date.now() - started < 5_000) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(sent[before]!.sync.reason).to.equal('events lost not confirmed');
      expect(lostIn(before)).to.deep.equal(['VOLUME_DELETED vol-0']);
      await new Promise((resolve) => setImmediate(resolve));

      // confirmed: the coordinators have them; the next sync is a plain one without them
      await syncer.request('requested');
      expect(sent.at(-1)!.asked).to.equal(false);
      expect(sent.at(-1)!.sync.eventsLost).to.deep.equal([]);
    } finally {
      syncer.stop();
    }
  });
});

describe('agent events lost, two syncs unconfirmed in turn', () => {
  const [v0] = volumes(1);
  const at = (revision: bigint) => ({ ...v0!, revision });

  // S1 carries the loss at revision 1 and goes unanswered (a busy coordinator takes it late, or
  // takes it and stops before answering); the volume changes again, that event is lost too, and
  // S2 carries it (revision 2). S1's wait ends first and gives revision 1 back into an empty set;
  // S2's wait ends next: its newer event must not be dropped for the older one. Else the next
  // sync carries revision 1 again, and its reconcile event (showing the newer state) has the
  // duplicate id of S1's (lost:...:1:VOLUME_CHANGED): JetStream drops it within 2 minutes.
  it('an object lost again keeps its newer event, whichever unconfirmed sync gives its event back last', async () => {
    const sent: HostSync[] = [];
    const unanswered: Array<() => void> = [];
    const nc = {
      publish: (_subject: string, data: Uint8Array) => void sent.push(HostSync.decode(data)),
      request: (_subject: string, data: Uint8Array) => {
        sent.push(HostSync.decode(data));
        return new Promise((_resolve, reject) => unanswered.push(() => reject(Object.assign(new Error('TIMEOUT'), { code: 'TIMEOUT' }))));
      },
      flush: async () => undefined,
    } as unknown as NatsConnection;
    const lost = new LostEvents();
    const syncer = new HostSyncer(nc, 'h', () => ({ host, pools: [], volumes: [], revision: 9n }), silentLogger, 0, lost, [60_000]);
    const revisionsIn = (s: HostSync) => s.eventsLost.map((e) => e.volumeState?.revision);
    const tick = () => new Promise((resolve) => setImmediate(resolve));
    try {
      lost.note(volumeEvent(EventKind.VOLUME_CHANGED, 'h', at(1n), systemActor));
      await syncer.request('event publish failed');
      lost.note(volumeEvent(EventKind.VOLUME_CHANGED, 'h', at(2n), systemActor));
      await syncer.request('event publish failed');
      expect(sent.map(revisionsIn)).to.deep.equal([[1n], [2n]]);
      unanswered[0]!(); // S1's 30 s are over first
      await tick();
      unanswered[1]!(); // then S2's
      await tick();
      await syncer.request('requested');
      expect(revisionsIn(sent[2]!)).to.deep.equal([2n]);
    } finally {
      syncer.stop();
    }
  });
});

describe('agent answer to a resync request', () => {
  const req = (host: string) => ResyncRequest.fromPartial({ coordinatorId: 'c1', host });

  it('a request naming this host is answered at once; one for another host not at all', () => {
    expect(resyncDelayMs(req('h'), 'h', 1500, () => 0.9)).to.equal(0);
    expect(resyncDelayMs(req('hosts/h'), 'h', 1500, () => 0.9)).to.equal(0);
    expect(resyncDelayMs(req('other'), 'h', 1500)).to.equal(undefined);
  });

  it('a fleet-wide request is answered after a random delay below the spread (0 = at once)', () => {
    expect(resyncDelayMs(req(''), 'h', 1500, () => 0)).to.equal(0);
    expect(resyncDelayMs(req(''), 'h', 1500, () => 0.5)).to.equal(750);
    expect(resyncDelayMs(req(''), 'h', 1500, () => 0.9999)).to.be.below(1500);
    expect(resyncDelayMs(req(''), 'h', 0, () => 0.9)).to.equal(0);
  });

  it('the default spread follows the heartbeat interval, at most 1.5 s', () => {
    expect(defaultResyncSpreadMs(2000)).to.equal(MAX_RESYNC_SPREAD_MS);
    expect(defaultResyncSpreadMs(300)).to.equal(225);
    expect(defaultResyncSpreadMs(60_000)).to.equal(MAX_RESYNC_SPREAD_MS);
  });
});
