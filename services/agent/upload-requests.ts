// Idempotency of uploads on the agent. An upload is not in the request cache
// (request-cache.ts): its uploadBegin is answered at once and its outcome comes with the
// stream's end. Yet the coordinator that forwarded it may die before it stores the answer,
// or while the upload still sends, and its client then retries with the same request id
// through another coordinator. Here, by principal and request id:
// - an upload committed (for `ttlMs`) answers the retry with its outcome; the retry's data is
//   not written (a retry is the same request: its header is checked, its bytes cannot be);
// - an upload whose data has all been taken (syncing, committing) is joined: the retry gets
//   its outcome, or does the work itself when it fails, as any joined call;
// - an upload still taking data is stopped (CANCELLED, not committed): its sender went away or
//   its client gave up on it, since the client retries. The retry waits until it has wound
//   down and then writes its own data from its own offset: never interleaved with the first's.
import { InvalidArgumentError } from '../../libs/errors/errors.js';
import type { AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import type { UploadResult } from '../../libs/bus/streams.js';
import { fingerprintOf } from './request-cache.js';

export interface RunningUpload {
  /** settles when the upload has ended: committed, or failed */
  readonly outcome: Promise<UploadResult>;
  /** whether the writer has taken all the data it will take */
  allTaken(): boolean;
  /** tells the upload to stop taking data (it then fails CANCELLED, not committed) */
  stop(reason: string): void;
}

interface Entry {
  fingerprint: string;
  upload: RunningUpload;
  expires: number;
}

export class UploadRequests {
  private readonly entries = new Map<string, Entry>();

  /**
   * `maxEntries`: committed uploads kept at most, the oldest forgotten first (their retry then
   * writes again), as the request cache bounds the other operations: each entry holds its
   * upload's closure, and an operator may send small uploads with fresh ids for 15 minutes on
   * end. An upload still running is never forgotten for it: its retry must stop it.
   */
  constructor(
    private readonly ttlMs = 15 * 60_000,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 20_000,
  ) {}

  /**
   * The committed outcome of an earlier upload with this request's id, once any earlier one
   * still running has ended (undefined: none, or it failed: this one does the work).
   * INVALID_ARGUMENT when the id was used for another upload (another pool, volume, offset,
   * length or sparse flag). `signal` (the retry's own cancel) ends the wait.
   */
  async earlier(request: AgentRequest, signal?: AbortSignal): Promise<UploadResult | undefined> {
    if (!request.requestId) return undefined;
    this.sweep();
    const key = keyOf(request);
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (hit.fingerprint !== uploadFingerprint(request)) {
      // UploadVolumeRequest carries its id in its first message's header
      throw new InvalidArgumentError(
        'header.request_id',
        `request id '${request.requestId}' was already used for a different upload (pool, volume, offset, length or sparse); a retry must repeat the same header`,
      );
    }
    if (!hit.upload.allTaken()) hit.upload.stop(`a retry with its request id '${request.requestId}' took its place`);
    try {
      return await untilSettled(hit.upload.outcome, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      return undefined;
    }
  }

  /** Remembers `upload` under the request's id: retries find it (earlier). */
  track(request: AgentRequest, upload: RunningUpload): void {
    if (!request.requestId) return;
    this.sweep();
    const key = keyOf(request);
    const entry: Entry = { fingerprint: uploadFingerprint(request), upload, expires: Number.POSITIVE_INFINITY };
    this.entries.set(key, entry);
    upload.outcome.then(
      () => {
        entry.expires = this.now() + this.ttlMs;
      },
      // a failed upload is forgotten: its retry does the work
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
  }

  private sweep(): void {
    const now = this.now();
    // insertion order: the oldest first, so the committed uploads dropped over the limit are the oldest
    for (const [key, e] of this.entries) {
      if (e.expires <= now || (this.entries.size > this.maxEntries && e.expires !== Number.POSITIVE_INFINITY)) this.entries.delete(key);
    }
  }
}

function keyOf(request: AgentRequest): string {
  return `${request.principal}\u0000${request.requestId}`;
}

/** The upload's header and the pool it is in (the op names the volume alone). */
function uploadFingerprint(request: AgentRequest): string {
  return `${request.pool?.name ?? ''}\u0000${fingerprintOf(request)}`;
}

/** `work`'s outcome, or the abort of `signal` first. */
async function untilSettled<T>(work: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return work;
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
