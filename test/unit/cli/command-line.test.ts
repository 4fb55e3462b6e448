// virsh's command-line syntax: `cisternctl 'cmd1; cmd2'` and commands on stdin.
import { expect } from 'chai';
import { splitCommandLine } from '../../../cli/command-line.js';
import { UsageError } from '../../../cli/errors.js';
import { FakeApi, pool, run, volume } from './fake-api.js';

describe('cisternctl command lines (virsh syntax)', () => {
  it('splits commands at ; and newlines, words at blanks, with quotes, escapes and comments', () => {
    expect(splitCommandLine('pool-refresh p4; vol-key a p4')).to.deep.equal([['pool-refresh', 'p4'], ['vol-key', 'a', 'p4']]);
    expect(splitCommandLine("vol-create-as p 'my vol' 1G\n\n# a comment; not a command\nvol-list p # trailing")).to.deep.equal([
      ['vol-create-as', 'p', 'my vol', '1G'],
      ['vol-list', 'p'],
    ]);
    expect(splitCommandLine('vol-key "a \\"b\\";c" p; vol-key a\\ b p')).to.deep.equal([['vol-key', 'a "b";c', 'p'], ['vol-key', 'a b', 'p']]);
    expect(splitCommandLine("x ''; ;;")).to.deep.equal([['x', '']]);
    // virsh's tokenizer: an unclosed single quote runs to the end; an unclosed double quote and
    // a trailing backslash are errors in virsh's words; a backslash-newline is dropped
    expect(splitCommandLine("vol-key 'open; x")).to.deep.equal([['vol-key', 'open; x']]);
    expect(() => splitCommandLine('vol-key "open')).to.throw(UsageError, /^missing "$/);
    expect(() => splitCommandLine('vol-key a\\')).to.throw(UsageError, /^dangling \\$/);
    expect(splitCommandLine('vol-list \\\n--details; vol-key a\\\nb')).to.deep.equal([['vol-list', '--details'], ['vol-key', 'ab']]);
  });

  it('parses the whole line before running any of it, as virsh: a part that does not parse runs nothing', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1n << 20n, 0n, '/p/v')];
    // stderr as `virsh -c test:///default 'pool-list --bogus; pool-list'` prints it; stdout empty, exit 1
    const cases: Array<[string, string]> = [
      ['pool-list --bogus; vol-key v p', "error: command 'pool-list' doesn't support option --bogus\n"],
      ['vol-key v p; pool-list --bogus', "error: command 'pool-list' doesn't support option --bogus\n"],
      ['vol-key v p; pool-bogus; vol-key v p', "error: unknown command: 'pool-bogus'\n"],
      ['vol-key v p; pool-info', "error: command 'pool-info' requires <pool> option\n"],
      ['vol-key v p; vol-key v p extra', "error: unexpected data 'extra'\n"],
      ['vol-key v p; quit now', "error: unexpected data 'now'\n"],
      ['vol-key v p; vol-key "v', 'error: missing "\n'],
    ];
    for (const [line, stderr] of cases) {
      expect(await run(api, [line]), line).to.deep.equal({ code: 1, stdout: '', stderr });
    }
    expect(api.calls, 'nothing was asked of the server').to.deep.equal([]);
    // a command that parses and then fails does not stop the others (virsh too)
    const failing = await run(api, ['vol-key nope p; vol-key v p']);
    expect([failing.code, failing.stdout]).to.deep.equal([0, '\n/p/v\n\n']);
    // quit ends the line with status 0, as virsh's quit succeeds
    expect(await run(api, ['vol-key nope p; quit; vol-key v p'])).to.include({ code: 0, stdout: '\n' });
  });

  it('on stdin each line is parsed on its own, as virsh reads it: a bad line is skipped, the others run', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1n << 20n, 0n, '/p/v')];
    const r = await run(api, [], { stdin: 'vol-key v p\npool-list --bogus; vol-key v p\nvol-path v p\n\n' });
    expect(r).to.deep.equal({ code: 0, stdout: '/p/v\n\n/p/v\n\n', stderr: "error: command 'pool-list' doesn't support option --bogus\n" });
    // the status is the last command's; blank lines change nothing
    expect((await run(api, [], { stdin: 'vol-key nope p\n\n# done\n' })).code).to.equal(1);
  });

  it('runs every command of a one-argument command line, goes on after an error, exits with the last status', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1n << 20n, 0n, '/p/v')];
    const both = await run(api, ['vol-key v p; vol-path v --pool p']);
    expect(both.code).to.equal(0);
    expect(both.stdout).to.equal('/p/v\n\n/p/v\n\n');
    const failedFirst = await run(api, ['vol-key nope p; vol-key v p']);
    expect(failedFirst.stderr).to.match(/^error: /);
    expect(failedFirst.stdout).to.equal('\n/p/v\n\n'); // a failed command ends with its blank line too
    expect(failedFirst.code).to.equal(0);
    expect((await run(api, ['vol-key v p; vol-key nope p'])).code).to.equal(1);
    // global options before the line apply to every command in it
    expect((await run(api, ['-q', 'vol-key v p; vol-key v p'])).stdout).to.equal('/p/v\n/p/v\n');
  });

  it('reads commands from stdin when none is given, as virsh does; quit stops', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1n << 20n, 0n, '/p/v')];
    const r = await run(api, [], { stdin: 'vol-key v p\nvol-path v p\nquit\nvol-key v p\n' });
    expect(r.code).to.equal(0);
    expect(r.stdout).to.equal('/p/v\n\n/p/v\n\n');
    // without stdin (a terminal), no command still prints the help
    expect((await run(api, [])).stdout).to.match(/^Usage|usage|Commands/m);
  });
});
