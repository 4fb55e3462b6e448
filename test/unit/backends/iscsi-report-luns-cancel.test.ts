// The in-process REPORT LUNS client cancelled, or out of time, while its TCP connect is still
// under way: an iscsi-direct refresh against a portal whose SYNs a firewall drops sits there,
// and its cancel (or its own deadline) must end it, not leave the pool's operation (and its
// lock in the agent) waiting for ever.
import { expect } from 'chai';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { reportLuns } from '../../../libs/backends/iscsi-report-luns.js';
import { rejects } from '../../support/rejects.js';

describe('REPORT LUNS client cancelled during its connect', function () {
  // a hang fails the test at this bound rather than at mocha's minute
  this.timeout(10_000);
  let server: Server;
  let port: number;
  before(async () => {
    server = createServer((s) => {
      s.resume();
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  it('a cancel that comes before the connection is up rejects with CANCELLED', async () => {
    const ac = new AbortController();
    const asked = reportLuns({ host: '127.0.0.1', port, target: 'iqn.2026-11.test:t', initiator: 'iqn.2026-11.test:i', signal: ac.signal });
    // the connect has been asked of the kernel; its answer comes on a later turn of the event loop
    ac.abort();
    const err = await rejects(asked);
    expect(err.code).to.equal('CANCELLED');
    expect(err.message).to.match(/REPORT LUNS cancelled/);
  });
});
