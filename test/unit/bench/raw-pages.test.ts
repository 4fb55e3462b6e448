// The bench's raw ListPools reader (bench/raw-pages.ts) must count what the generated decoder
// decodes, or the "service's share" rows would time a different listing.
import { expect } from 'chai';
import { ListPoolsResponse, Pool, PoolState } from '../../../libs/proto/cistern/v1/storage.js';
import { serializeListPools } from '../../../services/coordinator/pool-list-encoding.js';
import { rawListPoolsPage } from '../../../bench/raw-pages.js';
import { simPools } from '../../../bench/fleet/sim-agent.js';

function page(count: number, nextPageToken: string): ListPoolsResponse {
  const pools = simPools(3, count, 0).map((sim) =>
    Pool.fromPartial({ name: `hosts/h3/pools/${sim.definition.name}`, host: 'h3', definition: sim.definition, state: PoolState.POOL_STATE_RUNNING, capacity: sim.capacity }),
  );
  return { pools, nextPageToken };
}

describe('bench raw ListPools pages (bench/raw-pages)', () => {
  it('counts the pools and reads the token the generated decoder finds, from the coordinator\'s own encoding', () => {
    for (const [count, token] of [[0, ''], [1, ''], [20, 'hosts/h3/pools/vmstore-19\u0000é'], [7, 'x'.repeat(300)]] as const) {
      const bytes = serializeListPools(page(count, token));
      const decoded = ListPoolsResponse.decode(bytes);
      expect(rawListPoolsPage(bytes)).to.deep.equal({ pools: decoded.pools.length, nextPageToken: decoded.nextPageToken });
      expect(decoded.pools.length).to.equal(count);
    }
  });

  it('refuses truncated bytes instead of counting a partial page', () => {
    const bytes = serializeListPools(page(3, 'next'));
    expect(() => rawListPoolsPage(bytes.subarray(0, bytes.length - 2))).to.throw(RangeError, /truncated/);
  });
});
