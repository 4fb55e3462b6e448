// The README's secure setup starts nats-server, a coordinator and an agent one after the other
// in the background. On a fresh NATS only a coordinator may create the event stream and the
// catalog bucket (scripts/nats-config.mjs gives agents no stream API): an agent that got there
// first used to exit ('Permissions Violation for Publish to $JS.API.STREAM.CREATE.CISTERN_EVENTS').
// It now waits for a coordinator, says so, and serves once one has made them.
import { expect } from 'chai';
import { join } from 'node:path';
import { makeTempDir, registerCleanup } from '../support/cleanup.js';
import { connectClient, promiseApi, waitForHosts } from '../support/client.js';
import { startNats } from '../support/nats.js';
import { AbortWait, waitFor } from '../support/process.js';
import { startAgent, startCoordinator } from '../support/services.js';
import { makeCerts } from '../security/fleet.js';

describe('an agent with its own NATS user started before any coordinator (fresh NATS)', function () {
  this.timeout(120_000);

  it('waits for a coordinator to create the event stream and the catalog, saying so, then serves', async () => {
    const tmp = makeTempDir('cistern-agent-first-');
    registerCleanup('agent-first temp dir', () => tmp.remove());
    const certs = join(tmp.path, 'certs');
    makeCerts(certs, ['a']);
    const pass = (user: string) => join(certs, 'nats', `${user}.pass`);
    const nats = await startNats({ args: ['-c', join(certs, 'nats', 'nats-auth.conf')] });
    registerCleanup('agent-first nats', () => nats.stop());

    const agent = await startAgent({ natsUrl: nats.url, hostId: 'a', args: ['--nats-user', 'agent-a', '--nats-pass-file', pass('agent-a')] });
    registerCleanup('agent-first agent', () => agent.stop());
    await waitFor(
      'the agent to say it waits for a coordinator',
      () => {
        if (!agent.process.alive) throw new AbortWait(new Error(`the agent exited (${JSON.stringify(agent.process.exitStatus)})\n${agent.process.logTail()}`));
        return /waiting for a coordinator to create it/.test(agent.process.logs()) || undefined;
      },
      { timeoutMs: 30_000, context: () => agent.process.logTail() },
    );
    expect(agent.process.logs()).to.include('CISTERN_EVENTS');

    const coordinator = await startCoordinator({ natsUrl: nats.url, args: ['--nats-user', 'coordinator', '--nats-pass-file', pass('coordinator')] });
    registerCleanup('agent-first coordinator', () => coordinator.stop());
    const client = connectClient(coordinator.address);
    try {
      const [host] = await waitForHosts(promiseApi(client), ['a'], { context: () => agent.process.logTail() });
      expect(host!.online).to.equal(true);
    } finally {
      client.close();
    }
    expect(agent.process.alive).to.equal(true);
  });
});
