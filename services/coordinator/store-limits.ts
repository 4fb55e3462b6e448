// The sizes a coordinator gives the event stream and the requests bucket (--event-max-bytes,
// --request-store-max-bytes, or their 1G defaults) against what the NATS server can store.
import { InvalidArgumentError } from '../../libs/errors/errors.js';

/** nats-server's JSInsufficientResourcesErr: a stream's max bytes over its JetStream store. */
const INSUFFICIENT_RESOURCES = 10047;

function insufficientStorage(err: unknown): boolean {
  const e = err as { message?: unknown; api_error?: { err_code?: number }; code?: unknown } | undefined;
  if (e?.api_error?.err_code === INSUFFICIENT_RESOURCES) return true;
  return typeof e?.message === 'string' && /insufficient (storage )?resources/i.test(e.message);
}

/**
 * Runs `apply` (a stream's or bucket's set-up with `bytes` as its size), turning nats-server's
 * refusal of that size into the operator's error: it is the setting, not JetStream starting
 * up, so retrying cannot help (the start used to retry for a minute and then end with
 * nats-server's words, naming no flag), and the operator has to know which flag to lower.
 */
export async function withinJetStreamStorage<T>(flag: string, bytes: number, apply: () => Promise<T>): Promise<T> {
  try {
    return await apply();
  } catch (err) {
    if (!insufficientStorage(err)) throw err;
    throw new InvalidArgumentError(
      flag,
      `${bytes} bytes is more than the NATS server's JetStream storage can hold, beside what its other streams reserve (nats-server: ${(err as Error).message}); give a smaller size, or the server more JetStream storage (max_file_store)`,
    );
  }
}
