// What CreateVolume (and clone, wipe, resize) answers is the volume its own operation left. The
// answer was read from the cache first: when the reply is not state-complete the call waits
// until the cache has applied the operation's events, and by then the cache may have applied
// more, a delete of the volume and a create of another one under its name by other clients.
// The caller was then told of a volume it did not make (another key, size, owner).
import { expect } from 'chai';
import { AgentReply } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { Pool, PoolState, Volume } from '../../../libs/proto/cistern/v1/storage.js';
import { FleetCache } from '../../../services/coordinator/cache.js';
import type { CoordinatorServices } from '../../../services/coordinator/context.js';
import { volumeAfter } from '../../../services/coordinator/volume-after.js';

const volume = (capacity: bigint, revision: bigint, owner: bigint) =>
  Volume.fromPartial({
    name: 'hosts/a/pools/p/volumes/v.img',
    host: 'a',
    pool: 'p',
    revision,
    definition: { name: 'v.img', key: '/srv/p/v.img', capacity, allocation: 0n, target: { path: '/srv/p/v.img', permissions: { owner, group: 0n, mode: 0o600, label: '' } } },
  });

function setup(current = true) {
  const cache = new FleetCache();
  cache.applyPool('a', Pool.fromPartial({ name: 'hosts/a/pools/p', host: 'a', state: PoolState.POOL_STATE_RUNNING, revision: 1n, definition: { name: 'p' } }));
  const svc = { cache, hosts: { isCurrent: () => current } } as unknown as Pick<CoordinatorServices, 'cache' | 'hosts'>;
  return { svc, cache };
}

describe('a volume call answers the volume its own operation left (volumeAfter)', () => {
  it('the volume deleted and made again by others before the answer: the answer is the one this call made', () => {
    const { svc, cache } = setup();
    const mine = volume(1n << 30n, 5n, 107n);
    cache.applyVolume('a', 'p', mine); // the reply, applied
    // events of other clients applied while the call waited for its own
    cache.removeVolume('a', 'p', 'v.img', 6n);
    cache.applyVolume('a', 'p', volume(2n << 30n, 7n, 0n));
    const answer = volumeAfter(svc, 'a', 'p', 'v.img', AgentReply.fromPartial({ result: { $case: 'volume', value: mine }, eventSequence: 9n }));
    expect(answer.definition?.capacity).to.equal(1n << 30n);
    expect(answer.definition?.target?.permissions?.owner).to.equal(107n);
    expect(answer.revision).to.equal(5n);
    expect(answer.stale).to.equal(false);
  });

  it("the reply's volume is marked stale when the host's state is not current here, as reads mark it", () => {
    const { svc } = setup(false);
    const answer = volumeAfter(svc, 'a', 'p', 'v.img', AgentReply.fromPartial({ result: { $case: 'volume', value: volume(1n << 30n, 5n, 107n) } }));
    expect(answer.stale).to.equal(true);
    expect(answer.definition?.capacity).to.equal(1n << 30n);
  });
});
