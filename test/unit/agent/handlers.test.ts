// The agent's handlers against an in-memory fake backend and a recording event sink:
// no NATS, no filesystem.
import { expect } from 'chai';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import {
  EventKind,
  PoolDefinition,
  PoolSource,
  PoolState,
  PoolType,
  VolumeDefinition,
  WipeAlgorithm,
} from '../../../libs/proto/cistern/v1/storage.js';
import type { BackendContext, BackendOperation, PoolContext, StorageBackend } from '../../../libs/backends/backend.js';
import { CisternError, UnavailableError } from '../../../libs/errors/errors.js';
import { dispatch } from '../../../services/agent/agent.js';
import { attachSignal, requireOperation } from '../../../services/agent/context.js';
import { autostartPools } from '../../../services/agent/autostart.js';
import { SCAN_EVENT_BATCH } from '../../../services/agent/handlers/pool-ops.js';
import { MAX_REPLY_VOLUMES } from '../../../services/agent/handlers/reply.js';
import { CatalogPool } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { inProcessAgent } from '../../support/agent-context.js';

class FakeBackend implements StorageBackend {
  readonly type = PoolType.POOL_TYPE_DIR;
  readonly poolFormats = [];
  readonly defaultPoolFormat = '';
  readonly volumeFormats = ['raw'];
  readonly defaultVolumeFormat = 'raw';
  files = new Map<string, bigint>();
  calls: string[] = [];
  gate: Promise<void> | undefined;
  /** a built volume's flush to disk (BuiltVolume.durable): the create answers once it settles */
  durable: Promise<void> | undefined;
  /** a refresh waits for it (a long refresh holding the pool's turn) */
  refreshGate: Promise<void> | undefined;
  /** the CHAP secret (uuid 'chap-1') each refresh was given */
  secretsSeen: Array<string | undefined> = [];
  constructor(readonly operations: ReadonlySet<BackendOperation>) {}
  async refreshPool(ctx: PoolContext) {
    this.calls.push('refreshPool');
    if (this.refreshGate) await this.refreshGate;
    this.secretsSeen.push(ctx.secrets?.get('chap-1')?.toString());
    return {
      runtime: { capacity: 1000n, allocation: 0n, available: 1000n },
      volumes: [...this.files].map(([name, capacity]) => this.def(name, capacity)),
    };
  }
  def(name: string, capacity: bigint) {
    return VolumeDefinition.fromPartial({ name, key: `/p/${name}`, capacity, allocation: 0n, target: { path: `/p/${name}`, format: 'raw' } });
  }
  async createVol(_ctx: PoolContext, v: VolumeDefinition) {
    this.calls.push(`createVol ${v.name}`);
    return { ...v, key: `/p/${v.name}`, target: { ...v.target!, path: `/p/${v.name}` } };
  }
  async buildVol(ctx: PoolContext, v: VolumeDefinition) {
    this.calls.push(`buildVol ${v.name}`);
    ctx.progress?.(0n, 10n);
    if (this.gate) await this.gate;
    ctx.progress?.(10n, 10n);
    this.files.set(v.name, v.capacity ?? 0n);
    if (!this.durable) return;
    const durable = this.durable;
    return { durable: durable.catch((err: unknown) => {
      this.files.delete(v.name);
      throw err;
    }) };
  }
  async refreshVol(_ctx: PoolContext, v: VolumeDefinition) {
    return this.def(v.name, this.files.get(v.name) ?? 0n);
  }
  async deleteVol(_ctx: PoolContext, v: VolumeDefinition) {
    this.calls.push(`deleteVol ${v.name}`);
    this.files.delete(v.name);
  }
  async resizeVol(_ctx: PoolContext, v: VolumeDefinition, capacity: bigint) {
    this.calls.push(`resizeVol ${v.name} ${capacity}`);
    this.files.set(v.name, capacity);
  }
  async findPoolSources(ctx: BackendContext, hint: PoolSource | undefined) {
    this.calls.push('findPoolSources');
    this.secretsSeen.push(ctx.secrets?.get('chap-1')?.toString());
    return hint ? [hint] : [];
  }
}

const ALL: BackendOperation[] = ['checkPool', 'refreshPool', 'createVol', 'buildVol', 'deleteVol', 'resizeVol'];
const poolDef = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'p', target: { path: '/p' } });

