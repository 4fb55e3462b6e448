// Events the coordinator itself makes for a call: catalog changes (POOL_DEFINED /
// POOL_UNDEFINED) and host deletions (HOST_DELETED). HOST_ONLINE / HOST_OFFLINE are the host
// registry's (hosts.ts).
import { Event, EventKind, type Host, type Pool } from '../../libs/proto/cistern/v1/storage.js';
import type { CallContext, CoordinatorServices } from './context.js';
import { waitApplied } from './forward.js';

export async function publishPoolEvent(
  svc: CoordinatorServices,
  ctx: CallContext,
  kind: EventKind.POOL_DEFINED | EventKind.POOL_UNDEFINED,
  host: string,
  pool: string,
  state: Pool | undefined,
): Promise<void> {
  const event = Event.fromPartial({
    kind,
    host,
    pool,
    time: new Date(),
    principal: ctx.principal,
    requestId: ctx.requestId,
    poolState: state,
  });
  try {
    const seq = await svc.publisher.publishNow(event);
    await waitApplied(svc, ctx, seq);
  } catch (err) {
    // the catalog change is done; a lost event must not turn it into a failure
    ctx.log.warn('could not publish pool event', { host, pool, kind: EventKind[kind], err });
  }
}

export async function publishHostEvent(svc: CoordinatorServices, ctx: CallContext, kind: EventKind.HOST_DELETED, state: Host): Promise<void> {
  const event = Event.fromPartial({
    kind,
    host: state.hostId,
    time: new Date(),
    principal: ctx.principal,
    requestId: ctx.requestId,
    hostState: state,
  });
  try {
    const seq = await svc.publisher.publishNow(event);
    await waitApplied(svc, ctx, seq);
  } catch (err) {
    // the deletion is done; a lost event must not turn it into a failure
    ctx.log.warn('could not publish host event', { host: state.hostId, kind: EventKind[kind], err });
  }
}
