// A RESOURCE_EXHAUSTED from an operation on a pool says which pool ran out and how much
// space it has left: the backend's own message names a file or a command ("fallocate
// failed: No space left on device"), and a user of a fleet needs to know which host and pool
// to free space on. The space is read after the failure (a failed create or clone has
// removed its file by then; an upload leaves what it wrote, as libvirt's does).
import type { AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import { asCisternError, ResourceExhaustedError } from '../../libs/errors/errors.js';
import type { AgentContext } from './context.js';
import { filesystemSizesSync } from './pool-sizes.js';
import { onLocalFilesystem } from '../../libs/backends/pool-kinds.js';

/** `err` as thrown, or for a RESOURCE_EXHAUSTED of a known pool, the same naming the pool, its host and its free space. */
export function explainNoSpace(ctx: AgentContext, request: AgentRequest, err: unknown): unknown {
  const e = asCisternError(err);
  const name = request.pool?.name;
  // not the pool's space (the agent's own root is full), or said already
  if (e.code !== 'RESOURCE_EXHAUSTED' || !name || e.details.available !== undefined || e.details.agentRoot !== undefined) return err;
  const pool = ctx.state.getPool(name);
  if (!pool) return err;
  let available = pool.runtime.available;
  let capacity = pool.runtime.capacity;
  const path = pool.definition.target?.path;
  if (onLocalFilesystem(pool.definition.type) && path) {
    try {
      ({ available, capacity } = filesystemSizesSync(path));
    } catch {
      // the sizes last known
    }
  }
  return new ResourceExhaustedError(`storage pool '${name}' on host '${ctx.host}' has ${available} of ${capacity} bytes available: ${e.message}`, {
    ...e.details,
    pool: name,
    host: ctx.host,
    available: String(available),
    capacity: String(capacity),
  });
}
