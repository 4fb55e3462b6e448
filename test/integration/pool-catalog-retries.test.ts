// DefinePool, UndefinePool and SetPoolAutostart write the catalog and publish their event
// themselves (no agent operation stands for them). Retried with their request id after the
// first call's answer was lost (its coordinator died before storing it), the retry must get the
// first answer and change nothing: not write the entry again, not tell the agent again (a running
// pool then took the retry for a new pending definition), and leave exactly one event of the call
// in the stream, whether or not the dead coordinator got to publish it. Coordinator X runs in this
// process so that the test can stop its call at the point where it would publish (as if it died
// there); B is the stack's coordinator, a real process, with agent a.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { silentLogger } from '../../libs/log/logger.js';
import { subjects } from '../../libs/bus/subjects.js';
import { readEvents, lastEventSequence } from '../../services/coordinator/event-log.js';
import { REQUESTS_BUCKET } from '../../services/coordinator/request-results.js';
import { startCoordinator as startCoordinatorInProcess, type RunningCoordinator } from '../../services/coordinator/coordinator.js';
import { connectClient, promiseApi, useStack, useTempDir, waitFor, type StorageApi } from '../support/index.js';
import { Event, EventKind, PoolState, type StorageServiceClient } from '../../libs/proto/cistern/v1/storage.js';
import { dirPool, grpcCode } from './reliability-helpers.js';

