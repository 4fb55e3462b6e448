// Calls refused before their request is read. grpc-js reads a unary or server-streaming call's
// request message whole (then up to 16 MiB; 4 MiB + 1 KiB since, message-limit.ts) before the
// handler runs, and CallRunner.run looked at the token only then: a client without any token
// had the coordinator hold 16 MiB for each call it opened, without bound (60 took it from 90 MB
// to 1.1 GB), and a viewer's calls counted against its limit only once read. This interceptor authenticates, authorizes and
// admits every StorageService call on its metadata (CallRunner.admitCall), before grpc-js reads
// its message: the stream stays paused, so no more than its HTTP/2 window arrives, and a refusal
// ends it there. run() takes the admission over.
//
// Health and reflection stay open to anyone, but grpc-js reads their messages whole too: 100
// calls without any token, each sending 4 MiB but one byte, took the coordinator up 490 MB. Each
// of them takes one of its address's slots here (CallRunner.admitOpenCall) before it is read.
//
// A slot is given back only when the call's HTTP/2 stream is over: grpc-js tells onCancel once
// the trailers have gone out (after every byte of the answer: HTTP/2 sends them behind the data)
// or the stream closed. A handler's end is not enough: its answer then waits in the coordinator
// for a client that grants no flow-control window, and 3,000 such ListVolumes answers, never
// read, took the coordinator from 105 MB to 728 MB with the slots free all along.
import { ServerInterceptingCall, type Metadata, type ServerInterceptor } from '@grpc/grpc-js';
import { toGrpcError } from '../../libs/errors/grpc-status.js';
import type { CallRunner } from './server.js';

const SERVICE_PREFIX = '/cistern.v1.StorageService/';

export function admitBeforeRead(runner: Pick<CallRunner, 'admitCall' | 'admitOpenCall'>): ServerInterceptor {
  return (descriptor, call) => {
    const storage = descriptor.path.startsWith(SERVICE_PREFIX);
    const method = storage ? descriptor.path.slice(SERVICE_PREFIX.length) : '';
    // a Session is authenticated as it opens, and each of its calls admitted as it comes (session.ts)
    if (method === 'Session') return new ServerInterceptingCall(call);
    // health and reflection: no token, a slot of the caller's address
    const admit = storage
      ? (metadata: Metadata): Promise<() => void> => runner.admitCall(method, metadata, call.getPeer())
      : (): Promise<() => void> => Promise.resolve().then(() => runner.admitOpenCall(call.getPeer()));
    let release: (() => void) | undefined;
    let ended = false;
    const end = (): void => {
      ended = true;
      release?.();
    };
    const intercepted: ServerInterceptingCall = new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            admit(metadata).then(
              (admitted) => {
                release = admitted;
                if (ended) admitted();
                else pass(metadata);
              },
              (err: unknown) => {
                const status = toGrpcError(err);
                intercepted.sendStatus({ code: status.code, details: status.details, metadata: status.metadata });
              },
            );
          },
          // the call's stream is over: its answer delivered (the trailers sent), or the client gone
          onCancel: end,
        }),
    });
    return intercepted;
  };
}
