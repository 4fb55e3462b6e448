// The pool refresh after an upload (libvirt's virStorageVolPoolRefreshThread), with the
// agent's handlers in-process over a real nats-server and a fake backend whose refresh can
// fail or hang: the upload stands either way, the pool stays active, the uploaded volume's
// lock is not held by then, and a slow refresh does not hold the upload's answer. A failed
// upload is followed by the refresh too, as libvirt's.
import { expect } from 'chai';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectBus } from '../../libs/bus/connect.js';
import { serveAgent } from '../../libs/bus/agent-rpc.js';
import { uploadToAgent } from '../../libs/bus/streams.js';
import { changeDedupeId } from '../../libs/bus/events.js';
import { AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import { EventKind, PoolDefinition, PoolType, VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import type { BackendOperation, PoolContext, RefreshResult, StorageBackend } from '../../libs/backends/backend.js';
import type { AgentContext } from '../../services/agent/context.js';
import { dispatch } from '../../services/agent/agent.js';
import { activatePool } from '../../services/agent/handlers/pool-ops.js';
import { inProcessAgent } from '../support/agent-context.js';
import { startNats, type NatsServer } from '../support/nats.js';
import { waitFor } from '../support/process.js';

/** Volumes in memory; its refresh succeeds, fails, or waits for `gate`. */
class MemoryBackend implements StorageBackend {
  readonly type = PoolType.POOL_TYPE_DIR;
  readonly poolFormats = [];
  readonly defaultPoolFormat = '';
  readonly volumeFormats = ['raw'];
  readonly defaultVolumeFormat = 'raw';
  readonly operations: ReadonlySet<BackendOperation> = new Set<BackendOperation>(['refreshPool', 'uploadVol']);
  data = new Map<string, Buffer>([['v', Buffer.alloc(0)]]);
  refresh: 'ok' | 'fail' | 'hang' = 'ok';
  gate?: Promise<void>;
  /** Whether the uploaded volume was locked while a refresh ran. */
  busyDuringRefresh: boolean[] = [];
  constructor(private readonly busy: () => boolean) {}

  def(name: string): VolumeDefinition {
    const size = BigInt(this.data.get(name)!.length);
    return VolumeDefinition.fromPartial({ name, key: `/p/${name}`, capacity: size, allocation: size, target: { path: `/p/${name}`, format: 'raw' } });
  }
  async refreshPool(): Promise<RefreshResult> {
    this.busyDuringRefresh.push(this.busy());
    if (this.refresh === 'fail') throw new Error('the pool directory went away');
    if (this.refresh === 'hang') await this.gate;
    return { runtime: { capacity: 1000n, allocation: 0n, available: 1000n }, volumes: [...this.data.keys()].map((n) => this.def(n)) };
  }
  async refreshVol(_ctx: PoolContext, v: VolumeDefinition): Promise<VolumeDefinition> {
    return this.def(v.name);
  }
  async uploadVol(_ctx: PoolContext, v: VolumeDefinition, _offset: bigint, _length: bigint, data: AsyncIterable<Buffer>): Promise<bigint> {
    const parts: Buffer[] = [];
    for await (const p of data) parts.push(p);
    this.data.set(v.name, Buffer.concat(parts));
    return BigInt(this.data.get(v.name)!.length);
  }
}

describe('pool refresh after an upload (in-process agent, real nats-server)', function () {
  this.timeout(30_000);
  const HOST = 'h';
  const pool = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'p', target: { path: '/p' } });
  let nats: NatsServer;
  let agentSide: NatsConnection;
  let sender: NatsConnection;
  let backend: MemoryBackend;
  let ctx: AgentContext;
  let events: ReturnType<typeof inProcessAgent>['events'];

  before(async () => {
    nats = await startNats();
    agentSide = await connectBus({ servers: nats.url, name: 'upload-refresh-agent' });
    sender = await connectBus({ servers: nats.url, name: 'upload-refresh-sender' });
    serveAgent(agentSide, HOST, (op, request) => dispatch(ctx, op, request));
    // the server must have the agent's subscription before the first request, or that request
    // finds no responder ("no agent answers for it on the bus")
    await agentSide.flush();
  });

  beforeEach(async () => {
    backend = new MemoryBackend(() => ctx.locks.isVolumeBusy('p', 'v'));
    ({ ctx, events } = inProcessAgent({ runner: { run: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, backend, host: HOST }));
    ctx.nc = agentSide;
    await activatePool(ctx, pool, { persistent: false, autostart: false }, { principal: 't', requestId: '' });
  });

  after(async () => {
    await sender?.close();
    await agentSide?.close();
    await nats?.stop();
  });

  const upload = (bytes: Buffer) => {
    const req = AgentRequest.fromPartial({ principal: 'alice', requestId: 'up-1', pool });
    req.op = { $case: 'uploadBegin', value: { volume: 'v', offset: 0n, length: 0n, sparse: false } };
    return uploadToAgent(sender, HOST, req, (async function* () { yield bytes; })());
  };
  const kinds = () => events.filter((e) => e.kind !== EventKind.OPERATION_PROGRESS).map((e) => EventKind[e.kind]);

  it('refreshes with the volume unlocked, then answers with the refresh\'s last event', async () => {
    const start = events.length;
    const result = await upload(Buffer.alloc(100, 1));
    expect(result.bytesWritten).to.equal(100n);
    expect(kinds().slice(-2)).to.deep.equal(['VOLUME_UPLOADED', 'POOL_REFRESHED']);
    expect(result.eventSequence).to.equal(BigInt(events.length));
    expect(events.length).to.be.greaterThan(start);
    // one refresh at start, one after the upload: the upload's lock was released before it
    expect(backend.busyDuringRefresh).to.deep.equal([false, false]);
  });

  it('a failed refresh does not fail the upload, publishes no POOL_REFRESHED, and leaves the pool active', async () => {
    backend.refresh = 'fail';
    const result = await upload(Buffer.alloc(100, 2));
    expect(result.bytesWritten).to.equal(100n);
    expect(backend.data.get('v')!.equals(Buffer.alloc(100, 2))).to.equal(true);
    expect(kinds().slice(-1)).to.deep.equal(['VOLUME_UPLOADED']);
    expect(kinds()).to.not.include('POOL_STOPPED');
    expect(ctx.state.getPool('p')?.volumes.get('v')?.definition.capacity).to.equal(100n);
  });

  it('an upload that fails once its data flows is followed by the refresh too, as libvirt\'s: its stream\'s close refreshes however it ended', async () => {
    // virsh vol-upload killed halfway through, virsh pool-event --event refresh printed
    // "event 'refresh' for storage pool p5" (libvirt 9.0, virStorageVolFDStreamCloseCb)
    const req = AgentRequest.fromPartial({ principal: 'alice', requestId: 'up-broken', pool });
    req.op = { $case: 'uploadBegin', value: { volume: 'v', offset: 0n, length: 0n, sparse: false } };
    const broken = (async function* () {
      yield Buffer.alloc(10, 4);
      throw new Error('the sender went away');
    })();
    const outcome = await uploadToAgent(sender, HOST, req, broken).then(() => 'uploaded', (err: Error) => err.message);
    expect(outcome).to.not.equal('uploaded');
    const refreshed = await waitFor('POOL_REFRESHED after the failed upload', () => events.find((e) => e.kind === EventKind.POOL_REFRESHED));
    // by the uploader, but without the request id: a retry of a failed call runs again, and its
    // own refresh, under the same JetStream message id, would be dropped as a duplicate
    expect(refreshed.principal).to.equal('alice');
    expect(refreshed.requestId).to.equal('');
    expect(changeDedupeId(refreshed)).to.equal(undefined);
    expect(kinds()).to.not.include('VOLUME_UPLOADED');
    expect(kinds()).to.not.include('POOL_STOPPED');
    expect(ctx.state.getPool('p')).to.not.equal(undefined);
  });

  it('a refresh slower than the wait ends in the background: the upload is answered first', async () => {
    ctx.uploadRefreshWaitMs = 200;
    let open!: () => void;
    backend.gate = new Promise<void>((r) => (open = r));
    backend.refresh = 'hang';
    const result = await upload(Buffer.alloc(10, 3));
    expect(result.bytesWritten).to.equal(10n);
    expect(kinds().slice(-1)).to.deep.equal(['VOLUME_UPLOADED']);
    expect(result.eventSequence).to.equal(BigInt(events.length));
    open();
    await waitFor('the late POOL_REFRESHED', () => kinds().at(-1) === 'POOL_REFRESHED');
  });
});
