// What a volume call (create, clone, wipe, resize) answers: the volume its operation left.
import { NotFoundError } from '../../libs/errors/errors.js';
import type { AgentReply } from '../../libs/proto/cistern/agent/v1/agent.js';
import type { Volume } from '../../libs/proto/cistern/v1/storage.js';
import { volumeView } from './catalog-view.js';
import type { CoordinatorServices } from './context.js';

/**
 * The volume after an operation: the reply's, which is the volume as the operation left it (a
 * create's rescan of the other volumes leaves it out), marked stale as reads mark it. Not the
 * cache's: when the reply is not state-complete the call has waited for its events, and by
 * then the cache may hold later ones, such as another client's delete of the volume and
 * create of another under its name (the key is the same path: it cannot tell them apart). A
 * reply without a volume (none of these operations answers so) falls back on the cache.
 */
export function volumeAfter(svc: Pick<CoordinatorServices, 'cache' | 'hosts'>, host: string, pool: string, name: string, reply: AgentReply): Volume {
  const stale = !svc.hosts.isCurrent(host);
  if (reply.result?.$case === 'volume') return volumeView(reply.result.value, stale);
  const cached = svc.cache.volume(host, pool, name);
  if (cached) return volumeView(cached, stale);
  throw new NotFoundError(`storage volume '${name}' not found in pool '${pool}' on host '${host}'`, { host, pool, volume: name });
}
