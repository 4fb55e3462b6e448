// LookupVolume by a /dev path the coordinator's cache does not hold (a kernel name such as
// /dev/sdb1 of a volume whose path is a /dev/disk/by-path link): the links of this host's
// running pools that lead to the same device, as libvirt's storageVolLookupByPath finds them
// with virStorageBackendStablePath. A read: no lock, nothing stored, nothing published.
import type { AgentOpValue } from '../../../libs/bus/agent-rpc.js';
import { AgentReply, type StableLink } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';
import { checkAbsolutePath, printable } from '../../../libs/api/names.js';
import { hostRoots } from '../../../libs/backends/host-roots.js';
import { looksUpThroughStableLinks } from '../../../libs/backends/pool-kinds.js';
import { deviceIdentity, stableLinksTo } from '../../../libs/backends/stable-links.js';
import type { AgentContext } from '../context.js';

export async function resolveDevicePath(ctx: AgentContext, op: AgentOpValue<'resolveDevicePath'>): Promise<AgentReply> {
  // checked again here: the agent runs as root and takes no path on trust, not even a coordinator's
  const path = checkAbsolutePath(op.path, 'path');
  if (!path.startsWith('/dev/')) {
    throw new InvalidArgumentError('path', `'${printable(path)}' is not under /dev: only a device path is looked for among the pools' stable links`);
  }
  const links: StableLink[] = [];
  const devRoot = hostRoots().dev;
  const identity = await deviceIdentity(path, devRoot);
  if (identity === undefined) return stableLinksReply(links);
  // by name, so that every coordinator answers with the same pool's volume (libvirt: the first active pool that holds it)
  const pools = [...ctx.state.pools.values()]
    .map((p) => p.definition)
    .filter((d) => looksUpThroughStableLinks(d.type, d.target?.path))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const def of pools) {
    for (const link of await stableLinksTo(def.target!.path, identity, devRoot)) links.push({ pool: def.name, path: link });
  }
  return stableLinksReply(links);
}

function stableLinksReply(links: StableLink[]): AgentReply {
  return AgentReply.create({ result: { $case: 'stableLinks', value: { links } } });
}
