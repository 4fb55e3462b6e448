// UploadVolume (client stream: header, then data) and DownloadVolume (server stream),
// relayed to the agent over NATS with flow control (libs/bus/streams.ts).
import type { ServerReadableStream, ServerWritableStream } from '@grpc/grpc-js';
import { once } from 'node:events';
import { CancelledError, DeadlineExceededError, InvalidArgumentError, ResourceExhaustedError } from '../../../libs/errors/errors.js';
import { MAX_POSITION } from '../../../libs/backends/file-io.js';
import { downloadFromAgent, IDLE_TIMEOUT_MS, uploadToAgent } from '../../../libs/bus/streams.js';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import type {
  DownloadVolumeRequest,
  DownloadVolumeResponse,
  UploadVolumeRequest,
  UploadVolumeResponse,
} from '../../../libs/proto/cistern/v1/storage.js';
import { volumeView } from '../catalog-view.js';
import type { CallContext, CoordinatorServices } from '../context.js';
import { hostLossSignal, waitApplied } from '../forward.js';
import { resolveVolumeForWork } from '../lookup.js';
import { secretValuesFor } from '../secrets/resolve.js';
import { checkRequestId, checkSize, requireVolumeName } from '../validate.js';
import { refuseMalformed } from '../strict-decode.js';
import { cancelledAtItsEnd } from '../client-stream-end.js';

/** Largest data message of an upload, and so of any request (message-limit.ts). */
export const MAX_UPLOAD_CHUNK = 4 * 1024 * 1024;

/**
 * How long a client may send no data (upload) or take none (download) before the call ends.
 * Shorter than the agent's own idle timeout on the bus, so that the coordinator, which knows
 * the client was the idle side, gives the answer, not the agent going away without a word.
 */
export const CLIENT_IDLE_TIMEOUT_MS = IDLE_TIMEOUT_MS - 5_000;

/**
 * Largest data message of a download. grpc-js buffers 16 messages for a client that does not
 * read before it pushes back: 2 MiB, not the 8 MiB of whole NATS chunks.
 */
export const DOWNLOAD_MESSAGE_BYTES = 128 * 1024;

export async function uploadVolume(
  svc: CoordinatorServices,
  ctx: CallContext,
  call: ServerReadableStream<UploadVolumeRequest, UploadVolumeResponse>,
): Promise<UploadVolumeResponse> {
  const messages = call[Symbol.asyncIterator]() as AsyncIterator<UploadVolumeRequest>;
  const first = await messages.next();
  if (!first.done) refuseMalformed(first.value);
  if (first.done || first.value.part?.$case !== 'header') {
    throw new InvalidArgumentError('header', 'the first message of an upload must be the header (volume name, offset, length)');
  }
  const header = first.value.part.value;
  // the audit line names the volume (a client stream has no request message to take it from)
  ctx.resource = header.name;
  const ref = requireVolumeName(header.name, 'header.name');
  checkSize(header.offset, 'header.offset');
  checkSize(header.length, 'header.length');
  if (header.offset + header.length > MAX_POSITION) {
    throw new InvalidArgumentError('header.offset', `with the length, the upload would pass ${MAX_POSITION} bytes (2^53 - 1), the largest offset written to exactly`);
  }
  checkRequestId(header.requestId, 'header.request_id');
  ctx.requestId = header.requestId;
  const { pool } = resolveVolumeForWork(svc, ref);
  svc.hosts.requireOnline(ref.host);

  async function* data(): AsyncGenerator<Buffer> {
    let total = 0n;
    for (;;) {
      const next = await clientIdleLimit(svc.streamIdleMs, messages.next(), 'the upload sent no data');
      if (next.done) {
        // the end of the upload only when the client ended it, not when it cancelled it
        if (await cancelledAtItsEnd(call, { maxWaitMs: svc.streamIdleMs })) throw new CancelledError('the client cancelled the upload');
        return;
      }
      refuseMalformed(next.value);
      const part = next.value.part;
      if (part?.$case === 'header') throw new InvalidArgumentError('header', 'only the first message of an upload may be a header');
      // a message with neither (the oneof unset) is not data of length 0: say so, not 'a header'
      if (part?.$case !== 'data') throw new InvalidArgumentError('data', 'is required in every message after the header (the part oneof was unset)');
      // details field and limit, as every limit's refusal has them (WatchEvents' filters, the call limit)
      if (part.value.length > MAX_UPLOAD_CHUNK) {
        throw new ResourceExhaustedError(
          `data: an upload data message is ${part.value.length} bytes; at most ${MAX_UPLOAD_CHUNK} (4 MiB) allowed: send the data in messages of at most 4 MiB`,
          { field: 'data', limit: String(MAX_UPLOAD_CHUNK) },
        );
      }
      total += BigInt(part.value.length);
      // a declared length is a promise: more data than that is refused, not written
      if (header.length > 0n && total > header.length) {
        throw new ResourceExhaustedError(
          `data: the upload sent more than its declared length of ${header.length} bytes (header.length); send at most that, or declare length 0 to send to the end of the stream`,
          { field: 'data', limit: String(header.length), length: String(header.length) },
        );
      }
      if (part.value.length > 0) yield part.value;
    }
  }

  const upload = async (): Promise<UploadVolumeResponse> => {
    const request = AgentRequest.create({
      principal: ctx.principal,
      requestId: ctx.requestId,
      pool: pool.definition,
      persistent: pool.pool.persistent,
      autostart: pool.pool.autostart,
      op: {
        $case: 'uploadBegin',
        value: { volume: ref.volume, offset: header.offset, length: header.length, sparse: header.sparse },
      },
    });
    // the pool's CHAP secret, for backends that log in per operation (never logged)
    request.secrets = await secretValuesFor(svc.secrets, request);
    // the first data message is read and checked before the agent opens the upload (its
    // volume lock, its refresh when the stream closes): a refused one changes nothing
    const sending = data();
    const first = await sending.next();
    // the host going offline fails the upload at once, as it fails unary calls (forward.ts)
    const lost = hostLossSignal(svc, ref.host, 'uploadVolume', ctx.signal, "the volume keeps what was written; its state is in the host's next full sync");
    const result = await uploadToAgent(svc.nc, ref.host, request, startingWith(first, sending), lost.signal, { answerMs: svc.agentTimeoutMs }).finally(lost.stop);
    if (result.volume) svc.cache.applyVolume(ref.host, ref.pool, result.volume);
    await waitApplied(svc, ctx, result.eventSequence);
    const cached = svc.cache.volume(ref.host, ref.pool, ref.volume);
    return {
      volume: cached ? volumeView(cached, false) : result.volume,
      bytesWritten: result.bytesWritten,
    };
  };
  // a retry with the upload's request id gets the first upload's answer and writes nothing
  // again (the request the id is checked against is the header: a retry resends the same data)
  if (!svc.results || !header.requestId) return upload();
  const asStored: UploadVolumeRequest = { part: { $case: 'header', value: { ...header, requestId: '' } } };
  // its own signal: a retry joined to a first upload that is then cancelled does the upload itself
  return svc.results.once('UploadVolume', ctx.principal, header.requestId, asStored, upload, ctx.signal, 'header.request_id');
}

