// A coordinator newer than an agent sends it an operation the agent's protobuf does not know:
// the `op` field decodes to nothing. During a rolling upgrade (coordinators first) that is
// every new operation sent to a host not upgraded yet. The operator must read that the agent
// is too old for it, not an internal error: UNIMPLEMENTED, naming the operation, the host and
// the agent's version, and nothing done.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { connectBus } from '../../libs/bus/connect.js';
import { AgentReply, AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import { useStack } from '../support/index.js';

/** Field 900, length-delimited, empty: an operation added to agent.proto after this agent was built. */
const FUTURE_OP_FIELD = Buffer.from([0xa2, 0x38, 0x00]);

describe('an operation the agent does not know (a newer coordinator)', function () {
  this.timeout(60_000);
  const ctx = useStack({ hosts: ['a'] });

  it('is UNIMPLEMENTED naming the operation, the host and the agent version', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    const nc = await connectBus({ servers: ctx.stack.natsUrl, name: 'test-newer-coordinator' });
    try {
      const known = AgentRequest.encode(AgentRequest.create({ principal: 'test', requestId: 'future-1' })).finish();
      const msg = await nc.request('cistern.agent.a.FutureOp', Buffer.concat([Buffer.from(known), FUTURE_OP_FIELD]), { timeout: 10_000 });
      const { error } = AgentReply.decode(msg.data);
      expect(error?.code).to.equal('UNIMPLEMENTED');
      expect(error?.message).to.equal(
        `operation 'FutureOp' is not one this agent knows (cistern-agent ${version} on host 'a'): the coordinator that sent it is newer; upgrade the agent`,
      );
      expect(error?.details).to.deep.include({ host: 'a', operation: 'FutureOp', agentVersion: version });
    } finally {
      await nc.close();
    }
  });
});
