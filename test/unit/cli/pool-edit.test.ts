// pool-edit against a fake server, with a real editor: a small node script named in $EDITOR
// that edits the file as sed would and logs how it was run. The messages are virsh 9.0's
// (EDITOR=script virsh -c test:///default pool-edit default-pool).
import { expect } from 'chai';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLDocument, type DefinePoolRequest, type GetPoolXMLRequest } from '../../../libs/proto/cistern/v1/storage.js';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';
import { editorArgv, writeTempXml } from '../../../cli/editor.js';
import type { Terminal } from '../../../cli/command.js';
import { FakeApi, pool, run } from './fake-api.js';

const XML = "<pool type='dir'>\n  <name>default</name>\n  <target>\n    <path>/srv/default</path>\n  </target>\n</pool>\n";

/** A pool whose inactive XML is `xml`; definePool fails while `defineFailures` has entries. */
class EditApi extends FakeApi {
  xml = XML;
  /** XML documents GetPoolXML gives before `xml` (someone else's change, seen on the re-read) */
  xmlQueue: string[] = [];
  defineFailures: Error[] = [];
  override async getPoolXml(r: GetPoolXMLRequest) {
    this.calls.push({ method: 'getPoolXml', request: r });
    return XMLDocument.create({ xml: this.xmlQueue.shift() ?? this.xml });
  }
  override async definePool(r: DefinePoolRequest) {
    this.calls.push({ method: 'definePool', request: r });
    const failure = this.defineFailures.shift();
    if (failure) throw failure;
    return pool(r.host, /<name>(.*)<\/name>/.exec(r.xml)?.[1] ?? '?');
  }
}

// The editor: `node edit.mjs [FROM TO]` replaces FROM with TO in the file (no spaces in either:
// $EDITOR is split on whitespace); `node edit.mjs fail N` exits with N. Each run appends its
// arguments and the file's mode to $EDIT_LOG.
const EDITOR_SCRIPT = `
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
const args = process.argv.slice(2);
const file = args[args.length - 1];
appendFileSync(process.env.EDIT_LOG, JSON.stringify({ args, mode: statSync(file).mode & 0o777 }) + '\\n');
if (args[0] === 'fail') process.exit(Number(args[1]));
if (args.length === 3) writeFileSync(file, readFileSync(file, 'utf8').replace(args[0], args[1]));
`;

