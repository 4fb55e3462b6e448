// Idempotency (docs/events.md, "Retries and request ids"): a mutating call that carries a request id does its work once.
// The coordinator keeps each successful call's response in the JetStream KV bucket
// `cistern-requests` (key = sha256 of principal and request id, TTL `ttlSeconds`): the
// store is shared by every coordinator, so a client that retries on another coordinator
// after a switch gets the first call's response. Calls that failed are not kept (a
// failed create leaves nothing behind, so the retry does the work). Two retries running
// at the same time join one another here (same coordinator) or in the agent's request
// cache (services/agent/request-cache.ts), which also covers a coordinator killed after
// the agent finished but before the response was stored.
import { createHash } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { DiscardPolicy, jetstreamManager } from '@nats-io/jetstream';
import { asCisternError, InvalidArgumentError } from '../../libs/errors/errors.js';
import { StorageServiceService } from '../../libs/proto/cistern/v1/storage.js';
import type { Logger } from '../../libs/log/logger.js';

export const REQUESTS_BUCKET = 'cistern-requests';
/** Room for stored responses: at ~450 B each, 1 GiB is ~2.4 million calls (about 28 a second for 24 h). */
export const DEFAULT_REQUEST_STORE_MAX_BYTES = 1024 ** 3;

/**
 * Applies this coordinator's bounds to the bucket, which outlives every coordinator: its TTL
 * (--request-ttl) and its size, dropping the oldest responses when full. The KV client sets a
 * TTL only when it makes the bucket, so without this a coordinator started with another
 * --request-ttl on an existing deployment kept the first one's, silently. The size: the TTL
 * alone let the bucket grow with the call rate (7 GB a day at 190 calls/s in review), and the
 * KV client makes buckets that refuse writes when full, which would fail calls instead of
 * shortening the retry window. As with the event stream's retention, the coordinator started
 * last decides.
 */
async function boundRequestStore(nc: NatsConnection, ttlSeconds: number, maxBytes: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const stream = `KV_${REQUESTS_BUCKET}`;
  const { config } = await jsm.streams.info(stream);
  const maxAge = ttlSeconds * 1_000_000_000;
  // nats-server refuses a duplicate window longer than the max age
  const window = config.duplicate_window > maxAge ? maxAge : config.duplicate_window;
  if (config.max_bytes === maxBytes && config.discard === DiscardPolicy.Old && config.max_age === maxAge && config.duplicate_window === window) return;
  await jsm.streams.update(stream, { ...config, max_bytes: maxBytes, discard: DiscardPolicy.Old, max_age: maxAge, duplicate_window: window });
}
export const DEFAULT_REQUEST_TTL_SECONDS = 24 * 3600;
/** Runs of one call whose joined work was cancelled by someone else (see once). */
const MAX_ATTEMPTS = 5;

/**
 * The call a retry joined ended for a reason of its own caller's (its cancel, its deadline: a
 * Session call's timeout ends it DEADLINE_EXCEEDED, not CANCELLED): not the retry's outcome.
 * `cause` is what the joined call got.
 */
class JoinedCallAbandoned extends Error {
  override name = 'JoinedCallAbandoned';
}

interface MethodCodec {
  requestSerialize(value: unknown): Buffer;
  responseSerialize(value: unknown): Buffer;
  responseDeserialize(value: Buffer): unknown;
}

const codecs = new Map<string, MethodCodec>(
  Object.values(StorageServiceService).map((d) => [d.path.slice(d.path.lastIndexOf('/') + 1), d as unknown as MethodCodec]),
);

interface StoredResult {
  method: string;
  fingerprint: string;
  response: string; // base64 of the encoded response message
  at: string;
}

export interface RequestResultsStore {
  get(key: string): Promise<StoredResult | undefined>;
  put(key: string, value: StoredResult): Promise<void>;
}

function kvStore(kv: KV): RequestResultsStore {
  return {
    async get(key) {
      const e = await kv.get(key);
      if (!e || e.operation !== 'PUT' || e.length === 0) return undefined;
      return JSON.parse(new TextDecoder().decode(e.value)) as StoredResult;
    },
    async put(key, value) {
      await kv.put(key, JSON.stringify(value));
    },
  };
}

export class RequestResults {
  private readonly running = new Map<string, { method: string; fingerprint: string; result: Promise<unknown>; signal: AbortSignal | undefined }>();

  constructor(
    private readonly store: RequestResultsStore,
    private readonly log: Logger,
    /** how long a response is kept (--request-ttl): a request id's retry window */
    readonly ttlMs = DEFAULT_REQUEST_TTL_SECONDS * 1000,
  ) {}

