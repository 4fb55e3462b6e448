// Read your writes across coordinators (real nats-server, two coordinators, agent a): a client
// whose calls go to either coordinator (a load balancer in front of them) uses through one
// what it just made through the other. Without catching up before a view-dependent answer
// (services/coordinator/catch-up.ts) the second coordinator, still reading the change, said
// NOT_FOUND for a volume just created or a pool just defined, a few times in a hundred under
// load.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { join } from 'node:path';
import { connectClient, promiseApi, registerCleanup, startCoordinator, useStack, useTempDir } from '../support/index.js';
import { createVolume, dirPool, grpcCode, startDirPool } from './reliability-helpers.js';

describe('read your writes across two coordinators (real processes)', function () {
  this.timeout(180_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-ryw-it-');

  it('what one coordinator made is there at once through the other: a volume to read and delete, a pool to set autostart on', async () => {
    const second = await startCoordinator({ natsUrl: ctx.stack.natsUrl });
    const client2 = connectClient(second.address);
    const done = registerCleanup('second coordinator', async () => {
      client2.close();
      await second.stop();
    });
    const { api } = ctx.stack;
    const api2 = promiseApi(client2);
    await startDirPool(ctx.stack, 'a', 'ryw', join(scratch.path, 'ryw'));
    await startDirPool(ctx.stack, 'a', 'load', join(scratch.path, 'load'));
    // other work keeps both coordinators reading events and answering calls meanwhile
    let stop = false;
    const load = Promise.all([
      (async () => {
        for (let i = 0; !stop; i++) await grpcCode(createVolume(ctx.stack, 'hosts/a/pools/load', `l${i}.img`, '4096'));
      })(),
      (async () => {
        while (!stop) await grpcCode(api2.listPools({ host: '', types: [], pageSize: 0, pageToken: '' }));
      })(),
    ]);
    const wrong: string[] = [];
    try {
      for (let i = 0; i < 100; i++) {
        await createVolume(ctx.stack, 'hosts/a/pools/ryw', `v${i}.img`, '4096');
        const got = await grpcCode(api2.getVolume({ name: `hosts/a/pools/ryw/volumes/v${i}.img`, refresh: false }));
        if (got.code !== status.OK) wrong.push(`GetVolume v${i}: ${got.message}`);
        const deleted = await grpcCode(api2.deleteVolume({ name: `hosts/a/pools/ryw/volumes/v${i}.img`, requestId: '' }));
        if (deleted.code !== status.OK) wrong.push(`DeleteVolume v${i}: ${deleted.message}`);
        await api.definePool({ host: 'a', definition: dirPool(`d${i}`, join(scratch.path, `d${i}`)), xml: '', requestId: '', validate: false });
        const autostart = await grpcCode(api2.setPoolAutostart({ name: `hosts/a/pools/d${i}`, autostart: true, requestId: '' }));
        if (autostart.code !== status.OK) wrong.push(`SetPoolAutostart d${i}: ${autostart.message}`);
      }
    } finally {
      stop = true;
      await load;
      await done();
    }
    expect(wrong).to.deep.equal([]);
  });
});