export async function downloadVolume(
  svc: CoordinatorServices,
  ctx: CallContext,
  call: ServerWritableStream<DownloadVolumeRequest, DownloadVolumeResponse>,
): Promise<void> {
  const req = call.request;
  const ref = requireVolumeName(req.name);
  checkSize(req.offset, 'offset');
  checkSize(req.length, 'length');
  const { pool } = resolveVolumeForWork(svc, ref);
  svc.hosts.requireOnline(ref.host);
  const request = AgentRequest.create({
    principal: ctx.principal,
    pool: pool.definition,
    persistent: pool.pool.persistent,
    autostart: pool.pool.autostart,
    op: {
      $case: 'downloadBegin',
      value: { volume: ref.volume, offset: req.offset, length: req.length, deliverSubject: '', window: 0 },
    },
  });
  request.secrets = await secretValuesFor(svc.secrets, request);
  // the host going offline fails the download at once, as it fails unary calls (forward.ts)
  const lost = hostLossSignal(svc, ref.host, 'downloadVolume', ctx.signal, 'try again when its agent is back');
  try {
    let offset = req.offset;
    for await (const chunk of downloadFromAgent(svc.nc, ref.host, request, lost.signal)) {
      for (let at = 0; at < chunk.length; at += DOWNLOAD_MESSAGE_BYTES) {
        const part = chunk.subarray(at, Math.min(at + DOWNLOAD_MESSAGE_BYTES, chunk.length));
        const ok = call.write({ data: part, offset });
        offset += BigInt(part.length);
        if (!ok) await drained(call, lost.signal, svc.streamIdleMs);
        if (ctx.signal.aborted) return;
      }
    }
  } finally {
    lost.stop();
  }
}

/**
 * Until a slow client has taken what is buffered, or `signal` aborts: the download's next
 * chunk then fails with the abort's reason. A client that takes nothing for `idleMs`
 * (CLIENT_IDLE_TIMEOUT_MS) ends the download (DEADLINE_EXCEEDED; the agent is told to stop):
 * else the agent's window of chunks stays held for as long as it keeps the connection open
 * (what grpc-js holds of the messages written, at most 17 of DOWNLOAD_MESSAGE_BYTES, stays
 * until the client reads or goes).
 */
async function drained(call: ServerWritableStream<DownloadVolumeRequest, DownloadVolumeResponse>, signal: AbortSignal, idleMs: number): Promise<void> {
  try {
    await clientIdleLimit(idleMs, once(call, 'drain', { signal }), 'the client took no data of the download');
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}

/** `work`, or DEADLINE_EXCEEDED once the client has been idle for `idleMs`. */
async function clientIdleLimit<T>(idleMs: number, work: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceededError(`${what} for ${idleMs / 1000} s; the stream is ended`)), idleMs);
  });
  idle.catch(() => undefined);
  try {
    return await Promise.race([work, idle]);
  } finally {
    clearTimeout(timer);
  }
}

/** `rest`, with `first` (already taken from it) in front. */
async function* startingWith<T>(first: IteratorResult<T>, rest: AsyncGenerator<T>): AsyncGenerator<T> {
  if (first.done) return;
  yield first.value;
  yield* rest;
}
