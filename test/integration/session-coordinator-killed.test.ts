// A Session whose coordinator dies (SIGKILL) while a call is running: the call fails
// UNAVAILABLE saying what a client must know, that the call may have been done or may still
// be done by the agent, not grpc-js's bare "Connection dropped".
import { join } from 'node:path';
import { expect } from 'chai';
import { StorageSession } from '../../libs/api/session-client.js';
import { UnavailableError } from '../../libs/errors/errors.js';
import { useStack, useTempDir } from '../support/index.js';
import { startDirPool } from './reliability-helpers.js';

describe('StorageService.Session: its coordinator killed during a call (real stack)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-session-killed-');

  it('the running call fails UNAVAILABLE naming it and saying it may still complete', async () => {
    await startDirPool(ctx.stack, 'a', 'p', join(scratch.path, 'p'));
    const agent = ctx.stack.agents.get('a')!;
    const session = new StorageSession(ctx.stack.client);
    // the agent stopped: the refresh waits for it at the coordinator
    agent.process.signal('SIGSTOP');
    try {
      const refresh = session.call('refreshPool', { name: 'hosts/a/pools/p', requestId: 'h103-refresh-1' });
      const outcome = refresh.then(() => undefined, (err: Error) => err);
      // the call reaches the coordinator first: a call on the same stream is answered after it was read
      await session.call('getPool', { name: 'hosts/a/pools/p' });
      await ctx.stack.coordinator.kill();
      const err = await outcome;
      expect(err).to.be.instanceOf(UnavailableError);
      expect(err!.message).to.include('refreshPool');
      expect(err!.message).to.match(/may (still )?(have been done|complete)/);
      expect(err!.message).to.include('request_id');
    } finally {
      agent.process.signal('SIGCONT');
      session.close();
    }
  });
});