describe('pool catalog calls retried with their request id after the answer was lost (real nats-server, two coordinators)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'], agentArgs: ['--heartbeat-ms', '300'] });
  const scratch = useTempDir('cistern-pool-catalog-retries-it-');
  const dir = (name: string) => join(scratch.path, name);
  let x: RunningCoordinator;
  let clientX: StorageServiceClient;
  let apiX: StorageApi;
  let nc: NatsConnection;

  before(async () => {
    x = await startCoordinatorInProcess({ natsUrl: ctx.stack.natsUrl, listen: '127.0.0.1:0', log: silentLogger });
    clientX = connectClient(`127.0.0.1:${x.port}`);
    apiX = promiseApi(clientX);
    nc = await connect({ servers: ctx.stack.natsUrl });
    await waitFor('coordinator X to know host a online', async () => (await apiX.listHosts({ pageSize: 0, pageToken: '' })).hosts.some((h) => h.hostId === 'a' && h.online));
  });
  after(async () => {
    await nc?.close();
    clientX?.close();
    await x?.stop();
  });

  /** Forgets every stored answer, as a coordinator that died before storing one leaves it. */
  const forgetAnswers = async (): Promise<void> => {
    const kv = await new Kvm(nc).open(REQUESTS_BUCKET);
    for await (const key of await kv.keys()) await kv.purge(key);
  };

  /** Every coordinator event of the pool in the stream, oldest first. */
  const coordinatorEvents = async (pool: string): Promise<Event[]> => {
    const subject = subjects.coordinatorEvents('a', pool);
    const last = await lastEventSequence(nc, subject);
    if (last === 0n) return [];
    const found: Event[] = [];
    const reader = await readEvents(nc, 1n, { filterSubject: subject });
    try {
      for await (const e of reader) {
        found.push(e);
        if (e.sequence >= last) break;
      }
    } finally {
      await reader.close();
    }
    return found;
  };
  const eventsOf = async (pool: string, kind: EventKind, requestId: string) =>
    (await coordinatorEvents(pool)).filter((e) => e.kind === kind && e.requestId === requestId);

  /** X's next publish of `kind` for `pool` never happens: X is as good as dead from there on. */
  const dieBeforePublishing = (pool: string, kind: EventKind) => {
    const publishNow = x.services.publisher.publishNow.bind(x.services.publisher);
    let reached!: () => void;
    const atPublish = new Promise<void>((r) => (reached = r));
    x.services.publisher.publishNow = (event, msgID) => {
      if (event.pool === pool && event.kind === kind) {
        reached();
        return new Promise<bigint>(() => undefined);
      }
      return publishNow(event, msgID);
    };
    return { atPublish, restore: () => void (x.services.publisher.publishNow = publishNow) };
  };

  it('a DefinePool retried after its answer was lost changes nothing: one POOL_DEFINED, and the running pool keeps its run at its stop', async () => {
    const B = ctx.stack.api;
    const request = { host: 'a', definition: dirPool('def-again', dir('def-again')), xml: '', requestId: 'def-again-1', validate: false };
    const first = await B.definePool(request);
    await B.startPool({ name: first.name, build: true, buildFlags: undefined, requestId: '' });
    const running = await B.getPool({ name: first.name });
    expect(running.capacity > 0n, 'the running pool has sizes').to.equal(true);
    await forgetAnswers();
    // the retry, through the other coordinator: the first call's pool
    const again = await apiX.definePool(request);
    expect(again.definition?.uuid).to.equal(first.definition?.uuid);
    expect([again.persistent, again.state]).to.deep.equal([true, PoolState.POOL_STATE_RUNNING]);
    expect((await eventsOf('def-again', EventKind.POOL_DEFINED, 'def-again-1')).length, 'POOL_DEFINED events of the define').to.equal(1);
    // the agent was not told of a new definition: the pool stops keeping its last run's sizes,
    // as a pool that was never redefined does (libvirt keeps them until a define)
    await B.stopPool({ name: first.name, requestId: '' });
    const stopped = await B.getPool({ name: first.name });
    expect([stopped.state, stopped.capacity]).to.deep.equal([PoolState.POOL_STATE_INACTIVE, running.capacity]);
    await B.undefinePool({ name: first.name, requestId: '' });
  });

  it('a DefinePool whose coordinator died after its catalog write, before its event: the retry through another coordinator publishes the one POOL_DEFINED', async () => {
    const B = ctx.stack.api;
    const request = { host: 'a', definition: dirPool('def-unpublished', dir('def-unpublished')), xml: '', requestId: 'def-unpublished-1', validate: false };
    const dead = dieBeforePublishing('def-unpublished', EventKind.POOL_DEFINED);
    try {
      const lost = apiX.definePool(request, { deadlineMs: 60_000 });
      lost.catch(() => undefined);
      await dead.atPublish;
      const again = await B.definePool(request);
      expect(again.persistent).to.equal(true);
      expect((await eventsOf('def-unpublished', EventKind.POOL_DEFINED, 'def-unpublished-1')).length, 'POOL_DEFINED events of the define').to.equal(1);
      // and a second retry (its answer lost too) adds none
      await forgetAnswers();
      expect((await B.definePool(request)).definition?.uuid).to.equal(again.definition?.uuid);
      expect((await eventsOf('def-unpublished', EventKind.POOL_DEFINED, 'def-unpublished-1')).length, 'POOL_DEFINED events after a second retry').to.equal(1);
      await B.undefinePool({ name: again.name, requestId: '' });
    } finally {
      dead.restore();
    }
  });

  it('an UndefinePool whose coordinator died after deleting the entry, before its event: the retry publishes the one POOL_UNDEFINED', async () => {
    const B = ctx.stack.api;
    const defined = await B.definePool({ host: 'a', definition: dirPool('undef-unpublished', dir('undef-unpublished')), xml: '', requestId: '', validate: false });
    const dead = dieBeforePublishing('undef-unpublished', EventKind.POOL_UNDEFINED);
    try {
      await waitFor('X to show the pool', async () => (await grpcCode(apiX.getPool({ name: defined.name }))).code === status.OK);
      const lost = apiX.undefinePool({ name: defined.name, requestId: 'undef-unpublished-1' }, { deadlineMs: 60_000 });
      lost.catch(() => undefined);
      await dead.atPublish;
      expect(await B.undefinePool({ name: defined.name, requestId: 'undef-unpublished-1' })).to.deep.equal({});
      expect((await eventsOf('undef-unpublished', EventKind.POOL_UNDEFINED, 'undef-unpublished-1')).length, 'POOL_UNDEFINED events of the undefine').to.equal(1);
      // a second retry whose answer was lost as well publishes none again
      await forgetAnswers();
      expect(await B.undefinePool({ name: defined.name, requestId: 'undef-unpublished-1' })).to.deep.equal({});
      expect((await eventsOf('undef-unpublished', EventKind.POOL_UNDEFINED, 'undef-unpublished-1')).length, 'POOL_UNDEFINED events after a second retry').to.equal(1);
    } finally {
      dead.restore();
    }
  });

  it('a SetPoolAutostart retried after its answer was lost does not undo a later change, and publishes nothing', async () => {
    const B = ctx.stack.api;
    const defined = await B.definePool({ host: 'a', definition: dirPool('auto-again', dir('auto-again')), xml: '', requestId: '', validate: false });
    await B.startPool({ name: defined.name, build: true, buildFlags: undefined, requestId: '' });
    expect((await B.setPoolAutostart({ name: defined.name, autostart: true, requestId: 'auto-again-1' })).autostart).to.equal(true);
    await forgetAnswers();
    // another client turns it off again before the retry comes
    expect((await B.setPoolAutostart({ name: defined.name, autostart: false, requestId: '' })).autostart).to.equal(false);
    const events = (await coordinatorEvents('auto-again')).length;
    const retried = await apiX.setPoolAutostart({ name: defined.name, autostart: true, requestId: 'auto-again-1' });
    expect(retried.autostart, 'the retry\'s answer').to.equal(false);
    await waitFor('B to apply any catalog change', async () => (await B.getPool({ name: defined.name })).autostart === (await apiX.getPool({ name: defined.name })).autostart);
    expect((await B.getPool({ name: defined.name })).autostart, 'autostart after the retry').to.equal(false);
    expect((await coordinatorEvents('auto-again')).length, 'coordinator events after the retry').to.equal(events);
    await B.stopPool({ name: defined.name, requestId: '' });
    await B.undefinePool({ name: defined.name, requestId: '' });
  });

  it('a DefinePool retried after its answer was lost does not undo a later redefinition', async () => {
    const B = ctx.stack.api;
    const request = { host: 'a', definition: dirPool('def-superseded', dir('def-superseded')), xml: '', requestId: 'def-superseded-1', validate: false };
    const first = await B.definePool(request);
    await forgetAnswers();
    // another client redefines it (same uuid, another directory) before the retry comes
    await B.definePool({ ...request, definition: dirPool('def-superseded', dir('def-superseded-2'), first.definition!.uuid), requestId: '' });
    const events = (await eventsOf('def-superseded', EventKind.POOL_DEFINED, 'def-superseded-1')).length;
    await apiX.definePool(request);
    await waitFor('X to show the pool', async () => (await grpcCode(apiX.getPool({ name: first.name }))).code === status.OK);
    expect((await B.getPool({ name: first.name })).definition?.target?.path, 'the definition after the retry').to.equal(dir('def-superseded-2'));
    expect((await eventsOf('def-superseded', EventKind.POOL_DEFINED, 'def-superseded-1')).length, 'POOL_DEFINED events of the first define').to.equal(events);
    await B.undefinePool({ name: first.name, requestId: '' });
  });

  it('a DefinePool retried after its answer was lost, another pool defined under the name since: the pool it defined, the other one left alone', async () => {
    const B = ctx.stack.api;
    const request = { host: 'a', definition: dirPool('def-replaced', dir('def-replaced')), xml: '', requestId: 'def-replaced-1', validate: false };
    const first = await B.definePool(request);
    await forgetAnswers();
    await B.undefinePool({ name: first.name, requestId: '' });
    const other = await B.definePool({ ...request, definition: dirPool('def-replaced', dir('def-replaced-other')), requestId: '' });
    expect(other.definition?.uuid).to.not.equal(first.definition?.uuid);
    await waitFor('X to show the other pool', async () => (await apiX.getPool({ name: first.name }).catch(() => undefined))?.definition?.uuid === other.definition?.uuid);
    const again = await apiX.definePool(request);
    expect([again.definition?.uuid, again.definition?.target?.path], 'the retry\'s answer').to.deep.equal([first.definition?.uuid, dir('def-replaced')]);
    expect((await B.getPool({ name: first.name })).definition?.uuid, 'the pool defined since').to.equal(other.definition?.uuid);
    await B.undefinePool({ name: first.name, requestId: '' });
  });

  it('an UndefinePool retried after its answer was lost, the pool defined again since: the new definition stays', async () => {
    const B = ctx.stack.api;
    const definition = dirPool('undef-redefined', dir('undef-redefined'));
    const defined = await B.definePool({ host: 'a', definition, xml: '', requestId: '', validate: false });
    expect(await B.undefinePool({ name: defined.name, requestId: 'undef-redefined-1' })).to.deep.equal({});
    await forgetAnswers();
    const again = await B.definePool({ host: 'a', definition, xml: '', requestId: '', validate: false });
    await waitFor('X to show the pool again', async () => (await grpcCode(apiX.getPool({ name: defined.name }))).code === status.OK);
    expect(await apiX.undefinePool({ name: defined.name, requestId: 'undef-redefined-1' })).to.deep.equal({});
    expect((await grpcCode(B.getPool({ name: defined.name }))).code, 'the pool defined since, after the retry').to.equal(status.OK);
    expect((await eventsOf('undef-redefined', EventKind.POOL_UNDEFINED, 'undef-redefined-1')).length, 'POOL_UNDEFINED events of the undefine').to.equal(1);
    await B.undefinePool({ name: again.name, requestId: '' });
  });

  it('an UndefinePool retried after its answer was lost, its event published: no second POOL_UNDEFINED', async () => {
    const B = ctx.stack.api;
    const defined = await B.definePool({ host: 'a', definition: dirPool('undef-again', dir('undef-again')), xml: '', requestId: '', validate: false });
    expect(await B.undefinePool({ name: defined.name, requestId: 'undef-again-1' })).to.deep.equal({});
    await forgetAnswers();
    expect(await apiX.undefinePool({ name: defined.name, requestId: 'undef-again-1' })).to.deep.equal({});
    expect((await eventsOf('undef-again', EventKind.POOL_UNDEFINED, 'undef-again-1')).length, 'POOL_UNDEFINED events of the undefine').to.equal(1);
  });
});
