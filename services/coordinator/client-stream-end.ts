// Whether a client stream that has just ended was ended by its client or cancelled by it.
// Over HTTP/2 a client's end of stream (END_STREAM) says it has sent everything, a reset
// (RST_STREAM) that it cancelled. A gRPC client built on Node's http2 (grpc-js: cisternctl,
// the TypeScript stubs) sends both when it cancels a stream it is still writing: the end goes
// out at once, the reset only in a later turn of the client's event loop, once the end's write
// has completed. So the server first sees an ordinary end and the reset after it: about a
// millisecond later from an idle client, as late as its loop next turns from a busy one (other
// work, a GC pause, a loaded machine: hundreds of milliseconds). Taken at its word, that end
// would make the data received so far the whole upload: the agent told it ended, the volume
// committed and announced as uploaded.
//
// No fixed wait bounds that, so the client's own loop is asked: two HTTP/2 PINGs, the second
// sent when the first is answered. The first answer may go out in the turn before the reset
// (measured: the reset a few milliseconds after it); the second is read and answered in a later
// turn, after the reset has been sent, and TCP delivers the reset first. A client that ended
// its stream answers both within a round trip or two: the upload's answer waits that long.
import type { ServerReadableStream } from '@grpc/grpc-js';
import type { Http2Session } from 'node:http2';

/**
 * How long after a client stream's end a reset still counts as cancelling it when its HTTP/2
 * session cannot be pinged (grpc-js's internals changed, or too many PINGs are outstanding on
 * the connection): the reset of an idle client follows its end within a turn of its loop.
 */
export const CANCEL_SETTLE_MS = 25;

/** PING round trips after the end before it is taken as the client's (see above: two). */
const PING_ROUND_TRIPS = 2;

/**
 * After a client stream's messages have ended: true when its client cancelled it. A client
 * that answers no PING for `maxWaitMs` (stopped with Ctrl-Z, hung) is taken at its end, as it
 * was before the PINGs: the agent abandons an upload that hears nothing for 60 s.
 */
export async function cancelledAtItsEnd<Req, Res>(
  call: ServerReadableStream<Req, Res>,
  { settleMs = CANCEL_SETTLE_MS, maxWaitMs }: { settleMs?: number; maxWaitMs: number },
): Promise<boolean> {
  if (call.cancelled) return true;
  let onCancel!: () => void;
  const cancelled = new Promise<void>((resolve) => {
    onCancel = resolve;
    call.once('cancelled', onCancel);
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, maxWaitMs)));
  try {
    const session = sessionOf(call);
    const judged = (async () => {
      if (!session) await delay(settleMs);
      for (let i = 0; session && i < PING_ROUND_TRIPS && !call.cancelled; i++) {
        if (!(await pingRoundTrip(session))) await delay(settleMs);
      }
      // a reset read with the last answer closes the stream in a later tick: let it
      await new Promise<void>((resolve) => setImmediate(resolve));
    })();
    await Promise.race([cancelled, judged, gaveUp]);
  } finally {
    clearTimeout(timer);
    call.removeListener('cancelled', onCancel);
  }
  return call.cancelled;
}

/** Whether `session` answered a PING (false: it could not be sent, or the session closed). */
function pingRoundTrip(session: Http2Session): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      // false when too many PINGs are outstanding on the connection
      if (!session.ping((err) => resolve(!err))) resolve(false);
    } catch {
      // the session is closed or closing: its calls are cancelled
      resolve(false);
    }
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The HTTP/2 session a grpc-js server call arrived on. grpc-js does not expose it: its call
 * objects (@grpc/grpc-js 1.14: ServerReadableStreamImpl.call, then each interceptor's
 * nextCall) end in one holding the http2 stream. Undefined when that shape changes, and the
 * end is then judged by CANCEL_SETTLE_MS alone (upload-cancel.test.ts fails on that).
 */
function sessionOf(call: object): Http2Session | undefined {
  let inner: unknown = (call as { call?: unknown }).call;
  for (let depth = 0; inner && typeof inner === 'object' && depth < 8; depth++) {
    const session = (inner as { stream?: { session?: unknown } }).stream?.session;
    if (session && typeof (session as Http2Session).ping === 'function') return session as Http2Session;
    inner = (inner as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}
