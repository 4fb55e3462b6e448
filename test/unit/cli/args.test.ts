import { expect } from 'chai';
import { parseCommandArgs, splitGlobal, type OptionSpec } from '../../../cli/args.js';
import { UsageError } from '../../../cli/errors.js';
import { FakeApi, run } from './fake-api.js';

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
});
