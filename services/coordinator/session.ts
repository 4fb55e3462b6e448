// StorageService.Session: many unary calls on one bidirectional stream. Each message is one
// call, run exactly as its unary RPC runs (CallRunner.unaryCall: authentication from the
// stream's metadata, access rule, per-client limit, audit line, request-id answers,
// catch-up), answered on the stream as soon as it ends. What a call saves is the HTTP/2
// stream: its headers, trailers and grpc-js's per-call setup, most of a unary call's cost on a
// loopback connection.
import { MalformedRequest } from './strict-decode.js';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { CancelledError, DeadlineExceededError, InvalidArgumentError, UnavailableError, UnimplementedError, type CisternError } from '../../libs/errors/errors.js';
import { toGrpcError } from '../../libs/errors/grpc-status.js';
import type { SessionRequest } from '../../libs/proto/cistern/v1/storage.js';
import { encodeFailure, encodeResult, RESULT_FIELD } from '../../libs/api/session-envelope.js';
import type { CallLike, CallRunner } from './server.js';
import { LONGEST_TIMER_MS, sessionTimeoutMs } from './session-timeout.js';
import { unknownCallOf } from './session-unknown-call.js';
import { serializeResponse, UNARY_HANDLERS, type Handler } from './unary-methods.js';

const CALL_NAMES = [...RESULT_FIELD.keys()].map((k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)).join(', ');

/** The live sessions of one server, so that a shutdown can end them. */
export class Sessions {
  private readonly live = new Set<Session>();
  private closing = false;

  constructor(private readonly runner: CallRunner) {}

  /**
   * Nothing of a stream is read until it is admitted (CallRunner.openSession): grpc-js reads a
   * stream's messages only once something listens to them. One refused ends with its status.
   */
  handler(): (call: ServerDuplexStream<SessionRequest, Buffer>) => void {
    return (call) => {
      this.runner.openSession(call).then(
        (release) => {
          if (call.cancelled) {
            release();
            return;
          }
          const session = new Session(this.runner, call, () => {
            this.live.delete(session);
            release();
          });
          this.live.add(session);
          if (this.closing) session.close();
        },
        (err: unknown) => {
          if (!call.cancelled) call.emit('error', toGrpcError(err));
        },
      );
    };
  }

  /** Every session answers the calls it has, refuses new ones and ends. */
  close(): void {
    this.closing = true;
    for (const s of this.live) s.close();
  }
}

/**
 * One call of a session while it runs: its own cancel (the client's cancel message, its
 * deadline, the stream's end) and whether it has been answered. An answer sent early (its
 * deadline passed, the client cancelled it) frees the id at once, as the client sees it; the
 * work, told to stop, may end later, and its result then goes nowhere.
 */
class RunningCall {
  answered = false;
  cancelled = false;
  timer?: NodeJS.Timeout;
  private readonly listeners = new Set<(reason?: unknown) => void>();

  constructor(readonly id: bigint) {}

  on(cb: (reason?: unknown) => void): void {
    this.listeners.add(cb);
  }

  off(cb: (reason?: unknown) => void): void {
    this.listeners.delete(cb);
  }

  /** Aborts the call's signal (CallRunner.run): with `reason`, the error the work stops with. */
  cancel(reason?: CisternError): void {
    if (this.cancelled) return;
    this.cancelled = true;
    clearTimeout(this.timer);
    for (const cb of [...this.listeners]) cb(reason);
  }
}

class Session {
  /** the calls running, by id, each answered once */
  private readonly running = new Map<bigint, RunningCall>();
  private readonly peer: string;
  private cancelled = false;
  private clientDone = false;
  private closing = false;
  private ended = false;

  constructor(
    private readonly runner: CallRunner,
    private readonly stream: ServerDuplexStream<SessionRequest, Buffer>,
    private readonly onEnd: () => void,
  ) {
    this.peer = stream.getPeer();
    stream.on('data', (req: SessionRequest) => this.receive(req));
    stream.on('end', () => {
      this.clientDone = true;
      this.endWhenIdle();
    });
    stream.on('cancelled', () => this.cancel());
    // a reset from the client's side: its calls are cancelled as with a cancel
    stream.on('error', () => this.cancel());
  }

  close(): void {
    this.closing = true;
    this.endWhenIdle();
  }

