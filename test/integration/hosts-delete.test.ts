// DeleteHost against a real nats-server, coordinators and agents: a host is forgotten only
// once its agent is gone; every coordinator forgets it, also one started or restarted later;
// a retry gets the first answer; force removes the host's pool definitions; an agent that
// starts again with that host id registers it as a new host. cisternctl host-delete on top.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { join } from 'node:path';
import {
  connectClient,
  promiseApi,
  startCoordinator,
  useStack,
  useTempDir,
  waitFor,
  waitForHosts,
  type CoordinatorHandle,
  type StorageApi,
} from '../support/index.js';
import { expectCode, watchEvents as watch } from '../support/grpc-expect.js';
import { DeleteHostRequest, EventKind, PoolType } from '../../libs/proto/cistern/v1/storage.js';

const dirPool = (name: string, path: string) => ({ name, type: PoolType.POOL_TYPE_DIR, uuid: '', target: { path, permissions: undefined }, source: undefined, features: undefined, mountOptions: [] });
const del = (name: string, over: Partial<DeleteHostRequest> = {}) => DeleteHostRequest.fromPartial({ name, ...over });
const hostIds = async (api: StorageApi) => (await api.listHosts({ pageSize: 0, pageToken: '' })).hosts.map((h) => h.hostId);
const poolNames = async (api: StorageApi) => (await api.listPools({ host: '', types: [], pageSize: 0, pageToken: '' })).pools.map((p) => p.name);

/**
 * A coordinator deletes a host only once it has itself seen it gone for three heartbeat
 * intervals (300 ms here) after marking it offline: waited out after ListHosts shows it offline.
 */
const goneLongEnough = () => new Promise((resolve) => setTimeout(resolve, 3 * 300 + 400));

/** Another coordinator on the same NATS, with its own client. */
async function anotherCoordinator(natsUrl: string): Promise<{ handle: CoordinatorHandle; api: StorageApi; stop(): Promise<void> }> {
  const handle = await startCoordinator({ natsUrl });
  const client = connectClient(handle.address);
  return {
    handle,
    api: promiseApi(client),
    stop: async () => {
      client.close();
      await handle.stop();
    },
  };
}

