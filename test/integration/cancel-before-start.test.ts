// A call whose caller gave up (deadline, cancel) before its agent began it is not done later.
// An agent that hangs (SIGSTOP, a paused VM) or whose event loop is busy reads a request and,
// right behind it, the coordinator's cancel of it, together when it runs again: docs/api.md
// ("Long operations, deadlines and cancellation") says cancelling tells the agent to stop, and
// a delete, resize or pool stop that nobody waits for any more must not happen after its
// client was told DEADLINE_EXCEEDED. (A host gone offline is different: its calls fail
// UNAVAILABLE and are not cancelled; their outcome is in the host's next sync.)
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { useStack, useTempDir, waitFor } from '../support/index.js';
import { PoolState } from '../../libs/proto/cistern/v1/storage.js';
import { createVolume, dirPool, grpcCode, startDirPool } from './reliability-helpers.js';

const POOL = 'hosts/a/pools/p';

describe('calls given up on before a hung agent began them (real processes)', function () {
  this.timeout(60_000);
  // the default heartbeat (2 s): the host stays online through a pause of about a second
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-cancel-before-start-');

  it('a delete, a resize by delta and a pool stop whose deadlines passed while the agent was stopped are not done after SIGCONT', async () => {
    const { api } = ctx.stack;
    await startDirPool(ctx.stack, 'a', 'p', join(scratch.path, 'p'));
    await api.definePool({ host: 'a', definition: dirPool('q', join(scratch.path, 'q')), xml: '', requestId: '', validate: false });
    await api.startPool({ name: 'hosts/a/pools/q', build: true, buildFlags: undefined, requestId: '' });
    await createVolume(ctx.stack, POOL, 'keep.img', '65536');
    await createVolume(ctx.stack, POOL, 'grow.img', '65536');

    // the coordinator's cancels, seen on the bus: the client's deadline passes a moment before
    // the coordinator's own, and the agent must not run again before they were sent
    const nc = await connect({ servers: ctx.stack.natsUrl });
    let cancels = 0;
    const sub = nc.subscribe('cistern.agent.a.cancel.>', { callback: () => void cancels++ });
    await nc.flush();
    const agent = ctx.stack.agents.get('a')!;
    agent.process.signal('SIGSTOP');
    try {
      const late = { deadlineMs: 300 };
      const given = await Promise.all([
        grpcCode(api.deleteVolume({ name: `${POOL}/volumes/keep.img`, requestId: '' }, late)),
        grpcCode(api.resizeVolume({ name: `${POOL}/volumes/grow.img`, capacity: 65536n, allocate: false, delta: true, shrink: false, requestId: '' }, late)),
        grpcCode(api.stopPool({ name: 'hosts/a/pools/q', requestId: '' }, late)),
      ]);
      expect(given.map((g) => status[g.code])).to.deep.equal(['DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED']);
      await waitFor('the coordinator to cancel the three calls on the bus', () => cancels === 3);
    } finally {
      agent.process.signal('SIGCONT');
      sub.unsubscribe();
      await nc.close();
    }

    // The same calls again, sent after SIGCONT, reach the agent after the given-up ones: had
    // those run, these would find the volume gone or busy (NOT_FOUND, ABORTED), the pool
    // stopped (FAILED_PRECONDITION), or the volume grown twice.
    await api.deleteVolume({ name: `${POOL}/volumes/keep.img`, requestId: '' });
    const grown = await api.resizeVolume({ name: `${POOL}/volumes/grow.img`, capacity: 65536n, allocate: false, delta: true, shrink: false, requestId: '' });
    expect(grown.definition?.capacity).to.equal(131072n);
    const stopped = await api.stopPool({ name: 'hosts/a/pools/q', requestId: '' });
    expect(PoolState[stopped.state]).to.equal('POOL_STATE_INACTIVE');
  });
});
