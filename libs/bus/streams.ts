// Volume data over NATS, with flow control. Messages stay under NATS's default
// 1 MiB payload limit; a window of chunks in flight keeps the pipe full.
//
// Upload:   coordinator --uploadBegin--> agent replies UploadReady{stream_subject};
//           coordinator sends StreamChunk requests there (window in flight), each
//           answered with a StreamAck once written; the eof chunk's ack carries the volume.
// Download: coordinator subscribes an inbox, sends downloadBegin{deliver_subject};
//           agent replies DownloadReady{length, ack_subject} and publishes StreamChunks,
//           waiting for acks when `window` chunks are unacknowledged.
import { ReplyInbox, ReplyTimeoutError } from './reply-inbox.js';
import { nuid, type Msg, type NatsConnection } from '@nats-io/transport-node';
import {
  AgentReply,
  AgentRequest,
  StreamAck,
  StreamChunk,
  type DownloadBegin,
} from '../proto/cistern/agent/v1/agent.js';
import type { Volume } from '../proto/cistern/v1/storage.js';
import { CancelledError, DeadlineExceededError, InternalError } from '../errors/errors.js';
import { abortError, busRequestError, callAgent, errorFromAgent, errorToWire, unansweredInTime } from './agent-rpc.js';
import { subjects } from './subjects.js';

export const CHUNK_SIZE = 512 * 1024;
export const WINDOW = 8;
/** A stream with no traffic for this long is abandoned by either side. */
export const IDLE_TIMEOUT_MS = 60_000;

export interface UploadResult {
  volume: Volume | undefined;
  bytesWritten: bigint;
  eventSequence: bigint;
}

/** Splits buffers into chunks of at most CHUNK_SIZE bytes. */
export async function* rechunk(data: AsyncIterable<Buffer | Uint8Array>, size = CHUNK_SIZE): AsyncGenerator<Buffer> {
  for await (const piece of data) {
    const buf = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    for (let at = 0; at < buf.length; at += size) yield buf.subarray(at, Math.min(at + size, buf.length));
  }
}

// ------------------------------------------------------------------ coordinator side

/**
 * The agent's answer to an upload's opening. A client that gives up before it comes must not
 * leave the upload open on the agent: the agent answers at once, so a cancel of the call finds
 * nothing running there, and the opened upload held its volume (ABORTED "busy: upload in
 * progress" to everyone else) until the agent's 60 s idle limit. So the answer is awaited
 * even after an abort, and an upload it opened is closed at once.
 */
