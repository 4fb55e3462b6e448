// One uuid, one pool of a host, whether defined or transient (libvirt's
// virStoragePoolObjIsDuplicate looks a new pool up by uuid first, across defined and running
// pools): a CreatePool or DefinePool whose uuid another pool of the host has is
// ALREADY_EXISTS naming that pool, and changes nothing. Two pools with one uuid make every
// lookup by uuid ambiguous (cisternctl pool-name UUID, any command given a uuid).
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { useStack, useTempDir } from '../support/index.js';
import { dirPool } from './reliability-helpers.js';
import { expectCode } from '../support/grpc-expect.js';
import { PoolState } from '../../libs/proto/cistern/v1/storage.js';


describe('pool uuids are unique per host across defined and transient pools (real nats-server, agent a)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'], agentArgs: ['--heartbeat-ms', '300'] });
  const scratch = useTempDir('cistern-pool-uuids-it-');
  const dir = (name: string) => join(scratch.path, name);

  it('CreatePool with the uuid of a defined pool of another name: ALREADY_EXISTS, nothing built or started', async () => {
    const api = ctx.stack.api;
    const defined = await api.definePool({ host: 'a', definition: dirPool('kept', dir('kept')), xml: '', requestId: '', validate: false });
    const uuid = defined.definition!.uuid;
    await expectCode(
      api.createPool({ host: 'a', definition: dirPool('passing', dir('passing'), uuid), xml: '', build: true, buildFlags: undefined, requestId: '' }),
      status.ALREADY_EXISTS,
      new RegExp(`'kept'.*${uuid}`),
    );
    await expectCode(api.getPool({ name: 'hosts/a/pools/passing' }), status.NOT_FOUND);
    expect(existsSync(dir('passing'))).to.equal(false);
    await api.undefinePool({ name: defined.name, requestId: '' });
  });

  it('DefinePool with the uuid of a running transient pool of another name: ALREADY_EXISTS, and the transient pool can still be defined as itself', async () => {
    const api = ctx.stack.api;
    const transient = await api.createPool({ host: 'a', definition: dirPool('running', dir('running')), xml: '', build: true, buildFlags: undefined, requestId: '' });
    const uuid = transient.definition!.uuid;
    await expectCode(
      api.definePool({ host: 'a', definition: dirPool('other', dir('other'), uuid), xml: '', requestId: '', validate: false }),
      status.ALREADY_EXISTS,
      new RegExp(`'running'.*${uuid}`),
    );
    await expectCode(api.getPool({ name: 'hosts/a/pools/other' }), status.NOT_FOUND);
    // libvirt: defining the running transient pool's own XML makes it persistent
    const persistent = await api.definePool({ host: 'a', definition: dirPool('running', dir('running'), uuid), xml: '', requestId: '', validate: false });
    expect([persistent.state, persistent.persistent]).to.deep.equal([PoolState.POOL_STATE_RUNNING, true]);
    await api.stopPool({ name: transient.name, requestId: '' });
    await api.undefinePool({ name: transient.name, requestId: '' });
  });
});