describe('cisternctl pool-edit', () => {
  let dir: string;
  let script: string;
  let log: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cisternctl-edit-'));
    script = join(dir, 'edit.mjs');
    log = join(dir, 'edit.log');
    await writeFile(script, EDITOR_SCRIPT);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const editor = (...args: string[]): string => [process.execPath, script, ...args].join(' ');
  const env = (vars: Record<string, string>): Record<string, string> => ({ TMPDIR: dir, EDIT_LOG: log, ...vars });
  const runs = async (): Promise<Array<{ args: string[]; mode: number }>> =>
    (await readFile(log, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { args: string[]; mode: number });
  /** What is left in $TMPDIR besides the script and its log: nothing, once pool-edit is done. */
  const leftovers = async (): Promise<string[]> => (await readdir(dir)).filter((f) => f !== 'edit.mjs' && f !== 'edit.log');

  function poolApi(): EditApi {
    const api = new EditApi(['a']);
    api.pools = [pool('a', 'default')];
    return api;
  }

  it('an unchanged file is "not changed": nothing is defined, the temporary file is removed', async () => {
    const api = poolApi();
    const r = await run(api, ['pool-edit', 'default'], { env: env({ EDITOR: editor() }) });
    expect(r).to.deep.equal({ code: 0, stdout: 'Pool default XML configuration not changed.\n\n', stderr: '' });
    expect((api.callsOf('getPoolXml')[0] as GetPoolXMLRequest)).to.deep.include({ name: 'hosts/a/pools/default', inactive: true });
    expect(api.callsOf('definePool')).to.deep.equal([]);
    const [only] = await runs();
    // a file of its own in $TMPDIR, readable by the user alone, as virsh's virshXXXXXX.xml
    expect(only!.args[0]).to.match(new RegExp(`^${dir}/cisternctl[0-9a-f]{12}\\.xml$`));
    expect(only!.mode).to.equal(0o600);
    expect(await leftovers()).to.deep.equal([]);
  });

  it('a changed file redefines the pool on its host from the edited XML: "edited"; -q prints nothing', async () => {
    const api = poolApi();
    const r = await run(api, ['pool-edit', 'default'], { env: env({ EDITOR: editor('/srv/default', '/srv/elsewhere') }) });
    expect(r).to.deep.equal({ code: 0, stdout: 'Pool default XML configuration edited.\n\n', stderr: '' });
    const defined = api.callsOf('definePool') as DefinePoolRequest[];
    expect(defined.map((d) => ({ host: d.host, xml: d.xml }))).to.deep.equal([{ host: 'a', xml: XML.replace('/srv/default', '/srv/elsewhere') }]);
    expect(await leftovers()).to.deep.equal([]);
    const quiet = await run(poolApi(), ['-q', 'pool-edit', 'default'], { env: env({ EDITOR: editor('/srv/default', '/srv/x') }) });
    expect(quiet).to.deep.equal({ code: 0, stdout: '', stderr: '' });
  });

  it('-r runs the editor and then is refused the define, as virsh -r: nothing defined, nothing left', async () => {
    const api = poolApi();
    const r = await run(api, ['-r', 'pool-edit', 'default'], { env: env({ EDITOR: editor('/srv/default', '/srv/elsewhere') }) });
    // virsh 9.0 from a pipe prints 'error: Failed.' then 'Pool (null) XML configuration edited.'
    // and exits 0; the failure is reported as a failure here
    expect(r).to.deep.equal({ code: 1, stdout: '\n', stderr: 'error: Failed.\nerror: operation forbidden: read only access prevents virStoragePoolDefineXML\n' });
    expect(api.callsOf('definePool')).to.deep.equal([]);
    expect(await leftovers()).to.deep.equal([]);
  });

  it('runs $VISUAL before $EDITOR, split on whitespace and never through a shell', async () => {
    const api = poolApi();
    const visual = `${process.execPath}   ${script}  ;touch$IFS${dir}/pwned   $(id)`;
    const r = await run(api, ['pool-edit', 'default'], { env: env({ VISUAL: visual, EDITOR: '/nonexistent/editor' }) });
    expect(r.code).to.equal(0);
    const [only] = await runs();
    expect(only!.args.slice(0, 2)).to.deep.equal([`;touch$IFS${dir}/pwned`, '$(id)']);
    expect(await leftovers()).to.deep.equal([]);
  });

  it('chooses the editor as virsh: $VISUAL, $EDITOR, then vi; an empty one is unset', () => {
    expect(editorArgv({})).to.deep.equal(['vi']);
    expect(editorArgv({ VISUAL: '', EDITOR: ' emacs  -nw ' })).to.deep.equal(['emacs', '-nw']);
    expect(editorArgv({ VISUAL: 'nano', EDITOR: 'emacs' })).to.deep.equal(['nano']);
  });

  it('the temporary file has an absolute path even when TMPDIR is relative (never an editor option)', async () => {
    const before = process.cwd();
    await mkdir(join(dir, '-x'));
    process.chdir(dir);
    try {
      const file = await writeTempXml({ TMPDIR: '-x' }, XML);
      expect(file.startsWith(join(dir, '-x') + '/'), file).to.equal(true);
    } finally {
      process.chdir(before);
    }
  });

  it('an editor that fails or cannot run is an error (libvirt\'s words); nothing is defined', async () => {
    const api = poolApi();
    const failed = await run(api, ['pool-edit', 'default'], { env: env({ EDITOR: editor('fail', '3') }) });
    expect(failed.code).to.equal(1);
    expect(failed.stdout).to.equal('\n');
    expect(failed.stderr).to.match(new RegExp(`^error: internal error: Child process \\(${process.execPath} ${script} fail 3 ${dir}/cisternctl[0-9a-f]{12}\\.xml\\) unexpected exit status 3\\n$`));
    const missing = await run(api, ['pool-edit', 'default'], { env: env({ EDITOR: '/nonexistent/editor' }) });
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.equal('error: cannot execute binary /nonexistent/editor: No such file or directory\n');
    expect(api.callsOf('definePool')).to.deep.equal([]);
    expect(await leftovers()).to.deep.equal([]);
  });

  it('without a terminal, XML that fails to define is an error with the reason, exit 1 (virsh asks "Try again?" only on a terminal)', async () => {
    const api = poolApi();
    api.defineFailures = [new InvalidArgumentError('', "XML error: unknown storage pool type 'bogus'")];
    const r = await run(api, ['pool-edit', 'default'], { env: env({ EDITOR: editor("type='dir'", "type='bogus'") }) });
    expect(r).to.deep.equal({
      code: 1,
      stdout: '\n',
      stderr: "error: Failed.\nerror: XML error: unknown storage pool type 'bogus'\n",
    });
    expect(await leftovers()).to.deep.equal([]);
  });

  it('a pool changed by someone else while it was edited is not redefined', async () => {
    const api = poolApi();
    api.xmlQueue = [XML];
    api.xml = XML.replace('/srv/default', '/srv/moved');
    const r = await run(api, ['pool-edit', 'default'], { env: env({ EDITOR: editor('</target>', '</target><!--x-->') }) });
    expect(r).to.deep.equal({ code: 1, stdout: '\n', stderr: 'error: The XML configuration was changed by another user.\n' });
    expect(api.callsOf('definePool')).to.deep.equal([]);
  });

  describe('on a terminal, a failed redefinition asks as virsh does', () => {
    /** A terminal that answers from a list and records what it was asked and lent for. */
    function terminal(answers: Array<string | undefined>): Terminal & { asked: string[]; lent: number } {
      const t = {
        asked: [] as string[],
        lent: 0,
        async lend<T>(fn: () => Promise<T>): Promise<T> {
          t.lent++;
          return fn();
        },
        async ask(question: string): Promise<string | undefined> {
          t.asked.push(question);
          return answers.shift();
        },
        askHidden: async () => undefined,
      };
      return t;
    }

    it('? prints the choices; f defines the same XML again', async () => {
      const api = poolApi();
      api.defineFailures = [new InvalidArgumentError('', 'busy')];
      const t = terminal(['?', 'f']);
      const r = await run(api, ['pool-edit', 'default'], { env: env({ EDITOR: editor('/srv/default', '/srv/b') }), terminal: t });
      expect(r.code).to.equal(0);
      expect(r.stderr).to.equal('error: busy\n');
      expect(r.stdout).to.equal(
        '\ny - yes, start editor again\nn - no, throw away my changes\nf - force, try to redefine again\n? - print this help\n' +
        'Pool default XML configuration edited.\n\n');
      expect(t.asked).to.deep.equal(['Failed. Try again? [y,n,f,?]: ', 'Failed. Try again? [y,n,f,?]: ']);
      expect(t.lent).to.equal(1);
      expect((api.callsOf('definePool') as DefinePoolRequest[]).map((d) => d.xml)).to.deep.equal([
        XML.replace('/srv/default', '/srv/b'), XML.replace('/srv/default', '/srv/b'),
      ]);
    });

    it('y runs the editor again on the edited file', async () => {
      const api = poolApi();
      api.defineFailures = [new InvalidArgumentError('', 'bad')];
      const t = terminal(['Y']);
      const r = await run(api, ['pool-edit', 'default'], { env: env({ EDITOR: editor('/srv/default', '/srv/c') }), terminal: t });
      expect(r.code).to.equal(0);
      expect(t.lent).to.equal(2);
      const [first, second] = await runs();
      expect(second!.args).to.deep.equal(first!.args); // the same file, the first edit still in it
      expect(api.callsOf('definePool')).to.have.length(2);
      expect(await leftovers()).to.deep.equal([]);
    });

    it('n (or the end of input) throws the changes away: exit 1, the reason already shown', async () => {
      for (const answer of ['n', undefined]) {
        const api = poolApi();
        api.defineFailures = [new InvalidArgumentError('', 'bad')];
        const r = await run(api, ['pool-edit', 'default'], { env: env({ EDITOR: editor('/srv/default', '/srv/d') }), terminal: terminal([answer]) });
        expect(r).to.deep.equal({ code: 1, stdout: '\n', stderr: 'error: bad\n' });
      }
      expect(await leftovers()).to.deep.equal([]);
    });
  });

  it('Ctrl-C at the question ends the command through its clean-up: the temporary file goes', async () => {
    const api = poolApi();
    api.defineFailures = [new InvalidArgumentError('', 'bad')];
    const controller = new AbortController();
    let seen: AbortSignal | undefined;
    const t: Terminal = {
      lend: (fn) => fn(),
      // as the process's terminal does: a question that the signal withdraws answers undefined
      ask: (_question, signal) => new Promise((resolve) => {
        seen = signal;
        signal?.addEventListener('abort', () => resolve(undefined), { once: true });
        controller.abort();
      }),
      askHidden: async () => undefined,
    };
    const r = await run(api, ['pool-edit', 'default'], { env: env({ EDITOR: editor('/srv/default', '/srv/e') }), terminal: t, signal: controller.signal });
    expect(seen, 'the question gets the command\'s signal').to.equal(controller.signal);
    expect(r).to.deep.equal({ code: 1, stdout: '\n', stderr: 'error: bad\n' });
    expect(await leftovers()).to.deep.equal([]);
  });

  it("an unknown pool is virsh's error, and no editor runs", async () => {
    const api = poolApi();
    const r = await run(api, ['pool-edit', 'nosuch'], { env: env({ EDITOR: editor() }) });
    expect(r).to.deep.equal({
      code: 1,
      stdout: '\n',
      stderr: "error: failed to get pool 'nosuch'\nerror: Storage pool not found: no storage pool with matching name 'nosuch'\n",
    });
    expect(await leftovers()).to.deep.equal([]);
  });
});
