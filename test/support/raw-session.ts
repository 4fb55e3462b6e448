// A Session stream whose answers are kept raw, for requests the typed client never sends
// (no call, a repeated id, a bad timeout, a cancel) and for asserting the exact answer bytes.
import { Metadata, status, type CallOptions, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { decodeAnswer, type SessionAnswer } from '../../libs/api/session-envelope.js';
import { SessionRequest, StorageServiceService, type StorageServiceClient } from '../../libs/proto/cistern/v1/storage.js';

export interface RawSession {
  stream: ClientDuplexStream<SessionRequest, Buffer>;
  /** every answer so far, in the order they came */
  answers: SessionAnswer[];
  /** the stream's end: undefined for OK, else its error */
  ended: Promise<ServiceError | undefined>;
  /** the answer to call `id`, once it has come */
  answer(id: bigint): Promise<SessionAnswer>;
}

/** `options`: the stream's own, a deadline for one. */
export function rawSession(stack: { client: StorageServiceClient }, options: CallOptions = {}): RawSession {
  const m = StorageServiceService.session;
  const stream: ClientDuplexStream<SessionRequest, Buffer> = stack.client.makeBidiStreamRequest(
    m.path,
    (r: SessionRequest) => Buffer.from(SessionRequest.encode(r).finish()),
    (b: Buffer) => b,
    new Metadata(),
    options,
  );
  const answers: SessionAnswer[] = [];
  const ended = new Promise<ServiceError | undefined>((resolve) => {
    stream.on('data', (b: Buffer) => answers.push(decodeAnswer(b)));
    stream.on('error', (e: ServiceError) => resolve(e));
    stream.on('status', (s: { code: number }) => {
      if (s.code === status.OK) resolve(undefined);
    });
  });
  const answer = (id: bigint): Promise<SessionAnswer> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = answers.find((a) => a.id === id);
        if (found) resolve(found);
        return found !== undefined;
      };
      if (check()) return;
      const onData = (): void => {
        if (check()) stream.removeListener('data', onData);
      };
      stream.on('data', onData);
      void ended.then((err) => {
        stream.removeListener('data', onData);
        if (!check()) reject(new Error(`the session ended (${err?.details ?? 'OK'}) without answering call ${id}`));
      });
    });
  return { stream, answers, ended, answer };
}
