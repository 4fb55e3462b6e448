// ListVolumes and GetVolume responses written from the cache's stored volume bytes are byte for
// byte what ListVolumesResponse.encode / Volume.encode write for the same decoded volumes.
import { expect } from 'chai';
import { ListVolumesResponse, Volume, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { serializeListVolumes, serializeVolume, storedListVolumes, storedVolumeMessage } from '../../../services/coordinator/list-encoding.js';
import { storeVolume } from '../../../services/coordinator/stored-volume.js';

const vol = (i: number, pathLength = 20, fields: Partial<Volume> = {}) =>
  Volume.fromPartial({
    name: `hosts/a/pools/p/volumes/v${i}`,
    host: 'a',
    pool: 'p',
    revision: BigInt(1000 + i),
    definition: VolumeDefinition.fromPartial({ name: `v${i}`, capacity: BigInt(i) << 30n, allocation: 4096n, target: { path: `/p/${'x'.repeat(pathLength)}${i}`, format: 'raw' } }),
    ...fields,
  });

describe('ListVolumes encoding', () => {
  const volumes = [
    vol(1),
    vol(2, 300),
    vol(3, 20_000), // a 3-byte length prefix
    vol(4, 5, { stale: true }), // stored stale: the page's flag wins
    vol(5, 5, { revision: 0n }),
    vol(6, 5, { definition: undefined }),
    vol(7, 5, { definition: VolumeDefinition.create(), revision: (1n << 64n) - 1n, stale: true }),
    Volume.create(),
  ];

  it('from stored bytes is byte for byte ListVolumesResponse.encode of the page, stale or not, with and without a page token', () => {
    const stored = volumes.map(storeVolume);
    for (const stale of [false, true]) {
      const view = volumes.map((v) => ({ ...v, stale }));
      for (const [page, token] of [[stored, ''], [stored, 'tok'], [[], 'only'], [[], '']] as const) {
        const want = Buffer.from(ListVolumesResponse.encode({ volumes: page.length ? view : [], nextPageToken: token }).finish());
        const res = storedListVolumes(page, stale, token);
        expect(serializeListVolumes(res).equals(want), `stale=${stale} token=${token}`).to.equal(true);
        expect(ListVolumesResponse.decode(serializeListVolumes(res))).to.deep.equal({ volumes: page.length ? view : [], nextPageToken: token });
        // in-process readers get the decoded page (the view's stale flag set)
        expect(res.volumes).to.deep.equal(page.length ? view : []);
        expect(res.nextPageToken).to.equal(token);
        expect(serializeListVolumes(res).equals(want)).to.equal(true);
      }
    }
  });

  it('a page someone changed in-process is written as changed', () => {
    const res = storedListVolumes(volumes.slice(0, 2).map(storeVolume), false, '');
    res.volumes[0]!.pool = 'changed';
    expect(ListVolumesResponse.decode(serializeListVolumes(res)).volumes[0]!.pool).to.equal('changed');
    res.volumes = [];
    expect(serializeListVolumes(res).length).to.equal(0);
  });

  it('a response of decoded volumes is written as ListVolumesResponse.encode writes it', () => {
    for (const res of [{ volumes, nextPageToken: '' }, { volumes, nextPageToken: 'tok' }, { volumes: [], nextPageToken: 'only' }]) {
      const want = Buffer.from(ListVolumesResponse.encode(res).finish());
      expect(serializeListVolumes(res).equals(want)).to.equal(true);
    }
  });
});

describe('GetVolume encoding', () => {
  const volumes = [
    vol(1),
    vol(3, 20_000),
    vol(4, 5, { stale: true }),
    vol(5, 5, { revision: 0n }),
    vol(6, 5, { definition: undefined }),
    vol(7, 5, { definition: VolumeDefinition.create(), revision: (1n << 64n) - 1n, stale: true }),
    Volume.create(),
  ];

  it('from stored bytes is byte for byte Volume.encode of the volume with the pool view\'s stale flag', () => {
    for (const v of volumes) {
      for (const stale of [false, true]) {
        const want = Buffer.from(Volume.encode({ ...v, stale }).finish());
        const res = storedVolumeMessage(storeVolume(v), stale);
        expect(serializeVolume(res).equals(want), `${v.name} stale=${stale}`).to.equal(true);
        // in-process readers get the decoded volume
        expect({ ...res }).to.deep.equal({ ...v, stale });
        expect(serializeVolume(res).equals(want)).to.equal(true);
      }
    }
  });

  it('a volume someone changed in-process is written as changed; a decoded one as Volume.encode writes it', () => {
    const res = storedVolumeMessage(storeVolume(volumes[0]!), false);
    res.pool = 'changed';
    expect(Volume.decode(serializeVolume(res)).pool).to.equal('changed');
    expect(Volume.decode(serializeVolume(res)).name).to.equal(volumes[0]!.name);
    expect(serializeVolume(volumes[1]!).equals(Buffer.from(Volume.encode(volumes[1]!).finish()))).to.equal(true);
  });
});
