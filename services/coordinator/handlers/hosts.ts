// ListHosts, GetHost: from the host registry. DeleteHost: forgets a host that is gone.
// PingHost: a round trip to the host's agent that does nothing there.
import { callAgent } from '../../../libs/bus/agent-rpc.js';
import {
  AbortedError,
  DeadlineExceededError,
  FailedPreconditionError,
  NotFoundError,
  UnavailableError,
} from '../../../libs/errors/errors.js';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import {
  EventKind,
  Host,
  type DeleteHostRequest,
  type DeleteHostResponse,
  type GetHostRequest,
  type ListHostsRequest,
  type ListHostsResponse,
  type PingHostRequest,
  type PingHostResponse,
} from '../../../libs/proto/cistern/v1/storage.js';
import { hostName, poolName } from '../../../libs/api/resource-names.js';
import type { CatalogEntry } from '../../../libs/bus/catalog.js';
import { compare } from '../cache.js';
import { untilHostLost } from '../forward.js';
import { hostView, undefinedPoolView } from '../catalog-view.js';
import type { CallContext, CoordinatorServices } from '../context.js';
import { publishHostEvent, publishPoolEvent } from '../coordinator-events.js';
import { MISSED_HEARTBEATS, type HostEntry } from '../hosts/entry.js';
import { pageOf } from '../pagination.js';
import { checkRequestId, requireHost } from '../validate.js';
import { reportedHost } from '../hosts/reported.js';

export async function listHosts(svc: CoordinatorServices, _ctx: CallContext, req: ListHostsRequest): Promise<ListHostsResponse> {
  const page = pageOf(svc.hosts.list(), (e) => e.host.hostId, req, 'hosts');
  const staleSince = svc.hosts.staleSince;
  return { hosts: page.items.map((e) => hostView(svc.cache, e, staleSince)), nextPageToken: page.nextPageToken };
}

export async function getHost(svc: CoordinatorServices, _ctx: CallContext, req: GetHostRequest): Promise<Host> {
  const id = requireHost(req.name, 'name');
  return hostView(svc.cache, svc.hosts.requireKnown(id), svc.hosts.staleSince);
}

/** How long a ping waits for the agent: an agent that takes longer is not answering (UNAVAILABLE). */
export const PING_TIMEOUT_MS = 5_000;

/**
 * PingHost: the agent's Ping, through the bus as every operation goes, answered by the agent
 * without touching storage. The round trip is timed here, so a client can tell its own hop to
 * the coordinator from the coordinator's to the agent.
 */
export async function pingHost(svc: CoordinatorServices, ctx: CallContext, req: PingHostRequest): Promise<PingHostResponse> {
  const host = requireHost(req.name, 'name');
  svc.hosts.requireOnline(host);
  const request = AgentRequest.create({ principal: ctx.principal, requestId: ctx.requestId, op: { $case: 'ping', value: {} } });
  const timeoutMs = Math.min(PING_TIMEOUT_MS, svc.agentTimeoutMs);
  const started = process.hrtime.bigint();
  let reply;
  try {
    reply = await untilHostLost(svc, host, 'ping', callAgent(svc.nc, host, request, { timeoutMs, signal: ctx.signal }));
  } catch (err) {
    // the agent's own slowness, not the client's deadline (that one aborts the call instead)
    if (err instanceof DeadlineExceededError && !ctx.signal?.aborted) {
      throw new UnavailableError(`host '${host}' did not answer its ping within ${timeoutMs / 1000} s: its agent is online but not answering`, { host });
    }
    throw err;
  }
  const nanos = process.hrtime.bigint() - started;
  const pong = reply.result?.$case === 'pong' ? reply.result.value : undefined;
  return {
    name: hostName(host),
    hostname: reportedHost({ hostname: pong?.hostname ?? '' }).hostname,
    agentRoundTrip: { seconds: nanos / 1_000_000_000n, nanos: Number(nanos % 1_000_000_000n) },
  };
}

/** What DeleteHost knows of a host when it decides: the registry's word and the catalog's. */
export interface HostDeletionFacts {
  host: string;
  /** the registry's entry (undefined: unknown to it) */
  entry: HostEntry | undefined;
  /** its agent heartbeats (online, or back and waiting for its full sync) */
  alive: boolean;
  /** how long this coordinator has itself seen it gone, and how long it must (HostRegistry.goneFor; undefined: unknown to it) */
  gone?: { goneMs: number; neededMs: number; syncedSinceOffline: boolean };
  /** pool names the catalog holds for it */
  catalogPools: string[];
  force: boolean;
}

/** A duration in a message: seconds, one decimal. */
function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Pool names in a message: the first few, and how many more. */
function someNames(names: string[], max = 10): string {
  const sorted = [...names].sort();
  return sorted.length <= max ? sorted.join(', ') : `${sorted.slice(0, max).join(', ')} and ${sorted.length - max} more`;
}

/**
 * DeleteHost's rules, before anything changes: NOT_FOUND for a host neither the registry nor
 * the catalog knows; FAILED_PRECONDITION while its agent is alive (it would register the host
 * again at its next heartbeat), and while the catalog holds pools for it, unless force.
 * A host the registry no longer knows but with pools left in the catalog (a deletion
 * interrupted, a pool defined on another coordinator while this one deleted the host) can
 * be deleted, so its pools can always be removed.
 */
