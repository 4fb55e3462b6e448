// Whether a client stream that has just ended was ended by its client or cancelled by it.
// Over HTTP/2 a client's end of stream (END_STREAM) says it has sent everything, a reset
// (RST_STREAM) that it cancelled. A gRPC client built on Node's http2 (grpc-js: cisternctl,
// the TypeScript stubs) sends both when it cancels a stream it is still writing: Node ends
// the writable side of a stream it closes, and sends the reset once that write has gone out,
// so the server first sees an ordinary end and the reset a moment later (about a millisecond
// here). Taken at its word, that end would make the data received so far the whole upload:
// the agent told it ended, the volume committed and announced as uploaded.
import type { ServerReadableStream } from '@grpc/grpc-js';

/**
 * How long after a client stream's end a reset still counts as cancelling it. Nothing on the
 * connection tells the two ends apart sooner (the client's reset may even follow an answer
 * it gives to a PING sent after the end); the reset follows its end within a turn of the
 * client's event loop, so this is ample, and it is what an upload's answer waits longer.
 */
export const CANCEL_SETTLE_MS = 25;

/** After a client stream's messages have ended: true when its client cancelled it. */
export async function cancelledAtItsEnd<Req, Res>(call: ServerReadableStream<Req, Res>, settleMs = CANCEL_SETTLE_MS): Promise<boolean> {
  if (call.cancelled) return true;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      call.removeListener('cancelled', done);
      resolve();
    };
    const timer = setTimeout(done, settleMs);
    call.once('cancelled', done);
  });
  return call.cancelled;
}
