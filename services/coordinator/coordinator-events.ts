// Events the coordinator itself makes for a call: catalog changes (POOL_DEFINED /
// POOL_UNDEFINED) and host deletions (HOST_DELETED). HOST_ONLINE / HOST_OFFLINE are the host
// registry's (hosts.ts).
//
// The change is done when its event is published: a stream that refuses the event (full, no
// leader for a moment) must not turn a done change into a failed call. Nothing else would
// ever publish it, though (no agent sync carries a catalog change), so a refused event is
// published again in the background until the stream takes it, under one duplicate id so
// that an ack lost on the way stores no second copy. A call with a request id publishes under an
// id named by the call, so that its retry through another coordinator stores no second copy
// either (catalog-retries.ts).
import { randomUUID } from 'node:crypto';
import { Event, EventKind, type Host, type Pool } from '../../libs/proto/cistern/v1/storage.js';
import type { CallContext, CoordinatorServices } from './context.js';
import { catalogEventId, publishedSince } from './catalog-retries.js';
import { waitApplied } from './forward.js';
import { publishUntilStored } from './reconcile.js';

export async function publishPoolEvent(
  svc: CoordinatorServices,
  ctx: CallContext,
  kind: EventKind.POOL_DEFINED | EventKind.POOL_UNDEFINED,
  host: string,
  pool: string,
  state: Pool | undefined,
  opts: { revision?: number; retryOfWriteAt?: Date } = {},
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
  // the retry of a call whose coordinator died after its catalog change: publish the call's event
  // unless that coordinator did (catalog-retries.ts)
  if (opts.retryOfWriteAt && ctx.requestId && (await publishedSince(svc.nc, kind, host, pool, ctx.principal, ctx.requestId, opts.retryOfWriteAt))) return;
  await publishUntilTaken(svc, ctx, event, ctx.requestId ? catalogEventId(kind, ctx.principal, ctx.requestId, host, pool, opts.revision) : undefined);
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
  await publishUntilTaken(svc, ctx, event);
}

/** Publishes the event and waits for it; when the stream refuses it, answers anyway and keeps publishing it in the background. */
async function publishUntilTaken(svc: CoordinatorServices, ctx: CallContext, event: Event, callId?: string): Promise<void> {
  const msgID = callId ?? `coordinator-event:${randomUUID()}`;
  const attempt = (): Promise<bigint> => svc.publisher.publishNow(event, msgID);
  try {
    await waitApplied(svc, ctx, await attempt());
  } catch (err) {
    ctx.log.warn('event not stored; publishing it again in the background', { host: event.host, pool: event.pool, kind: EventKind[event.kind], err });
    void publishUntilStored(attempt, [event], ctx.log, { what: `${EventKind[event.kind]} event` });
  }
}
