// Request/reply between coordinator and agents with structured errors.
// The operation is the subject's last token (AgentRequest.op.$case, capitalised).
import { randomBytes } from 'node:crypto';
import { headers, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { AgentReply, AgentRequest, AgentError } from '../proto/cistern/agent/v1/agent.js';
import {
  asCisternError,
  CancelledError,
  CisternError,
  DeadlineExceededError,
  errorFromWire,
  ResourceExhaustedError,
  UnavailableError,
  UnimplementedError,
  type ErrorDetails,
} from '../errors/errors.js';
import { sharedStallDetector } from './loop-stall.js';
import { subjects } from './subjects.js';
import { IGNORED_DELIVERY } from './delivered-subject.js';
import type { Logger } from '../log/logger.js';
import { ReplyInbox, ReplyTimeoutError } from './reply-inbox.js';

export type AgentOp = NonNullable<AgentRequest['op']>['$case'];
/** The message of one operation of AgentRequest.op (its `value` for that `$case`). */
export type AgentOpValue<C extends AgentOp> = Extract<NonNullable<AgentRequest['op']>, { $case: C }>['value'];

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
  /**
   * Aborting it (the gRPC client cancelled, its deadline passed, the host went offline)
   * tells the agent to stop the operation: a message on subjects.agentCancel(host, callId)
   * aborts the AbortSignal the agent's handler runs with. The call rejects at once, with
   * the signal's reason when that is a Cistern error (see abortError), else CANCELLED.
   */
  signal?: AbortSignal;
}

/**
 * What an aborted signal fails a call with: its reason when that is a Cistern error (the
 * host went offline: UNAVAILABLE), else CANCELLED with `message` (the client cancelled).
 */
export function abortError(signal: AbortSignal, message: string, details: ErrorDetails = {}): CisternError {
  return signal.reason instanceof CisternError ? signal.reason : new CancelledError(message, details);
}

/** Header carrying the id a cancel names (one per call, not the client's request id). */
export const CALL_ID_HEADER = 'Cistern-Call-Id';

/**
 * Unique per call and unguessable: a call's id is its cancel subject's last token, and anyone
 * on the bus can make the JetStream API send its answer to a subject they name (the reply
 * subject of their request), cistern.agent.H.cancel.ID included. A counter would let the
 * agent of another host, which sees the ids of the calls made to it, name the next ones.
 * 96 random bits, taken 4,096 calls' worth at a time (one randomBytes call, not one per call).
 */
const ID_BYTES = 12;
let randomPool = Buffer.alloc(0);
let randomAt = 0;
function nextCallId(): string {
  if (randomAt + ID_BYTES > randomPool.length) {
    randomPool = randomBytes(ID_BYTES * 4096);
    randomAt = 0;
  }
  randomAt += ID_BYTES;
  return randomPool.toString('base64url', randomAt - ID_BYTES, randomAt).replace(/[^A-Za-z0-9]/g, 'x');
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
  const signal = options.signal;
  if (signal?.aborted) throw new CancelledError(`the call was cancelled before it reached host '${host}'`, { host });
  const callId = nextCallId();
  const h = headers();
  h.set(CALL_ID_HEADER, callId);
  const op = request.op.$case;
  let msg: Msg;
  try {
    msg = await ReplyInbox.of(nc).request(subject, AgentRequest.encode(request).finish(), {
      timeoutMs: options.timeoutMs ?? 3_600_000,
      headers: h,
      replyHost: host,
      signal,
      aborted: () => {
        try {
          nc.publish(subjects.agentCancel(host, callId));
        } catch {
          /* the bus is gone: the agent finds no one waiting for the reply anyway */
        }
        return abortError(signal!, `the call was cancelled; host '${host}' was told to stop '${op}'`, { host });
      },
    });
  } catch (err) {
    // the abort's own error (cancel, host lost) as it is; NATS errors are named here
    if (err instanceof CisternError) throw err;
    if (err instanceof ReplyTimeoutError) {
      // a call without a request id has no answer kept for a retry: a retry would do the work again
      throw request.requestId
        ? unansweredInTime(host, op, err.timeoutMs)
        : unansweredInTime(host, op, err.timeoutMs, 'it was not told to stop and may still complete: its events (WatchEvents) show its outcome; the call had no request_id, so a retry would do the work again');
    }
    throw busRequestError(err, host);
  }
  const reply = AgentReply.decode(msg.data);
  if (reply.error) throw errorFromAgent(reply.error);
  return reply;
}

/**
 * The coordinator's own limit on waiting for an agent passed. Nobody asked the agent to stop
 * (neither the client, who still waits, nor the host, which is online), so it goes on: a
 * wipe, clone or build of a big volume may well finish later, publish its events and keep
 * its answer for a retry with the same request id (services/agent/request-cache.ts).
 */
export function unansweredInTime(
  host: string,
  op: string,
  timeoutMs: number,
  outcome = 'it was not told to stop and may still complete: a retry with the same request_id waits for it or gets its answer, and its events (WatchEvents) show its outcome',
): DeadlineExceededError {
  return new DeadlineExceededError(`host '${host}' has not finished '${op}' within ${timeoutMs / 1000} s, this coordinator's limit; ${outcome}`, {
    host,
    operation: op,
  });
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
  if (/max_payload/i.test(e?.message ?? '')) {
    return new ResourceExhaustedError(`the request to host '${host}' is larger than the message bus carries (${e?.message}); send less in one call`, { host });
  }
  if (/closed|disconnect|connection/i.test(e?.message ?? '')) {
    return new UnavailableError(`the message bus is not reachable: ${e?.message}`, { host });
  }
  return asCisternError(err);
}

