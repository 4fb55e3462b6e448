// Two coordinators on one NATS, with real processes: one DefinePool of a name sent through
// both at once has exactly one winner, and both show the winner's definition; a clone in flight
// through one is not disturbed when the other is killed and restarted; a clone whose
// coordinator is killed under it is finished by the agent, and its retry with the same request
// id through the other coordinator returns it, once (docs/api.md, Retries).
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { join } from 'node:path';
import { connectClient, promiseApi, startCoordinator, useStack, useTempDir, waitFor, type CoordinatorHandle, type StorageApi } from '../support/index.js';
import { EventKind, type CloneVolumeRequest, type StorageServiceClient } from '../../libs/proto/cistern/v1/storage.js';
import { createVolume, dirPool, fillWithData, grpcCode, startDirPool, watch } from './reliability-helpers.js';

describe('two coordinators on one NATS (real processes)', function () {
  this.timeout(240_000);
  const ctx = useStack({ hosts: ['a'], agentArgs: ['--heartbeat-ms', '300'] });
  const scratch = useTempDir('cistern-failover-it-');
  let second: CoordinatorHandle;
  let client2: StorageServiceClient;
  let api2: StorageApi;
  before(async () => {
    second = await startCoordinator({ natsUrl: ctx.stack.natsUrl });
    client2 = connectClient(second.address);
    api2 = promiseApi(client2);
  });
  after(async () => {
    client2?.close();
    await second?.stop();
  });

  it('one DefinePool of a name through both at once: exactly one defines it, the other is ALREADY_EXISTS, both show the winner', async () => {
    for (let round = 0; round < 6; round++) {
      const name = `same-${round}`;
      const define = (api: StorageApi, which: string) =>
        grpcCode(api.definePool({ host: 'a', definition: dirPool(name, join(scratch.path, `${which}-${round}`)), xml: '', requestId: '', validate: false }));
      const [one, two] = await Promise.all([define(ctx.stack.api, 'one'), define(api2, 'two')]);
      const outcome = `round ${round}: ${status[one.code]} ${one.message} | ${status[two.code]} ${two.message}`;
      expect([one.code, two.code].sort(), outcome).to.deep.equal([status.OK, status.ALREADY_EXISTS].sort());
      expect(one.message + two.message, outcome).to.match(new RegExp(`pool '${name}' already exists on host 'a' with uuid`));
      const winner = join(scratch.path, `${one.code === status.OK ? 'one' : 'two'}-${round}`);
      const seen = async (api: StorageApi) => (await api.getPool({ name: `hosts/a/pools/${name}` })).definition?.target?.path;
      await waitFor('both coordinators to show the winner', async () => (await seen(ctx.stack.api)) === winner && (await seen(api2)) === winner);
    }
  });

  it('a clone through one runs on while the other is killed and restarted; one killed under its clone: the retry through the other returns the clone, once', async () => {
    const pool = 'hosts/a/pools/two';
    const path = join(scratch.path, 'two');
    await startDirPool(ctx.stack, 'a', 'two', path);
    await createVolume(ctx.stack, pool, 'src.img', String(1024 ** 3), { allocation: '0' });
    fillWithData(join(path, 'src.img'), 768);
    const clone = (name: string): CloneVolumeRequest => ({
      parent: pool,
      source: `${pool}/volumes/src.img`,
      definition: undefined,
      xml: `<volume><name>${name}</name><capacity>0</capacity></volume>`,
      preallocMetadata: false,
      reflink: false,
      requestId: `failover-${name}`,
      validate: false,
    });
    const w = watch(client2, { pools: [pool], kinds: [EventKind.OPERATION_PROGRESS] });
    await w.ready;
    const running = (name: string) => waitFor(`the clone to ${name} to run`, () => w.events.some((e) => e.requestId === `failover-${name}`));

    const first = grpcCode(api2.cloneVolume(clone('c1.img'), { deadlineMs: 120_000 }));
    await running('c1.img');
    await ctx.stack.restartCoordinator({ kill: true });
    expect(await first).to.deep.equal({ code: status.OK, message: '' });

    const orphan = grpcCode(api2.cloneVolume(clone('c2.img'), { deadlineMs: 120_000 }));
    await running('c2.img');
    w.cancel();
    await second.kill();
    expect(status[(await orphan).code]).to.equal('UNAVAILABLE');
    // the agent goes on; the retry through the other coordinator gets its answer, not a second clone (ALREADY_EXISTS)
    const retried = await ctx.stack.api.cloneVolume(clone('c2.img'), { deadlineMs: 120_000 });
    expect(retried.definition?.name).to.equal('c2.img');
    const again = await ctx.stack.api.cloneVolume(clone('c2.img'), { deadlineMs: 120_000 });
    expect(again.definition?.key).to.equal(retried.definition?.key);
    const names = (await ctx.stack.api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' })).volumes.map((v) => v.definition?.name);
    expect(names.sort()).to.deep.equal(['c1.img', 'c2.img', 'src.img']);
    second = await startCoordinator({ natsUrl: ctx.stack.natsUrl, listen: second.address });
  });
});
