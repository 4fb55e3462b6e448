// A Session call's own timeout (SessionRequest.timeout, a google.protobuf.Duration), checked
// and turned into the milliseconds its deadline timer waits.
import { InvalidArgumentError } from '../../libs/errors/errors.js';
import type { Duration } from '../../libs/proto/google/protobuf/duration.js';

/** google.protobuf.Duration's range: 10,000 years of seconds. */
const MAX_SECONDS = 315_576_000_000n;
const MAX_NANOS = 999_999_999;

/**
 * The timeout in milliseconds (a fraction for nanos), or undefined when the call has none.
 * A negative span, nanos outside 0..999,999,999 or seconds beyond Duration's range is
 * INVALID_ARGUMENT naming `timeout`, with what is allowed.
 */
export function sessionTimeoutMs(timeout: Duration | undefined): number | undefined {
  if (!timeout) return undefined;
  const { seconds, nanos } = timeout;
  if (seconds < 0n || nanos < 0) {
    throw new InvalidArgumentError('timeout', `${describe(timeout)} is negative; a call's timeout is a span from 0 up, as a unary call's deadline`);
  }
  if (nanos > MAX_NANOS) {
    throw new InvalidArgumentError('timeout', `nanos ${nanos} is out of range: google.protobuf.Duration's nanos are 0 to ${MAX_NANOS} (whole seconds go in seconds)`);
  }
  if (seconds > MAX_SECONDS) {
    throw new InvalidArgumentError('timeout', `seconds ${seconds} is out of range: google.protobuf.Duration's seconds are at most ${MAX_SECONDS} (10,000 years)`);
  }
  return Number(seconds) * 1000 + nanos / 1e6;
}

function describe(d: Duration): string {
  return `seconds ${d.seconds}, nanos ${d.nanos}`;
}

/**
 * The longest a Node timer waits (2^31-1 ms, ~24.8 days): a longer delay fires at once. A
 * timeout beyond it sets no timer; the agent's own limit (one hour by default) ends the work
 * long before.
 */
export const LONGEST_TIMER_MS = 2 ** 31 - 1;
