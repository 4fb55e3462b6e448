import { expect } from 'chai';
import { parseCommandArgs, splitGlobal, type OptionSpec } from '../../../cli/args.js';
import { UsageError } from '../../../cli/errors.js';
import { FakeApi, pool, run } from './fake-api.js';

const VOL_RESIZE: OptionSpec[] = [
  { name: 'vol', type: 'string', required: true, help: '' },
  { name: 'capacity', type: 'string', required: true, help: '' },
  { name: 'pool', type: 'string', help: '' },
  { name: 'shrink', type: 'bool', help: '' },
  { name: 'host', type: 'string', named: true, help: '' },
];

describe('cli argument parsing (virsh rules)', () => {
  it('fills value options positionally in declared order', () => {
    const o = parseCommandArgs('vol-resize', VOL_RESIZE, ['v1.img', '2G', 'default']);
    expect(o.strings.get('vol')).to.equal('v1.img');
    expect(o.strings.get('capacity')).to.equal('2G');
    expect(o.strings.get('pool')).to.equal('default');
  });

  it('accepts --opt value, --opt=value and flags anywhere, skipping named options when filling', () => {
    const o = parseCommandArgs('vol-resize', VOL_RESIZE, ['--pool=default', '--shrink', 'v1.img', '--capacity', '1M']);
    expect(o.strings.get('pool')).to.equal('default');
    expect(o.strings.get('capacity')).to.equal('1M');
    expect(o.strings.get('vol')).to.equal('v1.img');
    expect(o.bools.has('shrink')).to.equal(true);
  });

  it('never fills a named-only option positionally', () => {
    expect(() => parseCommandArgs('vol-resize', VOL_RESIZE, ['v', '1', 'p', 'extra'])).to.throw(UsageError, "unexpected data 'extra'");
  });

  it('takes values after -- literally, even when they look like options', () => {
    const o = parseCommandArgs('vol-resize', VOL_RESIZE, ['--shrink', '--', '--weird', '-1M']);
    expect(o.strings.get('vol')).to.equal('--weird');
    expect(o.strings.get('capacity')).to.equal('-1M');
  });

  it('an empty value of a nonEmpty option parses, and reading it is virsh\'s "Option argument is empty"', async () => {
    const { str, req } = await import('../../../cli/args.js');
    const specs: OptionSpec[] = [{ name: 'pool', type: 'string', required: true, nonEmpty: true, help: '' }, { name: 'target', type: 'string', help: '' }];
    const o = parseCommandArgs('x', specs, ['', '--target', '']);
    expect(() => req(o, 'pool')).to.throw(UsageError, "Failed to get option 'pool': Option argument is empty");
    expect(() => str(o, 'pool')).to.throw(UsageError, "Failed to get option 'pool': Option argument is empty");
    expect(str(o, 'target')).to.equal('');
  });

  it('reports unknown options and missing required ones in virsh wording', () => {
    expect(() => parseCommandArgs('vol-resize', VOL_RESIZE, ['v', '1', '--bogus']))
      .to.throw(UsageError, "command 'vol-resize' doesn't support option --bogus");
    expect(() => parseCommandArgs('vol-resize', VOL_RESIZE, ['v']))
      .to.throw(UsageError, "command 'vol-resize' requires <capacity> option");
    expect(() => parseCommandArgs('vol-resize', VOL_RESIZE, ['v', '1', '--pool']))
      .to.throw(UsageError, 'expected syntax: --pool <string>');
    expect(() => parseCommandArgs('vol-resize', VOL_RESIZE, ['v', '1', '--pool', 'a', '--pool', 'b']))
      .to.throw(UsageError, 'option --pool already seen');
  });

  it('refuses a flag given twice, as it refuses a value option given twice (virsh: option --name already seen)', () => {
    const specs: OptionSpec[] = [{ name: 'name', type: 'bool', help: '' }, { name: 'all', type: 'bool', help: '' }];
    expect(() => parseCommandArgs('pool-list', specs, ['--name', '--name'])).to.throw(UsageError, 'option --name already seen');
    expect(() => parseCommandArgs('pool-list', specs, ['--all', '--name', '--all'])).to.throw(UsageError, 'option --all already seen');
    // the global flags after the command follow the same rule
    expect(() => parseCommandArgs('pool-list', specs, ['--quiet', '-q'])).to.throw(UsageError, 'option --quiet already seen');
  });

  it('pool-list --name --name prints virsh\'s error and runs nothing', async () => {
    const api = new FakeApi();
    // virsh -c test:///default pool-list --name --name
    expect(await run(api, ['pool-list', '--name', '--name'])).to.deep.equal({ code: 1, stdout: '', stderr: 'error: option --name already seen\n' });
    expect(api.calls).to.deep.equal([]);
  });

  it('a flag given a value is virsh\'s error', async () => {
    // virsh -c test:///default pool-list --name=x
    expect(await run(new FakeApi(), ['pool-list', '--name=x'])).to.deep.equal({ code: 1, stdout: '', stderr: "error: invalid '=' after option --name\n" });
  });

  // virsh's vshCommandParse: --help is an option only where an option can be (a token '--X', X an
  // ASCII letter or digit, before '--' and not an option's value); the command line is parsed
  // whole, unknown options included, and only then does --help replace the command with its help
  it('--help given as data or as an option\'s value is that data, not a request for help', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'default')];
    // virsh -c test:///default vol-delete -- --help default: error: failed to get vol '--help', exit 1
    const afterDashes = await run(api, ['vol-delete', '--', '--help', 'default']);
    expect(afterDashes.code).to.equal(1);
    expect(afterDashes.stdout).not.to.contain('SYNOPSIS');
    expect(afterDashes.stderr).to.contain("error: failed to get vol '--help'");
    // virsh -c test:///default vol-info v1 --pool --help: error: failed to get pool '--help'
    const asValue = await run(api, ['vol-info', 'v1', '--pool', '--help']);
    expect(asValue.code).to.equal(1);
    expect(asValue.stdout).not.to.contain('SYNOPSIS');
    expect(asValue.stderr).to.contain("error: failed to get pool '--help'");
    // the same inside one command line
    const line = await run(api, ['echo -- --help']);
    expect(line).to.deep.equal({ code: 0, stdout: '--help\n', stderr: '' });
  });

  it('--help with an unknown option or a value is virsh\'s error; with a required option missing it is the help', async () => {
    // virsh pool-list --all --help --foo: error: command 'pool-list' doesn't support option --foo
    expect(await run(new FakeApi(), ['pool-list', '--all', '--help', '--foo']))
      .to.deep.equal({ code: 1, stdout: '', stderr: "error: command 'pool-list' doesn't support option --foo\n" });
    // virsh pool-list --help=x: error: invalid '=' after option --help
    expect(await run(new FakeApi(), ['pool-list', '--help=x']))
      .to.deep.equal({ code: 1, stdout: '', stderr: "error: invalid '=' after option --help\n" });
    const h = await run(new FakeApi(), ['vol-resize', '--pool', 'p', '--help']);
    expect(h.code).to.equal(0);
    expect(h.stdout).to.contain('vol-resize - resize a vol');
  });

  it('help ignores options and words it does not take, as virsh\'s does', async () => {
    const expected = await run(new FakeApi(), ['help', 'pool-name']);
    expect(expected.stdout).to.contain('pool-name - convert a pool UUID to pool name');
    // virsh help --foo pool-name; virsh help pool-name extra: pool-name's help, exit 0
    expect(await run(new FakeApi(), ['help', '--foo', 'pool-name'])).to.deep.equal(expected);
    expect(await run(new FakeApi(), ['help', 'pool-name', 'extra'])).to.deep.equal(expected);
    expect(await run(new FakeApi(), ['help pool-name --x=1 extra; echo ok'])).to.deep.equal({ ...expected, stdout: `${expected.stdout}ok\n` });
  });

  it('a token of two dashes and no letter or digit after them is data, as in virsh', () => {
    const echo: OptionSpec[] = [{ name: 'shell', type: 'bool', help: '' }, { name: 'string', type: 'argv', help: '' }];
    // virsh echo ---x --=x --é: prints '---x --=x --é'
    expect(parseCommandArgs('echo', echo, ['---x', '--=x', '--\u00e9', '--shell']).rest).to.deep.equal(['---x', '--=x', '--\u00e9']);
    const o = parseCommandArgs('vol-resize', VOL_RESIZE, ['---v', '1M']);
    expect(o.strings.get('vol')).to.equal('---v');
  });

  it('repeats of global options before the command are allowed, the last value winning (virsh reads them with getopt)', () => {
    const s = splitGlobal(['-q', '--quiet', '-c', 'a:1', '-c', 'b:2', 'pool-list']);
    expect(s.globals.bools.has('quiet')).to.equal(true);
    expect(s.globals.strings.get('server')).to.equal('b:2');
  });

  it('reports every missing required option, in the command\'s order, as virsh does', () => {
    let err: unknown;
    try {
      parseCommandArgs('vol-resize', VOL_RESIZE, ['--pool', 'p']);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(UsageError);
    expect((err as UsageError).messages).to.deep.equal([
      "command 'vol-resize' requires <vol> option",
      "command 'vol-resize' requires <capacity> option",
    ]);
  });

  it('accepts the connection options after the command too', () => {
    const o = parseCommandArgs('vol-resize', VOL_RESIZE, ['v', '1', '--server', 'h:1', '--token', 't', '-q']);
    expect(o.strings.get('server')).to.equal('h:1');
    expect(o.strings.get('token')).to.equal('t');
    expect(o.bools.has('quiet')).to.equal(true);
  });

  it('splits global options from the command', () => {
    const s = splitGlobal(['-c', '127.0.0.1:7000', '--ca=/ca.pem', '-q', 'pool-list', '--all']);
    expect(s.command).to.equal('pool-list');
    expect(s.rest).to.deep.equal(['--all']);
    expect(s.globals.strings.get('server')).to.equal('127.0.0.1:7000');
    expect(s.globals.strings.get('ca')).to.equal('/ca.pem');
    expect(s.globals.bools.has('quiet')).to.equal(true);
    expect(() => splitGlobal(['--nope', 'pool-list'])).to.throw(UsageError);
  });

  // virsh reads its options with getopt_long: `-c`'s long name is --connect, a short option's
  // value may be attached (-cURI), short flags cluster (-qc URI), and a long option may be
  // shortened to a unique prefix (--q, --conn). Scripts written for virsh use all of these.
  it('global options are read as virsh\'s getopt_long reads them: --connect, -cVALUE, -qc VALUE, unique prefixes', () => {
    const server = (argv: string[]): string | undefined => splitGlobal([...argv, 'pool-list']).globals.strings.get('server');
    expect(server(['--connect', 'h:1'])).to.equal('h:1');
    expect(server(['--connect=h:2'])).to.equal('h:2');
    expect(server(['-ch:3'])).to.equal('h:3');
    expect(server(['--conn', 'h:4'])).to.equal('h:4');
    expect(server(['--serv=h:5'])).to.equal('h:5');
    const clustered = splitGlobal(['-qc', 'h:6', 'pool-list', '--all']);
    expect(clustered.globals.bools.has('quiet')).to.equal(true);
    expect(clustered.globals.strings.get('server')).to.equal('h:6');
    expect(clustered.command).to.equal('pool-list');
    expect(clustered.rest).to.deep.equal(['--all']);
    expect(splitGlobal(['--q', 'pool-list']).globals.bools.has('quiet')).to.equal(true);
    expect(splitGlobal(['-qv']).version).to.equal('short');
    expect(splitGlobal(['--vers=long']).version).to.equal('long');
    const refused = (argv: string[]): string[] => {
      try {
        splitGlobal(argv);
      } catch (err) {
        return (err as UsageError).messages;
      }
      return [];
    };
    // virsh 9.0's words: the short option named alone, an ambiguous prefix as given
    expect(refused(['-qx', 'pool-list'])).to.deep.equal(["unsupported option '-x'. See --help."]);
    expect(refused(['--c', 'h:1', 'pool-list'])).to.deep.equal(["unsupported option '--c'. See --help."]);
    expect(refused(['--connect'])).to.deep.equal(["option '-c'/'--connect' requires an argument"]);
    expect(refused(['-qc'])).to.deep.equal(["option '-c'/'--connect' requires an argument"]);
    // a flag given a value was taken and the value dropped; it is refused, saying so
    expect(refused(['--quiet=yes', 'pool-list'])).to.deep.equal(["option '--quiet' doesn't allow an argument. See --help."]);
  });

  it('-- ends the global options, as virsh\'s getopt reads it', async () => {
    // virsh -q -- pool-list --name: the command runs
    const s = splitGlobal(['-q', '--', 'pool-list', '--name']);
    expect(s.command).to.equal('pool-list');
    expect(s.rest).to.deep.equal(['--name']);
    expect(s.globals.bools.has('quiet')).to.equal(true);
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'default')];
    expect(await run(api, ['--', 'pool-list', '--name'])).to.deep.equal({ code: 0, stdout: 'default             \n\n', stderr: '' });
  });
});
