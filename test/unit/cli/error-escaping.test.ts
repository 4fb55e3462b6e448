// What cisternctl prints as an error is shown with control and format characters escaped
// (\x1b, \u202e), whoever made the message: its own parsing of the command line, or a server
// (an older coordinator) that sent one raw. virsh 9.0 prints them raw: `virsh vol-create-as
// default-pool v $'1\e[2JG'` clears the terminal.
import { expect } from 'chai';
import { FakeApi, pool, run } from './fake-api.js';

const HIDDEN = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/u;

describe('cisternctl error lines', () => {
  it('escape a control character from the command line, keeping the rest of virsh\'s message', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    const size = await run(api, ['vol-create-as', 'p', 'v', '1\x1b[2JG']);
    expect(size.code).to.equal(1);
    expect(size.stderr).to.not.match(HIDDEN);
    expect(size.stderr).to.include('error: Malformed size 1\\x1b[2JG\n');
    const unknown = await run(api, ['pool-\u009b2Jlist']);
    expect(unknown.stderr).to.equal("error: unknown command: 'pool-\\x9b2Jlist'\n");
  });

  it('escape what a server sent raw, line by line', async () => {
    const api = new FakeApi(['a']);
    api.failures.set('definePool', new Error("xml: pool: malformed XML: Tag 'poo\x1b[2Jl' is an invalid name.\n\u202eline two"));
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'cisternctl-esc-'));
    try {
      const file = join(dir, 'p.xml');
      await writeFile(file, '<pool type="dir"><name>p</name><target><path>/tmp</path></target></pool>');
      const r = await run(api, ['pool-define', file]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.not.match(HIDDEN);
      expect(r.stderr).to.include("Tag 'poo\\x1b[2Jl' is an invalid name.\n\\u202eline two\n");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
