// CreatePool of a defined pool, as libvirt's storagePoolCreateXML does it
// (virStoragePoolObjListAdd with ADD_LIVE): the definition of a defined, inactive pool with
// its uuid starts that pool with the definition given, the pool stays persistent (its
// autostart too), the stored definition is the pending one while it runs and is back once it
// stops. Under the same name with another uuid it is refused (ALREADY_EXISTS).
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { useStack, useTempDir } from '../support/index.js';
import { dirPool } from './reliability-helpers.js';
import { expectCode } from '../support/grpc-expect.js';
import { PoolState } from '../../libs/proto/cistern/v1/storage.js';


describe('CreatePool of a defined pool (real nats-server, agent a)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'], agentArgs: ['--heartbeat-ms', '300'] });
  const scratch = useTempDir('cistern-create-defined-it-');
  const dir = (name: string) => join(scratch.path, name);

  it('with its uuid: starts it with the definition given; persistent and autostart stay, and the stored definition is back once it stops', async () => {
    const api = ctx.stack.api;
    const defined = await api.definePool({ host: 'a', definition: dirPool('both', dir('stored')), xml: '', requestId: '', validate: false });
    const uuid = defined.definition!.uuid;
    await api.setPoolAutostart({ name: defined.name, autostart: true, requestId: '' });

    const created = await api.createPool({ host: 'a', definition: dirPool('both', dir('live'), uuid), xml: '', build: true, buildFlags: undefined, requestId: '' });
    expect([created.state, created.persistent, created.autostart]).to.deep.equal([PoolState.POOL_STATE_RUNNING, true, true]);
    expect(created.definition?.target?.path).to.equal(dir('live'));
    expect(existsSync(dir('live'))).to.equal(true);
    // GetPoolXML --inactive: the stored definition, pending for the next start
    expect((await api.getPoolXml({ name: defined.name, inactive: true })).xml).to.contain(`<path>${dir('stored')}</path>`);
    expect((await api.getPoolXml({ name: defined.name, inactive: false })).xml).to.contain(`<path>${dir('live')}</path>`);

    const stopped = await api.stopPool({ name: defined.name, requestId: '' });
    expect([stopped.state, stopped.persistent, stopped.autostart]).to.deep.equal([PoolState.POOL_STATE_INACTIVE, true, true]);
    const after = await api.getPool({ name: defined.name });
    expect([after.state, after.persistent, after.autostart, after.definition?.target?.path]).to.deep.equal([PoolState.POOL_STATE_INACTIVE, true, true, dir('stored')]);
    await api.undefinePool({ name: defined.name, requestId: '' });
  });

  it('with another uuid (or none given): ALREADY_EXISTS naming the uuid it has, nothing built', async () => {
    const api = ctx.stack.api;
    const defined = await api.definePool({ host: 'a', definition: dirPool('taken', dir('taken')), xml: '', requestId: '', validate: false });
    const uuid = defined.definition!.uuid;
    await expectCode(
      api.createPool({ host: 'a', definition: dirPool('taken', dir('taken-other')), xml: '', build: true, buildFlags: undefined, requestId: '' }),
      status.ALREADY_EXISTS,
      new RegExp(`'taken'.*${uuid}`),
    );
    expect(existsSync(dir('taken-other'))).to.equal(false);
    expect((await api.getPool({ name: defined.name })).state).to.equal(PoolState.POOL_STATE_INACTIVE);
    await api.undefinePool({ name: defined.name, requestId: '' });
  });
});
