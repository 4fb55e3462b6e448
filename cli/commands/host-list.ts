// host-list: the fleet, from the coordinator's host registry.
import type { Host } from '../../libs/proto/cistern/v1/storage.js';
import { flag } from '../args.js';
import { JSON_OPTION, type Command } from '../command.js';
import { toJson } from '../format/json.js';
import { sortByName } from '../format/order.js';
import { poolTypeName } from '../format/pool.js';
import { eventTimestamp } from '../format/event.js';
import { renderTable } from '../format/table.js';
import { hostId, listHosts } from '../resolve.js';

export function hostJson(h: Host): Record<string, unknown> {
  return {
    name: hostId(h),
    resource: h.name,
    hostname: h.hostname,
    online: h.online,
    agentVersion: h.agentVersion,
    poolTypes: h.poolTypes.map(poolTypeName),
    pools: h.poolCount,
    lastSeen: h.lastSeen ? h.lastSeen.toISOString() : null,
    stale: h.stale,
    staleSince: h.staleSince ? h.staleSince.toISOString() : null,
    offlineReason: h.offlineReason || null,
  };
}

/**
 * The State column: online or offline; `unknown` when the coordinator is cut off from the bus
 * and cannot tell (its last word stays in --json: online, stale, staleSince).
 */
function hostState(h: Host): string {
  if (h.stale) return 'unknown';
  return h.online ? 'online' : 'offline';
}

export function renderHostList(hosts: Host[], details: boolean, quiet: boolean): string {
  const header = ['Name', 'Hostname', 'State', 'Pools', 'Agent version'];
  // the reason last: a script splitting the line on blanks keeps the columns before it
  if (details) header.push('Last seen', 'Pool types', 'Offline reason');
  return renderTable(
    header,
    hosts.map((h) => {
      const row = [hostId(h), h.hostname, hostState(h), String(h.poolCount), h.agentVersion];
      if (details) row.push(h.lastSeen ? eventTimestamp(h.lastSeen) : '-', h.poolTypes.map(poolTypeName).join(','), h.offlineReason || '-');
      return row;
    }),
    quiet,
  );
}

export const hostList: Command = {
  name: 'host-list',
  help: 'list the hosts of the fleet',
  description: 'Returns list of the fleet\'s hosts (Cistern).',
  options: [{ name: 'details', type: 'bool', help: 'also show last heartbeat, supported pool types and why a host is offline' }, JSON_OPTION],
  async run(ctx) {
    const hosts = sortByName(await listHosts(ctx.api()), hostId);
    if (flag(ctx.opts, 'json')) {
      ctx.setMachineOutput();
      ctx.print(toJson(hosts.map(hostJson)));
      return;
    }
    ctx.print(renderHostList(hosts, flag(ctx.opts, 'details'), ctx.quiet));
  },
};
