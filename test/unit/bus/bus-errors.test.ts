import { expect } from 'chai';
import { busErrorLogger } from '../../../libs/bus/connect.js';

describe('errors the NATS server reports on a connection', () => {
  it('are logged, each distinct message at most once a minute', () => {
    const logged: unknown[] = [];
    let now = 0;
    const refused = busErrorLogger({ error: (msg: string, fields?: Record<string, unknown>) => logged.push([msg, fields?.error]) }, () => now);
    const heartbeat = new Error("Permissions Violation for Publish to 'cistern.heartbeat.a'");
    refused(heartbeat);
    refused(heartbeat);
    refused(new Error("Permissions Violation for Subscription to 'x'"));
    now = 59_999;
    refused(heartbeat);
    now = 60_000;
    refused(heartbeat);
    expect(logged).to.deep.equal([
      ['NATS refused an operation of this connection', heartbeat.message],
      ['NATS refused an operation of this connection', "Permissions Violation for Subscription to 'x'"],
      ['NATS refused an operation of this connection', heartbeat.message],
    ]);
  });
});
