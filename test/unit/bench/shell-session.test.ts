// One interactive shell driven through a pipe (bench/shell-session.ts), as the benchmarks drive
// virsh and cisternctl: a batch's output, and every error its commands wrote on stderr.
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ShellSession } from '../../../bench/shell-session.js';
import { makeTempDir } from '../../support/index.js';

// A shell like virsh -q on a pipe: commands one line each, `echo W` on stdout, `echo --err W` as
// 'error: W' on stderr, `say W` prints W, `fail W` writes 'error: W' on stderr. Its stderr
// reaches the reader LATE_MS after stdout (in order), as it may on a loaded machine: a
// separate pipe with no ordering against stdout.
const FAKE_SHELL = `
const LATE_MS = 200;
let pending = Promise.resolve();
const err = (line) => { pending = pending.then(() => new Promise((r) => setTimeout(() => { process.stderr.write(line + '\\n'); r(); }, LATE_MS))); };
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (s) => {
  buf += s;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const [cmd, ...rest] = buf.slice(0, i).split(' ');
    buf = buf.slice(i + 1);
    if (cmd === 'quit') { pending.then(() => process.exit(0)); return; }
    if (cmd === 'echo' && rest[0] === '--err') err('error: ' + rest.slice(1).join(' '));
    else if (cmd === 'echo' || cmd === 'say') process.stdout.write(rest.join(' ') + '\\n');
    else if (cmd === 'fail') err('error: ' + rest.join(' '));
  }
});
`;

describe('bench shell session (bench/shell-session)', function () {
  this.timeout(10_000);
  let session: ShellSession | undefined;
  let tmp: ReturnType<typeof makeTempDir> | undefined;

  beforeEach(() => {
    tmp = makeTempDir('cistern-bench-shell-');
    const script = join(tmp.path, 'fake-shell.cjs');
    writeFileSync(script, FAKE_SHELL);
    session = new ShellSession(process.execPath, [script]);
  });

  afterEach(async () => {
    await session?.close();
    await tmp?.remove();
  });

  it("returns the batch's output up to its marker", async () => {
    const r = await session!.run(['say one', 'say two']);
    expect(r.stdout).to.equal('one\ntwo\n');
    expect(r.errors).to.deep.equal([]);
  });

  it('reports an error a command wrote on stderr, however late that pipe delivers it', async () => {
    const r = await session!.batch(['say one', 'fail no such pool']);
    expect(r.errors).to.deep.equal(['error: no such pool']);
    // and it belongs to that batch, not the next one
    const next = await session!.batch(['say two']);
    expect(next.errors).to.deep.equal([]);
    expect(next.stdout).to.equal('two\n');
  });

  it('throws from run() when a command failed and printed nothing on stdout (no prompt before the marker)', async () => {
    let caught: unknown;
    await session!.run(['fail denied']).catch((e: unknown) => (caught = e));
    expect(String(caught)).to.contain('error: denied');
  });
});
