// pool-event --list: virsh's list of event kinds (one a line, then the blank line), and with
// --json, which docs/cli.md promises is JSON and nothing else, a JSON array of them.
import { expect } from 'chai';
import { FakeApi, run } from './fake-api.js';

const KINDS = ['lifecycle', 'refresh', 'volume', 'host', 'progress'];

describe('cisternctl pool-event --list', () => {
  it('lists the kinds one a line, as virsh 9.0 (its two, then Cistern\'s), and asks the server nothing', async () => {
    const api = new FakeApi(['a']);
    expect(await run(api, ['pool-event', '--list'])).to.deep.equal({ code: 0, stdout: `${KINDS.join('\n')}\n\n`, stderr: '' });
    expect(api.calls).to.deep.equal([]);
  });

  it('with --json prints the kinds as one JSON array and no blank line', async () => {
    const r = await run(new FakeApi(['a']), ['pool-event', '--list', '--json']);
    expect(r.code).to.equal(0);
    expect(r.stderr).to.equal('');
    expect(JSON.parse(r.stdout)).to.deep.equal(KINDS);
    expect(r.stdout).to.equal(`${JSON.stringify(KINDS)}\n`);
  });
});