function setup(ops: BackendOperation[] = ALL) {
  const backend = new FakeBackend(new Set(ops));
  const { ctx, events } = inProcessAgent({ runner: { run: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, backend });
  const call = (op: AgentRequest['op'], extra: Partial<AgentRequest> = {}) => {
    const req = AgentRequest.fromPartial({ principal: 'alice', requestId: 'r1', pool: poolDef, ...extra });
    req.op = op;
    return dispatch(ctx, op!.$case, req);
  };
  return { backend, events, ctx, call };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return `${(err as CisternError).code}: ${(err as Error).message}`;
  }
  return 'OK';
}

const start = { $case: 'startPool' as const, value: { name: 'hosts/h/pools/p', build: false, buildFlags: undefined, requestId: '' } };
const createVol = (name: string, capacity = 5n) => ({
  $case: 'createVolume' as const,
  value: { parent: 'hosts/h/pools/p', definition: VolumeDefinition.fromPartial({ name, capacity, target: { format: 'raw' } }), xml: '', preallocMetadata: false, requestId: '', validate: false },
});

describe('agent handlers (fake backend)', () => {
  it('a pool of thousands of volumes publishes their events in stored batches, not in one go', async () => {
    const { backend, events, ctx, call } = setup();
    for (let i = 0; i < 2 * SCAN_EVENT_BATCH + 5; i++) backend.files.set(`v${String(i).padStart(5, '0')}`, 1n);
    const unflushedAtFlush: number[] = [];
    let flushedUpTo = 0;
    ctx.events = {
      publish: (e) => void events.push(e),
      flush: async () => {
        unflushedAtFlush.push(events.length - flushedUpTo);
        flushedUpTo = events.length;
        return BigInt(events.length);
      },
    };
    await call(start);
    expect(events.filter((e) => e.kind === EventKind.VOLUME_CHANGED)).to.have.length(2 * SCAN_EVENT_BATCH + 5);
    expect(events[0]!.kind).to.equal(EventKind.POOL_STARTED);
    expect(unflushedAtFlush.length).to.be.greaterThanOrEqual(3);
    expect(Math.max(...unflushedAtFlush)).to.be.at.most(SCAN_EVENT_BATCH + 1);
    expect(events.length - flushedUpTo).to.equal(0);
  });

  it('start publishes POOL_STARTED then the volumes found, and replies with all volumes', async () => {
    const { backend, events, call } = setup();
    backend.files.set('old', 3n);
    const reply = await call(start, { persistent: true });
    expect(reply.result?.$case).to.equal('pool');
    const pool = reply.result?.$case === 'pool' ? reply.result.value : undefined;
    expect(pool?.state).to.equal(PoolState.POOL_STATE_RUNNING);
    expect(pool?.volumeCount).to.equal(1);
    expect(reply.volumesComplete).to.equal(true);
    expect(reply.volumes.map((v) => v.name)).to.deep.equal(['hosts/h/pools/p/volumes/old']);
    expect(events.map((e) => e.kind)).to.deep.equal([EventKind.POOL_STARTED, EventKind.VOLUME_CHANGED]);
    expect(events[0]!.principal).to.equal('alice');
    expect(reply.eventSequence).to.equal(2n);
    expect(await codeOf(call(start))).to.equal("FAILED_PRECONDITION: storage pool 'p' is already active");
  });

  it('refreshVolume (GetVolume refresh): re-reads the volume and publishes a change once; one a writer holds is answered as known', async () => {
    const { backend, events, ctx, call } = setup();
    backend.files.set('v', 3n);
    await call(start);
    const reread = { $case: 'refreshVolume' as const, value: { name: 'hosts/h/pools/p/volumes/v', refresh: true } };
    const capacityOf = (r: Awaited<ReturnType<typeof call>>) => (r.result?.$case === 'volume' ? r.result.value.definition?.capacity : undefined);
    const changes = () => events.filter((e) => e.kind === EventKind.VOLUME_CHANGED && e.volume === 'v').length;
    const before = changes();
    backend.files.set('v', 7n);
    const changed = await call(reread);
    expect(capacityOf(changed)).to.equal(7n);
    expect(changed.stateComplete).to.equal(true);
    expect(changes()).to.equal(before + 1);
    // nothing new: nothing published
    expect(capacityOf(await call(reread))).to.equal(7n);
    expect(changes()).to.equal(before + 1);
    // a wipe running: its commit publishes what it leaves; a read now could only be older
    const release = ctx.locks.acquireVolume('p', 'v', 'wipe');
    backend.files.set('v', 9n);
    expect(capacityOf(await call(reread))).to.equal(7n);
    release();
    expect(changes()).to.equal(before + 1);
    expect(await codeOf(call({ $case: 'refreshVolume', value: { name: 'hosts/h/pools/p/volumes/none', refresh: true } }))).to.match(/^NOT_FOUND/);
  });

  it('volume ops on an inactive pool say so as libvirt does', async () => {
    const { call } = setup();
    expect(await codeOf(call(createVol('v')))).to.equal("FAILED_PRECONDITION: storage pool 'p' is not active");
  });

  it('an operation the pool type lacks is UNIMPLEMENTED before anything runs', async () => {
    const { backend, call } = setup(['refreshPool', 'createVol', 'buildVol']);
    await call(start);
    backend.calls = [];
    backend.files.set('v', 1n);
    await call({ $case: 'refreshPool', value: { name: 'hosts/h/pools/p', requestId: '' } });
    backend.calls = [];
    const code = await codeOf(call({ $case: 'wipeVolume', value: { name: 'hosts/h/pools/p/volumes/v', algorithm: WipeAlgorithm.WIPE_ALGORITHM_ZERO, requestId: '' } }));
    expect(code).to.match(/^UNIMPLEMENTED: wiping a volume is not supported by storage pool type dir/);
    expect(await codeOf(call({ $case: 'deletePool', value: { name: 'hosts/h/pools/p', requestId: '' } }))).to.match(/^UNIMPLEMENTED/);
    expect(backend.calls).to.deep.equal([]);
  });

  it("UNIMPLEMENTED names the pool type as pool XML and virsh spell it ('iscsi-direct', not 'iscsi_direct')", () => {
    const lunsOnly = { type: PoolType.POOL_TYPE_ISCSI_DIRECT, operations: new Set<BackendOperation>() } as unknown as StorageBackend;
    let message = '';
    try {
      requireOperation(lunsOnly, 'resizeVol', 'resizing a volume');
    } catch (err) {
      message = `${(err as CisternError).code}: ${(err as Error).message}`;
    }
    expect(message).to.equal('UNIMPLEMENTED: resizing a volume is not supported by storage pool type iscsi-direct');
  });

  it('a type without a build (iscsi, scsi, mpath) builds as libvirt does: nothing runs, the build succeeds and says Created', async () => {
    const { backend, events, call } = setup(['checkPool', 'refreshPool']);
    const build = { $case: 'buildPool' as const, value: { name: 'hosts/h/pools/p', flags: { overwrite: true, noOverwrite: false }, requestId: '' } };
    const reply = await call(build);
    expect(reply.result?.$case).to.equal('pool');
    expect(events.map((e) => e.kind)).to.deep.equal([EventKind.POOL_CREATED]);
    expect(backend.calls).to.deep.equal([]);
    // pool-start --build starts it (libvirt's storagePoolCreate builds only with a type's build)
    await call({ $case: 'startPool', value: { ...start.value, build: true } });
    expect(events.map((e) => e.kind)).to.deep.equal([EventKind.POOL_CREATED, EventKind.POOL_STARTED]);
    expect(backend.calls).to.deep.equal(['refreshPool']);
    expect(await codeOf(call(build))).to.equal("FAILED_PRECONDITION: storage pool 'p' is already active");
  });

  it('refresh: the reply is complete (no wait for the events) unless a volume went away or did not fit in it', async () => {
    const { backend, call } = setup();
    await call(start);
    const refresh = () => call({ $case: 'refreshPool', value: { name: 'hosts/h/pools/p', requestId: '' } });
    const unchanged = await refresh();
    expect([unchanged.volumes.length, unchanged.stateComplete]).to.deep.equal([0, true]);
    backend.files.set('new', 4n);
    const added = await refresh();
    expect([added.volumes.map((v) => v.name), added.stateComplete]).to.deep.equal([['hosts/h/pools/p/volumes/new'], true]);
    backend.files.delete('new');
    const removed = await refresh();
    expect(removed.stateComplete).to.equal(false);
    for (let i = 0; i < MAX_REPLY_VOLUMES + 1; i++) backend.files.set(`many${i}`, 1n);
    const tooMany = await refresh();
    expect([tooMany.volumes.length, tooMany.stateComplete]).to.deep.equal([0, false]);
  });

  it('create: the event and the reply carry the re-read volume and the pool with its new count', async () => {
    const { events, call } = setup();
    await call(start);
    events.length = 0;
    const reply = await call(createVol('disk', 9n));
    const vol = reply.result?.$case === 'volume' ? reply.result.value : undefined;
    expect(vol?.name).to.equal('hosts/h/pools/p/volumes/disk');
    expect(vol?.definition?.key).to.equal('/p/disk');
    expect(vol?.definition?.capacity).to.equal(9n);
    const created = events.find((e) => e.kind === EventKind.VOLUME_CREATED)!;
    expect(created.volume).to.equal('disk');
    expect(created.poolState?.volumeCount).to.equal(1);
    expect(events.some((e) => e.kind === EventKind.OPERATION_PROGRESS && e.progress?.operation === 'create')).to.equal(true);
    expect(await codeOf(call(createVol('disk')))).to.equal("ALREADY_EXISTS: storage volume 'disk' exists already");
  });

  it('100 concurrent creates of one name: exactly one succeeds, the others ALREADY_EXISTS', async () => {
    const { call } = setup();
    await call(start);
    const results = await Promise.all(Array.from({ length: 100 }, () => codeOf(call(createVol('same')))));
    expect(results.filter((r) => r === 'OK')).to.have.length(1);
    expect(results.filter((r) => r.startsWith('ALREADY_EXISTS'))).to.have.length(99);
  });

  it('stopping a pool while a volume is being built: FAILED_PRECONDITION naming the create', async () => {
    const { backend, call } = setup();
    await call(start);
    let open!: () => void;
    backend.gate = new Promise((r) => (open = r));
    const creating = call(createVol('slow'));
    await new Promise((r) => setImmediate(r));
    const stop = await codeOf(call({ $case: 'stopPool', value: { name: 'hosts/h/pools/p', requestId: '' } }));
    expect(stop).to.match(/^FAILED_PRECONDITION: .*create of volume 'slow'/);
    // as libvirt's "still being allocated": the name is taken, the volume not there yet
    const del = await codeOf(call({ $case: 'deleteVolume', value: { name: 'hosts/h/pools/p/volumes/slow', requestId: '' } }));
    expect(del).to.equal("ABORTED: storage volume 'slow' is still being allocated (create in progress); try again once it ends");
    open();
    expect(await codeOf(creating)).to.equal('OK');
    expect(await codeOf(call({ $case: 'stopPool', value: { name: 'hosts/h/pools/p', requestId: '' } }))).to.equal('OK');
  });

  it('work on a volume its create has published but still flushes waits for the create, instead of ABORTED busy', async () => {
    const { backend, events, call } = setup();
    await call(start);
    let flushed!: () => void;
    let failed!: (err: Error) => void;
    const resizeOf = (name: string) => call({ $case: 'resizeVolume', value: { name: `hosts/h/pools/p/volumes/${name}`, capacity: 50n, allocate: false, delta: false, shrink: false, requestId: '' } });
    const published = async (name: string): Promise<void> => {
      while (!events.some((e) => e.kind === EventKind.VOLUME_CREATED && e.volumeState?.definition?.name === name)) await new Promise((r) => setImmediate(r));
    };

    backend.durable = new Promise((resolve) => (flushed = resolve));
    const creating = call(createVol('fresh'));
    // VOLUME_CREATED is out: a watcher reacting to it at once calls now
    await published('fresh');
    const resize = resizeOf('fresh');
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    flushed();
    expect(await codeOf(creating)).to.equal('OK');
    expect(await codeOf(resize)).to.equal('OK');
    expect(backend.files.get('fresh')).to.equal(50n);

    // a create whose flush fails takes the volume back: the waiting call finds it gone
    backend.durable = new Promise((_resolve, reject) => (failed = reject));
    const doomed = call(createVol('doomed'));
    await published('doomed');
    const late = resizeOf('doomed');
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    failed(new Error('EIO: flush failed'));
    expect(await codeOf(doomed)).to.match(/EIO/);
    expect(await codeOf(late)).to.match(/^NOT_FOUND: storage volume 'doomed' not found/);
  });

  it('a stop cancelled while it waits behind a long refresh does not run when its turn comes', async () => {
    const { backend, ctx, call } = setup();
    await call(start);
    let open!: () => void;
    backend.refreshGate = new Promise((r) => (open = r));
    const refreshing = call({ $case: 'refreshPool', value: { name: 'hosts/h/pools/p', requestId: '' } });
    await new Promise((r) => setImmediate(r));
    const cancel = new AbortController();
    const stopRequest = AgentRequest.fromPartial({ principal: 'alice', requestId: 'stop-1', pool: poolDef });
    stopRequest.op = { $case: 'stopPool', value: { name: 'hosts/h/pools/p', requestId: 'stop-1' } };
    attachSignal(stopRequest, cancel.signal);
    const stopping = codeOf(dispatch(ctx, 'stopPool', stopRequest));
    await new Promise((r) => setImmediate(r));
    cancel.abort();
    open();
    expect(await codeOf(refreshing)).to.equal('OK');
    expect(await stopping).to.match(/^CANCELLED: the caller cancelled 'stop' of storage pool 'p' while it waited for its turn/);
    expect(ctx.state.getPool('p'), 'the pool still runs').to.not.equal(undefined);
  });

  it('refresh publishes only the difference, then POOL_REFRESHED', async () => {
    const { backend, events, call } = setup();
    backend.files.set('a', 1n).set('b', 2n);
    await call(start);
    events.length = 0;
    backend.files.delete('a');
    backend.files.set('c', 3n);
    await call({ $case: 'refreshPool', value: { name: 'hosts/h/pools/p', requestId: '' } });
    expect(events.map((e) => [EventKind[e.kind], e.volume])).to.deep.equal([
      ['VOLUME_CHANGED', 'c'],
      ['VOLUME_DELETED', 'a'],
      ['POOL_REFRESHED', ''],
    ]);
    expect(events[2]!.poolState?.volumeCount).to.equal(2);
  });

  it("a refresh's reply carries the volumes it changed, and none when nothing changed", async () => {
    const { backend, call } = setup();
    backend.files.set('a', 1n).set('b', 2n);
    await call(start);
    const refresh = () => call({ $case: 'refreshPool', value: { name: 'hosts/h/pools/p', requestId: '' } });
    const unchanged = await refresh();
    expect(unchanged.volumes).to.deep.equal([]);
    expect(unchanged.result?.$case === 'pool' && unchanged.result.value.volumeCount).to.equal(2);
    backend.files.set('b', 5n);
    const changed = await refresh();
    expect(changed.volumes.map((v) => v.name)).to.deep.equal(['hosts/h/pools/p/volumes/b']);
    expect(changed.volumesComplete).to.equal(false);
  });

  it('resize follows libvirt: delta adds, shrinking needs the flag', async () => {
    const { backend, call } = setup();
    await call(start);
    await call(createVol('r', 100n));
    const resize = (capacity: bigint, delta = false, shrink = false) =>
      call({ $case: 'resizeVolume', value: { name: 'hosts/h/pools/p/volumes/r', capacity, allocate: false, delta, shrink, requestId: '' } });
    const grown = await resize(50n, true);
    expect(grown.result?.$case === 'volume' && grown.result.value.definition?.capacity).to.equal(150n);
    expect(await codeOf(resize(10n))).to.match(/^INVALID_ARGUMENT: capacity: can't shrink capacity below current capacity/);
    expect(await codeOf(resize(10n, false, true))).to.equal('OK');
    expect(backend.files.get('r')).to.equal(10n);
  });

  it('resize by a delta with the shrink flag takes the delta off the capacity; a delta beyond it shrinks to 0, as libvirt does', async () => {
    const { backend, call } = setup();
    await call(start);
    await call(createVol('d', 150n));
    const resize = (capacity: bigint) =>
      call({ $case: 'resizeVolume', value: { name: 'hosts/h/pools/p/volumes/d', capacity, allocate: false, delta: true, shrink: true, requestId: '' } });
    const shrunk = await resize(30n);
    expect(shrunk.result?.$case === 'volume' && shrunk.result.value.definition?.capacity).to.equal(120n);
    expect(backend.files.get('d')).to.equal(120n);
    const emptied = await resize(500n);
    expect(emptied.result?.$case === 'volume' && emptied.result.value.definition?.capacity).to.equal(0n);
    expect(backend.files.get('d')).to.equal(0n);
  });

  it('a resize that fails part-way publishes the volume as it is now (VOLUME_CHANGED); one that failed before any change publishes nothing', async () => {
    const { backend, events, call } = setup();
    await call(start);
    await call(createVol('f', 100n));
    const resize = (capacity: bigint) =>
      call({ $case: 'resizeVolume', value: { name: 'hosts/h/pools/p/volumes/f', capacity, allocate: false, delta: false, shrink: false, requestId: '' } });
    backend.resizeVol = async (_ctx, v, capacity) => {
      backend.files.set(v.name, capacity); // the size changed, then the work failed
      throw new UnavailableError('the disk went away');
    };
    const before = events.length;
    expect(await codeOf(resize(300n))).to.match(/^UNAVAILABLE/);
    const changed = events.slice(before);
    expect(changed.map((e) => e.kind)).to.deep.equal([EventKind.VOLUME_CHANGED]);
    expect(changed[0]!.volumeState?.definition?.capacity).to.equal(300n);
    backend.resizeVol = async () => {
      throw new UnavailableError('refused before writing');
    };
    const quiet = events.length;
    expect(await codeOf(resize(400n))).to.match(/^UNAVAILABLE/);
    expect(events.length).to.equal(quiet);
  });

  it('delete publishes VOLUME_DELETED with the last state and a newer revision', async () => {
    const { events, call } = setup();
    await call(start);
    const created = await call(createVol('gone'));
    const rev = created.result?.$case === 'volume' ? created.result.value.revision : 0n;
    const reply = await call({ $case: 'deleteVolume', value: { name: 'hosts/h/pools/p/volumes/gone', requestId: '' } });
    expect(reply.result?.$case).to.equal('done');
    const del = events.find((e) => e.kind === EventKind.VOLUME_DELETED)!;
    expect(del.volumeState?.definition?.name).to.equal('gone');
    expect(del.volumeState!.revision > rev).to.equal(true);
    expect(del.poolState?.volumeCount).to.equal(0);
    expect(await codeOf(call({ $case: 'deleteVolume', value: { name: 'hosts/h/pools/p/volumes/gone', requestId: '' } }))).to.match(
      /^NOT_FOUND: storage volume 'gone' not found in pool 'p' on host 'h'$/,
    );
  });

  it('names of another host or pool are refused', async () => {
    const { call } = setup();
    await call(start);
    expect(await codeOf(call({ $case: 'deleteVolume', value: { name: 'hosts/x/pools/p/volumes/v', requestId: '' } }))).to.match(/^INVALID_ARGUMENT/);
    expect(await codeOf(call({ $case: 'deleteVolume', value: { name: 'hosts/h/pools/p/volumes/../x', requestId: '' } }))).to.match(/^INVALID_ARGUMENT/);
    expect(await codeOf(call(createVol('-rf')))).to.match(/^INVALID_ARGUMENT: definition.name/);
    // a new name that would show as another (U+202E reverses what follows), refused here too
    expect(await codeOf(call(createVol('a\u202egpj.img')))).to.match(/^INVALID_ARGUMENT: definition.name: .*U\+202E/);
  });

  it('autostart starts the catalog pools marked autostart only', async () => {
    const { ctx, events } = setup();
    const entry = (name: string, autostart: boolean) => ({
      host: 'h',
      pool: name,
      revision: 1,
      value: CatalogPool.fromPartial({ definition: { ...poolDef, name }, autostart, persistent: true }),
    });
    const result = await autostartPools(ctx, { list: async () => [entry('p', true), entry('q', false)] });
    expect(result.started).to.deep.equal(['p']);
    expect([...ctx.state.pools.keys()]).to.deep.equal(['p']);
    expect(ctx.state.pools.get('p')!.autostart).to.equal(true);
    expect(events[0]!.kind).to.equal(EventKind.POOL_STARTED);
    expect(events[0]!.principal).to.equal('agent');
  });

  it('autostart refuses a catalog entry written by hand whose target path is relative or not normalised, as a request is refused', async () => {
    const { ctx, events } = setup();
    // the bucket is plain KV: a definition there never went through a coordinator's checks
    const entry = (name: string, path: string) => ({
      host: 'h',
      pool: name,
      revision: 1,
      value: CatalogPool.fromPartial({ definition: { ...poolDef, name, target: { path } }, autostart: true, persistent: true }),
    });
    const result = await autostartPools(ctx, { list: async () => [entry('rel', 'pools/rel'), entry('dots', '/srv/pools/../../etc')] });
    expect(result.started).to.deep.equal([]);
    expect(result.failed.map((f) => [f.pool, f.code, f.message])).to.deep.equal([
      ['rel', 'INVALID_ARGUMENT', "pool.target.path: path 'pools/rel' is not absolute; it must start with '/'"],
      ['dots', 'INVALID_ARGUMENT', "pool.target.path: path '/srv/pools/../../etc' contains '..'; give the normalised path /etc"],
    ]);
    expect(ctx.state.pools.size).to.equal(0);
    expect(events).to.deep.equal([]);
  });

  it('find pool sources: the CHAP secret the request carries for the source\'s <auth> reaches the backend (discovery logs in with it)', async () => {
    const { backend, call } = setup([...ALL, 'findPoolSources']);
    const source = PoolSource.fromPartial({ hosts: [{ name: '127.0.0.1', port: 3260 }], auth: { type: 'chap', username: 'u', secret: { uuid: 'chap-1' } } });
    const op = { $case: 'findPoolSources' as const, value: { host: 'h', type: PoolType.POOL_TYPE_DIR, sourceXml: '', source } };
    const reply = await call(op, { pool: undefined, secrets: [{ uuid: 'chap-1', usageId: '', value: Buffer.from('s3cret') }] });
    expect(reply.result?.$case).to.equal('sources');
    await call(op, { pool: undefined });
    expect(backend.secretsSeen).to.deep.equal(['s3cret', undefined]);
  });

  describe('autostart of a pool whose source needs a CHAP secret', () => {
    const entry = (name: string, auth: boolean) => ({
      host: 'h',
      pool: name,
      revision: 1,
      value: CatalogPool.fromPartial({
        // each over its own directory: two pools over one are refused (storage source conflict)
        definition: { ...poolDef, name, target: { path: `/${name}` }, source: auth ? { auth: { type: 'chap', username: 'u', secret: { uuid: 'chap-1' } } } : undefined },
        autostart: true,
        persistent: true,
      }),
    });
    const catalog = { list: async () => [entry('plain', false), entry('locked', true)] };

    it('asks the secret source for that pool only and hands the value to the backend', async () => {
      const { ctx, backend } = setup();
      const asked: string[] = [];
      const result = await autostartPools(ctx, catalog, async (def) => {
        asked.push(def.name);
        return [{ uuid: 'chap-1', usageId: '', value: Buffer.from('s3cret') }];
      });
      expect(result.started.sort()).to.deep.equal(['locked', 'plain']);
      expect(asked).to.deep.equal(['locked']);
      expect(backend.secretsSeen.sort()).to.deep.equal(['s3cret', undefined]);
    });

    it('with no coordinator to answer, the pool stays inactive and is named for a retry, which starts it', async () => {
      const { ctx, backend } = setup();
      const first = await autostartPools(ctx, catalog, async () => {
        throw new UnavailableError('no coordinator answered');
      });
      expect(first.started).to.deep.equal(['plain']);
      expect(first.failed.map((f) => [f.pool, f.code])).to.deep.equal([['locked', 'UNAVAILABLE']]);
      expect(first.retryable).to.deep.equal(['locked']);
      expect(ctx.state.pools.has('locked')).to.equal(false);

      const retry = await autostartPools(ctx, catalog, async () => [{ uuid: 'chap-1', usageId: '', value: Buffer.from('s3cret') }], new Set(first.retryable));
      expect(retry.started).to.deep.equal(['locked']);
      expect(retry.retryable).to.deep.equal([]);
      expect([...ctx.state.pools.keys()].sort()).to.deep.equal(['locked', 'plain']);
      expect(backend.secretsSeen.at(-1)).to.equal('s3cret');
    });
  });
});
