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
// separate pipe with no ordering against stdout. `lines N` prints N lines, one write each,
// apart (as virsh prints a line per vol-create-as), so the reader gets them as many chunks;
// `echo` writes its word in two halves, apart, so a marker may arrive split over two chunks.
const FAKE_SHELL = `
const LATE_MS = 200;
let pending = Promise.resolve();
const err = (line) => { pending = pending.then(() => new Promise((r) => setTimeout(() => { process.stderr.write(line + '\\n'); r(); }, LATE_MS))); };
let buf = '';
let busy = false;
const drain = () => {
  let i;
  while (!busy && (i = buf.indexOf('\\n')) >= 0) {
    const [cmd, ...rest] = buf.slice(0, i).split(' ');
    buf = buf.slice(i + 1);
    if (cmd === 'quit') { pending.then(() => process.exit(0)); return; }
    if (cmd === 'echo' && rest[0] === '--err') err('error: ' + rest.slice(1).join(' '));
    else if (cmd === 'say') process.stdout.write(rest.join(' ') + '\\n');
    else if (cmd === 'echo') {
      // in two writes, apart: the reader may get a marker in two chunks
      const word = rest.join(' ') + '\\n';
      busy = true;
      process.stdout.write(word.slice(0, word.length >> 1));
      setImmediate(() => {
        process.stdout.write(word.slice(word.length >> 1));
        busy = false;
        drain();
      });
    }
    else if (cmd === 'fail') err('error: ' + rest.join(' '));
    else if (cmd === 'lines') {
      busy = true;
      let k = 0;
      const next = () => {
        if (k < Number(rest[0])) {
          process.stdout.write('Vol v' + String(k++).padStart(6, '0') + ' created\\n');
          setImmediate(next);
        } else {
          busy = false;
          drain();
        }
      };
      next();
    }
  }
};
process.stdin.setEncoding('utf8');
process.stdin.on('data', (s) => {
  buf += s;
  drain();
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

  it('looks for the marker in what each chunk added, not again in the whole output so far', async () => {
    // Rescanning the whole output at every chunk is quadratic: with a chunk per line, 1,000
    // vol-create-as cost the bench ~0.1 s of CPU and 5,000 ~1 s, counted in libvirt's time.
    // Count the characters of every string searched for the marker (a call given the marker).
    const lines = 3000;
    let searched = 0;
    const proto = String.prototype as unknown as Record<string, (this: string, ...args: unknown[]) => unknown>;
    const originals: Record<string, (this: string, ...args: unknown[]) => unknown> = {};
    const includes = String.prototype.includes;
    for (const m of ['indexOf', 'lastIndexOf', 'includes', 'startsWith', 'endsWith']) {
      const original = proto[m]!;
      originals[m] = original;
      proto[m] = function (this: string, ...args: unknown[]) {
        if (typeof args[0] === 'string' && includes.call(args[0], '__CISTERN_BENCH_')) searched += this.length;
        return original.apply(this, args);
      };
    }
    let r;
    try {
      r = await session!.run([`lines ${lines}`]);
    } finally {
      Object.assign(proto, originals);
    }
    expect(r.stdout.split('\n').filter(Boolean)).to.have.length(lines);
    expect(r.stdout.endsWith(`Vol v${String(lines - 1).padStart(6, '0')} created\n`)).to.equal(true);
    // each byte a few times (a chunk, and the short tail kept from the one before), not once per later chunk
    expect(searched).to.be.below(10 * r.stdout.length + 200 * lines);
  });

  it('throws from run() when a command failed and printed nothing on stdout (no prompt before the marker)', async () => {
    let caught: unknown;
    await session!.run(['fail denied']).catch((e: unknown) => (caught = e));
    expect(String(caught)).to.contain('error: denied');
  });
});
