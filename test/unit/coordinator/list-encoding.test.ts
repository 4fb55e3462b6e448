// ListVolumes responses built from cached per-volume bytes decode to the same response.
import { expect } from 'chai';
import { ListVolumesResponse, Volume, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { serializeListVolumes } from '../../../services/coordinator/list-encoding.js';

const vol = (i: number, pathLength = 20) =>
  Volume.fromPartial({
    name: `hosts/a/pools/p/volumes/v${i}`,
    host: 'a',
    pool: 'p',
    revision: BigInt(1000 + i),
    definition: VolumeDefinition.fromPartial({ name: `v${i}`, capacity: BigInt(i) << 30n, allocation: 4096n, target: { path: `/p/${'x'.repeat(pathLength)}${i}`, format: 'raw' } }),
  });

describe('ListVolumes encoding', () => {
  it('is byte for byte what ListVolumesResponse.encode writes, with and without a page token, also from the kept bytes', () => {
    const volumes = [vol(1), vol(2, 300), vol(3, 20_000)];
    for (const res of [{ volumes, nextPageToken: '' }, { volumes, nextPageToken: 'tok' }, { volumes: [], nextPageToken: 'only' }]) {
      const want = Buffer.from(ListVolumesResponse.encode(res).finish());
      expect(serializeListVolumes(res).equals(want)).to.equal(true);
      expect(serializeListVolumes(res).equals(want)).to.equal(true); // second time from the WeakMap
      expect(ListVolumesResponse.decode(serializeListVolumes(res))).to.deep.equal(res);
    }
  });
});
