// FindPoolSources stops its discovery when the call ends early: a client's cancel or a passed
// deadline tells the agent to stop, and the discovery program (iscsi-ls, hanging on a portal
// that never answers) is killed rather than left running until its own timeout.
import { expect } from 'chai';
import { status, type ServiceError } from '@grpc/grpc-js';
import { PoolType, type FindPoolSourcesRequest } from '../../libs/proto/cistern/v1/storage.js';
import { outcomeOf, useStack, waitFor } from '../support/index.js';
import { startSilentPortal, type SilentPortal } from '../support/silent-portal.js';

const discovery = (portal: SilentPortal): FindPoolSourcesRequest => ({
  host: 'a',
  type: PoolType.POOL_TYPE_ISCSI_DIRECT,
  sourceXml: `<source><host name='127.0.0.1' port='${portal.port}'/><initiator><iqn name='iqn.2026-11.test.cistern:sources'/></initiator></source>`,
  source: undefined,
});

describe('FindPoolSources cancelled or past its deadline stops the discovery (real stack)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });

  it('a deadline that passes kills the hanging iscsi-ls', async () => {
    const portal = await startSilentPortal();
    try {
      const r = await outcomeOf(ctx.stack.api.findPoolSources(discovery(portal), { deadlineMs: 3000 }));
      expect(status[r.code]).to.equal('DEADLINE_EXCEEDED');
      expect(portal.accepted).to.equal(1);
      await waitFor('the discovery to be stopped', () => portal.closed === 1);
    } finally {
      await portal.stop();
    }
  });

  it("the client's cancel kills the hanging iscsi-ls", async () => {
    const portal = await startSilentPortal();
    try {
      let outcome: ServiceError | null | undefined;
      const call = ctx.stack.client.findPoolSources(discovery(portal), (err) => (outcome = err));
      await waitFor("the agent's iscsi-ls to reach the portal", () => portal.accepted === 1);
      call.cancel();
      await waitFor('the call to end', () => outcome !== undefined);
      expect(status[outcome!.code]).to.equal('CANCELLED');
      await waitFor('the discovery to be stopped', () => portal.closed === 1);
    } finally {
      await portal.stop();
    }
  });
});
