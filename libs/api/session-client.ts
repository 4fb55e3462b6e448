// The client side of StorageService.Session: unary calls as messages on one bidirectional
// stream, each answered by id, so that a client making many calls (a cisternctl session, a
// script) pays for one HTTP/2 stream, not one per call. The stream opens with the first call
// and again after it ends; every call waiting when it ends fails with the reason.
import { Metadata, type Client, type ClientDuplexStream } from '@grpc/grpc-js';
import { UnavailableError } from '../errors/errors.js';
import { fromGrpcError, fromGrpcStatus } from '../errors/grpc-status.js';
import { SessionRequest, SessionStatus, StorageServiceService } from '../proto/cistern/v1/storage.js';
import { decodeAnswer, type SessionCall } from './session-envelope.js';

type Request<C extends SessionCall> = Extract<NonNullable<SessionRequest['call']>, { $case: C }>['value'];

interface Waiting {
  resolve(bytes: Uint8Array): void;
  reject(err: Error): void;
}

/** One stream and the calls waiting for its answers. */
interface OpenStream {
  stream: ClientDuplexStream<SessionRequest, Buffer>;
  waiting: Map<bigint, Waiting>;
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
  async call<C extends SessionCall>(call: C, request: Request<C>): Promise<ReturnType<(typeof StorageServiceService)[C]['responseDeserialize']>> {
    const bytes = await this.callBytes(call, request);
    return StorageServiceService[call].responseDeserialize(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as never;
  }

  /** One call; its result as the unary method's response bytes (for readers that decode lazily). */
  callBytes<C extends SessionCall>(call: C, request: Request<C>): Promise<Uint8Array> {
    const id = this.nextId++;
    const open = this.open();
    return new Promise((resolve, reject) => {
      open.waiting.set(id, { resolve, reject });
      open.stream.write({ id, timeout: undefined, cancel: false, call: { $case: call, value: request } as SessionRequest['call'] });
    });
  }

  /** Ends the stream once the calls sent have been answered. */
  close(): void {
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
    stream.on('error', (err) => this.endWith(open, fromGrpcError(err)));
    stream.on('end', () => this.endWith(open, new UnavailableError('the coordinator ended the session before answering; retry the call')));
    return open;
  }

  private endWith(open: OpenStream, err: Error): void {
    if (this.current === open) this.current = undefined;
    const waiting = [...open.waiting.values()];
    open.waiting.clear();
    for (const w of waiting) w.reject(err);
  }
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
