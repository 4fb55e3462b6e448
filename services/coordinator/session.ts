// StorageService.Session: many unary calls on one bidirectional stream. Each message is one
// call, run exactly as its unary RPC runs (CallRunner.unaryCall: authentication from the
// stream's metadata, access rule, per-client limit, audit line, request-id answers,
// catch-up), answered on the stream as soon as it ends. What a call saves is the HTTP/2
// stream: its headers, trailers and grpc-js's per-call setup, most of a unary call's cost on a
// loopback connection.
import { EventEmitter } from 'node:events';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { InvalidArgumentError, UnavailableError } from '../../libs/errors/errors.js';
import { toGrpcError } from '../../libs/errors/grpc-status.js';
import type { SessionRequest } from '../../libs/proto/cistern/v1/storage.js';
import { encodeFailure, encodeResult, RESULT_FIELD } from '../../libs/api/session-envelope.js';
import type { CallLike, CallRunner } from './server.js';
import { serializeResponse, UNARY_HANDLERS, type Handler } from './unary-methods.js';

const CALL_NAMES = [...RESULT_FIELD.keys()].map((k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)).join(', ');

/** The live sessions of one server, so that a shutdown can end them. */
export class Sessions {
  private readonly live = new Set<Session>();
  private closing = false;

  constructor(private readonly runner: CallRunner) {}

  handler(): (call: ServerDuplexStream<SessionRequest, Buffer>) => void {
    return (call) => {
      const session = new Session(this.runner, call, () => this.live.delete(session));
      this.live.add(session);
      if (this.closing) session.close();
    };
  }

  /** Every session answers the calls it has, refuses new ones and ends. */
  close(): void {
    this.closing = true;
    for (const s of this.live) s.close();
  }
}

class Session {
  /** ids of the calls running, each answered once */
  private readonly running = new Set<bigint>();
  /** 'cancelled' for every call of the session when the client cancels the stream */
  private readonly calls = new EventEmitter().setMaxListeners(0);
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
    const id = req.id;
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
      this.send(encodeFailure(id, statusOf(new InvalidArgumentError('call', `the session request has no call: set one of ${CALL_NAMES}`))));
      return;
    }
    const { $case: key, value } = req.call;
    const [method, handler] = UNARY_HANDLERS[key];
    this.running.add(id);
    this.runner.unaryCall(method, handler as Handler<unknown, unknown>, this.callLike(), value).then(
      (res) => this.answer(id, () => encodeResult(id, key, serializeResponse(key, res))),
      (err) => this.answer(id, () => encodeFailure(id, statusOf(err))),
    );
  }

  private answer(id: bigint, encode: () => Buffer): void {
    this.running.delete(id);
    if (!this.ended && !this.cancelled) {
      let bytes: Buffer;
      try {
        bytes = encode();
      } catch (err) {
        bytes = encodeFailure(id, statusOf(err));
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

  private cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.calls.emit('cancelled');
    this.endWhenIdle();
  }

  /** One call of the session, as CallRunner.run sees a gRPC call. */
  private callLike(): CallLike {
    const calls = this.calls;
    const session = this;
    return {
      metadata: this.stream.metadata,
      getPeer: () => this.peer,
      on: (event, cb) => calls.on(event, cb),
      removeListener: (event, cb) => calls.removeListener(event, cb),
      get cancelled() {
        return session.cancelled;
      },
    };
  }
}

/** The google.rpc.Status a unary call failing with `err` carries in grpc-status-details-bin. */
function statusOf(err: unknown): Uint8Array {
  const details = toGrpcError(err).metadata?.get('grpc-status-details-bin')[0];
  if (!(details instanceof Buffer)) throw new Error('toGrpcError wrote no grpc-status-details-bin');
  return details;
}
