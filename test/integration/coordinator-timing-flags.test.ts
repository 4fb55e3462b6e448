// Two settings of the coordinator an operator could not reach: how long it waits for an
// agent's answer (agentTimeoutMs, an hour, fixed in code) and how long a graceful stop lets
// the calls still running finish (server.ts stop(), 5 s, fixed in code). A fleet whose pool
// builds take longer than an hour, or a site that wants a hung agent noticed in a minute, or a
// rolling restart that should let a long clone finish, had no way to say so.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { useStack, useTempDir, waitFor } from '../support/index.js';
import { createVolume, grpcCode, startDirPool } from './reliability-helpers.js';

describe('--agent-timeout-ms (real processes)', function () {
  this.timeout(90_000);
  // a long heartbeat: the host stays online while its agent is stopped, so what ends the call
  // is the coordinator's own wait for the answer, not the host going offline
  const ctx = useStack({ hosts: ['a'], coordinatorArgs: ['--agent-timeout-ms', '1500'], agentArgs: ['--heartbeat-ms', '30000'] });
  const scratch = useTempDir('cistern-agent-timeout-');

  it('a call whose agent does not answer within --agent-timeout-ms is DEADLINE_EXCEEDED naming the operation', async () => {
    await startDirPool(ctx.stack, 'a', 'p', join(scratch.path, 'p'));
    const agent = ctx.stack.agents.get('a')!;
    agent.process.signal('SIGSTOP');
    let outcome;
    try {
      // the client would wait 30 s; the coordinator's 1.5 s ends the call first
      outcome = await grpcCode(createVolume(ctx.stack, 'hosts/a/pools/p', 'slow.img', '65536', { requestId: 'timing-1', deadlineMs: 30_000 }));
    } finally {
      agent.process.signal('SIGCONT');
    }
    expect(status[outcome.code]).to.equal('DEADLINE_EXCEEDED');
    expect(outcome.message).to.contain("'createVolume'");
    expect(outcome.message).to.match(/may still (complete|finish)/);
  });

});

describe('--stop-grace-ms (real processes)', function () {
  this.timeout(90_000);
  const ctx = useStack({ hosts: ['a'], coordinatorArgs: ['--stop-grace-ms', '60000'], agentArgs: ['--heartbeat-ms', '30000'] });
  const scratch = useTempDir('cistern-stop-grace-');

  it('a graceful stop lets a call running on a stopped agent finish within --stop-grace-ms, past the former fixed 5 s', async () => {
    await startDirPool(ctx.stack, 'a', 'p', join(scratch.path, 'p'));
    const agent = ctx.stack.agents.get('a')!;
    agent.process.signal('SIGSTOP');
    // the request on the bus: the call is running in the coordinator before it is told to stop
    const nc = await connect({ servers: ctx.stack.natsUrl });
    let sent = 0;
    const sub = nc.subscribe('cistern.agent.a.CreateVolume', { callback: () => void sent++ });
    await nc.flush();
    let call: Promise<{ code: number; message: string }> | undefined;
    try {
      call = grpcCode(createVolume(ctx.stack, 'hosts/a/pools/p', 'late.img', '65536', { requestId: 'timing-2', deadlineMs: 60_000 }));
      await waitFor('the CreateVolume request on the bus', () => sent > 0 || undefined, { timeoutMs: 10_000, intervalMs: 20 });
      ctx.stack.coordinator.process.signal('SIGTERM');
      await waitFor('the coordinator to begin its graceful stop', () => ctx.stack.coordinator.process.logs().includes('coordinator stopping') || undefined, { timeoutMs: 10_000, intervalMs: 50 });
      // past the former fixed grace of 5 s
      await new Promise((r) => setTimeout(r, 6_000));
    } finally {
      agent.process.signal('SIGCONT');
      sub.unsubscribe();
      await nc.close();
    }
    // the agent answers as soon as it runs again and the stopping coordinator passes it on; before,
    // the fixed 5 s grace had answered the call UNAVAILABLE
    const outcome = await call!;
    expect(outcome, outcome.message).to.deep.include({ code: status.OK });
  });
});
