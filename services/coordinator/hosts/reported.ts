// What an agent says of its host (its hostname, its version, the pool types it has backends
// for) reaches every operator's host-list and ListHosts. An agent is trusted with its host's
// storage, not with their terminals: a compromised or broken one (or a host named oddly) must
// not put terminal escapes, bidi controls or megabytes there. So those fields are kept as
// printable text of bounded length, and the pool types as the known ones, once each.
import { printable } from '../../../libs/api/names.js';
import { PoolType, type Host } from '../../../libs/proto/cistern/v1/storage.js';

/** A hostname is at most 253 characters (RFC 1035); uname's nodename at most 64. */
const MAX_HOSTNAME = 253;
const MAX_AGENT_VERSION = 64;

const KNOWN_POOL_TYPES = new Set(Object.values(PoolType).filter((v): v is PoolType => typeof v === 'number' && v > 0 && v !== PoolType.UNRECOGNIZED));

/** `info` with its agent-given text escaped and bounded, and its pool types known and distinct. */
export function reportedHost<T extends Partial<Host>>(info: T): T {
  return {
    ...info,
    ...(info.hostname !== undefined ? { hostname: printable(info.hostname, MAX_HOSTNAME) } : {}),
    ...(info.agentVersion !== undefined ? { agentVersion: printable(info.agentVersion, MAX_AGENT_VERSION) } : {}),
    ...(info.poolTypes !== undefined ? { poolTypes: [...new Set(info.poolTypes)].filter((t) => KNOWN_POOL_TYPES.has(t)) } : {}),
  };
}
