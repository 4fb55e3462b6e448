// The shell's own commands (echo, cd, pwd, help, quit) and how a session shares connections.
// Expected outputs were captured from virsh 9.0 (`virsh -q -c test:///default ...`).
import { expect } from 'chai';
import { realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Connections } from '../../../cli/run.js';
import type { StorageApi } from '../../../cli/api.js';
import type { ConnectionOptions } from '../../../cli/client.js';
import { FakeApi, run } from './fake-api.js';

describe('cli shell commands', () => {
  it('echo prints its arguments as virsh does: plain, --shell, --xml, --split, --err', async () => {
    const api = new FakeApi(['a']);
    const echo = async (...args: string[]) => (await run(api, ['-q', 'echo', ...args])).stdout;
    expect(await echo('hi')).to.equal('hi');
    expect(await echo('a', '', 'b')).to.equal('a  b');
    expect(await echo()).to.equal('');
    expect(await echo('--shell', 'a b', "it's", 'plain')).to.equal("'a b' 'it'\\''s' plain");
    expect(await echo('--shell', '')).to.equal("''");
    expect(await echo('--shell', 'a\tb', 'x=y', 'a,b', '%@:+-_./', 'é')).to.equal("'a\tb' x=y a,b %@:+-_./ é");
    expect(await echo('--xml', '<a&b>', `'q"`)).to.equal('&lt;a&amp;b&gt; &apos;q&quot;');
    expect(await echo('--xml', 'a\tb\nc\x01d\re')).to.equal('a\tb\ncd\re');
    expect(await echo('--split', 'a,', ',b', 'x,,')).to.equal('a\n\n \nb\n x,\n');
    expect(await echo('--split', 'a,,,b')).to.equal('a,\nb\n');
    expect(await echo('--split', '')).to.equal('');
    // after --, options are words; the words' option may be named, as virsh takes it
    expect(await echo('--', '--shell')).to.equal('--shell');
    expect(await echo('--string', 'a', 'b')).to.equal('a b');
    expect(await echo('--string=x', 'y')).to.equal('x y');
    expect((await run(api, ['-q', 'echo', '--string'])).stderr).to.equal('error: expected syntax: --string <string>\n');
    const err = await run(api, ['echo', '--err', 'a', 'b']);
    expect([err.code, err.stdout, err.stderr]).to.deep.equal([0, '\n', 'error: a b\n']);
    expect((await run(api, ['-q', 'echo', '--err'])).stderr).to.equal('');
  });

  it('echo refuses two quoting modes at once, in virsh\'s words', async () => {
    const api = new FakeApi(['a']);
    for (const [a, b] of [['shell', 'xml'], ['xml', 'split'], ['shell', 'split']] as const) {
      const r = await run(api, ['-q', 'echo', `--${b}`, `--${a}`, 'x']);
      expect([r.code, r.stdout, r.stderr]).to.deep.equal([1, '', `error: Options --${a} and --${b} are mutually exclusive\n`]);
    }
    const unknown = await run(api, ['echo', '--bogus']);
    expect(unknown.stderr).to.equal("error: command 'echo' doesn't support option --bogus\n");
  });

  it('help lists the shell\'s own group and lays out help, quit and echo as virsh 9.0', async () => {
    const api = new FakeApi(['a']);
    // a script written for virsh asks for its group by virsh's keyword: the same group
    expect((await run(api, ['help', 'virsh'])).stdout).to.equal((await run(api, ['help', 'cisternctl'])).stdout);
    expect((await run(api, ['help', 'cisternctl'])).stdout).to.equal(
      " Cisternctl itself (help keyword 'cisternctl'):\n" +
      '    cd                             change the current directory\n' +
      '    echo                           echo arguments. Used for internal testing.\n' +
      '    exit                           quit this interactive terminal\n' +
      '    help                           print help\n' +
      '    pwd                            print the current directory\n' +
      '    quit                           quit this interactive terminal\n' +
      '\n',
    );
    expect((await run(api, ['help', 'help'])).stdout).to.equal(
      '  NAME\n    help - print help\n\n  SYNOPSIS\n    help [--command <string>]\n\n' +
      '  DESCRIPTION\n    Prints global help, command specific help, or help for a\n    group of related commands\n\n' +
      '  OPTIONS\n    --command <string>  Prints global help, command specific help, or help for a group of related commands\n\n\n',
    );
    expect((await run(api, ['help', 'quit'])).stdout).to.equal('  NAME\n    quit - quit this interactive terminal\n\n  SYNOPSIS\n    quit\n\n\n');
    expect((await run(api, ['help', 'echo'])).stdout).to.equal(
      '  NAME\n    echo - echo arguments. Used for internal testing.\n\n' +
      '  SYNOPSIS\n    echo [--shell] [--xml] [--split] [--err] [<string>]...\n\n' +
      '  DESCRIPTION\n    Echo back arguments, possibly with quoting. Used for internal testing.\n\n' +
      '  OPTIONS\n    --shell          escape for shell use\n    --xml            escape for XML use\n' +
      "    --split          split each argument on ','; ',,' is an escape sequence\n" +
      '    --err            output to stderr\n    <string>         arguments to echo\n\n\n',
    );
    // help's topic as its named option, as virsh takes it
    expect((await run(api, ['help', '--command', 'pwd'])).stdout).to.match(/^ {2}NAME\n {4}pwd - print the current directory\n/);
    // general help still lists the storage groups first
    expect((await run(api, ['help'])).stdout).to.match(/Storage Pool[\s\S]*Storage Volume[\s\S]*Fleet[\s\S]*Cisternctl itself/);
  });

  it('cd works only in a session, as virsh\'s; pwd anywhere', async () => {
    const api = new FakeApi(['a']);
    const before = process.cwd();
    try {
      const outside = await run(api, ['cd', '/tmp']);
      expect([outside.code, outside.stderr]).to.deep.equal([1, 'error: cd: command valid only in interactive mode\n']);
      expect(process.cwd()).to.equal(before);
      const dir = realpathSync(tmpdir());
      const r = await run(api, ['-q'], { stdin: `cd /nonexistent-cistern-dir\ncd ${dir}\npwd\n` });
      expect(r.stderr).to.equal('error: cd: No such file or directory: /nonexistent-cistern-dir\n');
      expect(r.stdout).to.equal(`${dir}\n`);
      expect(r.code).to.equal(0);
    } finally {
      process.chdir(before);
    }
    expect((await run(api, ['-q', 'pwd'])).stdout).to.equal(`${process.cwd()}\n`);
  });

  it('quit and exit take no arguments', async () => {
    const api = new FakeApi(['a']);
    expect((await run(api, ['quit', 'now'])).stderr).to.equal("error: unexpected data 'now'\n");
    expect((await run(api, ['exit'])).code).to.equal(0);
  });

  it('an empty command line is an error, not a session reading stdin', async () => {
    // `cisternctl "$CMD"` with CMD empty, in a `while read` loop: a session would run the loop's
    // remaining input as commands. virsh '' exits 1 at once, printing nothing (vshCommandStringParse
    // refuses an empty string); one of blanks only is a line with no command, exit 0.
    const api = new FakeApi(['a']);
    expect(await run(api, [''], { stdin: 'pool-delete default\n' })).to.deep.equal({ code: 1, stdout: '', stderr: '' });
    expect(await run(api, ['-q', ''], { stdin: 'pool-delete default\n' })).to.deep.equal({ code: 1, stdout: '', stderr: '' });
    expect(await run(api, [' '], { stdin: 'pool-delete default\n' })).to.deep.equal({ code: 0, stdout: '', stderr: '' });
    expect(api.calls).to.deep.equal([]);
  });

  it('an empty command name followed by words is an unknown command, not a session reading stdin', async () => {
    // `cisternctl "$CMD" "$POOL"` with CMD empty: virsh parses the words as a command (vshCommandArgvParse)
    // and says "error: unknown command: ''", exit 1; a session would run stdin's lines as commands
    const api = new FakeApi(['a']);
    expect(await run(api, ['', 'default'], { stdin: 'pool-delete default\n' })).to.deep.equal({ code: 1, stdout: '', stderr: "error: unknown command: ''\n" });
    expect(await run(api, ['--', '', '--all'], { stdin: 'pool-delete default\n' })).to.deep.equal({ code: 1, stdout: '', stderr: "error: unknown command: ''\n" });
    expect(api.calls).to.deep.equal([]);
  });
});

