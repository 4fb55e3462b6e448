// PingHost against a real nats-server, coordinator and agents: the agent answers through the
// bus, as a unary call and over a Session; a host that is unknown, offline, or online but not
// answering gets its own status; cisternctl host-ping on top. Nothing on any host changes.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { hostname } from 'node:os';
import { readdirSync } from 'node:fs';
import { StorageSession } from '../../libs/api/session-client.js';
import type { CisternError } from '../../libs/errors/errors.js';
import { PingHostRequest, type PingHostResponse } from '../../libs/proto/cistern/v1/storage.js';
import { useStack } from '../support/index.js';
import { expectCode } from '../support/grpc-expect.js';

const ping = (name: string) => PingHostRequest.fromPartial({ name });
const roundTripMs = (r: PingHostResponse) => Number(r.agentRoundTrip!.seconds) * 1000 + r.agentRoundTrip!.nanos / 1e6;

describe('PingHost (real nats-server, coordinator, agents a and b)', function () {
  this.timeout(120_000);
  // 300 ms heartbeats: a stopped agent's host is offline within a second
  const ctx = useStack({ hosts: ['a', 'b'], agentArgs: ['--heartbeat-ms', '300'] });

  it('the agent answers: its host, its machine, and the coordinator\'s round trip to it, unary and over a Session', async () => {
    const { stack } = ctx;
    const rootBefore = readdirSync(stack.roots.a!);
    const started = performance.now();
    const r = await stack.api.pingHost(ping('hosts/a'));
    const wholeMs = performance.now() - started;
    expect(r.name).to.equal('hosts/a');
    expect(r.hostname).to.equal(hostname());
    // the coordinator's share is part of the client's whole round trip
    expect(roundTripMs(r)).to.be.greaterThan(0).and.lessThan(wholeMs);
    // the bare id is a host name too
    expect((await stack.api.pingHost(ping('b'))).name).to.equal('hosts/b');

    const session = new StorageSession(stack.client);
    try {
      const viaSession = await session.call('pingHost', ping('hosts/a'));
      expect(viaSession.name).to.equal('hosts/a');
      expect(viaSession.hostname).to.equal(hostname());
      expect(roundTripMs(viaSession)).to.be.greaterThan(0);
      const bad = (await session.call('pingHost', ping('hosts/a/pools/x')).then(() => undefined, (e: CisternError) => e))!;
      expect(bad.code).to.equal('INVALID_ARGUMENT');
      expect(bad.message).to.match(/^name: /);
    } finally {
      session.close();
    }
    expect(readdirSync(stack.roots.a!)).to.deep.equal(rootBefore);
  });

  it('bad names are INVALID_ARGUMENT, a host no agent reported NOT_FOUND', async () => {
    const api = ctx.stack.api;
    await expectCode(api.pingHost(ping('')), status.INVALID_ARGUMENT, /^name: is required/);
    await expectCode(api.pingHost(ping('hosts/a/pools/x')), status.INVALID_ARGUMENT, /^name: /);
    await expectCode(api.pingHost(ping('hosts/../a')), status.INVALID_ARGUMENT, /^name: /);
    await expectCode(api.pingHost(ping('hosts/nope')), status.NOT_FOUND, /host 'nope' is not known/);
  });

  it('cisternctl host-ping prints a reply per ping and a summary; an offline host fails with exit status 1', async () => {
    const { stack } = ctx;
    const r = await stack.cli(['host-ping', 'a', '--count', '3']);
    expect(r.stderr).to.equal('');
    expect(r.code).to.equal(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).to.have.length(5);
    for (const line of lines.slice(0, 3)) expect(line).to.match(new RegExp(`^Reply from a \\(${hostname().replace(/\./g, '\\.')}\\): time=\\d+\\.\\d{3} ms agent=\\d+\\.\\d{3} ms$`));
    expect(lines[3]).to.equal('--- a ping statistics ---');

    await stack.stopAgent('b');
    await stack.waitForHosts(['b'], { online: false, timeoutMs: 60_000 });
    await expectCode(stack.api.pingHost(ping('hosts/b')), status.UNAVAILABLE, /^host 'b' is offline/);
    const offline = await stack.cli(['host-ping', 'b']);
    expect(offline.code).to.equal(1);
    expect(offline.stderr).to.match(/^error: Failed to ping host b\nerror: host 'b' is offline/);
  });
});

describe('PingHost to a paused agent (real stack, agent p)', function () {
  this.timeout(60_000);
  // 10 s heartbeats: an agent paused for the 5 s a ping waits is still online when it gives up
  const ctx = useStack({ hosts: ['p'], agentArgs: ['--heartbeat-ms', '10000'] });

  it('an agent that is online but does not answer is UNAVAILABLE after the ping\'s 5 s, and answers again once it runs', async () => {
    const { stack } = ctx;
    const agent = stack.agents.get('p')!;
    process.kill(agent.process.pid, 'SIGSTOP');
    try {
      await expectCode(stack.api.pingHost(ping('hosts/p')), status.UNAVAILABLE, /^host 'p' did not answer its ping within 5 s: its agent is online but not answering$/);
    } finally {
      process.kill(agent.process.pid, 'SIGCONT');
    }
    expect((await stack.api.pingHost(ping('hosts/p'))).name).to.equal('hosts/p');
  });
});
