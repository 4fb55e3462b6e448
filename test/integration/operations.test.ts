// Long operations, cancellation, idempotency and concurrency (issue 6) against real
// processes: progress events, a cancelled or timed-out clone stops the agent's work and
// leaves nothing, retries with a request id return the first result, one of 100
// concurrent creates wins, conflicting volume work is ABORTED, a pool with volume work in
// progress refuses to stop, and two coordinators on one NATS never lose a catalog update.
import { expect } from 'chai';
import { status, type ServiceError } from '@grpc/grpc-js';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connectClient, promiseApi, startCoordinator, useStack, useTempDir, waitFor } from '../support/index.js';
import { EventKind, WipeAlgorithm, type CloneVolumeRequest, type Event, type UploadVolumeResponse, type Volume } from '../../libs/proto/cistern/v1/storage.js';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { REQUESTS_BUCKET } from '../../services/coordinator/request-results.js';
import { createVolume, dirPool, expectCode, fillWithData, grpcCode, startDirPool, watch } from './reliability-helpers.js';

const POOL = 'hosts/a/pools/long';
const cloneRequest = (name: string, requestId = ''): CloneVolumeRequest => ({
  parent: POOL,
  source: `${POOL}/volumes/src.img`,
  definition: undefined,
  // sparse: a long copy of the source's data without allocating 1 GiB per clone (without
  // <allocation> a clone from XML is allocated in full, as libvirt's)
  xml: `<volume><name>${name}</name><capacity>0</capacity><allocation>0</allocation></volume>`,
  preallocMetadata: false,
  reflink: false,
  requestId, validate: false,
});

