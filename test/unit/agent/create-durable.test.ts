// A create announces its volume while the disk flushes the new file (BuiltVolume.durable) and
// answers only once both are done; a volume that cannot be made durable is taken back.
import { expect } from 'chai';
import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { AgentRequest, type AgentReply } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { EventKind, PoolDefinition, PoolType, type VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import type { BuiltVolume, CreateVolOptions, PoolContext } from '../../../libs/backends/backend.js';
import { DirBackend } from '../../../libs/backends/dir.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { dispatch } from '../../../services/agent/agent.js';
import { activatePool } from '../../../services/agent/handlers/pool-ops.js';
import { inProcessAgent } from '../../support/agent-context.js';
import { useTempDir } from '../../support/index.js';

/** A dir backend whose new files become durable (or fail to) when the test says. */
class HeldFlushBackend extends DirBackend {
  flushed?: { resolve(): void; reject(err: Error): void };
  built?: BuiltVolume;
  rereads = 0;

  override refreshVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    this.rereads++;
    return super.refreshVol(ctx, volume);
  }

  override async buildVol(ctx: PoolContext, volume: VolumeDefinition, options: CreateVolOptions): Promise<BuiltVolume | void> {
    const built = await super.buildVol(ctx, volume, options);
    this.built = built ?? undefined;
    const path = join(ctx.pool.target!.path, volume.name);
    const durable = new Promise<void>((resolve, reject) => {
      this.flushed = {
        resolve,
        // as the backend contract says: the volume is removed before the rejection
        reject: (err) => {
          unlinkSync(path);
          reject(err);
        },
      };
    });
    durable.catch(() => undefined);
    return { volume: built?.volume, durable: built?.durable ? built.durable.then(() => durable) : durable };
  }
}

describe('agent create: announced while the disk flushes, answered once durable', () => {
  const scratch = useTempDir('cistern-create-durable-');

  async function setUp(dir: string) {
    const backend = new HeldFlushBackend();
    const { ctx, events } = inProcessAgent({ runner: new RecordingRunner(), backend });
    const pool = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'p', target: { path: join(scratch.path, dir) } });
    mkdirSync(pool.target!.path);
    await activatePool(ctx, pool, { persistent: false, autostart: false }, { principal: 't', requestId: '' });
    events.length = 0;
    const create = dispatch(
      ctx,
      'createVolume',
      AgentRequest.fromPartial({ pool, op: { $case: 'createVolume', value: { parent: 'hosts/h/pools/p', definition: { name: 'v', capacity: 1048576n, allocation: 0n, target: { format: 'raw' } } } } }),
    );
    let settled = false;
    create.then(
      () => (settled = true),
      () => (settled = true),
    );
    // until the build has returned and the event is out
    for (let i = 0; i < 200 && !events.some((e) => e.kind === EventKind.VOLUME_CREATED); i++) await new Promise((r) => setTimeout(r, 5));
    return { backend, ctx, events, create, path: join(pool.target!.path, 'v'), isSettled: () => settled };
  }

  it('publishes VOLUME_CREATED before the file is durable and answers only after', async () => {
    const { backend, events, create, isSettled } = await setUp('held');
    expect(events.map((e) => EventKind[e.kind])).to.include('VOLUME_CREATED');
    await new Promise((r) => setTimeout(r, 20));
    expect(isSettled(), 'answered before the new file was durable').to.equal(false);
    backend.flushed!.resolve();
    const reply: AgentReply = await create;
    expect(reply.result?.$case).to.equal('volume');
  });

  it('reports the volume the build read of its own file, as a refresh reads it', async () => {
    const { backend, ctx, create, path } = await setUp('readback');
    backend.flushed!.resolve();
    const reply = await create;
    const readBack = backend.built?.volume;
    expect(readBack, 'a sparse raw build reads its file back').to.not.equal(undefined);
    expect(backend.rereads, 'the agent re-read a volume its build had read back').to.equal(0);
    const refreshed = await backend.refreshVol({ pool: ctx.state.pools.get('p')!.definition, runner: ctx.runner }, readBack!);
    // the atime apart: the read-back's own header read moved it, after its stat, as a refresh's read would have
    const withoutAtime = (v: VolumeDefinition) => ({ ...v, target: { ...v.target!, timestamps: { ...v.target!.timestamps!, atime: '' } } });
    expect(withoutAtime(readBack!)).to.deep.equal(withoutAtime(refreshed));
    expect(reply.result?.$case === 'volume' && reply.result.value.definition?.target?.path).to.equal(path);
  });

  it('takes the create back when the file cannot be made durable: VOLUME_DELETED, an error, no volume', async () => {
    const { backend, ctx, events, create, path } = await setUp('failed');
    backend.flushed!.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
    let failure: unknown;
    await create.catch((err: unknown) => (failure = err));
    expect(String(failure)).to.match(/EIO/);
    const volumeEvents = events.filter((e) => e.kind === EventKind.VOLUME_CREATED || e.kind === EventKind.VOLUME_DELETED).map((e) => EventKind[e.kind]);
    expect(volumeEvents).to.deep.equal(['VOLUME_CREATED', 'VOLUME_DELETED']);
    expect(ctx.state.pools.get('p')!.volumes.has('v')).to.equal(false);
    expect(existsSync(path)).to.equal(false);
  });
});