describe('cli sessions share connections', () => {
  const conn = (server: string): ConnectionOptions => ({ server } as ConnectionOptions);

  it('one API per server, opened on first use, each closed once at the end', () => {
    const opened: string[] = [];
    const closed: string[] = [];
    const connections = new Connections(undefined, (c) => {
      opened.push(c.server);
      return { close: () => closed.push(c.server) } as unknown as StorageApi;
    });
    const a = connections.get(conn('127.0.0.1:1'));
    expect(connections.get(conn('127.0.0.1:1'))).to.equal(a);
    expect(connections.get(conn('127.0.0.1:2'))).to.not.equal(a);
    expect(opened).to.deep.equal(['127.0.0.1:1', '127.0.0.1:2']);
    connections.close();
    expect(closed).to.deep.equal(['127.0.0.1:1', '127.0.0.1:2']);
    connections.close();
    expect(closed).to.have.length(2);
  });

  it('a test\'s API is used as given and never closed', () => {
    let closes = 0;
    const given = { close: () => closes++ } as unknown as StorageApi;
    const connections = new Connections(given, () => {
      throw new Error('must not connect');
    });
    expect(connections.get(conn('x:1'))).to.equal(given);
    connections.close();
    expect(closes).to.equal(0);
  });

  it('a session runs each line when it arrives, not after the input ended', async () => {
    const api = new FakeApi(['a']);
    const { runCli } = await import('../../../cli/run.js');
    let stdout = '';
    const seenBeforeSecondLine: string[] = [];
    const code = await runCli(['-q'], {
      stdout: { write: (t: string) => void (stdout += t) },
      stderr: { write: () => undefined },
      env: {},
      api,
      openInput: () => ({
        lines: (async function* () {
          yield 'echo first';
          seenBeforeSecondLine.push(stdout);
          yield 'echo second';
        })(),
        close: () => undefined,
      }),
    });
    expect(code).to.equal(0);
    expect(seenBeforeSecondLine).to.deep.equal(['first']);
    expect(stdout).to.equal('firstsecond');
  });
});
