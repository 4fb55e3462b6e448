// The first seconds of a new coordinator (found by hand: `npm start` again, then pool-list):
// a host recorded online by the coordinator before is online at once, but until its full
// sync arrives the new cache holds none of its running pools. Reads must not turn that into
// 'inactive': their state is unknown and stale (cisternctl: 'unknown'), and work that needs an active
// pool is UNAVAILABLE (try again), not FAILED_PRECONDITION 'not active'.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { join } from 'node:path';
import { useStack, useTempDir } from '../support/index.js';
import { PoolState } from '../../libs/proto/cistern/v1/storage.js';
import { createVolume, dirPool, expectCode, startDirPool } from './reliability-helpers.js';

describe('a coordinator that has not heard from a host yet (real processes)', function () {
  this.timeout(120_000);
  // serve at once: the window is the whole time the host's agent stays away
  const ctx = useStack({ hosts: ['a'], coordinatorArgs: ['--sync-wait-ms', '0'] });
  const scratch = useTempDir('cistern-start-window-it-');

  it("shows the host's running pools as stale, not inactive, and refuses volume work as UNAVAILABLE, until the host's sync", async () => {
    const { stack } = ctx;
    await stack.api.definePool({ host: 'a', definition: dirPool('sw', join(scratch.path, 'sw')), xml: '', requestId: '', validate: false });
    await stack.api.startPool({ name: 'hosts/a/pools/sw', build: true, buildFlags: undefined, requestId: '' });
    await startDirPool(stack, 'a', 'tw', join(scratch.path, 'tw'));
    await createVolume(stack, 'hosts/a/pools/sw', 'kept.img', '4096');
    // the agent dies without saying goodbye (its host stays recorded online), then the coordinator restarts
    await stack.stopAgent('a', { kill: true });
    await stack.restartCoordinator();

    const pool = await stack.api.getPool({ name: 'hosts/a/pools/sw' });
    expect(pool.stale, 'GetPool stale').to.equal(true);
    const listed = (await stack.api.listPools({ host: '', types: [], pageSize: 0, pageToken: '' })).pools.find((p) => p.definition?.name === 'sw');
    expect(listed?.stale, 'ListPools stale').to.equal(true);
    await expectCode(stack.api.listVolumes({ parent: 'hosts/a/pools/sw', pageSize: 0, pageToken: '' }), status.UNAVAILABLE, /state of storage pool 'sw' is not known: host 'a'/);
    // a transient pool is known through the host's sync only: not NOT_FOUND either
    await expectCode(stack.api.getPool({ name: 'hosts/a/pools/tw' }), status.UNAVAILABLE, /storage pool 'tw' is not known on host 'a'/);
    expect(pool.state, 'not inactive: not known').to.equal(PoolState.POOL_STATE_UNSPECIFIED);
    for (const args of [['pool-list', '--all'], ['pool-list', '--all', '--details'], ['pool-info', 'sw']]) {
      const out = await stack.cli(args);
      expect(out.stdout, `${args.join(' ')}: ${out.stdout}${out.stderr}`).to.match(/(^ sw +|^State: +)unknown( |$)/m);
    }

    // the agent comes back and restores its running pool: the state is current again
    await stack.restartAgent('a');
    await stack.waitForHosts(['a']);
    const back = await stack.api.getPool({ name: 'hosts/a/pools/sw' });
    expect(back.stale).to.equal(false);
    expect(back.state).to.equal(PoolState.POOL_STATE_RUNNING);
    const names = (await stack.api.listVolumes({ parent: 'hosts/a/pools/sw', pageSize: 0, pageToken: '' })).volumes.map((v) => v.definition?.name);
    expect(names).to.deep.equal(['kept.img']);
    expect((await stack.api.getPool({ name: 'hosts/a/pools/tw' })).state).to.equal(PoolState.POOL_STATE_RUNNING);
  });
});
