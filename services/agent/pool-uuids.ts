// The agent's half of "one uuid, one pool of a host" (services/coordinator/pool-uuids.ts):
// a coordinator checks its cache, but a transient pool created through another coordinator a
// moment ago may not be in it yet. The agent's running pools are the truth, so a transient
// create, and a define it is told of, look there too, in the pool's turn.
import { AlreadyExistsError } from '../../libs/errors/errors.js';
import type { PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import type { AgentContext } from './context.js';

/** ALREADY_EXISTS when a running pool other than `def.name` has `def`'s uuid. */
export function requireUuidFreeAmongRunning(ctx: AgentContext, def: Pick<PoolDefinition, 'name' | 'uuid'>): void {
  if (!def.uuid) return;
  for (const [other, entry] of ctx.state.pools) {
    if (other !== def.name && entry.definition.uuid === def.uuid) {
      throw new AlreadyExistsError(`pool '${other}' on host '${ctx.host}' already has uuid ${def.uuid}`, { host: ctx.host, pool: other });
    }
  }
}
