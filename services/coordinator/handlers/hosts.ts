// ListHosts, GetHost: from the host registry.
import type { GetHostRequest, Host, ListHostsRequest, ListHostsResponse } from '../../../libs/proto/cistern/v1/storage.js';
import { hostView } from '../catalog-view.js';
import type { CallContext, CoordinatorServices } from '../context.js';
import { pageOf } from '../pagination.js';
import { requireHost } from '../validate.js';

export async function listHosts(svc: CoordinatorServices, _ctx: CallContext, req: ListHostsRequest): Promise<ListHostsResponse> {
  const page = pageOf(svc.hosts.list(), (e) => e.host.hostId, req, 'hosts');
  return { hosts: page.items.map((e) => hostView(svc.cache, e)), nextPageToken: page.nextPageToken };
}

export async function getHost(svc: CoordinatorServices, _ctx: CallContext, req: GetHostRequest): Promise<Host> {
  const id = requireHost(req.name, 'name');
  return hostView(svc.cache, svc.hosts.requireKnown(id));
}
