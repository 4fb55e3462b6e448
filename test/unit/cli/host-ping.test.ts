// cisternctl host-ping against a fake server: the request it sends, the reply lines and the
// closing summary, --json, and what bad input and a refusal get.
import { expect } from 'chai';
import { UnavailableError } from '../../../libs/errors/errors.js';
import { UNARY_METHODS } from '../../../cli/api.js';
import { FakeApi, run } from './fake-api.js';

const REPLY = /^Reply from b \(b\.example\): time=\d+\.\d{3} ms agent=0\.250 ms$/;

describe('cisternctl host-ping', () => {
  it('sends PingHost for hosts/HOST and prints one reply line', async () => {
    const api = new FakeApi(['a', 'b']);
    const r = await run(api, ['host-ping', 'b']);
    expect(r.code).to.equal(0);
    expect(r.stderr).to.equal('');
    const lines = r.stdout.split('\n');
    expect(lines[0]).to.match(REPLY);
    expect(lines.slice(1)).to.deep.equal(['', '']); // one ping: no summary
    expect(api.callsOf('pingHost')).to.deep.equal([{ name: 'hosts/b' }]);
    // the real client wires the method (cli/client.ts connects every name in UNARY_METHODS)
    expect(UNARY_METHODS).to.include('pingHost');
  });

  it('--count pings that many times, then gives ping(8)\'s summary; -q keeps the replies, drops the summary', async () => {
    const api = new FakeApi(['b']);
    const r = await run(api, ['host-ping', 'hosts/b', '--count', '3']);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).to.have.length(5);
    for (const l of lines.slice(0, 3)) expect(l).to.match(REPLY);
    expect(lines[3]).to.equal('--- b ping statistics ---');
    expect(lines[4]).to.match(/^3 pings answered, round trip min\/avg\/max = \d+\.\d{3}\/\d+\.\d{3}\/\d+\.\d{3} ms$/);
    expect(api.callsOf('pingHost')).to.have.length(3);
    const quiet = await run(api, ['-q', 'host-ping', 'b', '--count', '2']);
    expect(quiet.stdout.trimEnd().split('\n')).to.have.length(2);
  });

  it('--json prints every ping as an object', async () => {
    const api = new FakeApi(['b']);
    const r = await run(api, ['host-ping', 'b', '--count', '2', '--json']);
    const out = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    expect(out).to.have.length(2);
    expect(out[0]).to.include({ host: 'b', hostname: 'b.example', agentRoundTripMs: 0.25 });
    expect(out[0]!.timeMs).to.be.a('number');
    // to the microsecond: no float noise such as 6.425721999999979
    for (const p of out) expect(Math.round((p.timeMs as number) * 1000) / 1000).to.equal(p.timeMs);
  });

  it('bad counts and host ids are refused before anything is sent', async () => {
    const api = new FakeApi(['b']);
    for (const count of ['0', '-1', 'x', '10001', '1.5']) {
      const r = await run(api, ['host-ping', 'b', '--count', count]);
      expect(r.code, count).to.equal(1);
      expect(r.stderr, count).to.include(`Numeric value '${count}' for <count> option is malformed or out of range: from 1 to 10000`);
    }
    expect((await run(api, ['host-ping', 'a/b'])).stderr).to.match(/^error: host: /);
    expect((await run(api, ['host-ping'])).stderr).to.equal("error: command 'host-ping' requires <host> option\n");
    expect(api.callsOf('pingHost')).to.deep.equal([]);
  });

  it("reports the server's refusal under a context line, exit status 1, and stops pinging", async () => {
    const api = new FakeApi(['b']);
    api.failures.set('pingHost', new UnavailableError("host 'b' is offline (last seen 2026-01-02T03:04:05.000Z); try again when its agent is back"));
    const r = await run(api, ['host-ping', 'b', '--count', '5']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal("error: Failed to ping host b\nerror: host 'b' is offline (last seen 2026-01-02T03:04:05.000Z); try again when its agent is back\n");
    expect(api.callsOf('pingHost')).to.have.length(1);
  });
});
