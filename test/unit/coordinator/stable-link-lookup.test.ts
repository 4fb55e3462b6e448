// LookupVolume by a /dev path the cache does not hold asks the host's agent for the stable links
// to it (stable-link-lookup.ts), but only when that can find something: a hot cached read must
// not become a bus round trip for every miss of the fleet.
import { expect } from 'chai';
import { Metadata } from '@grpc/grpc-js';
import { FleetCache } from '../../../services/coordinator/cache.js';
import { HostRegistry } from '../../../services/coordinator/hosts.js';
import { silentLogger } from '../../../libs/log/logger.js';
import { lookupVolume } from '../../../services/coordinator/handlers/volumes.js';
import { hasStableLinkPool } from '../../../services/coordinator/stable-link-lookup.js';
import type { CallContext, CoordinatorServices } from '../../../services/coordinator/context.js';
import { Heartbeat } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { Pool, PoolDefinition, PoolState, PoolType, Volume } from '../../../libs/proto/cistern/v1/storage.js';
import { asCisternError } from '../../../libs/errors/errors.js';

function setup() {
  const cache = new FleetCache();
  const hosts = new HostRegistry({ log: silentLogger });
  hosts.onHeartbeat(Heartbeat.fromPartial({ host: { hostId: 'a', poolTypes: [] }, bootId: 1n, intervalMs: 60_000 }));
  hosts.onSync('a', undefined);
  const asked: string[] = [];
  // the bus: any use of it is an ask of the agent
  const nc = new Proxy({}, {
    get(_t, prop) {
      asked.push(String(prop));
      throw new Error('asked the agent');
    },
  });
  const svc = { cache, hosts, nc, agentTimeoutMs: 60_000, log: silentLogger } as unknown as CoordinatorServices;
  const ctx: CallContext = { method: 'test', principal: 'anonymous', metadata: new Metadata(), peer: 'test', signal: new AbortController().signal, log: silentLogger, requestId: '' };
  return { cache, hosts, svc, ctx, asked };
}

const pool = (name: string, type: PoolType, target: string) =>
  Pool.fromPartial({ definition: PoolDefinition.fromPartial({ name, type, uuid: `u-${name}`, target: { path: target } }), state: PoolState.POOL_STATE_RUNNING, revision: 1n });

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    return asCisternError(err).code;
  }
}

describe('LookupVolume through stable links: when the agent is asked', () => {
  it('never on a host whose active pools have no stable target directory', async () => {
    const { cache, svc, ctx, asked } = setup();
    cache.applyPool('a', pool('images', PoolType.POOL_TYPE_DIR, '/var/lib/images'));
    cache.applyPool('a', pool('whole', PoolType.POOL_TYPE_DISK, '/dev'));
    cache.applyPool('a', pool('vg0', PoolType.POOL_TYPE_LOGICAL, '/dev/vg0'));
    expect(hasStableLinkPool(svc, 'a')).to.equal(false);
    expect(await code(lookupVolume(svc, ctx, { host: 'a', key: '', path: '/dev/sdb1' }))).to.equal('NOT_FOUND');
    expect(asked).to.deep.equal([]);
  });

  it('not for a hit, a path outside /dev or a key; for a /dev miss with a by-path pool', async () => {
    const { cache, svc, ctx, asked } = setup();
    cache.applyPool('a', pool('sdb', PoolType.POOL_TYPE_DISK, '/dev/disk/by-path'));
    const link = '/dev/disk/by-path/pci-0000:00:1f.2-ata-2-part1';
    cache.applyVolume('a', 'sdb', Volume.fromPartial({ name: 'hosts/a/pools/sdb/volumes/sdb1', pool: 'sdb', host: 'a', revision: 2n, definition: { name: 'sdb1', key: link, target: { path: link } } }));
    expect(hasStableLinkPool(svc, 'a')).to.equal(true);
    expect((await lookupVolume(svc, ctx, { host: 'a', key: '', path: link })).name).to.equal('hosts/a/pools/sdb/volumes/sdb1');
    expect(await code(lookupVolume(svc, ctx, { host: 'a', key: '', path: '/var/sdb1' }))).to.equal('NOT_FOUND');
    expect(await code(lookupVolume(svc, ctx, { host: 'a', key: '/dev/sdb1', path: '' }))).to.equal('NOT_FOUND');
    expect(asked, 'no ask yet').to.deep.equal([]);
    await code(lookupVolume(svc, ctx, { host: 'a', key: '', path: '/dev/sdb1' }));
    expect(asked.length, 'a /dev miss asks').to.be.greaterThan(0);
  });
});