/** `signal` aborts when the caller cancels (see CallOptions.signal). */
export type AgentHandler = (op: AgentOp, request: AgentRequest, msg: Msg, signal: AbortSignal) => Promise<AgentReply>;

/**
 * Agent side: serves every operation sent to this host. Requests run concurrently;
 * the handler serialises per pool and per volume. A queue group keeps a second
 * agent started with the same host id from doing the work twice.
 */
export function serveAgent(nc: NatsConnection, host: string, handler: AgentHandler, log?: Pick<Logger, 'warn'>, agentVersion?: string): Subscription {
  const sub = nc.subscribe(subjects.agentAll(host), { queue: `agent-${host}` });
  const prefix = `cistern.agent.${host}.`;
  const running = new Map<string, AbortController>();
  const { detector: stalls, release: releaseStalls } = sharedStallDetector();
  void (async () => {
    try {
      await serveMessages();
    } finally {
      // a subscription that ends or fails (a permission refused) gives the shared timer back
      releaseStalls();
    }
  })();
  return sub;

  async function serveMessages(): Promise<void> {
    for await (const msg of sub) {
      // a stored message a push consumer delivered here keeps its own subject (delivered-subject.ts)
      if (!msg.subject.startsWith(prefix)) {
        log?.warn(IGNORED_DELIVERY, { subject: msg.subject });
        continue;
      }
      const token = msg.subject.slice(prefix.length);
      if (token.startsWith('stream.')) continue; // upload data has its own subscriptions
      if (token.startsWith('cancel.')) {
        running.get(token.slice('cancel.'.length))?.abort(new CancelledError('the caller cancelled the operation'));
        continue;
      }
      // messages read in the same go and not dispatched yet: its cancel may be among them,
      // which no clock shows when the host itself stood still (a paused VM: QEMU stops the
      // guest's kvmclock too) or the bytes were held up on the way
      const readWithOthers = sub.getPending() > 0;
      const unknownOp = () => unknownOperation(token, host, agentVersion);
      void handleOne(msg, handler, running, nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD, readWithOthers || stalls.suspected(), unknownOp);
    }
  }
}

/** nats-server's default max_payload, for a connection that has not said its own. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/**
 * A request whose `op` decodes to nothing: an operation added to agent.proto after this agent
 * was built, sent by a newer coordinator (a rolling upgrade that did coordinators first).
 */
function unknownOperation(token: string, host: string, agentVersion: string | undefined): UnimplementedError {
  const agent = agentVersion ? `cistern-agent ${agentVersion} on host '${host}'` : `the agent of host '${host}'`;
  return new UnimplementedError(`operation '${token}' is not one this agent knows (${agent}): the coordinator that sent it is newer; upgrade the agent`, {
    host,
    operation: token,
    ...(agentVersion ? { agentVersion } : {}),
  });
}

async function handleOne(
  msg: Msg,
  handler: AgentHandler,
  running: Map<string, AbortController>,
  maxPayload: number,
  cancelMayFollow: boolean,
  unknownOp: () => UnimplementedError,
): Promise<void> {
  // registered before any await: a cancel that follows the request always finds it
  const callId = msg.headers?.get(CALL_ID_HEADER) ?? '';
  const abort = new AbortController();
  if (callId) running.set(callId, abort);
  let reply: AgentReply;
  try {
    const request = AgentRequest.decode(msg.data);
    if (!request.op) throw unknownOp();
    // only when read with others or after a stall: a turn of the loop costs every call tens of microseconds
    if (cancelMayFollow) await cancelsReadWithIt();
    if (abort.signal.aborted) {
      throw new CancelledError(`the caller cancelled '${request.op.$case}' before this host began it; nothing was done`, { operation: request.op.$case });
    }
    reply = await handler(request.op.$case, request, msg, abort.signal);
  } catch (err) {
    reply = AgentReply.create({ error: errorToWire(err) });
  } finally {
    if (callId) running.delete(callId);
  }
  if (!msg.reply) return;
  let encoded = AgentReply.encode(reply).finish();
  // the server drops a message over its max_payload (the publish throws): the caller would
  // wait out its timeout (an hour) for an answer that never comes, so it gets this one
  if (encoded.length > maxPayload - REPLY_HEADROOM) {
    const tooLarge = new ResourceExhaustedError(
      `the answer is ${encoded.length} bytes, more than the message bus carries (${maxPayload}); narrow the request`,
      { bytes: String(encoded.length), limit: String(maxPayload) },
    );
    encoded = AgentReply.encode(AgentReply.create({ error: errorToWire(tooLarge) })).finish();
  }
  try {
    msg.respond(encoded);
  } catch {
    // the connection closed (the agent is stopping): the caller's wait ends with the host lost
  }
}

/**
 * Resolves once the messages read from the socket with a request have been dispatched. An agent
 * that stood still (SIGSTOP, a paused VM, a blocked event loop) reads a request and the cancel
 * its caller sent meanwhile (deadline passed, client gone) in one go, but would start the
 * handler, synchronously, before the loop above got to the cancel; most operations check
 * their signal only in long work (a copy, a wipe), so a delete, a resize or a pool stop nobody
 * waited for any more was done after its client had been told it failed. The client parses a
 * whole read and hands its messages over in microtasks: one macrotask later they all have
 * been, the cancel included. Waited for only when other messages came in the same read, or
 * the loop has just stood still (loop-stall.ts: a later read of a backlog): otherwise a cancel
 * comes on a later read, after the work has begun, as for any call under way.
 */
function cancelsReadWithIt(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Room left in a message for the subject and headers of its reply. */
const REPLY_HEADROOM = 4096;