describe('DeleteHost (real nats-server, coordinators, agents a, b, c and d)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a', 'b', 'c', 'd'], agentArgs: ['--heartbeat-ms', '300'] });
  const scratch = useTempDir('cistern-host-delete-it-');

  it('refuses a host whose agent is online, a name that is not a host, and a host no one knows', async () => {
    const api = ctx.stack.api;
    await expectCode(api.deleteHost(del('hosts/a')), status.FAILED_PRECONDITION, /^host 'a' is online \(last seen .*\); stop its agent first/);
    await expectCode(api.deleteHost(del('hosts/a', { force: true })), status.FAILED_PRECONDITION, /host 'a' is online/);
    await expectCode(api.deleteHost(del('hosts/a/pools/x')), status.INVALID_ARGUMENT, /^name: /);
    await expectCode(api.deleteHost(del('')), status.INVALID_ARGUMENT, /^name: is required/);
    await expectCode(api.deleteHost(del('hosts/nope')), status.NOT_FOUND, /host 'nope' is not known/);
    await expectCode(api.deleteHost(del('hosts/a', { requestId: 'undefined' })), status.INVALID_ARGUMENT, /^request_id: /);
    expect((await api.getHost({ name: 'hosts/a' })).online).to.equal(true);
  });

  it('once its agent is gone: deleted, forgotten by every coordinator (running, started and restarted later); a retry gets the first answer; the agent back registers it anew', async () => {
    const api = ctx.stack.api;
    const second = await anotherCoordinator(ctx.stack.natsUrl);
    try {
      await ctx.stack.stopAgent('b');
      await ctx.stack.waitForHosts(['b'], { online: false });
      await waitForHosts(second.api, ['b'], { online: false });
      await goneLongEnough();
      const hostEvents = watch(ctx.stack.client, { hosts: ['b'], kinds: [EventKind.HOST_DELETED] });
      await hostEvents.ready;

      expect(await api.deleteHost(del('hosts/b', { requestId: 'delete-b-1' }))).to.deep.equal({ removedPools: [] });
      expect(await hostIds(api)).to.not.include('b');
      await expectCode(api.getHost({ name: 'hosts/b' }), status.NOT_FOUND, /host 'b' is not known/);
      await waitFor('the second coordinator to forget b', async () => !(await hostIds(second.api)).includes('b'));
      await expectCode(second.api.getHost({ name: 'hosts/b' }), status.NOT_FOUND);
      expect(await hostIds(second.api)).to.include.members(['a', 'c', 'd']);

      // a retry with the same request id gets the first answer, from either coordinator;
      // without one, the host is gone
      expect(await api.deleteHost(del('hosts/b', { requestId: 'delete-b-1' }))).to.deep.equal({ removedPools: [] });
      expect(await second.api.deleteHost(del('hosts/b', { requestId: 'delete-b-1' }))).to.deep.equal({ removedPools: [] });
      await expectCode(api.deleteHost(del('hosts/b', { requestId: 'delete-b-1', force: true })), status.INVALID_ARGUMENT, /^request_id: /);
      await expectCode(api.deleteHost(del('hosts/b')), status.NOT_FOUND, /host 'b' is not known/);

      await waitFor('HOST_DELETED', () => hostEvents.events.length > 0 || hostEvents.failure());
      hostEvents.call.cancel();
      const event = hostEvents.events[0]!;
      expect(event.kind).to.equal(EventKind.HOST_DELETED);
      expect(event.host).to.equal('b');
      expect(event.requestId).to.equal('delete-b-1');
      expect(event.hostState?.hostId).to.equal('b');
      expect(event.hostState?.online).to.equal(false);
      expect(hostEvents.events.filter((e) => e.kind === EventKind.HOST_DELETED), 'the retries published nothing').to.have.length(1);

      // a coordinator started now does not know it (no old record, heartbeat, sync or event brings it back)
      const third = await anotherCoordinator(ctx.stack.natsUrl);
      try {
        expect(await hostIds(third.api)).to.deep.equal(['a', 'c', 'd']);
      } finally {
        await third.stop();
      }
      await ctx.stack.restartCoordinator();
      expect(await hostIds(api)).to.deep.equal(['a', 'c', 'd']);
      await expectCode(api.getHost({ name: 'hosts/b' }), status.NOT_FOUND);

      // its agent started again: a new host, online on every coordinator
      await ctx.stack.addAgent('b');
      expect(await hostIds(api)).to.deep.equal(['a', 'b', 'c', 'd']);
      await waitForHosts(second.api, ['b']);
    } finally {
      await second.stop();
    }
  });

  it('refuses a gone host that still has pools defined unless force, which removes their definitions', async () => {
    const api = ctx.stack.api;
    await api.definePool({ host: 'c', definition: dirPool('c-images', join(scratch.path, 'c-images')), xml: '', requestId: '', validate: false });
    await api.definePool({ host: 'c', definition: dirPool('c-run', join(scratch.path, 'c-run')), xml: '', requestId: '', validate: false });
    await api.startPool({ name: 'hosts/c/pools/c-run', build: true, buildFlags: undefined, requestId: '' });
    await ctx.stack.stopAgent('c');
    await ctx.stack.waitForHosts(['c'], { online: false });
    await goneLongEnough();
    const message = await expectCode(api.deleteHost(del('hosts/c')), status.FAILED_PRECONDITION, /^host 'c' still has 2 persistent pools in the catalog \(c-images, c-run\)/);
    expect(message).to.match(/with force/);
    expect(await poolNames(api)).to.include.members(['hosts/c/pools/c-images', 'hosts/c/pools/c-run']);

    const undefinedPools = watch(ctx.stack.client, { hosts: ['c'], kinds: [EventKind.POOL_UNDEFINED, EventKind.HOST_DELETED] });
    await undefinedPools.ready;
    const removed = ['hosts/c/pools/c-images', 'hosts/c/pools/c-run'];
    expect(await api.deleteHost(del('hosts/c', { force: true, requestId: 'delete-c-1' }))).to.deep.equal({ removedPools: removed });
    // neither the definitions nor the pool last seen running there are listed any more
    const names = await poolNames(api);
    expect(names.filter((n) => n.startsWith('hosts/c/'))).to.deep.equal([]);
    await expectCode(api.getPool({ name: 'hosts/c/pools/c-run' }), status.NOT_FOUND);
    expect(await api.deleteHost(del('hosts/c', { force: true, requestId: 'delete-c-1' }))).to.deep.equal({ removedPools: removed });

    await waitFor('POOL_UNDEFINED twice, then HOST_DELETED', () => undefinedPools.events.length >= 3 || undefinedPools.failure());
    undefinedPools.call.cancel();
    expect(undefinedPools.events.map((e) => `${EventKind[e.kind]} ${e.pool}`)).to.deep.equal(['POOL_UNDEFINED c-images', 'POOL_UNDEFINED c-run', 'HOST_DELETED ']);

    // the catalog itself holds none of them: a coordinator started now lists none
    const fresh = await anotherCoordinator(ctx.stack.natsUrl);
    try {
      expect((await poolNames(fresh.api)).filter((n) => n.startsWith('hosts/c/'))).to.deep.equal([]);
      expect(await hostIds(fresh.api)).to.not.include('c');
    } finally {
      await fresh.stop();
    }
  });

  it('cisternctl host-delete: refused while the agent runs or pools are defined, then --force', async () => {
    const api = ctx.stack.api;
    const refusedOnline = await ctx.stack.cli(['host-delete', 'd']);
    expect(refusedOnline.code).to.equal(1);
    expect(refusedOnline.stderr).to.match(/^error: Failed to delete host d\nerror: host 'd' is online/);
    await api.definePool({ host: 'd', definition: dirPool('d-pool', join(scratch.path, 'd-pool')), xml: '', requestId: '', validate: false });
    await ctx.stack.stopAgent('d');
    await ctx.stack.waitForHosts(['d'], { online: false });
    await goneLongEnough();
    const refusedPools = await ctx.stack.cli(['host-delete', 'd']);
    expect(refusedPools.code).to.equal(1);
    expect(refusedPools.stderr).to.match(/^error: Failed to delete host d\nerror: host 'd' still has 1 persistent pool in the catalog \(d-pool\)/);
    const forced = await ctx.stack.cli(['host-delete', 'd', '--force']);
    expect(forced).to.deep.include({ code: 0, stderr: '', stdout: 'Pool d/d-pool has been undefined\nHost d deleted\n\n' });
    const listed = await ctx.stack.cli(['host-list', '--json']);
    expect((JSON.parse(listed.stdout) as Array<{ name: string }>).map((h) => h.name)).to.not.include('d');
  });
});

