// Pools and volumes of host 'a' for the fleet cache's tests (cache.test.ts, cache-pending.test.ts).
import { Pool, PoolDefinition, PoolState, PoolType, Volume } from '../../../libs/proto/cistern/v1/storage.js';

export const def = (name: string) => PoolDefinition.fromPartial({ name, type: PoolType.POOL_TYPE_DIR, uuid: `uuid-${name}`, target: { path: `/p/${name}` } });

export const pool = (name: string, revision: bigint, state = PoolState.POOL_STATE_RUNNING) =>
  Pool.fromPartial({ name: `hosts/a/pools/${name}`, host: 'a', definition: def(name), state, revision, capacity: 100n });

/** A file volume of pool `poolName`: its key is its path unless `key` is given. */
export const vol = (poolName: string, name: string, revision: bigint, capacity = 1n, key = `/p/${poolName}/${name}`) =>
  Volume.fromPartial({
    name: `hosts/a/pools/${poolName}/volumes/${name}`,
    host: 'a',
    pool: poolName,
    revision,
    definition: { name, key, capacity, target: { path: `/p/${poolName}/${name}` } },
  });
