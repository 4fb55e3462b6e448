// Request/reply between coordinator and agents with structured errors.
// The operation is the subject's last token (AgentRequest.op.$case, capitalised).
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { AgentReply, AgentRequest, AgentError } from '../proto/cistern/agent/v1/agent.js';
import {
  asCisternError,
  CisternError,
  DeadlineExceededError,
  errorFromWire,
  UnavailableError,
} from '../errors/errors.js';
import { subjects } from './subjects.js';

export type AgentOp = NonNullable<AgentRequest['op']>['$case'];

export const opSubjectToken = (op: AgentOp): string => op[0]!.toUpperCase() + op.slice(1);

export function errorToWire(err: unknown): AgentError {
  const e = asCisternError(err);
  return AgentError.create({ code: e.code, message: e.message, details: e.details });
}

export function errorFromAgent(error: AgentError): CisternError {
  return errorFromWire(error.code, error.message, error.details);
}

export interface CallOptions {
  /** How long to wait for the agent (default 1 hour: builds and wipes are long). */
  timeoutMs?: number;
}

/** Coordinator side: sends one operation to the agent of `host` and returns its reply or throws its error. */
export async function callAgent(
  nc: NatsConnection,
  host: string,
  request: AgentRequest,
  options: CallOptions = {},
): Promise<AgentReply> {
  if (!request.op) throw new Error('AgentRequest without op');
  const subject = subjects.agentOp(host, opSubjectToken(request.op.$case));
  let msg: Msg;
  try {
    msg = await nc.request(subject, AgentRequest.encode(request).finish(), { timeout: options.timeoutMs ?? 3_600_000 });
  } catch (err) {
    throw busRequestError(err, host);
  }
  const reply = AgentReply.decode(msg.data);
  if (reply.error) throw errorFromAgent(reply.error);
  return reply;
}

/** NATS answers at once when nobody listens: the host is offline, said without waiting for a timeout. */
export function busRequestError(err: unknown, host: string): CisternError {
  const e = err as { isNoResponders?: () => boolean; name?: string; message?: string };
  if (typeof e?.isNoResponders === 'function' && e.isNoResponders()) {
    return new UnavailableError(`host '${host}' is offline: no agent answers for it on the bus`, { host });
  }
  if (e?.name === 'TimeoutError' || /timeout/i.test(e?.message ?? '')) {
    return new DeadlineExceededError(`host '${host}' did not answer in time`, { host });
  }
  if (/closed|disconnect|connection/i.test(e?.message ?? '')) {
    return new UnavailableError(`the message bus is not reachable: ${e?.message}`, { host });
  }
  return asCisternError(err);
}

export type AgentHandler = (op: AgentOp, request: AgentRequest, msg: Msg) => Promise<AgentReply>;

/**
 * Agent side: serves every operation sent to this host. Requests run concurrently;
 * the handler serialises per pool and per volume. A queue group keeps a second
 * agent started with the same host id from doing the work twice.
 */
export function serveAgent(nc: NatsConnection, host: string, handler: AgentHandler): Subscription {
  const sub = nc.subscribe(subjects.agentAll(host), { queue: `agent-${host}` });
  const prefix = `cistern.agent.${host}.`;
  void (async () => {
    for await (const msg of sub) {
      const token = msg.subject.slice(prefix.length);
      if (token.startsWith('stream.')) continue; // upload data has its own subscriptions
      void handleOne(msg, handler);
    }
  })();
  return sub;
}

async function handleOne(msg: Msg, handler: AgentHandler): Promise<void> {
  let reply: AgentReply;
  try {
    const request = AgentRequest.decode(msg.data);
    if (!request.op) throw new Error('request without operation');
    reply = await handler(request.op.$case, request, msg);
  } catch (err) {
    reply = AgentReply.create({ error: errorToWire(err) });
  }
  if (msg.reply) msg.respond(AgentReply.encode(reply).finish());
}