export function checkHostDeletable(f: HostDeletionFacts): void {
  const { host } = f;
  if (!f.entry && f.catalogPools.length === 0) {
    throw new NotFoundError(`host '${host}' is not known: no agent with this host id has reported, and the catalog has no pools for it`, { host });
  }
  if (f.alive) {
    const seen = f.entry?.host.lastSeen?.toISOString() ?? 'never';
    const state = f.entry?.online ? 'online' : 'back: its agent heartbeats again';
    throw new FailedPreconditionError(
      `host '${host}' is ${state} (last seen ${seen}); stop its agent first: a running agent registers the host again at its next heartbeat`,
      { host, lastSeen: seen },
    );
  }
  if (f.gone && f.gone.goneMs < f.gone.neededMs) {
    // a coordinator that just started loads a host recorded offline as offline, though its
    // agent may run and not have heartbeated to it yet: only a host this coordinator has seen
    // gone for the missed heartbeats that mark a host offline is surely gone
    const { goneMs, neededMs } = f.gone;
    const retryAfterMs = neededMs - goneMs;
    const why = f.gone.syncedSinceOffline
      ? `a full sync of it arrived ${secs(goneMs)} ago, after it went offline: its agent may be running`
      : `this coordinator has seen it offline for ${secs(goneMs)} only (it may have just started, or the host just went offline) and its agent may still be running`;
    throw new FailedPreconditionError(
      // the wait counts from when the host went offline (itself that many silent intervals
      // after its last heartbeat), not from the last heartbeat: said otherwise, a caller who
      // waited that long after stopping the agent is refused by a rule it seems to meet
      `host '${host}' is not known to be gone yet: ${why}; a host is gone once this coordinator has seen it offline, with no heartbeat and no sync, for ${secs(neededMs)} (${MISSED_HEARTBEATS} heartbeat intervals): retry in ${secs(retryAfterMs)}`,
      { host, retryAfterMs: String(retryAfterMs) },
    );
  }
  if (f.catalogPools.length > 0 && !f.force) {
    const n = f.catalogPools.length;
    throw new FailedPreconditionError(
      `host '${host}' still has ${n} persistent pool${n === 1 ? '' : 's'} in the catalog (${someNames(f.catalogPools)}); undefine ${n === 1 ? 'it' : 'them'} first, or delete the host with force to remove ${n === 1 ? 'its definition' : 'their definitions'} too`,
      // '/' cannot appear in a pool name (a resource name's separator), ',' can
      { host, pools: [...f.catalogPools].sort().join('/') },
    );
  }
}

/**
 * DeleteHost: the host's record goes from the catalog bucket first (every coordinator forgets
 * the host, with what it cached of it, and a coordinator started later does not load it);
 * then, with force, its pool definitions, including any defined while this ran. Then the
 * events: POOL_UNDEFINED per removed pool, HOST_DELETED. The host itself is not touched: it is
 * offline. A retry with the same request id gets this answer again (request-results.ts).
 */
export async function deleteHost(svc: CoordinatorServices, ctx: CallContext, req: DeleteHostRequest): Promise<DeleteHostResponse> {
  const host = requireHost(req.name, 'name');
  checkRequestId(req.requestId);
  const entry = svc.hosts.get(host);
  const catalogPools = await svc.catalog.list(host);
  checkHostDeletable({ host, entry, alive: svc.hosts.isAlive(host), gone: svc.hosts.goneFor(host), catalogPools: catalogPools.map((e) => e.pool), force: req.force });
  const last: Host = entry ? { ...hostView(svc.cache, entry), online: false } : Host.fromPartial({ name: hostName(host), hostId: host });

  await svc.hosts.delete(host);
  const removed = req.force ? (await removeCatalogPools(svc, host)).sort((x, y) => compare(x.pool, y.pool)) : [];
  ctx.log.info('host deleted', { host, removedPools: removed.length });

  for (const e of removed) await publishPoolEvent(svc, ctx, EventKind.POOL_UNDEFINED, host, e.pool, undefinedPoolView(host, e.pool, e.value));
  await publishHostEvent(svc, ctx, EventKind.HOST_DELETED, last);
  return { removedPools: removed.map((e) => poolName(host, e.pool)) };
}

/** Removes every pool definition of the host from the catalog (compare-and-swap; a pool changed meanwhile is read again). */
async function removeCatalogPools(svc: CoordinatorServices, host: string): Promise<CatalogEntry[]> {
  const removed: CatalogEntry[] = [];
  for (let pass = 0; pass < 10; pass++) {
    const left = await svc.catalog.list(host);
    if (left.length === 0) return removed;
    for (const e of left) {
      try {
        await svc.catalog.delete(host, e.pool, e.revision);
      } catch (err) {
        if (err instanceof AbortedError) continue; // changed (or removed) meanwhile: the next pass sees it
        throw err;
      }
      svc.cache.applyCatalog(host, e.pool, undefined, e.revision + 1);
      removed.push(e);
    }
  }
  throw new AbortedError(`the pools of host '${host}' kept changing while they were removed; retry`, { host });
}
