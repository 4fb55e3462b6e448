import { expect } from 'chai';
import { HostSync, ResyncRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { Host, Pool, Volume } from '../../../libs/proto/cistern/v1/storage.js';
import { buildSyncChunks, defaultResyncSpreadMs, MAX_CHUNK_BYTES, MAX_RESYNC_SPREAD_MS, resyncDelayMs } from '../../../services/agent/sync.js';

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
