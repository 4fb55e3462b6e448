// What a volume call (create, clone, wipe, resize) answers: the volume its operation left.
import { NotFoundError } from '../../libs/errors/errors.js';
import type { AgentReply } from '../../libs/proto/cistern/agent/v1/agent.js';
import type { Volume } from '../../libs/proto/cistern/v1/storage.js';
import { volumeView } from './catalog-view.js';
import type { CoordinatorServices } from './context.js';

/** The volume after an operation: the cache's (events applied), else the reply's. */
export function volumeAfter(svc: Pick<CoordinatorServices, 'cache' | 'hosts'>, host: string, pool: string, name: string, reply: AgentReply): Volume {
  const cached = svc.cache.volume(host, pool, name);
  if (cached) return volumeView(cached, !svc.hosts.isCurrent(host));
  if (reply.result?.$case === 'volume') return reply.result.value;
  throw new NotFoundError(`storage volume '${name}' not found in pool '${pool}' on host '${host}'`, { host, pool, volume: name });
}