  private receive(req: SessionRequest): void {
    if (this.ended) return;
    // a message that is not a SessionRequest carries no id to answer: the stream ends with why
    if ((req as unknown) instanceof MalformedRequest) {
      this.fail((req as unknown as MalformedRequest).error());
      return;
    }
    const id = req.id;
    if (req.cancel) {
      this.cancelCall(id);
      return;
    }
    if (this.running.has(id)) {
      // two answers with one id would leave the client unable to tell them apart
      this.fail(new InvalidArgumentError('id', `call id ${id} is already running on this session; ids must be unique among the calls in flight`));
      return;
    }
    if (this.closing) {
      this.send(encodeFailure(id, statusOf(new UnavailableError('the coordinator is shutting down; this session takes no more calls, open a new one'))));
      return;
    }
    if (!req.call) {
      const unknown = unknownCallOf(req);
      const refusal =
        unknown === undefined
          ? new InvalidArgumentError('call', `the session request has no call: set one of ${CALL_NAMES}`)
          : new UnimplementedError(
              `call: field ${unknown} of this SessionRequest is a call this coordinator does not know: the client's storage.proto is newer than this coordinator's; send it to an upgraded coordinator (nothing was done)`,
              { field: 'call', callField: String(unknown) },
            );
      this.send(encodeFailure(id, statusOf(refusal)));
      return;
    }
    let timeoutMs: number | undefined;
    try {
      timeoutMs = sessionTimeoutMs(req.timeout);
    } catch (err) {
      this.send(encodeFailure(id, statusOf(err)));
      return;
    }
    if (timeoutMs === 0) {
      // a deadline that has already passed: the call is not run, as a gRPC client does not send one
      this.send(encodeFailure(id, statusOf(new DeadlineExceededError(`Deadline exceeded: call ${id} has a timeout of 0 s, passed before it could start; it was not run`))));
      return;
    }
    const { $case: key, value } = req.call;
    const [method, handler] = UNARY_HANDLERS[key];
    const call = new RunningCall(id);
    this.running.set(id, call);
    if (timeoutMs !== undefined && timeoutMs <= LONGEST_TIMER_MS) {
      call.timer = setTimeout(() => this.expire(call, timeoutMs), timeoutMs);
    }
    this.runner.unaryCall(method, handler as Handler<unknown, unknown>, this.callLike(call), value).then(
      (res) => this.answer(call, () => encodeResult(id, key, serializeResponse(key, res))),
      (err) => this.answer(call, () => encodeFailure(id, statusOf(err))),
    );
  }

  /** The call's deadline passed: answered DEADLINE_EXCEEDED now, its work told to stop. */
  private expire(call: RunningCall, timeoutMs: number): void {
    const err = deadlineExceeded(call.id, timeoutMs);
    call.cancel(err);
    this.answer(call, () => encodeFailure(call.id, statusOf(err)));
  }

  /** The client cancels one call: answered CANCELLED now, its work told to stop; an id not running is left alone. */
  private cancelCall(id: bigint): void {
    const call = this.running.get(id);
    if (!call) return;
    const err = new CancelledError(`call ${id} was cancelled by the client`);
    call.cancel(err);
    this.answer(call, () => encodeFailure(id, statusOf(err)));
  }

  private answer(call: RunningCall, encode: () => Buffer): void {
    if (call.answered) return;
    call.answered = true;
    clearTimeout(call.timer);
    this.running.delete(call.id);
    if (!this.ended && !this.cancelled) {
      let bytes: Buffer;
      try {
        bytes = encode();
      } catch (err) {
        bytes = encodeFailure(call.id, statusOf(err));
      }
      this.send(bytes);
    }
    this.endWhenIdle();
  }

  /** Writes an answer; a client that does not read its answers is not read from until it does. */
  private send(bytes: Buffer): void {
    if (this.ended || this.cancelled) return;
    if (!this.stream.write(bytes) && !this.stream.isPaused()) {
      this.stream.pause();
      this.stream.once('drain', () => this.stream.resume());
    }
  }

  private endWhenIdle(): void {
    if (this.ended || this.running.size > 0 || !(this.clientDone || this.closing || this.cancelled)) return;
    this.ended = true;
    this.onEnd();
    if (!this.cancelled) this.stream.end();
  }

  private fail(err: unknown): void {
    this.ended = true;
    this.onEnd();
    this.cancel();
    this.stream.emit('error', toGrpcError(err));
  }

  /** The stream is cancelled (or failed): every running call is cancelled, as each unary call would be. */
  private cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    for (const call of [...this.running.values()]) call.cancel();
    this.endWhenIdle();
  }

  /** One call of the session, as CallRunner.run sees a gRPC call. */
  private callLike(call: RunningCall): CallLike {
    return {
      metadata: this.stream.metadata,
      getPeer: () => this.peer,
      on: (_event, cb) => call.on(cb),
      removeListener: (_event, cb) => call.off(cb),
      get cancelled() {
        return call.cancelled;
      },
    };
  }
}

/** What a call whose own timeout passed is answered with, as a unary call whose deadline passed. */
function deadlineExceeded(id: bigint, timeoutMs: number): DeadlineExceededError {
  return new DeadlineExceededError(`Deadline exceeded: call ${id} did not finish within its timeout of ${timeoutMs / 1000} s; its work was told to stop`);
}

/** The google.rpc.Status a unary call failing with `err` carries in grpc-status-details-bin. */
function statusOf(err: unknown): Uint8Array {
  const details = toGrpcError(err).metadata?.get('grpc-status-details-bin')[0];
  if (!(details instanceof Buffer)) throw new Error('toGrpcError wrote no grpc-status-details-bin');
  return details;
}
