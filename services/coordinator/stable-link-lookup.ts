// LookupVolume by a path under /dev that no volume of the cache has: the kernel name of a
// volume whose path is a stable link (`vol-info /dev/sdb1` of a disk pool over
// /dev/disk/by-path), as libvirt's storageVolLookupByPath finds it through
// virStorageBackendStablePath. The coordinator cannot read a host's /dev, so it asks the
// host's agent which links of its running pools lead to that device, then looks those up in
// its cache.
//
// Cost: LookupVolume is a hot cached read. Only a miss asks, and only for a /dev path on an
// online host with an active pool whose target is a stable directory (pool-kinds.ts): a miss
// on a fleet of dir pools stays a cache read.
import { callAgent } from '../../libs/bus/agent-rpc.js';
import { AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import type { Volume } from '../../libs/proto/cistern/v1/storage.js';
import { DeadlineExceededError, UnavailableError, UnimplementedError } from '../../libs/errors/errors.js';
import { looksUpThroughStableLinks } from '../../libs/backends/pool-kinds.js';
import type { CallContext, CoordinatorServices } from './context.js';
import { untilHostLost } from './forward.js';

/** How long the agent may take to list its pools' stable directories: a read, not a build. */
export const STABLE_LINK_TIMEOUT_MS = 5_000;

/** Whether a host has an active pool a path lookup looks through the links of (from the cache). */
export function hasStableLinkPool(svc: CoordinatorServices, host: string): boolean {
  for (const name of svc.cache.poolsOfHost(host)) {
    const def = svc.cache.runtimePool(host, name)?.pool.definition;
    if (def && looksUpThroughStableLinks(def.type, def.target?.path)) return true;
  }
  return false;
}

/**
 * The volume whose path is a stable link leading to the device `path` names, undefined when
 * none is (or the host is offline, has no such pool, or its agent is older than the
 * operation: the lookup is then NOT_FOUND as it was before). `path` is checked and normalised.
 */
export async function volumeByStableLink(svc: CoordinatorServices, ctx: CallContext, host: string, path: string): Promise<Volume | undefined> {
  if (!path.startsWith('/dev/') || !svc.hosts.isOnline(host) || !hasStableLinkPool(svc, host)) return undefined;
  const request = AgentRequest.create({ principal: ctx.principal, op: { $case: 'resolveDevicePath', value: { path } } });
  const timeoutMs = Math.min(STABLE_LINK_TIMEOUT_MS, svc.agentTimeoutMs);
  let reply;
  try {
    reply = await untilHostLost(svc, host, 'resolveDevicePath', callAgent(svc.nc, host, request, { timeoutMs, signal: ctx.signal }));
  } catch (err) {
    // an agent older than the operation (docs/upgrades.md): no link known, as before it existed
    if (err instanceof UnimplementedError) return undefined;
    if (err instanceof DeadlineExceededError && !ctx.signal?.aborted) {
      throw new UnavailableError(
        `host '${host}' did not say within ${timeoutMs / 1000} s which volume's stable link leads to '${path}': its agent is online but not answering`,
        { host },
      );
    }
    throw err;
  }
  const links = reply.result?.$case === 'stableLinks' ? reply.result.value.links : [];
  for (const link of links) {
    const found = svc.cache.volumeByPath(host, link.path);
    if (found) return found;
  }
  return undefined;
}
