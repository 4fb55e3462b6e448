// --nats takes a comma-separated list of servers (a NATS cluster) for the coordinator as it
// does for the agent (services/agent/main.ts splits it): a coordinator given the same value
// as its agents must connect, not wait forever for a "server" named by the whole list.
import { expect } from 'chai';
import { connectClient, freePort, promiseApi, startAgent, startCoordinator, startNats, waitForHosts } from '../support/index.js';

describe('--nats with a list of servers', function () {
  this.timeout(90_000);

  it('the coordinator and an agent given "URL,URL" (one server down) both connect and serve', async () => {
    const nats = await startNats();
    const servers = `${nats.url},nats://127.0.0.1:${await freePort()}`;
    const coordinator = await startCoordinator({ natsUrl: servers, timeoutMs: 20_000 });
    await startAgent({ natsUrl: servers, hostId: 'a' });
    const client = connectClient(coordinator.address);
    try {
      await waitForHosts(promiseApi(client), ['a']);
      const { hosts } = await promiseApi(client).listHosts({ pageSize: 0, pageToken: '' });
      expect(hosts.map((h) => [h.hostId, h.online])).to.deep.equal([['a', true]]);
    } finally {
      client.close();
    }
  });
});
