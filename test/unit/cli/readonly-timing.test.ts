// virsh's -r/--readonly and -t/--timing: a read-only connection refuses every call that would
// change something, in libvirt's words, after the lookups that precede it; -t follows each
// command with how long it took instead of the blank line (virsh's vshCommandRun).
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeApi, pool, run, volume } from './fake-api.js';

/** A clock that advances 1.25 ms each time it is read: every command takes 1.250 ms. */
function steppingClock(): () => number {
  let t = 1000;
  return () => (t += 1.25);
}

describe('cisternctl -r/--readonly', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cisternctl-ro-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const withPoolAndVolume = (): FakeApi => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1048576n, 0n)];
    return api;
  };
  const changes = ['definePool', 'createPool', 'undefinePool', 'buildPool', 'startPool', 'stopPool', 'deletePool',
    'refreshPool', 'setPoolAutostart', 'createVolume', 'cloneVolume', 'deleteVolume', 'wipeVolume', 'resizeVolume',
    'uploadVolume', 'downloadVolume', 'defineSecret', 'setSecretValue', 'undefineSecret', 'deleteHost', 'findPoolSources'];
  const changed = (api: FakeApi): string[] => api.calls.map((c) => c.method).filter((m) => changes.includes(m));

  it('pool-start is refused as virsh -r refuses it (virStoragePoolCreate), and nothing is sent', async () => {
    const api = withPoolAndVolume();
    const r = await run(api, ['-r', 'pool-start', 'p']);
    expect(r.stderr).to.equal('error: Failed to start pool p\nerror: operation forbidden: read only access prevents virStoragePoolCreate\n');
    expect(r.stdout).to.equal('\n');
    expect(r.code).to.equal(1);
    expect(changed(api)).to.deep.equal([]);
  });

  it('--readonly names each refused libvirt call, as virsh 9.0 -c test:///default -r does', async () => {
    const xml = join(dir, 'p.xml');
    await writeFile(xml, "<pool type='dir'><name>x</name><target><path>/tmp</path></target></pool>");
    const cases: Array<[string[], string]> = [
      [['pool-destroy', 'p'], 'error: Failed to destroy pool p\nerror: operation forbidden: read only access prevents virStoragePoolDestroy\n'],
      [['pool-define', xml], `error: Failed to define pool from ${xml}\nerror: operation forbidden: read only access prevents virStoragePoolDefineXML\n`],
      [['pool-create', xml], `error: Failed to create pool from ${xml}\nerror: operation forbidden: read only access prevents virStoragePoolCreateXML\n`],
      [['pool-define-as', 'x', 'dir', '--target', '/tmp'], 'error: Failed to define pool x\nerror: operation forbidden: read only access prevents virStoragePoolDefineXML\n'],
      [['pool-refresh', 'p'], 'error: Failed to refresh pool p\nerror: operation forbidden: read only access prevents virStoragePoolRefresh\n'],
      [['pool-build', 'p'], 'error: Failed to build pool p\nerror: operation forbidden: read only access prevents virStoragePoolBuild\n'],
      [['pool-delete', 'p'], 'error: Failed to delete pool p\nerror: operation forbidden: read only access prevents virStoragePoolDelete\n'],
      [['pool-undefine', 'p'], 'error: Failed to undefine pool p\nerror: operation forbidden: read only access prevents virStoragePoolUndefine\n'],
      [['pool-autostart', 'p'], 'error: failed to mark pool p as autostarted\nerror: operation forbidden: read only access prevents virStoragePoolSetAutostart\n'],
      [['find-storage-pool-sources', 'logical'], 'error: Failed to find any logical pool sources\nerror: operation forbidden: read only access prevents virConnectFindStoragePoolSources\n'],
      [['vol-create-as', 'p', 'v1', '1M'], 'error: Failed to create vol v1\nerror: operation forbidden: read only access prevents virStorageVolCreateXML\n'],
      [['vol-delete', 'v', '--pool', 'p'], 'error: Failed to delete vol v\nerror: operation forbidden: read only access prevents virStorageVolDelete\n'],
      [['vol-wipe', 'v', '--pool', 'p'], 'error: Failed to wipe vol v\nerror: operation forbidden: read only access prevents virStorageVolWipePattern\n'],
      [['vol-resize', 'v', '2M', '--pool', 'p'], "error: Failed to change size of volume 'v' to 2M\nerror: operation forbidden: read only access prevents virStorageVolResize\n"],
      [['vol-clone', 'v', 'v2', '--pool', 'p'], 'error: Failed to clone vol from v\nerror: operation forbidden: read only access prevents virStorageVolCreateXMLFrom\n'],
      [['vol-upload', 'v', xml, '--pool', 'p'], 'error: cannot upload to volume v\nerror: operation forbidden: read only access prevents virStorageVolUpload\n'],
    ];
    for (const [argv, stderr] of cases) {
      const api = withPoolAndVolume();
      const r = await run(api, ['--readonly', ...argv]);
      expect(r.stderr, argv.join(' ')).to.equal(stderr);
      expect(r.code, argv.join(' ')).to.equal(1);
      expect(changed(api), argv.join(' ')).to.deep.equal([]);
    }
  });

  it('vol-download is refused (virStorageVolDownload) and leaves no file behind', async () => {
    const api = withPoolAndVolume();
    const out = join(dir, 'dl');
    const r = await run(api, ['-r', 'vol-download', 'v', out, '--pool', 'p']);
    expect(r.stderr).to.equal('error: cannot download from volume v\nerror: operation forbidden: read only access prevents virStorageVolDownload\n');
    expect(r.code).to.equal(1);
    expect(existsSync(out)).to.equal(false);
  });

  it('vol-download leaves an existing file as it was (virsh 9.0 -r empties it before it is refused)', async () => {
    const api = withPoolAndVolume();
    const out = join(dir, 'keep');
    await writeFile(out, 'precious');
    const r = await run(api, ['-r', 'vol-download', 'v', out, '--pool', 'p']);
    expect(r.stderr).to.equal('error: cannot download from volume v\nerror: operation forbidden: read only access prevents virStorageVolDownload\n');
    expect(r.code).to.equal(1);
    expect(await readFile(out, 'utf8')).to.equal('precious');
  });

  it('reads work; a lookup that fails is reported before any refusal, as in virsh', async () => {
    const api = withPoolAndVolume();
    const list = await run(api, ['-r', 'pool-list']);
    expect(list.code).to.equal(0);
    expect(list.stdout).to.contain(' p ');
    expect((await run(api, ['-r', 'vol-info', 'v', '--pool', 'p'])).code).to.equal(0);
    const missing = await run(api, ['-r', 'pool-start', 'nope']);
    expect(missing.stderr).to.match(/^error: failed to get pool 'nope'\n/);
  });

  it('applies to every command of a line and of a session', async () => {
    const api = withPoolAndVolume();
    const line = await run(api, ['-r', 'pool-info p; pool-destroy p']);
    expect(line.stderr).to.contain('read only access prevents virStoragePoolDestroy');
    const session = await run(api, ['-r'], { stdin: 'pool-list\nvol-delete v --pool p\n' });
    expect(session.stderr).to.contain('read only access prevents virStorageVolDelete');
    expect(changed(api)).to.deep.equal([]);
  });
});

