// virsh's -d/--debug, -e/--escape, -k/--keepalive-interval, -K/--keepalive-count and -l/--log:
// a script written for virsh passes them before the command, and cisternctl must take them with
// virsh 9.0's validation and words (virshParseArgv), captured with `virsh -c test:///default`.
import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { splitGlobal } from '../../../cli/args.js';
import { connectionOptions } from '../../../cli/client.js';
import { FakeApi, pool, run } from './fake-api.js';

const withPool = (): FakeApi => {
  const api = new FakeApi(['a']);
  api.pools = [pool('a', 'p')];
  return api;
};

describe('cisternctl takes virsh\'s -d, -e, -k, -K and -l', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cisternctl-glob-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the command with values virsh 9.0 accepts', async () => {
    for (const globals of [['-k', '0'], ['-K', '3'], ['-k', ' 5'], ['-k', '+5'], ['-k', '0x10'], ['--keepalive-interval=0'],
      ['--keepalive-count', '0'], ['-d', '4'], ['-d', ' 3'], ['-d', '+3'], ['--debug=2'], ['-e', '^x'], ['-e', 'x'],
      ['-e', '^]'], ['-e', '^@'], ['--escape=~'], ['-qk0']]) {
      const r = await run(withPool(), [...globals, 'pool-list', '--name']);
      expect(r, globals.join(' ')).to.deep.include({ code: 0, stderr: '' });
      expect(r.stdout, globals.join(' ')).to.match(/^p +\n/);
    }
  });

  it('refuses bad values in virsh\'s words, before anything is called', async () => {
    const cases: [string[], string][] = [
      [['-k', '-1'], 'option -k requires a positive integer argument'],
      [['--keepalive-interval=-1'], 'option --keepalive-interval requires a positive integer argument'],
      [['-k', 'x'], 'Invalid value for option -k'],
      [['-k', '1x'], 'Invalid value for option -k'],
      [['-k', ''], 'Invalid value for option -k'],
      [['-k', '5 '], 'Invalid value for option -k'],
      [['-k', '2147483648'], 'Invalid value for option -k'],
      [['--keepalive-interval', 'x'], 'Invalid value for option --keepalive-interval'],
      [['-K', '-1'], 'option -K requires a positive integer argument'],
      [['--keepalive-count=x'], 'Invalid value for option --keepalive-count'],
      [['-d', 'x'], 'option -d takes a numeric argument'],
      [['-d', '0x3'], 'option -d takes a numeric argument'],
      [['-d', '99999999999'], 'option -d takes a numeric argument'],
      [['--debug=x'], 'option --debug takes a numeric argument'],
      [['-e', 'xx'], "Invalid string 'xx' for escape sequence"],
      [['-e', '^'], "Invalid string '^' for escape sequence"],
      [['-e', ''], "Invalid string '' for escape sequence"],
      [['-e', 'é'], "Invalid string 'é' for escape sequence"],
      [['-e', '^1'], "Invalid string '^1' for escape sequence"],
      [['-l', join(dir, 'missing', 'x.log')], 'failed to open the log file. check the log file path'],
      [['-l', dir], 'failed to open the log file. check the log file path'],
    ];
    for (const [globals, message] of cases) {
      const api = withPool();
      const r = await run(api, [...globals, 'pool-list']);
      expect(r, globals.join(' ')).to.deep.equal({ code: 1, stdout: '', stderr: `error: ${message}\n` });
      expect(api.calls, globals.join(' ')).to.deep.equal([]);
    }
  });

  it('a debug level out of 0-4 is ignored with virsh\'s warning, and the command runs', async () => {
    for (const level of ['9', '-1', '5']) {
      const r = await run(withPool(), ['-d', level, 'pool-list', '--name']);
      expect(r).to.deep.include({ code: 0, stderr: `error: ignoring debug level ${level} out of range [0-4]\n` });
      expect(r.stdout).to.match(/^p +\n\n$/);
    }
  });

  it('-d 1 prints each option of a command as virsh\'s vshCommandParse does; -d 2 does not', async () => {
    const r = await run(withPool(), ['-d', '1', 'pool-list', '--all', '--name']);
    expect(r.stderr).to.equal('pool-list: all(bool): (none)\npool-list: name(bool): (none)\n');
    expect((await run(withPool(), ['-d', '1', 'pool-info', 'p'])).stderr).to.equal('pool-info: pool(optdata): p\n');
    expect((await run(withPool(), ['-d', '1', 'echo a b'])).stderr).to.equal('echo: string(optdata): a\necho: string(optdata): b\n');
    expect((await run(withPool(), ['-d', '2', 'pool-info', 'p'])).stderr).to.equal('');
  });

  it('-d 0 also prints a command line given as one argument', async () => {
    const r = await run(withPool(), ['-d', '0', 'echo a; echo c']);
    expect(r.stderr).to.equal('commands: "echo a; echo c"\necho: string(optdata): a\necho: string(optdata): c\n');
  });

  it('-d 1 does not print a secret value given on the command line', async () => {
    const r = await run(withPool(), ['-d', '1', 'secret-set-value', '--secret', '6c2b5ae4-9b4b-4b0b-8a7c-0a0b0c0d0e0f', '--base64', 'c2VjcmV0']);
    expect(r.stderr).to.include('secret-set-value: secret(optdata): 6c2b5ae4-9b4b-4b0b-8a7c-0a0b0c0d0e0f\n');
    expect(r.stderr).to.include('secret-set-value: base64(optdata): (hidden)\n');
    expect(r.stderr).to.not.include('c2VjcmV0');
  });

  it('-d 0 does not print a secret value or a token given in a command line of one argument, on stderr or in the log', async () => {
    const log = join(dir, 'commands.log');
    const uuid = '6c2b5ae4-9b4b-4b0b-8a7c-0a0b0c0d0e0f';
    for (const line of [
      `secret-set-value --secret ${uuid} --base64 c2VjcmV0`,
      `secret-set-value --secret ${uuid} --base64=c2VjcmV0`,
      `echo a; secret-set-value ${uuid} --base64 'c2VjcmV0'`,
      'pool-list --token c2VjcmV0c2VjcmV0c2Vj',
      'pool-list --token=c2VjcmV0c2VjcmV0c2Vj',
      // not a line any command runs (an unclosed quote): still not shown
      `secret-set-value --secret ${uuid} --base64 c2VjcmV0 "`,
    ]) {
      const r = await run(withPool(), ['-d', '0', '-l', log, line]);
      expect(r.stderr, line).to.not.include('c2VjcmV0');
      expect(r.stderr, line).to.match(/^commands: "/);
    }
    const logged = await readFile(log, 'utf8');
    expect(logged).to.not.include('c2VjcmV0');
    // what is no secret is shown as typed
    expect(logged).to.include(`DEBUG commands: "secret-set-value --secret ${uuid} --base64 (hidden)"`);
    expect(logged).to.include('DEBUG commands: "pool-list --token=(hidden)"');
  });

  it('-l FILE appends each error as virsh\'s log line, and nothing for a command that worked', async () => {
    const log = join(dir, 'errors.log');
    await writeFile(log, 'before\n');
    const ok = await run(withPool(), ['-l', log, 'pool-list']);
    expect(ok.code).to.equal(0);
    const failed = await run(withPool(), ['-l', log, 'pool-info', 'nosuch']);
    expect(failed.code).to.equal(1);
    expect(failed.stderr).to.equal("error: failed to get pool 'nosuch'\nerror: Storage pool not found: no storage pool with matching name 'nosuch'\n");
    const lines = (await readFile(log, 'utf8')).split('\n');
    expect(lines[0]).to.equal('before');
    const stamp = `^\\[\\d{4}\\.\\d\\d\\.\\d\\d \\d\\d:\\d\\d:\\d\\d cisternctl ${process.pid}\\] `;
    expect(lines[1]).to.match(new RegExp(`${stamp}ERROR failed to get pool 'nosuch'$`));
    expect(lines[2]).to.match(new RegExp(`${stamp}ERROR Storage pool not found: no storage pool with matching name 'nosuch'$`));
    expect(lines.slice(3)).to.deep.equal(['']);
  });

  it('-l with -d 1 logs the options as INFO lines too', async () => {
    const log = join(dir, 'info.log');
    await run(withPool(), ['-d', '1', '-l', log, 'pool-info', 'p']);
    expect(await readFile(log, 'utf8')).to.match(/^\[[\d. :]+ cisternctl \d+\] INFO pool-info: pool\(optdata\): p\n$/);
  });

  it('-k and -K reach the connection as numbers (virsh reads -k with strtol base 0)', () => {
    const split = splitGlobal(['-k', '0x10', '-K', '2', 'pool-list']);
    const conn = connectionOptions(split.globals.strings, {});
    expect(conn).to.deep.include({ keepaliveInterval: 16, keepaliveCount: 2 });
    // virsh's defaults (5 s, 5) fill the one not given; -k 0 turns keepalive off
    expect(connectionOptions(splitGlobal(['-K', '3', 'x']).globals.strings, {})).to.deep.include({ keepaliveInterval: 5, keepaliveCount: 3 });
    expect(connectionOptions(splitGlobal(['-k', '0', 'x']).globals.strings, {})).to.not.have.property('keepaliveInterval');
    expect(connectionOptions(splitGlobal(['x']).globals.strings, {})).to.not.have.property('keepaliveInterval');
  });
});

describe('keepaliveChannelOptions', () => {
  it('pings after -k seconds and waits -K intervals (at least one) for the answer; none without -k', async () => {
    const { keepaliveChannelOptions } = await import('../../../cli/client.js');
    expect(keepaliveChannelOptions({ server: 'h:1', keepaliveInterval: 5, keepaliveCount: 3 }))
      .to.deep.equal({ 'grpc.keepalive_time_ms': 5000, 'grpc.keepalive_timeout_ms': 15000 });
    expect(keepaliveChannelOptions({ server: 'h:1', keepaliveInterval: 2, keepaliveCount: 0 }))
      .to.deep.equal({ 'grpc.keepalive_time_ms': 2000, 'grpc.keepalive_timeout_ms': 2000 });
    expect(keepaliveChannelOptions({ server: 'h:1' })).to.deep.equal({});
    // Node's timers overflow past 2^31-1 ms and would fire at once: a ping storm
    expect(keepaliveChannelOptions({ server: 'h:1', keepaliveInterval: 2147483647, keepaliveCount: 5 }))
      .to.deep.equal({ 'grpc.keepalive_time_ms': 2147483647, 'grpc.keepalive_timeout_ms': 2147483647 });
  });
});
