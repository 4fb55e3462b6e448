// A create's journal entry ends as soon as the volume is complete, before its VOLUME_CREATED
// is published: an agent that dies between the two keeps the volume (its next sync reports
// it) instead of undoing at boot a create the stream has already announced (review h7).
import { expect } from 'chai';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { EventKind, PoolDefinition, PoolType } from '../../../libs/proto/cistern/v1/storage.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import type { AgentContext } from '../../../services/agent/context.js';
import { dispatch } from '../../../services/agent/agent.js';
import { activatePool } from '../../../services/agent/handlers/pool-ops.js';
import { inProcessAgent } from '../../support/agent-context.js';
import { useTempDir } from '../../support/index.js';

describe('create journal and the create event', () => {
  const scratch = useTempDir('cistern-journal-order-');

  for (const kind of ['create', 'clone'] as const) {
    it(`${kind}: the journal entry ends before VOLUME_CREATED is published`, async () => {
      const { ctx } = inProcessAgent({ runner: new RecordingRunner() });
      const order: string[] = [];
      ctx.events = { publish: (e) => void order.push(`event ${EventKind[e.kind]}`), flush: async () => 1n };
      ctx.journal = {
        begin: async (entry: { operation: string }) => {
          order.push(`journal begin ${entry.operation}`);
          return async () => void order.push('journal end');
        },
        // (entries an earlier run left for the pool: none)
        takeWaiting: () => [],
      } as unknown as AgentContext['journal'];
      const pool = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'p', target: { path: join(scratch.path, kind) } });
      mkdirSync(join(scratch.path, kind));
      await activatePool(ctx, pool, { persistent: false, autostart: false }, { principal: 't', requestId: '' });
      const create = (name: string) =>
        AgentRequest.fromPartial({ pool, op: { $case: 'createVolume', value: { parent: 'hosts/h/pools/p', definition: { name, capacity: 1048576n, target: { format: 'raw' } } } } });
      await dispatch(ctx, 'createVolume', create('source'));
      order.length = 0;
      if (kind === 'create') {
        await dispatch(ctx, 'createVolume', create('v'));
      } else {
        await dispatch(ctx, 'cloneVolume', AgentRequest.fromPartial({ pool, op: { $case: 'cloneVolume', value: { parent: 'hosts/h/pools/p', source: 'hosts/h/pools/p/volumes/source', definition: { name: 'v' } } } }));
      }
      expect(order.filter((o) => !o.startsWith('event POOL') && o !== 'event OPERATION_PROGRESS')).to.deep.equal([`journal begin ${kind}`, 'journal end', 'event VOLUME_CREATED']);
    });
  }
});