  static async open(nc: NatsConnection, log: Logger, ttlSeconds = DEFAULT_REQUEST_TTL_SECONDS, maxBytes = DEFAULT_REQUEST_STORE_MAX_BYTES): Promise<RequestResults> {
    const kv = await new Kvm(nc).create(REQUESTS_BUCKET, { history: 1, ttl: ttlSeconds * 1000 });
    await boundRequestStore(nc, ttlSeconds, maxBytes);
    return new RequestResults(kvStore(kv), log, ttlSeconds * 1000);
  }

  /**
   * Runs `work` for a call, or returns the response the first call with this request id
   * got. Without a request id (or for a method without a response codec) it just runs.
   *
   * `signal` is this call's own (client cancel, deadline). A retry can be joined to a call
   * that another client, or an earlier attempt of the same client, then cancels: here, while
   * the first call runs on this coordinator, or in the agent's request cache while the
   * cancelled operation is still being stopped there. Its CANCELLED is not this call's
   * outcome (docs/api.md: a retry of a call that did not complete does the work), so a call
   * whose own signal has not aborted runs again, up to MAX_ATTEMPTS times. The same holds when
   * the call joined here ended with its own signal aborted, whatever its error: a Session call
   * whose timeout passed ends DEADLINE_EXCEEDED, naming that call and its timeout.
   *
   * `idField` names the request id in a refusal, as the .proto has it: `header.request_id` for
   * UploadVolume, whose id is in its first message's header.
   */
  async once<T>(method: string, principal: string, requestId: string, request: unknown, work: () => Promise<T>, signal?: AbortSignal, idField = 'request_id'): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(method, principal, requestId, request, work, signal, idField);
      } catch (err) {
        const abandoned = err instanceof JoinedCallAbandoned;
        const outcome = abandoned ? err.cause : err;
        if (!signal || signal.aborted || attempt >= MAX_ATTEMPTS || (!abandoned && asCisternError(err).code !== 'CANCELLED')) throw outcome;
        this.log.info('the call this retry was joined to was cancelled; running it again', { method, requestId, attempt, code: asCisternError(outcome).code });
      }
    }
  }

  private async attempt<T>(method: string, principal: string, requestId: string, request: unknown, work: () => Promise<T>, signal: AbortSignal | undefined, idField: string): Promise<T> {
    const codec = codecs.get(method);
    if (!requestId || !codec) return work();
    const key = createHash('sha256').update(`${principal}\u0000${requestId}`).digest('hex');
    const fingerprint = createHash('sha256')
      .update(codec.requestSerialize({ ...(request as object), requestId: '' }))
      .digest('hex');
    const check = (other: { method: string; fingerprint: string }): void => {
      if (other.method !== method || other.fingerprint !== fingerprint) {
        throw new InvalidArgumentError(
          idField,
          `request id '${requestId}' was already used for a different ${other.method === method ? `${method} request` : `call (${other.method})`}; a retry must repeat the same request`,
        );
      }
    };
    const joined = this.running.get(key);
    if (joined) {
      check(joined);
      try {
        return (await joined.result) as T;
      } catch (err) {
        if (joined.signal?.aborted && !signal?.aborted) throw new JoinedCallAbandoned('the joined call was ended by its own caller', { cause: err });
        throw err;
      } finally {
        // settled: a call after this one starts afresh (the first call's own cleanup may not have run yet)
        if (this.running.get(key) === joined) this.running.delete(key);
      }
    }
    const result = (async (): Promise<T> => {
      let stored: StoredResult | undefined;
      try {
        stored = await this.store.get(key);
      } catch (err) {
        this.log.warn('request results not readable; the call runs', { requestId, err: (err as Error)?.message });
      }
      if (stored) {
        check(stored);
        this.log.info('retry answered with the first call’s result', { method, requestId, at: stored.at });
        return codec.responseDeserialize(Buffer.from(stored.response, 'base64')) as T;
      }
      const response = await work();
      try {
        await this.store.put(key, {
          method,
          fingerprint,
          response: codec.responseSerialize(response).toString('base64'),
          at: new Date().toISOString(),
        });
      } catch (err) {
        this.log.warn('request result not stored; a retry on another coordinator relies on the agent', { requestId, err: (err as Error)?.message });
      }
      return response;
    })();
    const entry = { method, fingerprint, result, signal };
    this.running.set(key, entry);
    try {
      return await result;
    } finally {
      if (this.running.get(key) === entry) this.running.delete(key);
    }
  }
}
