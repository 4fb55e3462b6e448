// SessionRequest.timeout: a google.protobuf.Duration read as milliseconds, or refused naming
// the field with what is allowed.
import { expect } from 'chai';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';
import { sessionTimeoutMs } from '../../../services/coordinator/session-timeout.js';

function refusal(seconds: bigint, nanos: number): InvalidArgumentError {
  try {
    sessionTimeoutMs({ seconds, nanos });
  } catch (err) {
    expect(err).to.be.instanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error(`seconds ${seconds}, nanos ${nanos} was accepted`);
}

describe('session call timeout', () => {
  it('unset is no timeout; a span is its milliseconds, nanos included', () => {
    expect(sessionTimeoutMs(undefined)).to.equal(undefined);
    expect(sessionTimeoutMs({ seconds: 0n, nanos: 0 })).to.equal(0);
    expect(sessionTimeoutMs({ seconds: 3n, nanos: 0 })).to.equal(3000);
    expect(sessionTimeoutMs({ seconds: 1n, nanos: 500_000_000 })).to.equal(1500);
    expect(sessionTimeoutMs({ seconds: 0n, nanos: 250_000 })).to.equal(0.25);
    expect(sessionTimeoutMs({ seconds: 315_576_000_000n, nanos: 999_999_999 })).to.be.greaterThan(3e14);
  });

  it('a negative span, nanos out of range or seconds beyond Duration are INVALID_ARGUMENT naming timeout', () => {
    for (const [seconds, nanos] of [[-1n, 0], [0n, -1], [-2n, -5]] as const) {
      const err = refusal(seconds, nanos);
      expect(err.field).to.equal('timeout');
      expect(err.message).to.equal(`timeout: seconds ${seconds}, nanos ${nanos} is negative; a call's timeout is a span from 0 up, as a unary call's deadline`);
    }
    expect(refusal(0n, 1_000_000_000).message).to.equal(
      "timeout: nanos 1000000000 is out of range: google.protobuf.Duration's nanos are 0 to 999999999 (whole seconds go in seconds)",
    );
    expect(refusal(315_576_000_001n, 0).message).to.equal(
      "timeout: seconds 315576000001 is out of range: google.protobuf.Duration's seconds are at most 315576000000 (10,000 years)",
    );
  });
});
