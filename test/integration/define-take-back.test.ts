// DefinePool of a pool that may not stand beside one written to the catalog just before it (the
// same directory): the define through coordinator X passed its check against X's cache before
// the other define (through coordinator B) was written. The define used to be written anyway and
// taken back once X's catalog watch showed the earlier pool: in between, B saw the entry, and a
// StartPool through B found it in the agent's pool turn and started the pool, whose definition
// was then deleted under it, the agent never told (a running pool with no definition, beside the
// defined pool over its directory). X runs in this process, so that the test can step in at two
// points of its define: after its check (its read of the pool's entry) and after its write.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../libs/log/logger.js';
import { startCoordinator as startCoordinatorInProcess, type RunningCoordinator } from '../../services/coordinator/coordinator.js';
import { connectClient, promiseApi, useStack, useTempDir, waitFor, type StorageApi } from '../support/index.js';
import type { StorageServiceClient } from '../../libs/proto/cistern/v1/storage.js';
import { dirPool, grpcCode } from './reliability-helpers.js';

describe('DefinePool through two coordinators: a define refused for a pool written just before it is never seen by the other', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-define-take-back-it-');
  let x: RunningCoordinator;
  let clientX: StorageServiceClient;
  let apiX: StorageApi;
  before(async () => {
    x = await startCoordinatorInProcess({ natsUrl: ctx.stack.natsUrl, listen: '127.0.0.1:0', log: silentLogger });
    clientX = connectClient(`127.0.0.1:${x.port}`);
    apiX = promiseApi(clientX);
    await waitFor('coordinator X to know host a online', async () => (await apiX.listHosts({ pageSize: 0, pageToken: '' })).hosts.some((h) => h.hostId === 'a' && h.online));
  });
  after(async () => {
    clientX?.close();
    await x?.stop();
  });

  it('the define written second is refused without ever being a pool another coordinator can start', async () => {
    const dir = join(scratch.path, 'shared');
    mkdirSync(dir); // built: a start needs nothing more
    const B = ctx.stack.api;
    const svc = x.services;
    const earlier = { code: -1 as number, message: '' };
    const start = { code: -1 as number, message: '', tried: false };
    // 1. after X's check passed (it reads the pool's entry just before writing), B defines
    //    'first' over the same directory: written to the catalog before X's write
    const get = svc.catalog.get.bind(svc.catalog);
    let defined = false;
    svc.catalog.get = async (host, pool) => {
      if (pool === 'second' && !defined) {
        defined = true;
        Object.assign(earlier, await grpcCode(B.definePool({ host: 'a', definition: dirPool('first', dir), xml: '', requestId: '', validate: false })));
      }
      return get(host, pool);
    };
    // 2. whenever X waits for its catalog watch: if 'second' is in the catalog by then, B (which
    //    follows the catalog too) is asked to start it, as any client of B may
    const waitForWatch = svc.catalogWatermark!.waitFor.bind(svc.catalogWatermark);
    svc.catalogWatermark!.waitFor = async (at, timeoutMs) => {
      if (defined && !start.tried && (await svc.catalog.list('a')).some((e) => e.pool === 'second')) {
        start.tried = true;
        await waitFor('B to show the pool second', async () => (await grpcCode(B.getPool({ name: 'hosts/a/pools/second' }))).code === status.OK);
        Object.assign(start, await grpcCode(B.startPool({ name: 'hosts/a/pools/second', requestId: '', build: false, buildFlags: undefined })));
      }
      return waitForWatch(at, timeoutMs);
    };
    try {
      const second = await grpcCode(apiX.definePool({ host: 'a', definition: dirPool('second', dir), xml: '', requestId: '', validate: false }));
      expect(earlier, 'the define through B').to.deep.equal({ code: status.OK, message: '' });
      expect(status[second.code], second.message).to.equal('ALREADY_EXISTS');
      expect(second.message).to.match(/storage source conflict with pool 'first' on host 'a'/);
    } finally {
      svc.catalog.get = get;
      svc.catalogWatermark!.waitFor = waitForWatch;
    }
    // nothing of 'second' is left anywhere: not running on the host, not in the catalog
    expect(start.tried && start.code === status.OK, `a StartPool through B of the refused pool: ${status[start.code]} ${start.message}`).to.equal(false);
    await waitFor('both coordinators to forget second', async () => {
      const [b, xs] = await Promise.all([grpcCode(B.getPool({ name: 'hosts/a/pools/second' })), grpcCode(apiX.getPool({ name: 'hosts/a/pools/second' }))]);
      return b.code !== status.OK && xs.code !== status.OK;
    }).catch(async (err: unknown) => {
      const seen = await B.getPool({ name: 'hosts/a/pools/second' });
      throw new Error(`${(err as Error).message}: B shows pool second active=${seen.state} persistent=${seen.persistent}`);
    });
    expect((await B.getPool({ name: 'hosts/a/pools/first' })).definition?.target?.path).to.equal(dir);
  });
});
