// The client side of StorageService.Session: unary calls as messages on one bidirectional
// stream, each answered by id, so that a client making many calls (a cisternctl session, a
// script) pays for one HTTP/2 stream, not one per call. The stream opens with the first call
// and again after it ends; every call waiting when it ends fails with the reason.
import { Metadata, type Client, type ClientDuplexStream } from '@grpc/grpc-js';
import { CancelledError, InvalidArgumentError, UnavailableError } from '../errors/errors.js';
import { fromGrpcError, fromGrpcStatus } from '../errors/grpc-status.js';
import { SessionRequest, SessionStatus, StorageServiceService } from '../proto/cistern/v1/storage.js';
import type { Duration } from '../proto/google/protobuf/duration.js';
import { decodeAnswer, type SessionCall } from './session-envelope.js';

/** What a unary call's options give it, for one call of a session. */
export interface SessionCallOptions {
  /**
   * How long the call may take, in milliseconds from now: its deadline, as a unary call's.
   * Once it passes the coordinator answers DEADLINE_EXCEEDED and stops the call's work; the
   * stream's deadline, when it comes first, still ends every call.
   */
  deadlineMs?: number;
  /** Aborting it cancels this call alone (CANCELLED), as cancelling a unary call does. */
  signal?: AbortSignal;
}

type Request<C extends SessionCall> = Extract<NonNullable<SessionRequest['call']>, { $case: C }>['value'];

interface Waiting {
  /** the method, for the error of a call whose stream broke */
  call: SessionCall;
  resolve(bytes: Uint8Array): void;
  reject(err: Error): void;
}

/** One stream and the calls waiting for its answers. */
interface OpenStream {
  stream: ClientDuplexStream<SessionRequest, Buffer>;
  waiting: Map<bigint, Waiting>;
  /** close() ended the sending side: no more messages, cancels included */
  sendingClosed?: boolean;
}

export class StorageSession {
  private current?: OpenStream;
  private nextId = 1n;

  /** `metadata` is sent once, when the stream opens: the token authenticates every call on it. */
  constructor(
    private readonly client: Client,
    private readonly metadata: () => Metadata = () => new Metadata(),
  ) {}

  /** One call; its result decoded as the unary method's response. */
  async call<C extends SessionCall>(
    call: C,
    request: Request<C>,
    options: SessionCallOptions = {},
  ): Promise<ReturnType<(typeof StorageServiceService)[C]['responseDeserialize']>> {
    const bytes = await this.callBytes(call, request, options);
    return StorageServiceService[call].responseDeserialize(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as never;
  }

  /** One call; its result as the unary method's response bytes (for readers that decode lazily). */
  callBytes<C extends SessionCall>(call: C, request: Request<C>, options: SessionCallOptions = {}): Promise<Uint8Array> {
    const { signal } = options;
    // as a grpc-js unary call given an aborted signal's cancel: nothing is sent
    if (signal?.aborted) return Promise.reject(cancelledOnClient());
    let timeout: Duration | undefined;
    try {
      timeout = options.deadlineMs === undefined ? undefined : durationOf(options.deadlineMs);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const id = this.nextId++;
    const open = this.open();
    return new Promise((resolve, reject) => {
      let onAbort: (() => void) | undefined;
      const done = (): void => {
        if (onAbort) signal!.removeEventListener('abort', onAbort);
      };
      open.waiting.set(id, {
        call,
        resolve: (bytes) => {
          done();
          resolve(bytes);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      });
      if (signal) {
        // the call fails at once, as a cancelled unary call does; the coordinator is told to
        // stop it, and its answer (CANCELLED, or a result already on its way) is dropped
        onAbort = () => {
          if (!open.waiting.delete(id)) return;
          // after close() the sending side is shut: the call is dropped here and runs to its end there
          if (!open.sendingClosed) open.stream.write({ id, timeout: undefined, cancel: true, call: undefined });
          reject(cancelledOnClient());
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      open.stream.write({ id, timeout, cancel: false, call: { $case: call, value: request } as SessionRequest['call'] });
    });
  }

  /** Ends the stream once the calls sent have been answered. */
  close(): void {
    if (this.current) this.current.sendingClosed = true;
    this.current?.stream.end();
    this.current = undefined;
  }

  private open(): OpenStream {
    if (this.current) return this.current;
    const m = StorageServiceService.session;
    const stream = this.client.makeBidiStreamRequest(m.path, (r: SessionRequest) => Buffer.from(SessionRequest.encode(r).finish()), (b: Buffer) => b, this.metadata());
    const open: OpenStream = { stream, waiting: new Map() };
    this.current = open;
    stream.on('data', (bytes: Buffer) => settle(open, bytes));
    stream.on('error', (err) => this.endWith(open, (call) => brokenStreamError(call, fromGrpcError(err))));
    stream.on('end', () => this.endWith(open, () => new UnavailableError('the coordinator ended the session before answering; retry the call')));
    return open;
  }

  private endWith(open: OpenStream, errorOf: (call: SessionCall) => Error): void {
    if (this.current === open) this.current = undefined;
    const waiting = [...open.waiting.values()];
    open.waiting.clear();
    for (const w of waiting) w.reject(errorOf(w.call));
  }
}

/**
 * The error of a call whose stream broke before its answer (the coordinator killed, the
 * network cut): grpc-js says only "Connection dropped". The call was sent, so it may have been
 * done, or its work may go on on the agent: the client must be told so, and how to retry
 * without doing it twice. A stream that never connected sent nothing: its error stands.
 */
function brokenStreamError(call: SessionCall, err: Error): Error {
  if (!(err instanceof UnavailableError) || /No connection established/.test(err.message)) return err;
  return new UnavailableError(
    `${err.message}: the connection to the coordinator broke before call ${call} was answered; it may have been done, ` +
      'or may still complete on the agent: check its outcome before calling again, or retry with the same request_id',
  );
}

function settle(open: OpenStream, bytes: Buffer): void {
  const answer = decodeAnswer(bytes);
  const w = open.waiting.get(answer.id);
  if (!w) return;
  open.waiting.delete(answer.id);
  if (answer.status) {
    const status = SessionStatus.decode(answer.status);
    w.reject(fromGrpcStatus(status.code, status.message));
  } else w.resolve(answer.result?.bytes ?? new Uint8Array());
}

/** What a call the client cancelled fails with (grpc-js's own words for a unary call's cancel). */
function cancelledOnClient(): CancelledError {
  return new CancelledError('Cancelled on client');
}

/** A deadline in milliseconds as the request's google.protobuf.Duration. */
function durationOf(ms: number): Duration {
  if (!Number.isFinite(ms) || ms < 0) throw new InvalidArgumentError('deadlineMs', `${ms} is not a timeout: give a finite number of milliseconds, 0 or more`);
  const nanos = BigInt(Math.round(ms * 1e6));
  return { seconds: nanos / 1_000_000_000n, nanos: Number(nanos % 1_000_000_000n) };
}
