// A refresh that finds thousands of volumes publishes their events in batches, waiting for
// each to be stored (pool-ops.ts SCAN_EVENT_BATCH). It does not hold the volumes' locks, so a
// writer may change or delete a volume of a later batch while it waits: the writer publishes
// what it did at once, and the batch must not publish the state the scan read after it (a
// reader applying the stream in order, as docs/events.md tells one to, would end with a
// volume resized back or a deleted one alive).
import { expect } from 'chai';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { EventKind, PoolDefinition, PoolType, VolumeDefinition, type Event } from '../../../libs/proto/cistern/v1/storage.js';
import type { BackendOperation, PoolContext, StorageBackend } from '../../../libs/backends/backend.js';
import { dispatch } from '../../../services/agent/agent.js';
import { SCAN_EVENT_BATCH } from '../../../services/agent/handlers/pool-ops.js';
import { inProcessAgent } from '../../support/agent-context.js';

/** A dir-like pool held in memory: file name -> capacity. */
class MemoryBackend implements Partial<StorageBackend> {
  readonly type = PoolType.POOL_TYPE_DIR;
  readonly poolFormats = [];
  readonly defaultPoolFormat = '';
  readonly volumeFormats = ['raw'];
  readonly defaultVolumeFormat = 'raw';
  readonly operations: ReadonlySet<BackendOperation> = new Set<BackendOperation>(['checkPool', 'refreshPool', 'deleteVol', 'resizeVol']);
  files = new Map<string, bigint>();
  def(name: string) {
    const capacity = this.files.get(name) ?? 0n;
    return VolumeDefinition.fromPartial({ name, key: `/p/${name}`, capacity, allocation: 0n, target: { path: `/p/${name}`, format: 'raw' } });
  }
  async refreshPool(_ctx: PoolContext) {
    return { runtime: { capacity: 1n << 40n, allocation: 0n, available: 1n << 40n }, volumes: [...this.files.keys()].map((n) => this.def(n)) };
  }
  async refreshVol(_ctx: PoolContext, v: VolumeDefinition) {
    return this.def(v.name);
  }
  async deleteVol(_ctx: PoolContext, v: VolumeDefinition) {
    this.files.delete(v.name);
  }
  async resizeVol(_ctx: PoolContext, v: VolumeDefinition, capacity: bigint) {
    this.files.set(v.name, capacity);
  }
}

const poolDef = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'p', target: { path: '/p' } });

/** What a reader applying the stream in order holds at the end: name -> capacity. */
function replay(events: readonly Event[]): Map<string, bigint | undefined> {
  const held = new Map<string, bigint | undefined>();
  for (const e of events) {
    if (!e.volume || e.kind === EventKind.OPERATION_PROGRESS) continue;
    if (e.kind === EventKind.VOLUME_DELETED) held.delete(e.volume);
    else held.set(e.volume, e.volumeState?.definition?.capacity);
  }
  return held;
}

describe('agent refresh published in batches, beside writers', () => {
  it('a volume resized or deleted while the refresh waits for a batch to be stored ends in the stream as its writer left it', async () => {
    const backend = new MemoryBackend();
    const { ctx, events } = inProcessAgent({ runner: { run: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, backend: backend as StorageBackend });
    const call = (op: AgentRequest['op']) => {
      const req = AgentRequest.fromPartial({ principal: 'alice', requestId: '', pool: poolDef });
      req.op = op;
      return dispatch(ctx, op!.$case, req);
    };
    await call({ $case: 'startPool', value: { name: 'hosts/h/pools/p', build: false, buildFlags: undefined, requestId: '' } });
    // files dropped by hand: the next refresh finds more than one batch of new volumes
    const name = (i: number) => `v${String(i).padStart(5, '0')}`;
    for (let i = 0; i < SCAN_EVENT_BATCH + 10; i++) backend.files.set(name(i), 1n);
    const resized = name(SCAN_EVENT_BATCH + 3);
    const deleted = name(SCAN_EVENT_BATCH + 5);
    // the refresh's first wait for its batch to be stored: the writers run then, each to its end
    let writers: Promise<unknown> | undefined;
    ctx.events = {
      publish: (e) => void events.push(e),
      flush: async () => {
        if (!writers && events.some((e) => e.kind === EventKind.VOLUME_CHANGED)) {
          writers = (async () => {
            await call({ $case: 'resizeVolume', value: { name: `hosts/h/pools/p/volumes/${resized}`, capacity: 4096n, allocate: false, delta: false, shrink: false, requestId: '' } });
            await call({ $case: 'deleteVolume', value: { name: `hosts/h/pools/p/volumes/${deleted}`, requestId: '' } });
          })();
          await writers;
        }
        return BigInt(events.length);
      },
    };
    await call({ $case: 'refreshPool', value: { name: 'hosts/h/pools/p', requestId: '' } });
    expect(writers, 'the writers ran while the refresh waited').to.not.equal(undefined);
    const held = replay(events);
    expect(held.get(resized), `${resized} as the stream replays`).to.equal(4096n);
    expect(held.has(deleted), `${deleted} as the stream replays`).to.equal(false);
    const pool = ctx.state.getPool('p')!;
    expect(held.size).to.equal(pool.volumes.size);
    for (const [n, v] of pool.volumes) expect(held.get(n), n).to.equal(v.definition.capacity);
  });
});
