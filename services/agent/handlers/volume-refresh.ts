// GetVolume / GetVolumeXML with `refresh`: one volume read again on its host, as libvirt's
// vol-info and vol-dumpxml do (storageVolGetInfoFlags calls the backend's refreshVol), so that
// sizes a guest or another tool changed since the last refresh or operation show. A change
// found is stored and published as VOLUME_CHANGED, as a pool refresh publishes it.
//
// A read, as libvirt's (storageVolGetInfoFlags takes no in_use count of the volume): it holds
// no lock of the volume while it reads, so a delete, resize, wipe or pool stop that comes
// meanwhile goes ahead instead of failing because of it (a vol-info polled by a dashboard must
// not make an operator's vol-delete ABORTED). What such a writer stored meanwhile is newer than
// the read, which is then dropped; only the store of a change takes the shared lock, briefly.
import type { AgentOpValue } from '../../../libs/bus/agent-rpc.js';
import type { AgentReply, AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { EventKind } from '../../../libs/proto/cistern/v1/storage.js';
import { AbortedError, FailedPreconditionError } from '../../../libs/errors/errors.js';
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
  existingVolume(ctx, pool, name);
  // the volume as stored when answering (NOT_FOUND once deleted, FAILED_PRECONDITION once the
  // pool stopped): what a writer or an earlier re-read stored is at least as new as a read
  const current = (): AgentReply => {
    const now = activePool(ctx, def.name);
    return volumeReply(ctx.state.volumeMessage(def.name, existingVolume(ctx, now, name)), 0n, ctx.state.poolMessage(now));
  };
  // a type whose volumes are only known from a whole-pool scan answers with what that scan read
  if (!backend.refreshVol) return current();
  const refreshVol = backend.refreshVol.bind(backend);
  // one re-read of the volume at a time (reread-turns.ts)
  return inRereadTurn(pool, name, async () => {
    // a writer at work: its commit publishes the state it leaves, newer than a read now
    if (ctx.state.getPool(def.name) !== pool || ctx.locks.isVolumeWritten(def.name, name)) return current();
    const before = existingVolume(ctx, pool, name);
    const unchanged = (): boolean => ctx.state.getPool(def.name) === pool && pool.volumes.get(name) === before && !ctx.locks.isVolumeWritten(def.name, name);
    const actor = actorOf(request);
    const pc = poolContext(ctx, pool.definition, actor);
    let read;
    try {
      read = await refreshVol(pc, before.definition);
    } catch (err) {
      // deleted (or its pool stopped) while it was read: say that, not the failed read
      if (!unchanged()) return current();
      throw err;
    }
    if (!unchanged()) return current();
    // libvirt's refreshVol updates the sizes; what only a probe learns waits for a pool refresh.
    // The access time counts here, not in a pool refresh: asked for this volume, the answer
    // shows it as it is (a pool refresh would publish every volume a backup had read)
    const live = keepUnprobedFields(read, before.definition);
    if (sameVolume(before.definition, live, { accessTime: true })) return current();
    let release: () => void;
    try {
      // held while the change is stored and published: no writer starts in between
      release = ctx.locks.acquireVolume(def.name, name, 'refresh', 'shared');
    } catch (err) {
      // a pool start, stop, build or delete under way: what it leaves is what counts
      if (err instanceof AbortedError || err instanceof FailedPreconditionError) return current();
      throw err;
    }
    try {
      const done = await commitVolumeState(ctx, pool, backend, pc, live, EventKind.VOLUME_CHANGED, actor, 'sizes', live);
      ctx.log.info('volume re-read changed', { pool: def.name, volume: name, principal: actor.principal });
      return volumeReply(done.volume, await flushEvents(ctx), done.pool);
    } finally {
      release();
    }
  });
}
