// host-delete: forgets a host that is gone for good (DeleteHost). Cistern's own command:
// virsh has no hosts. The host's agent must be stopped (a running agent registers the host
// again at its next heartbeat); with pools still defined on the host, --force removes their
// definitions too. An agent started later with that host id registers it as a new host.
import { DeleteHostRequest } from '../../libs/proto/cistern/v1/storage.js';
import { hostName, parseHostName, parsePoolName } from '../../libs/api/resource-names.js';
import { flag, req } from '../args.js';
import type { Command } from '../command.js';
import { attempt } from '../errors.js';

export const hostDelete: Command = {
  name: 'host-delete',
  help: 'forget a host whose agent is gone',
  description: 'Its agent must be stopped. With pools still defined on it, --force removes their definitions too. An agent started later with this host id registers it again, as a new host.',
  options: [
    { name: 'host', type: 'string', required: true, nonEmpty: true, help: 'host id (or hosts/HOST)' },
    { name: 'force', type: 'bool', help: 'also remove the definitions of the pools the host still has' },
  ],
  async run(ctx) {
    const host = parseHostName(req(ctx.opts, 'host'), 'host');
    const api = ctx.api();
    const res = await attempt(`Failed to delete host ${host}`, () =>
      api.deleteHost(DeleteHostRequest.create({ name: hostName(host), force: flag(ctx.opts, 'force') })));
    for (const name of res.removedPools) {
      const ref = parsePoolName(name, 'removed_pools');
      ctx.printExtra(`Pool ${ref.host}/${ref.pool} has been undefined\n`);
    }
    ctx.printExtra(`Host ${host} deleted\n`);
  },
};