describe('long operations, idempotency and concurrency (real processes)', function () {
  this.timeout(180_000);
  // 100 concurrent calls from one client: above the coordinator's default per-client limit
  const ctx = useStack({ hosts: ['a'], agentArgs: ['--heartbeat-ms', '300'], coordinatorArgs: ['--max-calls-per-client', '1000'] });
  const scratch = useTempDir('cistern-ops-it-');
  let poolPath: string;

  before(async function () {
    this.timeout(120_000);
    poolPath = join(scratch.path, 'long');
    await startDirPool(ctx.stack, 'a', 'long', poolPath);
    await createVolume(ctx.stack, POOL, 'src.img', String(1024 * 1024 * 1024), { allocation: '0' });
    fillWithData(join(poolPath, 'src.img'), 768); // real data: a clone copies it block by block
    await ctx.stack.api.refreshPool({ name: POOL, requestId: '' });
  });

  it('reports clone and wipe progress as events carrying the request id, ending at done = total', async () => {
    const w = watch(ctx.stack.client, { pools: [POOL], kinds: [EventKind.OPERATION_PROGRESS] });
    await w.ready;
    const copy = await ctx.stack.api.cloneVolume(cloneRequest('copy.img', 'progress-clone-1'), { deadlineMs: 120_000 });
    expect(copy.definition?.capacity).to.equal(1024n * 1024n * 1024n);
    await ctx.stack.api.wipeVolume({ name: `${POOL}/volumes/copy.img`, algorithm: WipeAlgorithm.WIPE_ALGORITHM_ZERO, requestId: 'progress-wipe-1' }, { deadlineMs: 120_000 });
    await waitFor('the final progress of both', () =>
      ['progress-clone-1', 'progress-wipe-1'].every((id) => w.events.some((e) => e.requestId === id && e.progress!.done === e.progress!.total)),
    );
    w.cancel();
    for (const [id, op] of [['progress-clone-1', 'clone'], ['progress-wipe-1', 'wipe']] as const) {
      const mine = w.events.filter((e) => e.requestId === id);
      expect(mine.length, id).to.be.greaterThan(1);
      expect(mine.every((e) => e.progress?.operation === op && e.volume === 'copy.img' && e.host === 'a')).to.equal(true);
      const done = mine.map((e) => e.progress!.done);
      expect(done.every((d, i) => i === 0 || d >= done[i - 1]!), `${id} progress never goes back`).to.equal(true);
      expect(mine.at(-1)!.progress!.done).to.equal(mine.at(-1)!.progress!.total);
    }
    await ctx.stack.api.deleteVolume({ name: `${POOL}/volumes/copy.img`, requestId: '' });
  });

  it('a multi-pass (nnsa) wipe and an allocating resize of a sparse volume report progress too, rising to done = total', async () => {
    const w = watch(ctx.stack.client, { pools: [POOL], kinds: [EventKind.OPERATION_PROGRESS] });
    await w.ready;
    await createVolume(ctx.stack, POOL, 'passes.img', String(64 * 1024 * 1024), { allocation: '0' });
    await ctx.stack.api.wipeVolume({ name: `${POOL}/volumes/passes.img`, algorithm: WipeAlgorithm.WIPE_ALGORITHM_NNSA, requestId: 'progress-nnsa-1' }, { deadlineMs: 120_000 });
    // a sparse volume is allocated whole by one fallocate (libvirt's virFileAllocate)
    await createVolume(ctx.stack, POOL, 'thin.img', String(64 * 1024 * 1024), { allocation: '0' });
    await ctx.stack.api.resizeVolume(
      { name: `${POOL}/volumes/thin.img`, capacity: 128n * 1024n * 1024n, allocate: true, delta: false, shrink: false, requestId: 'progress-resize-1' },
      { deadlineMs: 120_000 },
    );
    for (const v of ['passes.img', 'thin.img']) await ctx.stack.api.deleteVolume({ name: `${POOL}/volumes/${v}`, requestId: '' });
    await waitFor('the final progress of both', () =>
      ['progress-nnsa-1', 'progress-resize-1'].every((id) => w.events.some((e) => e.requestId === id && e.progress!.done === e.progress!.total)),
    );
    w.cancel();
    for (const [id, op] of [['progress-nnsa-1', 'wipe'], ['progress-resize-1', 'resize']] as const) {
      const mine = w.events.filter((e) => e.requestId === id);
      expect(mine.every((e) => e.progress?.operation === op && e.volume === (op === 'wipe' ? 'passes.img' : 'thin.img')), id).to.equal(true);
      const done = mine.map((e) => e.progress!.done);
      expect(done[0], `${id} starts at 0`).to.equal(0n);
      expect(done.every((d, i) => i === 0 || d >= done[i - 1]!), `${id} progress never goes back`).to.equal(true);
      expect(mine.at(-1)!.progress!.done).to.equal(mine.at(-1)!.progress!.total);
    }
  });

  it('while a clone runs: stopping the pool is FAILED_PRECONDITION naming it, conflicting work is ABORTED, the name is taken; cancelling the call stops it and leaves nothing', async () => {
    const { api, client } = ctx.stack;
    const w = watch(client, { pools: [POOL], kinds: [EventKind.OPERATION_PROGRESS, EventKind.VOLUME_CREATED] });
    await w.ready;
    let outcome: ServiceError | null | undefined;
    const call = client.cloneVolume(cloneRequest('c1.img', 'cancel-clone-1'), (err) => (outcome = err));
    await waitFor('the clone to report progress', () => w.events.some((e) => e.requestId === 'cancel-clone-1'));

    await expectCode(api.stopPool({ name: POOL, requestId: '' }), status.FAILED_PRECONDITION, /clone of volume 'c1.img'/);
    await expectCode(
      api.resizeVolume({ name: `${POOL}/volumes/src.img`, capacity: 2n * 1024n ** 3n, allocate: false, delta: false, shrink: false, requestId: '' }),
      status.ABORTED,
      /src.img' is busy: clone to 'c1.img' in progress/,
    );
    await expectCode(createVolume(ctx.stack, POOL, 'c1.img', '4096'), status.ALREADY_EXISTS, /c1.img/);

    call.cancel();
    await waitFor('the call to end', () => outcome !== undefined);
    expect(outcome?.code).to.equal(status.CANCELLED);
    // the agent stops and removes the partial file; the name is free again
    await waitFor('the partial clone to be removed', () => !existsSync(join(poolPath, 'c1.img')));
    await waitFor('the volume name to be free', async () => (await grpcCode(createVolume(ctx.stack, POOL, 'c1.img', '4096'))).code === status.OK);
    // the create's event reaches the watcher after the create's reply: wait for it before looking
    const createdC1 = (e: (typeof w.events)[number]): boolean => e.kind === EventKind.VOLUME_CREATED && e.volume === 'c1.img';
    await waitFor('the create event', () => w.events.some(createdC1));
    w.cancel();
    const created = w.events.filter(createdC1);
    expect(created.map((e) => e.requestId)).to.deep.equal(['']); // only the create made afterwards
    expect(statSync(join(poolPath, 'c1.img')).size).to.equal(4096);
    await api.deleteVolume({ name: `${POOL}/volumes/c1.img`, requestId: '' });
    expect((await api.getPool({ name: POOL })).state).to.equal(3 /* RUNNING */);
  });

  it('while a clone runs, work on its new name is ABORTED "still being allocated" (libvirt refuses it so), not NOT_FOUND', async () => {
    const { api, client } = ctx.stack;
    const w = watch(client, { pools: [POOL], kinds: [EventKind.OPERATION_PROGRESS] });
    await w.ready;
    let outcome: ServiceError | null | undefined;
    const call = client.cloneVolume(cloneRequest('c2.img', 'allocating-clone-1'), (err) => (outcome = err));
    await waitFor('the clone to report progress', () => w.events.some((e) => e.requestId === 'allocating-clone-1'));
    w.cancel();

    const name = `${POOL}/volumes/c2.img`;
    const allocating = /storage volume 'c2.img' is still being allocated \(clone in progress\)/;
    const download = new Promise<void>((resolve, reject) => {
      const stream = client.downloadVolume({ name, offset: 0n, length: 0n });
      stream.on('data', () => undefined);
      stream.on('error', reject);
      stream.on('end', resolve);
    });
    const upload = new Promise<void>((resolve, reject) => {
      const stream = client.uploadVolume((err) => (err ? reject(err) : resolve()));
      stream.write({ part: { $case: 'header', value: { name, offset: 0n, length: 0n, sparse: false, requestId: '' } } });
      stream.write({ part: { $case: 'data', value: Buffer.alloc(4096, 1) } });
      stream.end();
    });
    await expectCode(api.deleteVolume({ name, requestId: '' }), status.ABORTED, allocating);
    await expectCode(api.deleteVolume({ name, requestId: 'allocating-delete-1' }), status.ABORTED, allocating);
    await expectCode(api.wipeVolume({ name, algorithm: WipeAlgorithm.WIPE_ALGORITHM_ZERO, requestId: '' }), status.ABORTED, allocating);
    await expectCode(api.resizeVolume({ name, capacity: 2n * 1024n ** 3n, allocate: false, delta: false, shrink: false, requestId: '' }), status.ABORTED, allocating);
    await expectCode(api.cloneVolume({ ...cloneRequest('c2-copy.img'), source: name }), status.ABORTED, allocating);
    await expectCode(download, status.ABORTED, allocating);
    await expectCode(upload, status.ABORTED, allocating);
    expect(existsSync(join(poolPath, 'c2-copy.img'))).to.equal(false);

    call.cancel();
    await waitFor('the call to end', () => outcome !== undefined);
    expect(outcome?.code).to.equal(status.CANCELLED);
    await waitFor('the partial clone to be removed', () => !existsSync(join(poolPath, 'c2.img')));
    // once the name is free, a volume that does not exist is NOT_FOUND again
    await waitFor('the name to be free', async () => (await grpcCode(api.deleteVolume({ name, requestId: '' }))).code === status.NOT_FOUND);
    await expectCode(api.wipeVolume({ name, algorithm: WipeAlgorithm.WIPE_ALGORITHM_ZERO, requestId: '' }), status.NOT_FOUND, /storage volume 'c2.img' not found/);
  });

  it('a deadline that passes during a clone stops it the same way', async function () {
    const r = await grpcCode(ctx.stack.api.cloneVolume(cloneRequest('c3.img', 'deadline-clone-1'), { deadlineMs: 300 }));
    expect(status[r.code]).to.be.oneOf(['DEADLINE_EXCEEDED', 'OK']);
    if (r.code === status.OK) {
      await ctx.stack.api.deleteVolume({ name: `${POOL}/volumes/c3.img`, requestId: '' });
      // skip reason: this machine copied 768 MiB faster than the deadline, so there was
      // nothing to stop on this run (shown in the test's title: mocha has no skip message)
      this.test!.title += ' [skipped: the clone finished inside its 300 ms deadline, nothing to stop]';
      this.skip();
    }
    await waitFor('the partial clone to be removed', () => !existsSync(join(poolPath, 'c3.img')));
    await expectCode(ctx.stack.api.getVolume({ name: `${POOL}/volumes/c3.img`, refresh: false }), status.NOT_FOUND);
    await waitFor('the volume name to be free', async () => (await grpcCode(createVolume(ctx.stack, POOL, 'c3.img', '4096'))).code === status.OK);
    await ctx.stack.api.deleteVolume({ name: `${POOL}/volumes/c3.img`, requestId: '' });
  });

  it('a retry with the same request id returns the first result without doing the work twice, also on another coordinator', async () => {
    const { api, client } = ctx.stack;
    const w = watch(client, { pools: [POOL], kinds: [EventKind.VOLUME_CREATED, EventKind.VOLUME_DELETED] });
    await w.ready;
    const first = await createVolume(ctx.stack, POOL, 'idem.img', '65536', { requestId: 'idem-create-1' });
    const again = await createVolume(ctx.stack, POOL, 'idem.img', '65536', { requestId: 'idem-create-1' });
    expect(again).to.deep.equal(first);
    await expectCode(createVolume(ctx.stack, POOL, 'idem.img', '131072', { requestId: 'idem-create-1' }), status.INVALID_ARGUMENT, /request id 'idem-create-1' was already used/);
    await expectCode(createVolume(ctx.stack, POOL, 'idem.img', '65536'), status.ALREADY_EXISTS);
    // a JavaScript client that leaves request_id out sends the text 'undefined' (ts-proto's
    // encoder): refused, or all its later calls would get this call's stored answer
    await expectCode(createVolume(ctx.stack, POOL, 'idem-u.img', '65536', { requestId: 'undefined' }), status.INVALID_ARGUMENT, /request_id.*'undefined' is what a JavaScript client sends/);
    expect(existsSync(join(poolPath, 'idem-u.img'))).to.equal(false);

    // concurrent retries: one piece of work, one answer
    const many = await Promise.all(Array.from({ length: 8 }, () => createVolume(ctx.stack, POOL, 'idem2.img', '65536', { requestId: 'idem-create-2' })));
    expect(new Set(many.map((v: Volume) => v.revision)).size).to.equal(1);

    // a delete retried: still OK, not NOT_FOUND
    await api.deleteVolume({ name: `${POOL}/volumes/idem2.img`, requestId: 'idem-delete-2' });
    await api.deleteVolume({ name: `${POOL}/volumes/idem2.img`, requestId: 'idem-delete-2' });

    // after a coordinator switch (killed, another started) the retry still gets the first result
    await ctx.stack.restartCoordinator({ kill: true });
    const afterSwitch = await createVolume(ctx.stack, POOL, 'idem.img', '65536', { requestId: 'idem-create-1' });
    expect(afterSwitch).to.deep.equal(first);

    await waitFor('events', () => w.events.some((e) => e.kind === EventKind.VOLUME_DELETED && e.volume === 'idem2.img'));
    const w2 = watch(ctx.stack.client, { pools: [POOL], kinds: [EventKind.VOLUME_CREATED, EventKind.VOLUME_DELETED], afterSequence: w.events[0]!.sequence - 1n });
    await waitFor('replayed events', () => w2.events.length >= w.events.length);
    w.cancel();
    w2.cancel();
    const count = (list: Event[], kind: EventKind, volume: string) => list.filter((e) => e.kind === kind && e.volume === volume).length;
    expect(count(w2.events, EventKind.VOLUME_CREATED, 'idem.img')).to.equal(1);
    expect(count(w2.events, EventKind.VOLUME_CREATED, 'idem2.img')).to.equal(1);
    expect(count(w2.events, EventKind.VOLUME_DELETED, 'idem2.img')).to.equal(1);
    await ctx.stack.api.deleteVolume({ name: `${POOL}/volumes/idem.img`, requestId: '' });
  });

  it('an upload retried with its request id gets the first answer and is not written or announced again', async () => {
    const { client } = ctx.stack;
    await createVolume(ctx.stack, POOL, 'up-idem.img', '65536');
    const w = watch(client, { pools: [POOL], kinds: [EventKind.VOLUME_UPLOADED, EventKind.VOLUME_DELETED] });
    await w.ready;
    const send = (fill: number): Promise<UploadVolumeResponse> =>
      new Promise((resolve, reject) => {
        const call = client.uploadVolume((err, res) => (err ? reject(err) : resolve(res!)));
        call.write({ part: { $case: 'header', value: { name: `${POOL}/volumes/up-idem.img`, offset: 0n, length: 0n, sparse: false, requestId: 'idem-upload-1' } } });
        call.write({ part: { $case: 'data', value: Buffer.alloc(4096, fill) } });
        call.end();
      });
    const first = await send(1);
    // a retry is the same request: even if its bytes differed, the first upload's stand
    const again = await send(2);
    expect(again).to.deep.equal(first);
    expect(readFileSync(join(poolPath, 'up-idem.img')).subarray(0, 4096).equals(Buffer.alloc(4096, 1))).to.equal(true);
    // the id with another header is refused naming the field as the .proto has it: an upload's
    // request id is header.request_id (UploadVolumeRequest has no request_id), as its format check says
    const reused = await new Promise<ServiceError>((resolve, reject) => {
      const call = client.uploadVolume((err) => (err ? resolve(err) : reject(new Error('the reused request id was taken'))));
      call.write({ part: { $case: 'header', value: { name: `${POOL}/volumes/up-idem.img`, offset: 512n, length: 0n, sparse: false, requestId: 'idem-upload-1' } } });
      call.write({ part: { $case: 'data', value: Buffer.alloc(4096, 3) } });
      call.end();
    });
    expect(status[reused.code], reused.details).to.equal('INVALID_ARGUMENT');
    expect(reused.details).to.match(/^header\.request_id: request id 'idem-upload-1' was already used for a different UploadVolume request/);
    expect(reused.metadata.get('x-cistern-field')).to.deep.equal(['header.request_id']);
    expect(readFileSync(join(poolPath, 'up-idem.img')).subarray(0, 4096).equals(Buffer.alloc(4096, 1))).to.equal(true);
    // the volume's deletion comes after both uploads in the event stream: once the watcher
    // has it, any event of the retry has been delivered before it
    await ctx.stack.api.deleteVolume({ name: `${POOL}/volumes/up-idem.img`, requestId: '' });
    await waitFor('the deletion event', () => w.events.some((e) => e.kind === EventKind.VOLUME_DELETED && e.volume === 'up-idem.img'));
    w.cancel();
    expect(w.events.filter((e) => e.volume === 'up-idem.img').map((e) => EventKind[e.kind])).to.deep.equal(['VOLUME_UPLOADED', 'VOLUME_DELETED']);
  });

  it('a pool operation or volume delete retried after its stored answer was lost is answered, not refused by the cache', async () => {
    const { api } = ctx.stack;
    const name = 'hosts/a/pools/retry-p';
    await api.definePool({ host: 'a', definition: dirPool('retry-p', join(scratch.path, 'retry-p')), xml: '', requestId: '', validate: false });
    // the coordinator that ran the first call died before storing its answer: nothing stored
    const nc = await connect({ servers: ctx.stack.natsUrl });
    const forget = async (): Promise<void> => {
      const kv = await new Kvm(nc).open(REQUESTS_BUCKET);
      for await (const key of await kv.keys()) await kv.purge(key);
    };
    try {
      const started = await api.startPool({ name, build: true, buildFlags: undefined, requestId: 'idem-start-p' });
      await forget();
      const again = await api.startPool({ name, build: true, buildFlags: undefined, requestId: 'idem-start-p' });
      expect(again.state).to.equal(started.state);
      await api.stopPool({ name, requestId: 'idem-stop-p' });
      await forget();
      await api.stopPool({ name, requestId: 'idem-stop-p' });
      // without a request id the cache's answer stands
      await expectCode(api.stopPool({ name, requestId: '' }), status.FAILED_PRECONDITION, /not active/);

      // a volume delete: the retry finds no volume in the cache, the agent's request cache answers
      await createVolume(ctx.stack, POOL, 'idem-del-lost.img', '4096');
      await api.deleteVolume({ name: `${POOL}/volumes/idem-del-lost.img`, requestId: 'idem-delete-lost' });
      await forget();
      await api.deleteVolume({ name: `${POOL}/volumes/idem-del-lost.img`, requestId: 'idem-delete-lost' });
      await expectCode(api.deleteVolume({ name: `${POOL}/volumes/idem-del-lost.img`, requestId: '' }), status.NOT_FOUND);
      // a fresh request id for a volume that is not there: the agent says NOT_FOUND
      await expectCode(api.deleteVolume({ name: `${POOL}/volumes/idem-del-lost.img`, requestId: 'idem-delete-other' }), status.NOT_FOUND, /idem-del-lost.img/);
    } finally {
      await nc.close();
    }
    await api.undefinePool({ name, requestId: '' });
  });

  it('100 concurrent CreateVolume calls with one name: exactly one succeeds, the others ALREADY_EXISTS', async () => {
    const results = await Promise.all(Array.from({ length: 100 }, () => grpcCode(createVolume(ctx.stack, POOL, 'race.img', '1048576'))));
    const codes = results.map((r) => status[r.code]);
    expect(codes.filter((c) => c === 'OK'), JSON.stringify(results.filter((r) => r.code !== status.ALREADY_EXISTS))).to.have.length(1);
    expect(codes.filter((c) => c === 'ALREADY_EXISTS')).to.have.length(99);
    const { volumes } = await ctx.stack.api.listVolumes({ parent: POOL, pageSize: 0, pageToken: '' });
    expect(volumes.filter((v) => v.definition?.name === 'race.img')).to.have.length(1);
    expect(statSync(join(poolPath, 'race.img')).size).to.equal(1048576);
    await ctx.stack.api.deleteVolume({ name: `${POOL}/volumes/race.img`, requestId: '' });
  });

  it('concurrent operations on one volume: one runs, the others ABORTED, and the file is whole', async () => {
    await createVolume(ctx.stack, POOL, 'busy.img', String(256 * 1024 * 1024), { allocation: '0' });
    fillWithData(join(poolPath, 'busy.img'), 256);
    const wipe = () =>
      grpcCode(ctx.stack.api.wipeVolume({ name: `${POOL}/volumes/busy.img`, algorithm: WipeAlgorithm.WIPE_ALGORITHM_ZERO, requestId: '' }, { deadlineMs: 120_000 }));
    const resize = () =>
      grpcCode(ctx.stack.api.resizeVolume({ name: `${POOL}/volumes/busy.img`, capacity: 300n * 1024n * 1024n, allocate: false, delta: false, shrink: false, requestId: '' }));
    const results = await Promise.all([wipe(), wipe(), wipe(), resize(), wipe()]);
    const codes = results.map((r) => status[r.code]);
    expect(codes.every((c) => c === 'OK' || c === 'ABORTED'), codes.join()).to.equal(true);
    expect(codes.filter((c) => c === 'OK').length).to.be.at.least(1);
    expect(codes.filter((c) => c === 'ABORTED').length).to.be.at.least(1);
    for (const r of results) if (r.code === status.ABORTED) expect(r.message).to.match(/volume 'busy.img' is busy: (wipe|resize) in progress/);
    // every wipe that ran zeroed the whole file; none was cut short by another
    if (results.slice(0, 3).some((r) => r.code === status.OK)) {
      const data = readFileSync(join(poolPath, 'busy.img'));
      expect(data.subarray(0, 256 * 1024 * 1024).every((b) => b === 0)).to.equal(true);
    }
    await ctx.stack.api.deleteVolume({ name: `${POOL}/volumes/busy.img`, requestId: '' });
  });

  it('two coordinators on one NATS: concurrent catalog changes are never lost and both serve the same state', async () => {
    const second = await startCoordinator({ natsUrl: ctx.stack.natsUrl });
    const client2 = connectClient(second.address);
    try {
      const api1 = ctx.stack.api;
      const api2 = promiseApi(client2);
      // pools defined through both at once
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? api2 : api1).definePool({ host: 'a', definition: dirPool(`two-${i}`, join(scratch.path, `two-${i}`)), xml: '', requestId: '', validate: false }),
        ),
      );
      // one pool changed through both at once: autostart through one, target path through the other
      const base = await api1.definePool({ host: 'a', definition: dirPool('shared', join(scratch.path, 'shared-0')), xml: '', requestId: '', validate: false });
      const retryAborted = async <T>(f: () => Promise<T>): Promise<T> => {
        for (;;) {
          try {
            return await f();
          } catch (err) {
            if ((err as ServiceError).code !== status.ABORTED) throw err;
          }
        }
      };
      await Promise.all([
        ...Array.from({ length: 10 }, (_, i) =>
          retryAborted(() =>
            api2.definePool({ host: 'a', definition: { ...dirPool('shared', join(scratch.path, `shared-${i + 1}`)), uuid: base.definition!.uuid }, xml: '', requestId: '', validate: false }),
          ),
        ),
        ...Array.from({ length: 10 }, (_, i) => api1.setPoolAutostart({ name: 'hosts/a/pools/shared', autostart: i % 2 === 0, requestId: '' })),
      ]);
      await api1.setPoolAutostart({ name: 'hosts/a/pools/shared', autostart: true, requestId: '' });
      await api2.definePool({ host: 'a', definition: { ...dirPool('shared', join(scratch.path, 'shared-final')), uuid: base.definition!.uuid }, xml: '', requestId: '', validate: false });

      const view = async (api: typeof api1) => {
        const { pools } = await api.listPools({ host: 'a', types: [], pageSize: 0, pageToken: '' });
        return pools
          .filter((p) => p.name.includes('/two-') || p.name.endsWith('/shared'))
          .map((p) => ({ name: p.name, path: p.definition?.target?.path, autostart: p.autostart, uuid: p.definition?.uuid }));
      };
      await waitFor('both coordinators to show the same catalog', async () => JSON.stringify(await view(api1)) === JSON.stringify(await view(api2)));
      const seen = await view(api2);
      expect(seen.filter((p) => p.name.includes('/two-'))).to.have.length(20);
      const shared = seen.find((p) => p.name.endsWith('/shared'))!;
      expect(shared.autostart).to.equal(true);
      expect(shared.path).to.equal(join(scratch.path, 'shared-final'));
    } finally {
      client2.close();
      await second.stop();
    }
  });
});
