// An agent's NATS user may not create JetStream streams (scripts/nats-config.mjs: only
// coordinators may), so on a fresh NATS the event stream and the catalog bucket exist once a
// coordinator has started. An agent that gets there first (README's secure setup starts them
// one after the other in the background; a fleet boots in any order) waits for them instead of
// exiting, and says what it waits for.
import { PermissionViolationError } from '@nats-io/transport-node';
import type { Logger } from '../../libs/log/logger.js';

/** How often it tries again, and how often it says again that it waits. */
const RETRY_MS = 1_000;
const NOTICE_REPEAT_MS = 60_000;

/** Whether `err` is NATS refusing this connection a stream create (its user may not). */
function streamCreateRefused(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof PermissionViolationError && e.subject.startsWith('$JS.API.STREAM.CREATE.')) return true;
  }
  return false;
}

/**
 * `open()` (which creates `what` when it is missing), tried again every second while NATS
 * refuses this agent the create, until a coordinator has made it. Any other failure is thrown.
 */
export async function madeByCoordinator<T>(what: string, open: () => Promise<T>, log: Logger): Promise<T> {
  let noticeAt = 0;
  for (;;) {
    try {
      return await open();
    } catch (err) {
      if (!streamCreateRefused(err)) throw err;
      if (Date.now() >= noticeAt) {
        log.warn(`${what} does not exist yet, and this agent's NATS user may not create it: waiting for a coordinator to create it (start one on this NATS)`, {
          refused: (err as Error).message,
        });
        noticeAt = Date.now() + NOTICE_REPEAT_MS;
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }
}
