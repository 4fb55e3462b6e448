// ListHosts, GetHost: from the host registry.
import type { GetHostRequest, Host, ListHostsRequest, ListHostsResponse } from '../../../libs/proto/cistern/v1/storage.js';
import { hostView } from '../catalog-view.js';
import type { CallContext, CoordinatorServices } from '../context.js';
import { requireHost } from '../validate.js';

export async function listHosts(svc: CoordinatorServices, _ctx: CallContext, _req: ListHostsRequest): Promise<ListHostsResponse> {
  return { hosts: svc.hosts.list().map((e) => hostView(svc.cache, e)) };
}

export async function getHost(svc: CoordinatorServices, _ctx: CallContext, req: GetHostRequest): Promise<Host> {
  const id = requireHost(req.name, 'name');
  return hostView(svc.cache, svc.hosts.requireKnown(id));
}
