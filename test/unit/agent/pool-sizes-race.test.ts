// Two volume operations on a logical pool finishing together: each adjusts the pool's sizes
// by what it took (libvirt's accounting), and neither adjustment is lost.
import { expect } from 'chai';
import { PoolDefinition, PoolType } from '../../../libs/proto/cistern/v1/storage.js';
import { LogicalBackend } from '../../../libs/backends/logical.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { refreshPoolSizes } from '../../../services/agent/handlers/volume-ops.js';
import { inProcessAgent } from '../../support/agent-context.js';

describe('agent pool sizes: adjustments of operations side by side', () => {
  it('two creates whose re-reads finish in either order both count (no lost update)', async () => {
    const backend = new LogicalBackend();
    const runner = new RecordingRunner({ strict: true });
    const { ctx } = inProcessAgent({ runner, backend });
    const definition = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_LOGICAL, name: 'lvm', source: { name: 'vg' }, target: { path: '/dev/vg' } });
    const pool = ctx.state.addPool(definition, { persistent: true, autostart: false }, { capacity: 100n, allocation: 10n, available: 90n, devices: [] });
    let first!: (n: bigint) => void;
    let second!: (n: bigint) => void;
    const a = refreshPoolSizes(ctx, pool, backend, { pool: definition, runner }, new Promise<bigint>((r) => (first = r)));
    const b = refreshPoolSizes(ctx, pool, backend, { pool: definition, runner }, new Promise<bigint>((r) => (second = r)));
    second(8n);
    first(16n);
    await Promise.all([a, b]);
    expect(pool.runtime).to.deep.include({ capacity: 100n, allocation: 34n, available: 66n });
  });
});