async function openUpload(nc: NatsConnection, host: string, request: AgentRequest, signal?: AbortSignal): Promise<AgentReply> {
  const opening = callAgent(nc, host, request);
  if (!signal) return opening;
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortError(signal, 'upload cancelled', { host }));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([opening, aborted]);
  } catch (err) {
    if (signal.aborted) {
      void opening.then(
        (ready) => {
          const result = ready.result;
          if (result?.$case !== 'uploadReady') return;
          const closing = StreamChunk.encode({ ...StreamChunk.create(), error: errorToWire(err) }).finish();
          quietly(() => nc.publish(result.value.streamSubject, closing));
        },
        () => undefined,
      );
    }
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** How long an upload waits for the agent's acks. */
export interface UploadLimits {
  /** for each data chunk's ack (default IDLE_TIMEOUT_MS) */
  idleMs?: number;
  /**
   * for the answer to the end (default 1 hour, as callAgent): the agent answers it once the
   * data is synced, the volume committed and the pool refreshed, and a big upload's final
   * datasync on a slow disk outlasts any idle limit. The host going offline and the client
   * giving up end the wait through `signal`, so this limit is only the coordinator's own.
   */
  answerMs?: number;
}

/** The end's answer past the coordinator's limit: the agent may still commit the upload. */
const UPLOAD_OUTCOME =
  "its data was all sent; the agent was not told to stop and may still commit it: a VOLUME_UPLOADED event (WatchEvents) with the call's request id says it did, and a retry with that request id gets its answer";

/**
 * Sends `chunks` as the upload `request` opens. The first failure ends the upload with that
 * failure: an error ack or "no responders" for any chunk of the window (not only the oldest),
 * the sender's data failing, or `signal` aborting (its reason when that is a Cistern error:
 * the host went offline; else CANCELLED). The agent is told to stop; chunk requests still in
 * flight are abandoned (each settles by itself, its outcome already observed).
 */
export async function uploadToAgent(
  nc: NatsConnection,
  host: string,
  request: AgentRequest,
  chunks: AsyncIterable<Buffer | Uint8Array>,
  signal?: AbortSignal,
  limits: UploadLimits = {},
): Promise<UploadResult> {
  const idleMs = limits.idleMs ?? IDLE_TIMEOUT_MS;
  const ready = await openUpload(nc, host, request, signal);
  // a retry of an upload the agent committed (same request id): its outcome, nothing to send
  if (ready.result?.$case === 'uploadDone') {
    const done = ready.result.value;
    return { volume: done.volume, bytesWritten: done.bytesWritten, eventSequence: ready.eventSequence };
  }
  if (ready.result?.$case !== 'uploadReady') throw new InternalError('agent did not open an upload stream');
  const target = ready.result.value.streamSubject;
  // Every promise below is observed from its creation: a chunk request that fails while the
  // loop waits for the sender's next data must end the upload, not go unhandled (which
  // would end the process).
  let fail!: (err: unknown) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => undefined); // raced at every wait below; the first failure is the one kept
  const onAbort = (): void => fail(abortError(signal!, 'upload cancelled', { host }));
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  /** `work`, unless the upload failed before it settles (`failed` first: a failure already there wins). */
  const unlessFailed = <T>(work: Promise<T>): Promise<T> => Promise.race([failed, work]);

  const answerMs = limits.answerMs ?? 3_600_000;
  const send = async (chunk: StreamChunk): Promise<StreamAck> => {
    let msg: Msg;
    const timeoutMs = chunk.eof ? answerMs : idleMs;
    try {
      msg = await ReplyInbox.of(nc).request(target, StreamChunk.encode(chunk).finish(), { timeoutMs, replyHost: host });
    } catch (err) {
      // the end's answer past the coordinator's limit: the agent may still commit the upload
      if (chunk.eof && err instanceof ReplyTimeoutError) throw unansweredInTime(host, 'uploadVolume', timeoutMs, UPLOAD_OUTCOME);
      throw busRequestError(err, host);
    }
    const ack = StreamAck.decode(msg.data);
    if (ack.error) throw errorFromAgent(ack.error);
    return ack;
  };
  const inFlight: Promise<StreamAck>[] = [];
  const source = rechunk(chunks)[Symbol.asyncIterator]();
  let sequence = 0n;
  let offset = 0n;
  try {
    for (;;) {
      const next = await unlessFailed(source.next());
      if (next.done) break;
      sequence++;
      const sent = send(StreamChunk.create({ sequence, offset, data: next.value }));
      sent.catch(fail);
      inFlight.push(sent);
      offset += BigInt(next.value.length);
      if (inFlight.length >= WINDOW) await unlessFailed(inFlight.shift()!);
    }
    await unlessFailed(Promise.all(inFlight));
    const final = await unlessFailed(send(StreamChunk.create({ sequence: sequence + 1n, offset, eof: true })));
    return { volume: final.volume, bytesWritten: offset, eventSequence: final.eventSequence };
  } catch (err) {
    // tell the agent to stop and clean up (if it is gone, nobody hears it)
    quietly(() => nc.publish(target, StreamChunk.encode({ ...StreamChunk.create(), error: errorToWire(err) }).finish()));
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Receives the download `request` opens. `signal` aborting ends it at once: with the signal's
 * reason when that is a Cistern error (the host went offline), else CANCELLED.
 */
export async function* downloadFromAgent(
  nc: NatsConnection,
  host: string,
  request: AgentRequest,
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  if (request.op?.$case !== 'downloadBegin') throw new InternalError('downloadFromAgent needs a downloadBegin request');
  // a subject only the agent of `host` may publish to (not an inbox every client could write)
  const inbox = subjects.downloadStream(host, nuid.next());
  const sub = nc.subscribe(inbox);
  request.op.value.deliverSubject = inbox;
  request.op.value.window = WINDOW;
  let ackSubject = '';
  let finished = false;
  try {
    const ready = await callAgent(nc, host, request, { signal });
    if (ready.result?.$case !== 'downloadReady') throw new InternalError('agent did not open a download stream');
    ackSubject = ready.result.value.ackSubject;
    for await (const msg of withIdleTimeout(sub, signal)) {
      if (msg.subject !== inbox) continue; // a stored message a push consumer delivered (delivered-subject.ts)
      const chunk = StreamChunk.decode(msg.data);
      if (chunk.error) throw errorFromAgent(chunk.error);
      if (chunk.eof) {
        finished = true;
        return;
      }
      yield Buffer.from(chunk.data);
      quietly(() => nc.publish(ackSubject, StreamAck.encode(StreamAck.create({ sequence: chunk.sequence })).finish()));
    }
  } finally {
    sub.unsubscribe();
    if (!finished && ackSubject) quietly(() => nc.publish(ackSubject, StreamAck.encode(StreamAck.create({ cancel: true })).finish()));
  }
}

/**
 * Sends a message nobody waits on (an ack, a cancel, a last answer): publishing on a closed
 * or draining connection throws, and that must neither replace the failure being reported
 * nor escape a background task unhandled.
 */
function quietly(send: () => unknown): void {
  try {
    send();
  } catch {
    // the bus is gone: the other side stops on its idle timeout
  }
}

// ------------------------------------------------------------------ agent side

/**
 * Opens the subject an upload's data arrives on and runs `write` over the data in the
 * background. Returns the reply for the uploadBegin request at once.
 */
export function acceptUpload(
  nc: NatsConnection,
  host: string,
  write: (data: AsyncIterable<Buffer>, senderGaveUp: AbortSignal) => Promise<UploadResult>,
): AgentReply {
  const streamSubject = subjects.uploadStream(host, nuid.next());
  const sub = nc.subscribe(streamSubject);
  // one iterator for every reader below, one after the other: nats.js refuses a second
  // iterator of a subscription while the first is not finished ("already yielding")
  const iterator = sub[Symbol.asyncIterator]();
  const messages: AsyncIterable<Msg> = { [Symbol.asyncIterator]: () => iterator };
  let pending: Msg | undefined; // the chunk whose ack waits until it is written
  let eof: Msg | undefined;
  // The sender's cancel after the end (its client cancelled, its deadline passed, while the
  // writer syncs and commits): the writer checks it before it commits the upload as uploaded.
  const gaveUp = new AbortController();
  const hearCancelAfterEnd = async (): Promise<void> => {
    // the stream is read by nothing else once the end has come; unsubscribe ends this loop
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      const msg = next.value;
      if (msg.subject !== streamSubject) continue;
      const chunk = StreamChunk.decode(msg.data);
      if (chunk.error) gaveUp.abort(new CancelledError(`upload cancelled by the sender after its end: ${chunk.error.message}`));
    }
  };

  async function* data(): AsyncGenerator<Buffer> {
    let expected = 1n;
    for await (const msg of withIdleTimeout(messages)) {
      if (msg.subject !== streamSubject) continue; // a stored message a push consumer delivered (delivered-subject.ts)
      const chunk = StreamChunk.decode(msg.data);
      if (chunk.error) throw new CancelledError(`upload cancelled by the sender: ${chunk.error.message}`);
      if (chunk.eof) {
        eof = msg;
        void hearCancelAfterEnd().catch(() => undefined);
        return;
      }
      if (chunk.sequence !== expected) {
        msg.respond(StreamAck.encode({ ...StreamAck.create(), error: errorToWire(new InternalError('upload chunk out of order')) }).finish());
        throw new InternalError(`upload chunk ${chunk.sequence} arrived, ${expected} expected`);
      }
      expected++;
      pending = msg;
      yield Buffer.from(chunk.data);
      msg.respond(StreamAck.encode(StreamAck.create({ sequence: chunk.sequence })).finish());
      pending = undefined;
    }
  }

  void (async () => {
    let answer: StreamAck;
    try {
      const result = await write(data(), gaveUp.signal);
      // the writer may stop before eof (declared length reached): what follows is refused
      if (!eof) {
        // the chunk it stopped at was taken: acked, or its sender waits for that ack, not the end
        const taken = pending;
        pending = undefined;
        if (taken) quietly(() => taken.respond(StreamAck.encode(StreamAck.create({ sequence: StreamChunk.decode(taken.data).sequence })).finish()));
        for await (const msg of withIdleTimeout(messages)) {
          const chunk = StreamChunk.decode(msg.data);
          if (chunk.eof || chunk.error) {
            eof = msg;
            break;
          }
          msg.respond(
            StreamAck.encode({
              ...StreamAck.create(),
              error: errorToWire(new InternalError('upload has more data than its declared length')),
            }).finish(),
          );
        }
      }
      answer = StreamAck.create({ volume: result.volume, eventSequence: result.eventSequence });
    } catch (err) {
      answer = { ...StreamAck.create(), error: errorToWire(err) };
    }
    const encoded = StreamAck.encode(answer).finish();
    quietly(() => (pending ?? eof)?.respond(encoded));
    if (answer.error && !eof) {
      // chunks already sent in the window get the same answer, so the sender stops at once
      try {
        for await (const msg of withIdleTimeout(messages, undefined, 1_000)) {
          msg.respond(encoded);
          if (StreamChunk.decode(msg.data).eof) break;
        }
      } catch {
        // quiet for a second: the sender has stopped
      }
    }
    sub.unsubscribe();
  })();

  return AgentReply.create({ result: { $case: 'uploadReady', value: { streamSubject } } });
}

/**
 * Sends `data` to the coordinator's deliver subject in the background, `window`
 * chunks ahead of its acknowledgements. `onDone` runs when the stream ends either way
 * (the agent releases its locks there). Returns the reply for downloadBegin at once.
 */
export function serveDownload(
  nc: NatsConnection,
  begin: DownloadBegin,
  data: AsyncIterable<Buffer>,
  length: bigint,
  onDone?: (error?: unknown) => void,
): AgentReply {
  const ackSubject = `${begin.deliverSubject}.ack`;
  const acks = nc.subscribe(ackSubject);
  const window = BigInt(Math.max(1, Math.min(begin.window || WINDOW, 64)));
  let acked = 0n;
  let cancelled = false;
  let wake: (() => void) | undefined;
  let ackFailure: unknown;
  void (async () => {
    try {
      for await (const msg of acks) {
        if (msg.subject !== ackSubject) continue; // a stored message a push consumer delivered (delivered-subject.ts)
        const ack = StreamAck.decode(msg.data);
        if (ack.cancel) cancelled = true;
        if (ack.sequence > acked) acked = ack.sequence;
        wake?.();
      }
    } catch (err) {
      // no more acks (the subscription failed, or one was not an ack): the sender stops
      // with that error instead of the rejection going unhandled
      ackFailure = err;
      wake?.();
    }
  })();
  const waitForWindow = async (sequence: bigint): Promise<void> => {
    while (!cancelled && sequence - acked > window) {
      if (ackFailure) throw ackFailure;
      const woke = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), IDLE_TIMEOUT_MS);
        wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      if (!woke) throw new DeadlineExceededError('download receiver stopped acknowledging');
    }
  };

  void (async () => {
    let sequence = 0n;
    let offset = begin.offset;
    let failure: unknown;
    try {
      for await (const piece of rechunk(data)) {
        sequence++;
        await waitForWindow(sequence);
        if (cancelled) break;
        nc.publish(begin.deliverSubject, StreamChunk.encode(StreamChunk.create({ sequence, offset, data: piece })).finish());
        offset += BigInt(piece.length);
      }
      if (!cancelled) nc.publish(begin.deliverSubject, StreamChunk.encode(StreamChunk.create({ sequence: sequence + 1n, offset, eof: true })).finish());
    } catch (err) {
      failure = err;
      quietly(() => nc.publish(begin.deliverSubject, StreamChunk.encode({ ...StreamChunk.create(), error: errorToWire(err) }).finish()));
    } finally {
      acks.unsubscribe();
      onDone?.(failure);
    }
  })();

  return AgentReply.create({ result: { $case: 'downloadReady', value: { length, ackSubject } } });
}

/**
 * Iterates a subscription, failing when nothing arrives for IDLE_TIMEOUT_MS or the signal
 * aborts (with its reason when that is a Cistern error, see abortError).
 */
async function* withIdleTimeout(sub: AsyncIterable<Msg>, signal?: AbortSignal, idleMs = IDLE_TIMEOUT_MS): AsyncGenerator<Msg> {
  const iterator = sub[Symbol.asyncIterator]();
  while (true) {
    if (signal?.aborted) throw abortError(signal, 'stream cancelled');
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const stop = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineExceededError('stream idle for too long')), idleMs);
      onAbort = () => reject(abortError(signal!, 'stream cancelled'));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const next = await Promise.race([iterator.next(), stop]);
      if (next.done) return;
      yield next.value;
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }
}
