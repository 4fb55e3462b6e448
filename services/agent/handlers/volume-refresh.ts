// GetVolume / GetVolumeXML with `refresh`: one volume read again on its host, as libvirt's
// vol-info and vol-dumpxml do (storageVolGetInfoFlags calls the backend's refreshVol), so that
// sizes a guest or another tool changed since the last refresh or operation show. A change
// found is stored and published as VOLUME_CHANGED, as a pool refresh publishes it.
import type { AgentOpValue } from '../../../libs/bus/agent-rpc.js';
import type { AgentReply, AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { EventKind } from '../../../libs/proto/cistern/v1/storage.js';
import { AbortedError } from '../../../libs/errors/errors.js';
import { sameVolume } from '../state.js';
import { keepUnprobedFields } from '../probed-fields.js';
import { actorOf, activePool, backendFor, flushEvents, poolContext, requestPool, volumeOfResource, type AgentContext } from '../context.js';
import { volumeReply } from './reply.js';
import { commitVolumeState, existingVolume } from './volume-ops.js';
import { inRereadTurn } from '../reread-turns.js';

export async function refreshVolume(ctx: AgentContext, request: AgentRequest, op: AgentOpValue<'refreshVolume'>): Promise<AgentReply> {
  const def = requestPool(request);
  const name = volumeOfResource(ctx, op.name, def.name, 'name');
  const pool = activePool(ctx, def.name);
  const backend = backendFor(ctx, pool.definition.type);
  existingVolume(pool, name);
  // the volume as stored when answering: a re-read before this one may have stored a newer state
  const known = (): AgentReply => volumeReply(ctx.state.volumeMessage(def.name, existingVolume(pool, name)), 0n, ctx.state.poolMessage(pool));
  // a type whose volumes are only known from a whole-pool scan answers with what that scan read
  if (!backend.refreshVol) return known();
  const refreshVol = backend.refreshVol.bind(backend);
  let release: () => void;
  try {
    // beside other readers (a download); not under a writer, whose commit publishes the state
    // it leaves, which a read taken now could only overwrite with an older one
    release = ctx.locks.acquireVolume(def.name, name, 'refresh', 'shared');
  } catch (err) {
    if (err instanceof AbortedError) return known();
    throw err;
  }
  try {
    // one re-read of the volume at a time (reread-turns.ts); the shared lock keeps writers out
    return await inRereadTurn(pool, name, async () => {
      const vol = existingVolume(pool, name);
      const actor = actorOf(request);
      const pc = poolContext(ctx, pool.definition, actor);
      // libvirt's refreshVol updates the sizes; what only a probe learns waits for a pool refresh
      const live = keepUnprobedFields(await refreshVol(pc, vol.definition), vol.definition);
      if (sameVolume(vol.definition, live)) return known();
      const done = await commitVolumeState(ctx, pool, backend, pc, live, EventKind.VOLUME_CHANGED, actor, 'sizes', live);
      ctx.log.info('volume re-read changed', { pool: def.name, volume: name, principal: actor.principal });
      return volumeReply(done.volume, await flushEvents(ctx), done.pool);
    });
  } finally {
    release();
  }
}