describe('cisternctl -t/--timing', () => {
  it('prints virsh\'s (Time: %.3f ms) after a command instead of the blank line', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    const r = await run(api, ['-t', 'pool-list', '--name'], { clock: steppingClock() });
    expect(r.code).to.equal(0);
    // virsh pads the names of pool-list --name, and its list has no blank line of its own
    expect(r.stdout).to.match(/^p +\n\n\(Time: 1\.250 ms\)\n\n$/);
  });

  it('prints it with -q, after a failed command, and after help, as virsh does', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    // -q drops the blank line, not the time (virsh prints it with vshPrint)
    const quiet = await run(api, ['-tq', 'pool-info', 'nope'], { clock: steppingClock() });
    expect(quiet.stdout).to.equal('\n(Time: 1.250 ms)\n\n');
    const failed = await run(api, ['--timing', 'pool-info', 'nope'], { clock: steppingClock() });
    expect(failed.code).to.equal(1);
    expect(failed.stdout).to.equal('\n(Time: 1.250 ms)\n\n');
    const help = await run(api, ['-t', 'help', 'pool-list'], { clock: steppingClock() });
    expect(help.stdout).to.match(/\n\n\n\(Time: 1\.250 ms\)\n\n$/);
  });

  it('times each command of a line and of a session; a line that does not parse prints none', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    const line = await run(api, ['-t', 'pool-list --name; pool-list --name'], { clock: steppingClock() });
    expect(line.stdout).to.match(/^p +\n\n\(Time: 1\.250 ms\)\n\np +\n\n\(Time: 1\.250 ms\)\n\n$/);
    const session = await run(api, ['-t'], { stdin: 'pool-list --name\nquit\n', clock: steppingClock() });
    expect(session.stdout).to.match(/^p +\n\n\(Time: 1\.250 ms\)\n\n$/);
    const bad = await run(api, ['-t', 'pool-list --bogus'], { clock: steppingClock() });
    expect(bad.stdout).to.equal('');
  });

  it('with --json the time goes to stderr, and stdout stays the JSON document', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    const r = await run(api, ['-t', 'pool-list', '--json'], { clock: steppingClock() });
    expect(r.code).to.equal(0);
    expect(() => JSON.parse(r.stdout) as unknown).to.not.throw();
    expect(r.stderr).to.equal('\n(Time: 1.250 ms)\n\n');
  });

  it('-r and -t are in the general help', async () => {
    const r = await run(new FakeApi(), ['help']);
    expect(r.stdout).to.match(/-r, --readonly +/);
    expect(r.stdout).to.match(/-t, --timing +/);
  });
});
