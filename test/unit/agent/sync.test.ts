import { expect } from 'chai';
import { HostSync } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { Host, Pool, Volume } from '../../../libs/proto/cistern/v1/storage.js';
import { buildSyncChunks, MAX_CHUNK_BYTES } from '../../../services/agent/sync.js';

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
