// Forwards one operation to the owning agent and makes its result visible to reads:
// the reply's state goes into the cache, and unless the reply holds the whole change
// (state_complete), the call waits until the cache has applied the reply's event_sequence
// from the stream.
import { callAgent } from '../../libs/bus/agent-rpc.js';
import { AgentReply, AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import type { VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { UnavailableError } from '../../libs/errors/errors.js';
import type { CallContext, CoordinatorServices } from './context.js';
import type { ResolvedPool } from './lookup.js';
import { secretValuesFor } from './secrets/resolve.js';
import { volumeShortName } from './cache.js';
import { hostAnswer } from './catch-up.js';

/** What the coordinator knows of the object an operation acts on, beyond the request. */
export interface ForwardContext {
  /** the cached definition of the existing volume the operation acts on (a resize: its encryption), or of a clone's source */
  volume?: VolumeDefinition;
}

export async function forward(
  svc: CoordinatorServices,
  ctx: CallContext,
  host: string,
  request: Partial<AgentRequest>,
  known: ForwardContext = {},
): Promise<AgentReply> {
  svc.hosts.requireOnline(host);
  const full = AgentRequest.fromPartial({ ...request, principal: ctx.principal, requestId: ctx.requestId });
  // fromPartial keeps oneof values as given; make sure op survives
  full.op = request.op;
  // secret values (CHAP, LUKS) for this one operation only; never logged
  full.secrets = await secretValuesFor(svc.secrets, full, known.volume);
  const started = Date.now();
  // a cancelled call (client cancel, deadline) tells the agent to stop the work
  const answered = callAgent(svc.nc, host, full, { timeoutMs: svc.agentTimeoutMs, signal: ctx.signal }).catch((err: unknown) => {
    throw hostAnswer(err);
  });
  const reply = await untilHostLost(svc, host, full.op?.$case ?? '', answered);
  applyReply(svc, host, reply);
  // a reply holding the whole change is in the cache now; else wait for its events
  if (!reply.stateComplete) await waitApplied(svc, ctx, reply.eventSequence);
  ctx.log.debug('agent answered', { host, op: request.op?.$case, ms: Date.now() - started, seq: reply.eventSequence });
  return reply;
}

/**
 * An operation on a pool this coordinator resolved, sent with what the agent needs of it:
 * its definition and its catalog flags (a pool the agent does not run is known to it only so).
 */
export function forwardToPool(
  svc: CoordinatorServices,
  ctx: CallContext,
  p: ResolvedPool,
  op: AgentRequest['op'],
  more: Partial<AgentRequest> = {},
  known: ForwardContext = {},
): Promise<AgentReply> {
  return forward(svc, ctx, p.ref.host, { pool: p.definition, persistent: p.pool.persistent, autostart: p.pool.autostart, ...more, op }, known);
}

/**
 * The agent's answer, or UNAVAILABLE as soon as the host goes offline or its agent
 * restarts (killed mid-operation): the call fails then, not after the agent timeout.
 */
export async function untilHostLost<T>(svc: CoordinatorServices, host: string, op: string, work: Promise<T>): Promise<T> {
  let stop: (() => void) | undefined;
  const lost = new Promise<never>((_, reject) => {
    stop = svc.hosts.watchLoss(host, (why) => reject(hostLostError(host, op, why)));
  });
  work.catch(() => undefined);
  lost.catch(() => undefined);
  try {
    return await Promise.race([work, lost]);
  } finally {
    stop?.();
  }
}

/**
 * For streams (upload, download), which wait on the agent chunk by chunk: a signal that
 * aborts with the same UNAVAILABLE as untilHostLost when the host goes offline or its
 * agent restarts, or with `call`'s reason when the client cancels. `stop` ends the watch.
 * Checks the host is online first: a loss between that check and the watch is not missed.
 */
export function hostLossSignal(
  svc: CoordinatorServices,
  host: string,
  op: string,
  call: AbortSignal,
  outcome?: string,
): { signal: AbortSignal; stop(): void } {
  svc.hosts.requireOnline(host);
  const lost = new AbortController();
  const stop = svc.hosts.watchLoss(host, (why) => lost.abort(hostLostError(host, op, why, outcome)));
  return { signal: AbortSignal.any([call, lost.signal]), stop };
}

function hostLostError(host: string, op: string, why: string, outcome = "the operation's outcome is in the host's next full sync"): UnavailableError {
  return new UnavailableError(`host '${host}' did not finish '${op}': ${why}; ${outcome}`, { host });
}

/** Waits (bounded) until the cache has applied `seq`; a slow stream delays, never fails, the answer. */
export async function waitApplied(svc: CoordinatorServices, ctx: CallContext, seq: bigint): Promise<void> {
  if (!seq) return;
  const ok = await svc.cache.waitForSequence(seq, svc.applyTimeoutMs);
  if (!ok) ctx.log.warn('event not applied in time; answering from the reply', { seq, applied: svc.cache.appliedSequence });
}

export function applyReply(svc: CoordinatorServices, host: string, reply: AgentReply): void {
  const result = reply.result;
  // revisions order these against the same states arriving later as events
  if (reply.poolState) svc.cache.applyPool(host, reply.poolState);
  const removed = reply.removedVolume;
  if (removed?.pool) svc.cache.removeVolume(host, removed.pool, volumeShortName(removed), removed.revision);
  if (result?.$case === 'pool') svc.cache.applyPool(host, result.value);
  if (result?.$case === 'volume' && result.value.pool) svc.cache.applyVolume(host, result.value.pool, result.value);
  for (const v of reply.volumes) if (v.pool) svc.cache.applyVolume(host, v.pool, v);
}