describe('DeleteHost right after a coordinator restart (real nats-server, coordinator, agent e)', function () {
  this.timeout(120_000);
  // 2 s heartbeats: a restarted coordinator confirms a host gone only 6 s after it loaded it
  const ctx = useStack({ hosts: ['e'], agentArgs: ['--heartbeat-ms', '2000'] });
  const scratch = useTempDir('cistern-host-delete-restart-it-');

  it('a host recorded offline whose agent runs is not deleted, with force either: its pool definitions stay', async () => {
    const api = ctx.stack.api;
    await api.definePool({ host: 'e', definition: dirPool('e-pool', join(scratch.path, 'e-pool')), xml: '', requestId: '', validate: false });
    const agent = ctx.stack.agents.get('e')!;
    // its agent paused: recorded offline; the coordinator restarted; the agent runs on (resumed
    // below) but has not heartbeated to the new coordinator yet
    process.kill(agent.process.pid, 'SIGSTOP');
    let paused = true;
    try {
      await ctx.stack.waitForHosts(['e'], { online: false });
      await ctx.stack.restartCoordinator();
      await expectCode(
        api.deleteHost(del('hosts/e', { force: true, requestId: 'delete-e-1' })),
        status.FAILED_PRECONDITION,
        /^host 'e' is not known to be gone yet: this coordinator has seen it offline for \d+\.\d s only .*: retry in \d+\.\d s$/,
      );
      process.kill(agent.process.pid, 'SIGCONT');
      paused = false;
    } finally {
      if (paused) process.kill(agent.process.pid, 'SIGCONT');
    }
    await ctx.stack.waitForHosts(['e']);
    expect(await poolNames(api)).to.include('hosts/e/pools/e-pool');
    expect(await hostIds(api)).to.deep.equal(['e']);
  });
});
