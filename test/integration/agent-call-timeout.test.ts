// The coordinator's own limit on an agent call (agentTimeoutMs, an hour by default) passing
// while the agent still works: a wipe of a big volume, a clone of a big image, a pool build.
// The agent is not told to stop (nobody asked it to) and may finish; the client must learn
// that, which operation it was, and how to find out (docs/api.md "Long operations").
import { expect } from 'chai';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectBus } from '../../libs/bus/connect.js';
import { callAgent, serveAgent } from '../../libs/bus/agent-rpc.js';
import { AgentReply, AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import { DeadlineExceededError } from '../../libs/errors/errors.js';
import { startNats, type NatsServer } from '../support/nats.js';

describe("agent call past the coordinator's own timeout (real nats-server)", function () {
  this.timeout(30_000);
  let nats: NatsServer;
  let agentSide: NatsConnection;
  let coordinatorSide: NatsConnection;
  /** Ends the held wipe; its handler's signal tells whether the agent was told to stop. */
  let finishWipe: (() => void) | undefined;
  let wipeSignal: AbortSignal | undefined;

  before(async () => {
    nats = await startNats();
    agentSide = await connectBus({ servers: nats.url, name: 'test-agent' });
    coordinatorSide = await connectBus({ servers: nats.url, name: 'test-coordinator' });
    serveAgent(agentSide, 'h1', async (_op, _request, _msg, signal) => {
      wipeSignal = signal;
      await new Promise<void>((resolve) => (finishWipe = resolve));
      return AgentReply.create();
    });
    await agentSide.flush();
  });

  after(async () => {
    finishWipe?.();
    await coordinatorSide?.close();
    await agentSide?.close();
    await nats?.stop();
  });

  it('is DEADLINE_EXCEEDED naming the operation, saying it may still complete and how to learn its outcome', async () => {
    const request = AgentRequest.fromPartial({ requestId: 'r-1', op: { $case: 'wipeVolume', value: { name: 'hosts/h1/pools/p/volumes/big.img' } } });
    const err = await callAgent(coordinatorSide, 'h1', request, { timeoutMs: 300 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(DeadlineExceededError);
    const e = err as DeadlineExceededError;
    expect(e.details).to.include({ host: 'h1', operation: 'wipeVolume' });
    // before: "host 'h1' did not answer in time": no operation, nothing of the work going on
    expect(e.message).to.contain("'wipeVolume'");
    expect(e.message).to.match(/may still (complete|finish)/);
    expect(e.message).to.contain('same request_id');
    // the agent was not told to stop: its work and its events go on, a retry joins them
    expect(wipeSignal?.aborted).to.equal(false);
  });

  it('without a request id does not promise that a retry joins the work: it would do it again', async () => {
    finishWipe?.();
    const request = AgentRequest.fromPartial({ op: { $case: 'wipeVolume', value: { name: 'hosts/h1/pools/p/volumes/big.img' } } });
    const err = (await callAgent(coordinatorSide, 'h1', request, { timeoutMs: 300 }).then(
      () => undefined,
      (e: unknown) => e,
    )) as DeadlineExceededError;
    expect(err).to.be.instanceOf(DeadlineExceededError);
    expect(err.message).to.match(/may still (complete|finish)/);
    expect(err.message).to.not.contain('same request_id');
    expect(err.message).to.contain('no request_id');
  });
});
