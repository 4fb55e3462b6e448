// A size limit the NATS server's JetStream cannot hold (--event-max-bytes, the event stream's
// default 1G on a small JetStream store, --request-store-max-bytes) is refused by nats-server
// with "insufficient storage resources available". That is the operator's setting, not
// JetStream starting up: the coordinator says which flag, what it was and what to change,
// instead of retrying for a minute and ending with nats-server's words alone.
import { expect } from 'chai';
import { entryPoints, makeTempDir, ServiceProcess, startNats } from '../support/index.js';

async function coordinatorExit(natsUrl: string, args: string[]): Promise<{ code: number | null; logs: string }> {
  const proc = ServiceProcess.spawn({
    name: 'coordinator',
    command: process.execPath,
    args: [entryPoints.coordinator, '--nats', natsUrl, '--listen', '127.0.0.1:0', '--data', makeTempDir('cistern-store-limits-').path, '--sync-wait-ms', '0', ...args],
  });
  try {
    const status = await proc.exited;
    return { code: status.code, logs: proc.logs() };
  } finally {
    await proc.dispose();
  }
}

describe('coordinator store limits NATS cannot hold', function () {
  this.timeout(120_000);

  it('--event-max-bytes over the server\'s JetStream storage: refused naming the flag and the size, nothing served', async () => {
    const nats = await startNats();
    const { code, logs } = await coordinatorExit(nats.url, ['--event-max-bytes', '1000T']);
    expect(code).to.equal(2);
    expect(logs).to.match(/--event-max-bytes: 1099511627776000 bytes is more than the NATS server's JetStream storage can hold/);
    expect(logs).to.not.match(/coordinator serving/);
  });

  it('--request-store-max-bytes over it: refused naming that flag', async () => {
    const nats = await startNats();
    const { code, logs } = await coordinatorExit(nats.url, ['--request-store-max-bytes', '1000T']);
    expect(code).to.equal(2);
    expect(logs).to.match(/--request-store-max-bytes: 1099511627776000 bytes is more than the NATS server's JetStream storage can hold/);
  });
});
