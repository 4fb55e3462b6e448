// runCli in-process against a fake API: what a user sees on stdout/stderr and the
// exit code, and what the CLI asks the server for.
import { expect } from 'chai';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createWriteStream, existsSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EventKind, Event, PoolState, PoolType, WipeAlgorithm,
  type CreatePoolRequest, type CreateVolumeRequest, type DefinePoolRequest, type ListPoolsRequest,
  type ResizeVolumeRequest, type StartPoolRequest, type UploadVolumeRequest, type CloneVolumeRequest,
  type WatchEventsRequest, type WipeVolumeRequest,
} from '../../../libs/proto/cistern/v1/storage.js';
import { FailedPreconditionError, InvalidArgumentError } from '../../../libs/errors/errors.js';
import { FakeApi, pool, run, volume } from './fake-api.js';

describe('cisternctl (runCli with a fake server)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cisternctl-test-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('pool-list shows active pools, sorted, then virsh\'s blank line; exit 0', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'zeta'), pool('a', 'Alpha'), pool('a', 'off', { state: PoolState.POOL_STATE_INACTIVE })];
    const r = await run(api, ['pool-list']);
    expect(r.code).to.equal(0);
    expect(r.stderr).to.equal('');
    expect(r.stdout).to.equal(
      ' Name    State    Autostart\n' +
      '-----------------------------\n' +
      ' Alpha   active   no\n' +
      ' zeta    active   no\n\n');
    expect((api.callsOf('listPools')[0] as ListPoolsRequest).active).to.equal(true);
  });

  it('pool-list sorts names case-insensitively, keeping equal names in server order, and asks for pages of 10,000', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'Zulu'), pool('a', 'alpha'), pool('a', 'Mid'), pool('a', 'mid')];
    const r = await run(api, ['pool-list', '--name']);
    expect(r.stdout.split('\n').map((l) => l.trim()).filter(Boolean)).to.deep.equal(['alpha', 'Mid', 'mid', 'Zulu']);
    expect((api.callsOf('listPools')[0] as ListPoolsRequest).pageSize).to.equal(10_000);
  });

  it('pool-list --all --persistent --type dir,fs sends the filters', async () => {
    const api = new FakeApi(['a']);
    await run(api, ['pool-list', '--all', '--persistent', '--type', 'dir,fs']);
    const req = api.callsOf('listPools')[0] as ListPoolsRequest;
    expect(req.active).to.equal(undefined);
    expect(req.persistent).to.equal(true);
    expect(req.types).to.deep.equal([PoolType.POOL_TYPE_DIR, PoolType.POOL_TYPE_FS]);
  });

  it('pool-list --type with an unknown type is an error naming the allowed types', async () => {
    const r = await run(new FakeApi(), ['pool-list', '--type', 'bogus']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^error: Invalid pool type 'bogus'; allowed: dir, fs, netfs/);
  });

  it('pool-list --type takes libvirt types Cistern has no backend for, as virsh does: they match nothing', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'default')];
    const mixed = await run(api, ['pool-list', '--all', '--type', 'rbd,dir', '--name']);
    expect(mixed.code).to.equal(0);
    expect(mixed.stdout.trim()).to.equal('default');
    expect((api.callsOf('listPools')[0] as ListPoolsRequest).types).to.deep.equal([PoolType.POOL_TYPE_DIR]);
    const none = await run(api, ['pool-list', '--all', '--type', 'zfs', '--name']);
    expect(none.code).to.equal(0);
    expect(none.stdout.trim()).to.equal('');
  });

  it('qualifies pool names with their host when the fleet has several hosts', async () => {
    const api = new FakeApi(['a', 'b']);
    api.pools = [pool('a', 'default'), pool('b', 'default')];
    const r = await run(api, ['pool-list', '-q']);
    expect(r.stdout).to.equal(' a/default   active   no\n b/default   active   no\n');
  });

  it('pool-list --json prints exact 64-bit sizes and no trailing blank line', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'big', { capacity: 9223372036854775807n })];
    const r = await run(api, ['pool-list', '--json']);
    expect(r.stdout).to.contain('"capacity": 9223372036854775807');
    const parsed = JSON.parse(r.stdout) as Array<{ name: string; host: string; state: string }>;
    expect(parsed[0]).to.include({ name: 'big', host: 'a', state: 'running' });
    expect(r.stdout.endsWith(']\n')).to.equal(true);
  });

  it('a bare pool name on two hosts is ambiguous: the error lists the hosts', async () => {
    const api = new FakeApi(['a', 'b']);
    api.pools = [pool('a', 'default'), pool('b', 'default')];
    const r = await run(api, ['pool-start', 'default']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(
      "error: pool 'default' is ambiguous: it exists on hosts a, b; name it as HOST/POOL (e.g. a/default)\n");
    expect(api.callsOf('startPool')).to.have.length(0);
  });

  it('HOST/POOL goes straight to the resource name; success prints virsh\'s message', async () => {
    const api = new FakeApi(['a', 'b']);
    api.pools = [pool('a', 'default'), pool('b', 'default')];
    const r = await run(api, ['pool-start', 'b/default', '--build', '--no-overwrite']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.equal('Pool b/default started\n\n');
    const req = api.callsOf('startPool')[0] as StartPoolRequest;
    expect(req.name).to.equal('hosts/b/pools/default');
    expect(req.build).to.equal(true);
    expect(req.buildFlags).to.deep.include({ noOverwrite: true, overwrite: false });
  });

  it('an unknown pool: virsh\'s two error lines, exit 1', async () => {
    const api = new FakeApi(['a']);
    const r = await run(api, ['pool-info', 'nope']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(
      "error: failed to get pool 'nope'\nerror: Storage pool not found: no storage pool with matching name 'nope'\n");
  });

  it('a server error is printed under the command\'s context line', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'scratch')];
    api.failures.set('deletePool', new FailedPreconditionError("pool 'scratch' is active"));
    const r = await run(api, ['pool-delete', 'scratch']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal("error: Failed to delete pool scratch\nerror: pool 'scratch' is active\n");
  });

  it('-q drops informational messages and the blank line', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'scratch')];
    const r = await run(api, ['-q', 'pool-refresh', 'scratch']);
    expect(r.stdout).to.equal('');
    expect(r.code).to.equal(0);
  });

  it('every pool lifecycle command prints virsh\'s message', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    const cases: Array<[string[], string]> = [
      [['pool-build', 'p'], 'Pool p built\n'],
      [['pool-destroy', 'p'], 'Pool p destroyed\n'],
      [['pool-delete', 'p'], 'Pool p deleted\n'],
      [['pool-undefine', 'p'], 'Pool p has been undefined\n'],
      [['pool-refresh', 'p'], 'Pool p refreshed\n'],
      [['pool-autostart', 'p'], 'Pool p marked as autostarted\n'],
      [['pool-autostart', 'p', '--disable'], 'Pool p unmarked as autostarted\n'],
    ];
    for (const [argv, out] of cases) {
      const r = await run(api, argv);
      expect(r.stdout, argv.join(' ')).to.equal(`${out}\n`);
      expect(r.code).to.equal(0);
    }
  });

  it('pool-define-as sends a structured definition to the only host', async () => {
    const api = new FakeApi(['a']);
    const r = await run(api, ['pool-define-as', 'scratch', 'dir', '--target', '/srv/scratch']);
    expect(r.stdout).to.equal('Pool scratch defined\n\n');
    const req = api.callsOf('definePool')[0] as DefinePoolRequest;
    expect(req.host).to.equal('a');
    expect(req.definition?.type).to.equal(PoolType.POOL_TYPE_DIR);
    expect(req.definition?.name).to.equal('scratch');
    expect(req.definition?.target?.path).to.equal('/srv/scratch');
  });

  it('pool-define-as takes virsh\'s positional order (source-host .. target)', async () => {
    const api = new FakeApi(['a']);
    await run(api, ['pool-define-as', 'n', 'netfs', 'nfs.example', '/export', '-', '-', '/mnt/n']);
    const def = (api.callsOf('definePool')[0] as DefinePoolRequest).definition!;
    expect(def.source?.devices).to.deep.equal([]);
    expect(def.source?.name).to.equal('');
    expect(def.source?.hosts[0]?.name).to.equal('nfs.example');
    expect(def.source?.dir).to.equal('/export');
    expect(def.target?.path).to.equal('/mnt/n');
  });

  it('pool-define-as needs --host on a multi-host fleet', async () => {
    const api = new FakeApi(['a', 'b']);
    const r = await run(api, ['pool-define-as', 'p', 'dir', '--target', '/p']);
    expect(r.code).to.equal(1);
    // virsh's context line first, as every failure
    expect(r.stderr).to.equal('error: Failed to define pool p\nerror: the fleet has 2 hosts (a, b); choose one with --host HOST\n');
    expect(r.stdout).to.equal('\n');
    expect((await run(api, ['pool-create-as', 'p', 'dir', '--target', '/p'])).stderr)
      .to.equal('error: Failed to create pool p\nerror: the fleet has 2 hosts (a, b); choose one with --host HOST\n');
    const file = join(dir, 'which-host.xml');
    await writeFile(file, "<pool type='dir'><name>fromxml</name></pool>");
    expect((await run(api, ['pool-define', file])).stderr)
      .to.equal(`error: Failed to define pool from ${file}\nerror: the fleet has 2 hosts (a, b); choose one with --host HOST\n`);
    expect((await run(api, ['pool-create', file])).stderr)
      .to.equal(`error: Failed to create pool from ${file}\nerror: the fleet has 2 hosts (a, b); choose one with --host HOST\n`);
    expect((await run(new FakeApi([]), ['pool-define-as', 'p', 'dir', '--target', '/p'])).stderr)
      .to.equal('error: Failed to define pool p\nerror: no hosts are registered with the coordinator; start an agent first\n');
    const ok = await run(api, ['pool-create-as', 'p', 'dir', '--target', '/p', '--host', 'b', '--build']);
    expect(ok.stdout).to.equal('Pool b/p created\n\n');
    const req = api.callsOf('createPool')[0] as CreatePoolRequest;
    expect(req.host).to.equal('b');
    expect(req.build).to.equal(true);
  });

  it('pool-define, pool-create and their -as forms name the pool HOST/POOL on a multi-host fleet, as every other command', async () => {
    const file = join(dir, 'named.xml');
    await writeFile(file, "<pool type='dir'><name>fromxml</name></pool>");
    const two = new FakeApi(['a', 'b']);
    expect((await run(two, ['pool-define-as', 'p', 'dir', '--target', '/p', '--host', 'a'])).stdout).to.equal('Pool a/p defined\n\n');
    expect((await run(two, ['pool-create-as', 'p', 'dir', '--target', '/p', '--host', 'b'])).stdout).to.equal('Pool b/p created\n\n');
    expect((await run(two, ['pool-define', file, '--host', 'a'])).stdout).to.equal(`Pool a/fromxml defined from ${file}\n\n`);
    expect((await run(two, ['pool-create', file, '--host', 'b'])).stdout).to.equal(`Pool b/fromxml created from ${file}\n\n`);
    // one host: the bare name, as virsh and the listings print it
    const one = new FakeApi(['a']);
    expect((await run(one, ['pool-define-as', 'p', 'dir', '--target', '/p', '--host', 'a'])).stdout).to.equal('Pool p defined\n\n');
    expect((await run(one, ['pool-create', file])).stdout).to.equal(`Pool fromxml created from ${file}\n\n`);
  });

  it('an empty pool, volume or host name is virsh\'s "Option argument is empty" for that option, as an empty size is', async () => {
    const api = new FakeApi(['a', 'b']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1n << 20n, 0n, '/p/v')];
    const file = join(dir, 'empty-host.xml');
    await writeFile(file, "<pool type='dir'><name>fromxml</name></pool>");
    const cases: Array<[string[], string]> = [
      [['pool-define-as', '', 'dir', '--target', '/x', '--host', 'a'], 'name'],
      [['pool-create-as', '', 'dir', '--target', '/x', '--host', 'a'], 'name'],
      [['pool-define-as', '--name', '', 'dir', '--print-xml'], 'name'],
      [['pool-define-as', 'x', 'dir', '--target', '/x', '--host', ''], 'host'],
      [['pool-define', file, '--host', ''], 'host'],
      [['pool-info', ''], 'pool'],
      [['pool-start', ''], 'pool'],
      [['pool-uuid', ''], 'pool'],
      [['vol-list', ''], 'pool'],
      [['vol-info', '', 'p'], 'vol'],
      [['vol-info', 'v', ''], 'pool'],
      [['vol-info', '/p/v', '--host', ''], 'host'],
      [['vol-name', ''], 'vol'],
      [['vol-delete', 'v', '--pool', ''], 'pool'],
      [['vol-upload', '', '/nonexistent', 'p'], 'vol'],
      [['pool-list', '--host', ''], 'host'],
      [['pool-event', '--pool', ''], 'pool'],
      [['pool-event', '--host', ''], 'host'],
      [['host-delete', ''], 'host'],
      [['pool-capabilities', '--host', ''], 'host'],
      [['find-storage-pool-sources-as', 'netfs', '--agent-host', ''], 'agent-host'],
      [['find-storage-pool-sources-as', 'netfs', ''], 'host'],
    ];
    for (const [argv, option] of cases) {
      // the command ran and failed (virsh's blank line on stdout); nothing reached the server
      expect(await run(api, argv), argv.join(' ')).to.deep.equal({
        code: 1, stdout: '\n', stderr: `error: Failed to get option '${option}': Option argument is empty\n`,
      });
    }
    expect(api.calls).to.deep.equal([]);
    // the volume-creating commands find their pool (and source) first, as virsh's do; nothing is created
    for (const [argv, option] of [
      [['vol-create-as', 'p', '', '1M'], 'name'],
      [['vol-create-as', 'p', 'n', '1M', '--backing-vol', ''], 'backing-vol'],
      [['vol-clone', 'v', '', '--pool', 'p'], 'newname'],
      [['vol-create-from', 'p', file, ''], 'vol'],
      [['vol-create-from', 'p', file, 'v', '--inputpool', ''], 'inputpool'],
    ] as Array<[string[], string]>) {
      expect(await run(api, argv), argv.join(' ')).to.deep.equal({
        code: 1, stdout: '\n', stderr: `error: Failed to get option '${option}': Option argument is empty\n`,
      });
    }
    expect(api.calls.map((c) => c.method).filter((m) => !['listPools', 'getPool', 'getVolume'].includes(m))).to.deep.equal([]);
    api.calls.length = 0;
    // an empty field of pool-define-as is still left out (the `- - - -` idiom)
    expect((await run(api, ['pool-define-as', 'x', 'dir', '', '', '', '', '/x', '--host', 'a'])).code).to.equal(0);
  });

  it('pool-define FILE sends the file\'s XML; a missing file is a clear error', async () => {
    const api = new FakeApi(['a']);
    const file = join(dir, 'pool.xml');
    await writeFile(file, "<pool type='dir'><name>fromxml</name></pool>");
    const r = await run(api, ['pool-define', file]);
    expect(r.stdout).to.equal(`Pool fromxml defined from ${file}\n\n`);
    expect((api.callsOf('definePool')[0] as DefinePoolRequest).xml).to.contain('<name>fromxml</name>');
    const missing = await run(api, ['pool-define', join(dir, 'nope.xml')]);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.equal(`error: Failed to open file '${join(dir, 'nope.xml')}': No such file or directory\n`);
  });

  it('vol-create-as parses sizes and sends format and backing store', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'base.img', 1n << 30n, 0n, '/p/base.img')];
    const r = await run(api, ['vol-create-as', 'p', 'snap.qcow2', '10G', '--allocation', '1M', '--format', 'qcow2',
      '--backing-vol', 'base.img', '--backing-vol-format', 'raw', '--prealloc-metadata']);
    expect(r.stderr).to.equal('');
    expect(r.stdout).to.equal('Vol snap.qcow2 created\n\n');
    const req = api.callsOf('createVolume')[0] as CreateVolumeRequest;
    expect(req.parent).to.equal('hosts/a/pools/p');
    expect(req.preallocMetadata).to.equal(true);
    expect(req.definition?.capacity).to.equal(10n * 1024n ** 3n);
    expect(req.definition?.allocation).to.equal(1024n * 1024n);
    expect(req.definition?.target?.format).to.equal('qcow2');
    expect(req.definition?.backingStore).to.deep.include({ path: '/p/base.img', format: 'raw' });
  });

  it('vol-create-as --backing-vol takes a path or key of a volume in another pool of the host, as virsh (by name, key, then path)', async () => {
    // virsh 9.0: vol-create-as default ovx 0 --format qcow2 --backing-vol /srv/images/bimg -> Vol ovx created
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p'), pool('a', 'images')];
    api.volumes = [volume('a', 'images', 'bimg', 1n << 20n, 0n, '/srv/images/bimg')];
    const r = await run(api, ['vol-create-as', 'p', 'ovx', '0', '--format', 'qcow2', '--backing-vol', '/srv/images/bimg']);
    expect([r.code, r.stderr, r.stdout]).to.deep.equal([0, '', 'Vol ovx created\n\n']);
    expect((api.callsOf('createVolume')[0] as CreateVolumeRequest).definition?.backingStore).to.deep.include({ path: '/srv/images/bimg' });
    // a bare name is looked up in the new volume's pool (and then as a key), as virsh does
    const byName = await run(api, ['vol-create-as', 'p', 'ovy', '0', '--format', 'qcow2', '--backing-vol', 'bimg']);
    expect([byName.code, byName.stderr]).to.deep.equal([1, "error: failed to get vol 'bimg'\nerror: Storage volume not found: no storage vol with matching path 'bimg'\n"]);
  });

  it('a malformed size: virsh\'s lines first (exit 1, the blank line on stdout), then which option and what is allowed; nothing sent', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1n << 20n, 0n, '/p/v')];
    // virsh 9.0 (test driver): "error: Malformed size 10XB\nerror: invalid argument: unknown suffix 'XB'"
    const r = await run(api, ['vol-create-as', 'p', 'x', '10XB']);
    expect([r.code, r.stdout]).to.deep.equal([1, '\n']);
    expect(r.stderr).to.match(/^error: Malformed size 10XB\nerror: invalid argument: unknown suffix 'XB' in <capacity>; allowed: b, K, KiB, /);
    const alloc = await run(api, ['vol-create-as', 'p', 'x', '1M', '--allocation', 'abc']);
    expect(alloc.stderr).to.match(/^error: Malformed size abc\nerror: invalid argument: <allocation> must be a non-negative integer/);
    // vol-resize: virsh prints the size without its '-'
    const resize = await run(api, ['vol-resize', 'v', '-10XB', 'p', '--shrink']);
    expect([resize.code, resize.stdout]).to.deep.equal([1, '\n']);
    expect(resize.stderr).to.match(/^error: Malformed size 10XB\nerror: invalid argument: unknown suffix 'XB' in <capacity>/);
    expect((await run(api, ['vol-resize', 'v', '', 'p'])).stderr).to.equal("error: Failed to get option 'capacity': Option argument is empty\n");
    expect((await run(api, ['vol-resize', 'v', '-5', 'p'])).stderr).to.equal('error: negative size requires --shrink\n');
    expect(api.callsOf('createVolume')).to.have.length(0);
    expect(api.callsOf('resizeVolume')).to.have.length(0);
  });

  it('vol-info finds a volume by name in --pool, by path, or by key on any host', async () => {
    const api = new FakeApi(['a', 'b']);
    api.pools = [pool('a', 'p'), pool('b', 'q')];
    api.volumes = [volume('a', 'p', 'v1.img', 1073741824n, 1073741824n, '/p/v1.img'), volume('b', 'q', 'w', 1024n, 0n, '/q/w')];
    const byName = await run(api, ['vol-info', 'v1.img', '--pool', 'p']);
    expect(byName.stdout).to.equal(
      'Name:           v1.img\nType:           file\nCapacity:       1.00 GiB\nAllocation:     1.00 GiB\n\n');
    const byPath = await run(api, ['vol-path', '/q/w']);
    expect(byPath.stdout).to.equal('/q/w\n\n');
    const pool2 = await run(api, ['vol-pool', '/q/w']);
    expect(pool2.stdout).to.equal('b/q\n\n');
    const name = await run(api, ['vol-name', '/p/v1.img']);
    expect(name.stdout).to.equal('v1.img\n\n');
    const missing = await run(api, ['vol-info', 'nothere']);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.equal(
      "error: failed to get vol 'nothere', specifying --pool might help\n" +
      "error: Storage volume not found: no storage vol with matching path 'nothere'\n");
  });

  it('vol-list --details sorts by name', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'b', 1024n, 0n, '/p/b'), volume('a', 'p', 'a', 2048n, 1024n, '/p/a')];
    const r = await run(api, ['vol-list', 'p', '--details']);
    expect(r.stdout).to.equal(
      ' Name   Path   Type   Capacity   Allocation\n' +
      '---------------------------------------------\n' +
      ' a      /p/a   file   2.00 KiB   1.00 KiB\n' +
      ' b      /p/b   file   1.00 KiB   0.00 B\n\n');
  });

  it('vol-resize: virsh\'s messages; a negative size needs --shrink and means a delta', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'r1', 2n << 20n, 0n, '/p/r1')];
    const to = await run(api, ['vol-resize', 'r1', '2M', '--pool', 'p']);
    expect(to.stdout).to.equal("Size of volume 'r1' successfully changed to 2M\n\n");
    const by = await run(api, ['vol-resize', 'r1', '-1M', '--pool', 'p', '--shrink']);
    expect(by.stdout).to.equal("Size of volume 'r1' successfully changed by 1M\n\n");
    const req = api.callsOf('resizeVolume')[1] as ResizeVolumeRequest;
    expect(req).to.deep.include({ capacity: 1048576n, delta: true, shrink: true });
    const refused = await run(api, ['vol-resize', 'r1', '-1M', '--pool', 'p']);
    expect(refused.stderr).to.equal('error: negative size requires --shrink\n');
  });

  it('vol-wipe --algorithm and vol-delete, vol-clone', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1024n, 0n, '/p/v')];
    expect((await run(api, ['vol-wipe', 'v', 'p', '--algorithm', 'dod'])).stdout).to.equal('Vol v wiped\n\n');
    expect((api.callsOf('wipeVolume')[0] as WipeVolumeRequest).algorithm).to.equal(WipeAlgorithm.WIPE_ALGORITHM_DOD);
    const bad = await run(api, ['vol-wipe', 'v', 'p', '--algorithm', 'shred']);
    expect(bad.stderr).to.match(/^error: Unsupported algorithm 'shred'; allowed: zero, nnsa/);
    expect((await run(api, ['vol-clone', 'v', 'v2', '--pool', 'p'])).stdout).to.equal('Vol v2 cloned from v\n\n');
    const clone = api.callsOf('cloneVolume')[0] as CloneVolumeRequest;
    expect(clone).to.deep.include({ parent: 'hosts/a/pools/p', source: 'hosts/a/pools/p/volumes/v' });
    expect(clone.definition?.name).to.equal('v2');
    expect((await run(api, ['vol-delete', '--pool', 'p', 'v'])).stdout).to.equal('Vol v deleted\n\n');
  });

  it('vol-create-from names the input volume by its name, as virsh does, when given by path or key', async () => {
    // virsh prints virStorageVolGetName(inputvol): `Vol cf2 created from input vol a`, whatever named it
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1024n, 0n, '/p/v')];
    const file = join(dir, 'from-path.xml');
    await writeFile(file, '<volume><name>c</name><capacity>1024</capacity></volume>');
    for (const input of ['/p/v', 'v']) {
      const r = await run(api, ['vol-create-from', 'p', file, input, ...(input === 'v' ? ['--inputpool', 'p'] : [])]);
      expect(r.code).to.equal(0);
      expect(r.stdout).to.equal('Vol fromxml created from input vol v\n\n');
    }
  });

  it('looks the pool or volume up before it checks sizes, wipe algorithms and XML files, as virsh does', async () => {
    // virsh 9.0 reports the missing pool or volume first: `vol-create-as nopool x 1X` is
    // `error: failed to get pool 'nopool'`, not `error: Malformed size 1X`
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1024n, 0n, '/p/v')];
    const missing = join(dir, 'missing.xml');
    const cases: [string[], string][] = [
      [['vol-create-as', 'nopool', 'x', '1X'], "error: failed to get pool 'nopool'\n"],
      [['vol-resize', 'nonexist', '1X', '--pool', 'p'], "error: failed to get vol 'nonexist'\n"],
      [['vol-resize', 'nonexist', '-1M', '--pool', 'p'], "error: failed to get vol 'nonexist'\n"],
      [['vol-wipe', 'nonexist', 'p', '--algorithm', 'bogus'], "error: failed to get vol 'nonexist'\n"],
      [['vol-create', 'nopool', missing], "error: failed to get pool 'nopool'\n"],
      [['vol-create-from', 'nopool', missing, 'v', '--inputpool', 'p'], "error: failed to get pool 'nopool'\n"],
      [['vol-create-from', 'p', missing, 'nonexist', '--inputpool', 'p'], "error: failed to get vol 'nonexist'\n"],
    ];
    for (const [argv, first] of cases) {
      const r = await run(api, argv);
      expect(r.code, argv.join(' ')).to.equal(1);
      expect(r.stderr.slice(0, r.stderr.indexOf('\n') + 1), argv.join(' ')).to.equal(first);
    }
  });

  it('vol-create-as --backing-vol NAME in a pool that is not active goes on to keys and paths, as virsh does', async () => {
    // virStorageVolLookupByName fails in an inactive pool; virsh then tries the text as a key and a
    // path, and says `failed to get vol 'a'` with libvirt's not-found reason, not the pool's state
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'off', { state: PoolState.POOL_STATE_INACTIVE }), pool('a', 'lv')];
    api.volumes = [volume('a', 'lv', 'lvol', 1024n, 0n, '/dev/vg/lvol')];
    api.volumes[0]!.definition!.key = 'Xc3RfL-lv-uuid';
    const missing = await run(api, ['vol-create-as', 'off', 'x', '1M', '--backing-vol', 'a', '--print-xml']);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.equal("error: failed to get vol 'a'\nerror: Storage volume not found: no storage vol with matching path 'a'\n");
    expect(missing.stdout).to.equal('\n');
    const byKey = await run(api, ['vol-create-as', 'off', 'x', '1M', '--backing-vol', 'Xc3RfL-lv-uuid', '--print-xml']);
    expect(byKey.code).to.equal(0);
    expect(byKey.stdout).to.contain('<path>/dev/vg/lvol</path>');
  });

  it('vol-upload streams the file in 1 MiB chunks after a header; vol-download writes it back', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 3n << 20n, 0n, '/p/v')];
    const data = Buffer.alloc((2 << 20) + 123, 7);
    const src = join(dir, 'up.bin');
    await writeFile(src, data);
    const up = await run(api, ['vol-upload', 'v', src, '--pool', 'p', '--offset', '4096']);
    expect(up.code).to.equal(0);
    expect(up.stdout).to.equal('\n');
    const msgs = api.callsOf('uploadVolume')[0] as UploadVolumeRequest[];
    expect(msgs[0]?.part?.$case).to.equal('header');
    expect(msgs[0]?.part?.value).to.deep.include({ name: 'hosts/a/pools/p/volumes/v', offset: 4096n });
    expect(msgs.slice(1).map((m) => (m.part?.value as Buffer).length)).to.deep.equal([1 << 20, 1 << 20, 123]);
    expect(Buffer.concat(api.uploaded).equals(data)).to.equal(true);

    api.downloadChunks = [
      { data: data.subarray(0, 1 << 20), offset: 0n },
      { data: data.subarray(1 << 20), offset: BigInt(1 << 20) },
    ];
    const dst = join(dir, 'down.bin');
    const down = await run(api, ['vol-download', 'v', dst, '--pool', 'p']);
    expect(down.code).to.equal(0);
    expect((await readFile(dst)).equals(data)).to.equal(true);

    // --sparse: blocks of zeros become holes in the file (virsh vol-download --sparse); same bytes
    const holey = Buffer.alloc(4 << 20);
    holey.fill(5, 8192, 8192 + 100);
    holey.fill(6, (3 << 20) + 4095, (3 << 20) + 4097); // straddles a block boundary
    api.downloadChunks = [0, 1, 2, 3].map((i) => ({ data: holey.subarray(i << 20, (i + 1) << 20), offset: BigInt(i << 20) }));
    const sparseDst = join(dir, 'sparse.bin');
    expect((await run(api, ['vol-download', 'v', sparseDst, '--pool', 'p', '--sparse'])).code).to.equal(0);
    expect((await readFile(sparseDst)).equals(holey)).to.equal(true);
    expect(statSync(sparseDst).blocks * 512).to.be.at.most(3 * 4096);
    const fullDst = join(dir, 'full.bin');
    expect((await run(api, ['vol-download', 'v', fullDst, '--pool', 'p'])).code).to.equal(0);
    expect(statSync(fullDst).blocks * 512).to.be.at.least(4 << 20);
  });

  it('vol-upload sends the length it declares: a file that grows during the upload is sent as it was when the upload began', async () => {
    const src = join(dir, 'growing.bin');
    const data = Buffer.alloc((1 << 20) + 10, 3);
    await writeFile(src, data);
    // the file grows as soon as the header has gone out (a guest or a copy still writing it)
    class GrowingSource extends FakeApi {
      override async uploadVolume(messages: AsyncIterable<UploadVolumeRequest>) {
        const grown = (async function* () {
          for await (const m of messages) {
            yield m;
            if (m.part?.$case === 'header') await appendFile(src, Buffer.alloc(3 << 20, 4));
          }
        })();
        return super.uploadVolume(grown);
      }
    }
    const api = new GrowingSource(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 8n << 20n, 0n, '/p/v')];
    const up = await run(api, ['vol-upload', 'v', src, '--pool', 'p']);
    expect(up.code, up.stderr).to.equal(0);
    const msgs = api.callsOf('uploadVolume')[0] as UploadVolumeRequest[];
    // the coordinator refuses data past the declared length (RESOURCE_EXHAUSTED, after writing
    // what came before it): what was declared is what is sent
    expect(msgs[0]?.part?.value).to.deep.include({ length: BigInt(data.length) });
    expect(Buffer.concat(api.uploaded).equals(data)).to.equal(true);
  });

  it('vol-upload from a pipe: --length bounds what is read and is declared; without it, all the pipe gives (length 0)', async () => {
    const fifo = join(dir, 'upload.fifo');
    execFileSync('mkfifo', [fifo]);
    const feed = (bytes: Buffer): void => {
      // a reader that stops early (--length) may leave the writer an EPIPE: not this test's concern
      createWriteStream(fifo).on('error', () => undefined).end(bytes);
    };
    for (const [args, declared, sent] of [[['--length', '5'], 5n, 5], [[], 0n, 10]] as const) {
      const api = new FakeApi(['a']);
      api.pools = [pool('a', 'p')];
      api.volumes = [volume('a', 'p', 'v', 1n << 20n, 0n, '/p/v')];
      feed(Buffer.from('0123456789'));
      const up = await run(api, ['vol-upload', 'v', fifo, '--pool', 'p', ...args]);
      expect(up.code, up.stderr).to.equal(0);
      const msgs = api.callsOf('uploadVolume')[0] as UploadVolumeRequest[];
      expect(msgs[0]?.part?.value, args.join(' ')).to.deep.include({ length: declared });
      expect(Buffer.concat(api.uploaded).toString(), args.join(' ')).to.equal('0123456789'.slice(0, sent));
    }
  });

  it('pool-build --overwrite --no-overwrite is refused before any call, under "Failed to build pool" in libvirt\'s words, as virsh 9.0 does', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'inact', { state: PoolState.POOL_STATE_INACTIVE })];
    // captured from virsh 9.0: pool-build inact --overwrite --no-overwrite (an inactive dir pool)
    const r = await run(api, ['pool-build', 'inact', '--overwrite', '--no-overwrite']);
    expect(r).to.deep.equal({
      code: 1,
      stdout: '\n',
      stderr: 'error: Failed to build pool inact\n' +
        "error: Flags 'VIR_STORAGE_POOL_BUILD_OVERWRITE' and 'VIR_STORAGE_POOL_BUILD_NO_OVERWRITE' are mutually exclusive\n",
    });
    expect(api.callsOf('buildPool')).to.have.length(0);
    // pool-start and pool-create-as check the pair themselves in virsh (VSH_EXCLUSIVE_OPTIONS)
    const start = await run(api, ['pool-start', 'inact', '--build', '--overwrite', '--no-overwrite']);
    expect(start.stderr).to.equal('error: Options --overwrite and --no-overwrite are mutually exclusive\n');
  });

  it('vol-upload and vol-download take --offset and --length up to 2^64-1, as virsh; a length that large is "to the end"', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1n << 20n, 0n, '/p/v')];
    const data = Buffer.alloc(10_000, 3);
    const src = join(dir, 'ullong-up.bin');
    await writeFile(src, data);
    // virsh 9.0: vol-upload v FILE --length 18446744073709551615 uploads the whole file, exit 0
    const up = await run(api, ['vol-upload', 'v', src, '--pool', 'p', '--length', '18446744073709551615']);
    expect([up.code, up.stderr]).to.deep.equal([0, '']);
    const header = (api.callsOf('uploadVolume')[0] as UploadVolumeRequest[])[0]?.part?.value;
    // the whole file, announced as its size: the server refuses what does not fit before writing
    expect(header).to.deep.include({ offset: 0n, length: 10_000n });
    expect(Buffer.concat(api.uploaded).equals(data)).to.equal(true);
    api.downloadChunks = [{ data: data.subarray(0, 100), offset: 0n }];
    const dst = join(dir, 'ullong-down.bin');
    const down = await run(api, ['vol-download', 'v', dst, '--pool', 'p', '--length', ' +18446744073709551615']);
    expect([down.code, down.stderr]).to.deep.equal([0, '']);
    expect(api.callsOf('downloadVolume')[0]).to.deep.include({ offset: 0n, length: 0n });
    // an offset past 2^63-1 goes to the server, whose refusal comes under virsh's context line
    // (virsh 9.0: "error: cannot download from volume v", then libvirt's "Unable to seek ...")
    api.failures.set('downloadVolume', new InvalidArgumentError('offset', 'size 18446744073709551615 is out of range'));
    const far = await run(api, ['vol-download', 'v', dst, '--pool', 'p', '--offset', '18446744073709551615']);
    expect(far.code).to.equal(1);
    expect(far.stderr.split('\n')[0]).to.equal('error: cannot download from volume v');
    expect(api.callsOf('downloadVolume')[1]).to.deep.include({ offset: (1n << 64n) - 1n });
  });

  it('vol-upload and vol-download --length -1 transfer everything, as virsh 9.0 (a negative length wraps); --offset -1 is refused', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1n << 20n, 0n, '/p/v')];
    const data = Buffer.alloc(5_000, 7);
    const src = join(dir, 'wrap-up.bin');
    await writeFile(src, data);
    const up = await run(api, ['vol-upload', 'v', src, '--pool', 'p', '--length', '-1']);
    expect([up.code, up.stderr]).to.deep.equal([0, '']);
    const header = (api.callsOf('uploadVolume')[0] as UploadVolumeRequest[])[0]?.part?.value;
    expect(header).to.deep.include({ offset: 0n, length: 5_000n });
    expect(Buffer.concat(api.uploaded).equals(data)).to.equal(true);
    api.downloadChunks = [{ data: data.subarray(0, 100), offset: 0n }];
    const down = await run(api, ['vol-download', 'v', join(dir, 'wrap-down.bin'), '--pool', 'p', '--length', '-1']);
    expect([down.code, down.stderr]).to.deep.equal([0, '']);
    expect(api.callsOf('downloadVolume')[0]).to.deep.include({ offset: 0n, length: 0n });
    const offset = await run(api, ['vol-download', 'v', join(dir, 'wrap-down.bin'), '--pool', 'p', '--offset', '-1']);
    expect([offset.code, offset.stderr]).to.deep.equal([1, "error: Numeric value '-1' for <offset> option is malformed or out of range\n"]);
  });

  it('vol-upload and vol-download report a local file as virsh does (cannot read / cannot create), then why in plain words', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1n << 20n, 0n, '/p/v')];
    // a directory to upload from fails before the upload starts
    let uploads = 0;
    api.uploadVolume = async () => {
      uploads++;
      throw new Error('not reached');
    };
    const fromDir = await run(api, ['vol-upload', 'v', dir, '--pool', 'p']);
    expect(fromDir).to.deep.equal({ code: 1, stdout: '\n', stderr: `error: cannot read ${dir}\nerror: Is a directory\n` });
    expect(uploads).to.equal(0);
    const missing = join(dir, 'nonexistent');
    expect((await run(api, ['vol-upload', 'v', missing, '--pool', 'p'])).stderr)
      .to.equal(`error: cannot read ${missing}\nerror: No such file or directory\n`);
    expect((await run(api, ['vol-download', 'v', `${dir}/`, '--pool', 'p'])).stderr)
      .to.equal(`error: cannot create ${dir}/\nerror: Is a directory\n`);
    expect((await run(api, ['vol-download', 'v', dir, '--pool', 'p'])).stderr)
      .to.equal(`error: cannot create ${dir}\nerror: Is a directory\n`);
    expect((await run(api, ['vol-download', 'v', join(missing, 'x'), '--pool', 'p'])).stderr)
      .to.equal(`error: cannot create ${join(missing, 'x')}\nerror: No such file or directory\n`);
    expect(uploads).to.equal(0);
    expect(api.callsOf('downloadVolume')).to.have.length(0);
    // a write that fails during the download (Linux's /dev/full: every write is ENOSPC)
    if (existsSync('/dev/full')) {
      api.downloadChunks = [{ data: Buffer.alloc(4096, 1), offset: 0n }];
      expect((await run(api, ['vol-download', 'v', '/dev/full', '--pool', 'p'])).stderr)
        .to.equal('error: cannot write /dev/full\nerror: No space left on device\n');
    }
  });

  it('Ctrl-C during a transfer on a terminal ends the progress line before the error', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 3n << 20n, 0n, '/p/v')];
    const ctrlC = new AbortController();
    api.downloadVolume = async function* () {
      yield { data: Buffer.alloc(1 << 20), offset: 0n };
      ctrlC.abort();
      yield { data: Buffer.alloc(1 << 20), offset: BigInt(1 << 20) };
    };
    const down = await run(api, ['vol-download', 'v', join(dir, 'ctrl-c.bin'), '--pool', 'p'], { tty: true, signal: ctrlC.signal });
    expect(down.code).to.equal(1);
    expect(down.stderr).to.match(/^\rv: \[=+>? *\] +\d+% [^\n]*\nerror: download interrupted\n$/);

    const src = join(dir, 'ctrl-c-up.bin');
    await writeFile(src, Buffer.alloc(3 << 20));
    const ctrlC2 = new AbortController();
    api.uploadVolume = async (messages) => {
      for await (const m of messages) if (m.part?.$case === 'data') ctrlC2.abort();
      throw new Error('not reached');
    };
    const up = await run(api, ['vol-upload', 'v', src, '--pool', 'p'], { tty: true, signal: ctrlC2.signal });
    expect(up.code).to.equal(1);
    expect(up.stderr).to.match(/^\rv: \[=+>? *\] +\d+% [^\n]*\nerror: upload interrupted\n$/);
  });

  it('pool-event --timeout takes 1 to 2147483 seconds, as virsh 9.0 (a longer one overflowed Node\'s timer and ended at once)', async () => {
    const api = new FakeApi(['a']);
    // stderr captured from virsh 9.0; the value is printed as read ('00' is 0)
    for (const [text, shown] of [['0', '0'], ['00', '0'], ['2147484', '2147484'], ['4294967296', '4294967296']]) {
      const r = await run(api, ['pool-event', '--event', 'lifecycle', '--timeout', text]);
      expect(r, text).to.deep.equal({ code: 1, stdout: '\n', stderr: `error: Numeric value '${shown}' for <timeout> option is malformed or out of range\n` });
    }
    expect(api.callsOf('watchEvents'), 'nothing was watched').to.deep.equal([]);
  });

  it('pool-event prints one event and stops; --loop with --timeout reports the count', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'scratch')];
    api.events = [
      Event.create({ sequence: 5n, kind: EventKind.POOL_STARTED, host: 'a', pool: 'scratch' }),
      Event.create({ sequence: 6n, kind: EventKind.POOL_REFRESHED, host: 'a', pool: 'scratch' }),
    ];
    const one = await run(api, ['pool-event', '--event', 'lifecycle']);
    expect(one.stdout).to.equal("event 'lifecycle' for storage pool scratch: Started\nevents received: 1\n\n");
    const looped = await run(api, ['pool-event', '--loop', '--timeout', '1', '--after', '4', '--pool', 'scratch']);
    expect(looped.stdout).to.equal(
      "event 'lifecycle' for storage pool scratch: Started\n" +
      "event 'refresh' for storage pool scratch\n" +
      'event loop timed out\nevents received: 2\n\n');
    const req = api.callsOf('watchEvents')[1] as WatchEventsRequest;
    expect(req.afterSequence).to.equal(4n);
    expect(req.fromStart).to.equal(false);
    expect(req.pools).to.deep.equal(['hosts/a/pools/scratch']);
    // without --after: only new events
    expect(api.callsOf('watchEvents')[0]).to.deep.include({ afterSequence: 0n, fromStart: false });
  });

  it('pool-event --after 0 replays from the first stored event (after_sequence 0 alone means only new ones)', async () => {
    const api = new FakeApi(['a']);
    api.events = [Event.create({ sequence: 1n, kind: EventKind.HOST_ONLINE, host: 'a' })];
    const r = await run(api, ['pool-event', '--after', '0']);
    expect(r.stdout).to.equal("event 'host' for host a: Online\nevents received: 1\n\n");
    expect(api.callsOf('watchEvents')[0]).to.deep.include({ afterSequence: 0n, fromStart: true });
    const help = (await run(api, ['help', 'pool-event'])).stdout;
    expect(help).to.contain(' [--after <number>] ').and.contain('--after <number>  first replay the stored events after this sequence number (0: all of them)\n');
    expect((await run(api, ['pool-event', '--after'])).stderr).to.equal('error: expected syntax: --after <number>\n');
    expect((await run(api, ['pool-event', '--after', 'x'])).stderr).to.equal("error: Numeric value 'x' for <after> option is malformed or out of range\n");
  });

  it('pool-event --json prints one line per event in the conventions of the other --json commands', async () => {
    const api = new FakeApi(['a']);
    const big = 270553174016n;
    api.events = [
      Event.create({
        sequence: 9007199254740993n, kind: EventKind.POOL_STARTED, host: 'a', pool: 'scratch', principal: 'alice',
        time: new Date('2024-05-01T10:00:00.000Z'),
        poolState: pool('a', 'scratch', { capacity: big, allocation: 5n, available: big - 5n, targetPermissions: { mode: 0o711, owner: 0n, group: 0n, label: '' } }),
      }),
      Event.create({ sequence: 12n, kind: EventKind.VOLUME_CREATED, host: 'a', pool: 'scratch', volume: 'v', volumeState: volume('a', 'scratch', 'v', big, 0n) }),
      Event.create({ sequence: 13n, kind: EventKind.HOST_ONLINE, host: 'a', hostState: api.hosts[0] }),
      Event.create({ sequence: 14n, kind: EventKind.OPERATION_PROGRESS, host: 'a', pool: 'scratch', volume: 'v', progress: { operation: 'wipe', done: 1n, total: big } }),
    ];
    const r = await run(api, ['pool-event', '--loop', '--timeout', '1', '--event', 'lifecycle', '--json']);
    expect(r.code).to.equal(0);
    // one JSON object per line, no count and no blank line after it (machine output)
    const lines = r.stdout.split('\n');
    expect(lines).to.have.length(2);
    expect(lines[1]).to.equal('');
    expect(lines[0]).to.contain('"sequence":9007199254740993,').and.contain('"capacity":270553174016,');
    const ev = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(ev).to.deep.include({ event: 'lifecycle', detail: 'started', host: 'a', pool: 'scratch', principal: 'alice', time: '2024-05-01T10:00:00.000Z' });
    expect(ev.poolState).to.deep.include({ name: 'scratch', host: 'a', type: 'dir', state: 'running', allocation: 5, stale: false });
    expect(JSON.stringify(ev)).not.to.match(/POOL_|"mode"/);

    const rest = await run(api, ['pool-event', '--loop', '--timeout', '1', '--event', 'volume', '--json']);
    expect(JSON.parse(rest.stdout)).to.deep.include({ event: 'volume', detail: 'created', volume: 'v' });
    expect(JSON.parse(rest.stdout).volumeState).to.deep.include({ name: 'v', pool: 'scratch', type: 'file', format: 'raw' });
    const host = JSON.parse((await run(api, ['pool-event', '--event', 'host', '--json'])).stdout);
    expect(host).to.deep.include({ event: 'host', detail: 'online', pool: '', poolState: null });
    expect(host.hostState).to.deep.include({ name: 'a', online: true });
    const progress = await run(api, ['pool-event', '--event', 'progress', '--json']);
    expect(progress.stdout).to.contain('"detail":"","host":"a"').and.contain('"progress":{"operation":"wipe","done":1,"total":270553174016}');
    expect((await run(api, ['help', 'pool-event'])).stdout).to.contain('--json           print each event as one line of JSON\n');
  });

  it('pool-event --pool needs a pool that exists in every form, on --host\'s host when given, rather than waiting for nothing', async () => {
    const api = new FakeApi(['a', 'b']);
    api.pools = [pool('a', 'images'), pool('b', 'images'), pool('b', 'scratch')];
    // HOST/POOL is looked up as a name is: a typo is virsh's "failed to get pool", nothing watched
    for (const text of ['a/scratch', 'hosts/a/pools/scratch']) {
      const r = await run(api, ['pool-event', '--pool', text]);
      expect(r.code, text).to.equal(1);
      expect(r.stderr, text).to.equal(`error: failed to get pool '${text}'\nerror: no storage pool with matching name 'hosts/a/pools/scratch'\n`);
    }
    // --host picks the pool of that name on that host (not ambiguous), and refuses one on another host
    api.events = [Event.create({ sequence: 3n, kind: EventKind.POOL_STARTED, host: 'b', pool: 'images' })];
    const onB = await run(api, ['pool-event', '--pool', 'images', '--host', 'b']);
    expect(onB).to.deep.equal({ code: 0, stdout: "event 'lifecycle' for storage pool b/images: Started\nevents received: 1\n\n", stderr: '' });
    expect((await run(api, ['pool-event', '--pool', 'scratch', '--host', 'a'])).stderr).to.equal(
      "error: failed to get pool 'scratch'\nerror: Storage pool not found: no storage pool with matching name 'scratch'\n");
    expect((await run(api, ['pool-event', '--pool', 'b/scratch', '--host', 'a'])).stderr).to.equal(
      "error: pool 'b/scratch' is on host 'b', and --host is 'a': no event can match both\n");
    // host events belong to no pool: a pool filter leaves them all out, and the call waited for nothing
    const hostEvents = await run(api, ['pool-event', '--pool', 'b/scratch', '--event', 'host', '--timeout', '1']);
    expect(hostEvents).to.deep.equal({ code: 1, stdout: '\n', stderr: "error: --event host shows hosts' events, which belong to no pool, and --pool is 'b/scratch': no event can match both; use --host\n" });
    // a bad --host is named as the option given, not as the API's hosts[0], and nothing is watched
    const badHost = await run(api, ['pool-event', '--host', 'a b']);
    expect(badHost.code).to.equal(1);
    expect(badHost.stderr).to.match(/^error: host: host id 'a b' is not valid/);
    const watched = api.callsOf('watchEvents') as WatchEventsRequest[];
    expect(watched.map((w) => [w.pools, w.hosts])).to.deep.equal([[['hosts/b/pools/images'], ['b']]]);
  });

  it('pool-event is ended by an interrupt (Ctrl-C) like virsh', async () => {
    const api = new FakeApi(['a']);
    const ac = new AbortController();
    const pending = run(api, ['pool-event', '--loop'], { signal: ac.signal });
    setImmediate(() => ac.abort());
    const r = await pending;
    // virsh 9.0: `events received: 0`, then exit status 1 and no error line
    expect(r).to.deep.equal({ code: 1, stdout: 'event loop interrupted\nevents received: 0\n\n', stderr: '' });
  });

  it('pool-event fails (status 1, nothing on stderr) when no event came, as virsh 9.0 does; one event is success', async () => {
    // captured from virsh 9.0 against a private libvirtd: `pool-event --event lifecycle --timeout 1`
    // prints the two lines and a blank one and exits 1; with an event before the timeout, 0
    const quiet = new FakeApi(['a']);
    expect(await run(quiet, ['pool-event', '--event', 'lifecycle', '--timeout', '1'])).to.deep.equal(
      { code: 1, stdout: 'event loop timed out\nevents received: 0\n\n', stderr: '' });
    expect(await run(quiet, ['pool-event', '--loop', '--timeout', '1', '--json'])).to.deep.equal({ code: 1, stdout: '', stderr: '' });
    const one = new FakeApi(['a']);
    one.pools = [pool('a', 'scratch')];
    one.events = [Event.create({ sequence: 5n, kind: EventKind.POOL_STARTED, host: 'a', pool: 'scratch' })];
    const looped = await run(one, ['pool-event', '--loop', '--timeout', '1']);
    expect(looped).to.deep.equal(
      { code: 0, stdout: "event 'lifecycle' for storage pool scratch: Started\nevent loop timed out\nevents received: 1\n\n", stderr: '' });
  });

  it('vol-upload and vol-download describe their options in their own direction, as virsh', async () => {
    const down = (await run(new FakeApi(), ['help', 'vol-download'])).stdout;
    expect(down).to.include('volume offset to download from').and.include('amount of data to download').and.not.include('upload');
    const up = (await run(new FakeApi(), ['help', 'vol-upload'])).stdout;
    expect(up).to.include('volume offset to upload to').and.include('amount of data to upload');
  });

  it('help takes a command group by keyword or name, as virsh; an unknown topic is an error in virsh\'s words', async () => {
    const pools = await run(new FakeApi(), ['help', 'pool']);
    expect(pools.code).to.equal(0);
    expect(pools.stderr).to.equal('');
    // captured from `virsh help pool` (virsh 9.0): its order, pool-event and pool-capabilities last
    expect(pools.stdout).to.equal(
      ' Storage Pool (help keyword \'pool\'):\n' +
      '    find-storage-pool-sources-as   find potential storage pool sources\n' +
      '    find-storage-pool-sources      discover potential storage pool sources\n' +
      '    pool-autostart                 autostart a pool\n' +
      '    pool-build                     build a pool\n' +
      '    pool-create-as                 create a pool from a set of args\n' +
      '    pool-create                    create a pool from an XML file\n' +
      '    pool-define-as                 define a pool from a set of args\n' +
      '    pool-define                    define an inactive persistent storage pool or modify an existing persistent one from an XML file\n' +
      '    pool-delete                    delete a pool\n' +
      '    pool-destroy                   destroy (stop) a pool\n' +
      '    pool-dumpxml                   pool information in XML\n' +
      '    pool-edit                      edit XML configuration for a storage pool\n' +
      '    pool-info                      storage pool information\n' +
      '    pool-list                      list pools\n' +
      '    pool-name                      convert a pool UUID to pool name\n' +
      '    pool-refresh                   refresh a pool\n' +
      '    pool-start                     start a (previously defined) inactive pool\n' +
      '    pool-undefine                  undefine an inactive pool\n' +
      '    pool-uuid                      convert a pool name to pool UUID\n' +
      '    pool-event                     Storage Pool Events\n' +
      '    pool-capabilities              storage pool capabilities\n' +
      '\n');
    expect(pools.stdout.endsWith('\n\n')).to.equal(true); // the group, then virsh's blank line
    expect((await run(new FakeApi(), ['help', 'Storage Pool'])).stdout).to.equal(pools.stdout);
    expect((await run(new FakeApi(), ['--help', 'pool'])).stdout).to.equal(pools.stdout);
    // the general help names every global option it takes, --help and --version included
    const general = (await run(new FakeApi(), ['--help'])).stdout;
    for (const o of ['--server <server>', '--token <token>', '-c, --connect HOST:PORT', '-q ', '-h, --help', '-v, --version']) expect(general, o).to.include(`    ${o}`);
    const vols = await run(new FakeApi(), ['help', 'volume']);
    expect(vols.code).to.equal(0);
    // captured from `virsh help volume` (virsh 9.0)
    expect(vols.stdout).to.equal(
      " Storage Volume (help keyword 'volume'):\n" +
      '    vol-clone                      clone a volume.\n' +
      '    vol-create-as                  create a volume from a set of args\n' +
      '    vol-create                     create a vol from an XML file\n' +
      '    vol-create-from                create a vol, using another volume as input\n' +
      '    vol-delete                     delete a vol\n' +
      '    vol-download                   download volume contents to a file\n' +
      '    vol-dumpxml                    vol information in XML\n' +
      '    vol-info                       storage vol information\n' +
      '    vol-key                        returns the volume key for a given volume name or path\n' +
      '    vol-list                       list vols\n' +
      '    vol-name                       returns the volume name for a given volume key or path\n' +
      '    vol-path                       returns the volume path for a given volume name or key\n' +
      '    vol-pool                       returns the storage pool for a given volume key or path\n' +
      '    vol-resize                     resize a vol\n' +
      '    vol-upload                     upload file contents to a volume\n' +
      '    vol-wipe                       wipe a vol\n' +
      '\n');
    expect((await run(new FakeApi(), ['help', 'Storage Volume'])).stdout).to.equal(vols.stdout);
    expect((await run(new FakeApi(), ['help', 'fleet'])).stdout).to.equal(
      " Fleet (help keyword 'fleet'):\n    host-list                      list the hosts of the fleet\n    host-ping                      check that a host's agent answers, and time the round trip\n    host-delete                    forget a host whose agent is gone\n\n",
    );
    // the general help shows every group's keyword
    const all = await run(new FakeApi(), ['help']);
    for (const heading of [" Storage Pool (help keyword 'pool'):", " Storage Volume (help keyword 'volume'):", " Fleet (help keyword 'fleet'):"]) {
      expect(all.stdout).to.contain(`\n${heading}\n`);
    }
    // as virsh: names and keywords match exactly; help itself ran, so its blank line follows
    for (const topic of ['nosuch', 'POOL', 'storage pool']) {
      const r = await run(new FakeApi(), ['help', topic]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.equal(`error: command or command group '${topic}' doesn't exist\n`);
      expect(r.stdout).to.equal('\n');
    }
  });

  it('a command line virsh cannot parse prints nothing on stdout; a command that ran and failed prints virsh\'s blank line', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'default')];
    // stderr captured from virsh 9.0 (`virsh -c test:///default ...`), whose stdout is empty for all of these
    const refused: Array<[string[], string]> = [
      [['pool-lsit'], "error: unknown command: 'pool-lsit'\n"],
      [['pool-info'], "error: command 'pool-info' requires <pool> option\n"],
      [['pool-list', '--bogus'], "error: command 'pool-list' doesn't support option --bogus\n"],
      [['vol-list', 'default', '--detials'], "error: command 'vol-list' doesn't support option --detials\n"],
      [['pool-info', 'default', 'extra'], "error: unexpected data 'extra'\n"],
      [['pool-autostart'], "error: command 'pool-autostart' requires <pool> option\n"],
      [['pool-info', '--pool'], 'error: expected syntax: --pool <string>\n'],
      [['--bogus', 'pool-list'], "error: unsupported option '--bogus'. See --help.\n"],
    ];
    for (const [argv, stderr] of refused) {
      const r = await run(api, argv);
      expect(r, argv.join(' ')).to.deep.equal({ code: 1, stdout: '', stderr });
    }
    expect(api.calls, 'nothing is asked of the server').to.deep.equal([]);
    // the command ran: its error, then the blank line, as virsh
    const ran = await run(api, ['pool-list', '--details', '--uuid']);
    expect(ran).to.deep.equal({ code: 1, stdout: '\n', stderr: 'error: Options --details and --uuid are mutually exclusive\n' });
    // virsh 9.0 refuses --all with --inactive, and says so before --details/--uuid
    for (const argv of [['pool-list', '--all', '--inactive'], ['pool-list', '--inactive', '--all', '--details', '--uuid']]) {
      const both = await run(api, argv);
      expect(both, argv.join(' ')).to.deep.equal({ code: 1, stdout: '\n', stderr: 'error: Options --all and --inactive are mutually exclusive\n' });
    }
    const missing = await run(api, ['pool-info', 'nosuch']);
    expect(missing.code).to.equal(1);
    expect(missing.stdout).to.equal('\n');
    // a command line is parsed whole first: a part that does not parse means none of it runs
    const line = await run(api, ['pool-lsit; pool-list --name']);
    expect(line).to.deep.equal({ code: 1, stdout: '', stderr: "error: unknown command: 'pool-lsit'\n" });
  });

  it('refuses an empty value where virsh 9.0 does (vshCommandOptStringReq), and ignores an empty --allocation as virsh', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'default')];
    api.volumes = [volume('a', 'default', 'v1', 1024n, 1024n)];
    // stderr captured from virsh 9.0 (a private libvirtd, dir pool 'default'); stdout is virsh's blank line
    const cases: Array<[string[], string]> = [
      [['pool-list', '--type', ''], "error: Failed to get option 'type': Option argument is empty\n"],
      [['pool-list', '--type', 'dir,'], "error: Invalid pool type ''; allowed: dir, fs, netfs, logical, disk, iscsi, iscsi-direct, scsi, mpath\n"],
      // vshStringToArray: ',,' stands for a comma in the word, not an empty word between two
      [['pool-list', '--type', 'dir,,logical'], "error: Invalid pool type 'dir,logical'; allowed: dir, fs, netfs, logical, disk, iscsi, iscsi-direct, scsi, mpath\n"],
      [['vol-create-as', 'default', 'n', '1M', '--format', ''], "error: Failed to get option 'format': Option argument is empty\n"],
      [['vol-create-as', 'default', 'n', '1M', '--backing-vol-format', ''], "error: Failed to get option 'backing-vol-format': Option argument is empty\n"],
      [['vol-wipe', 'v1', 'default', '--algorithm', ''], "error: Failed to get option 'algorithm': Option argument is empty\n"],
      [['vol-upload', 'v1', '', 'default'], "error: Failed to get option 'file': Option argument is empty\n"],
      [['vol-download', 'v1', '', 'default'], "error: Failed to get option 'file': Option argument is empty\n"],
      [['pool-define', ''], "error: Failed to get option 'file': Option argument is empty\n"],
      [['pool-create', ''], "error: Failed to get option 'file': Option argument is empty\n"],
      [['vol-create', 'default', ''], "error: Failed to get option 'file': Option argument is empty\n"],
      [['vol-create-from', 'default', '', 'v1'], "error: Failed to get option 'file': Option argument is empty\n"],
      [['pool-define-as', 'p', '', '--target', '/x'], "error: Failed to get option 'type': Option argument is empty\n"],
      [['find-storage-pool-sources', ''], "error: Failed to get option 'type': Option argument is empty\n"],
      [['find-storage-pool-sources', 'logical', ''], "error: Failed to get option 'srcSpec': Option argument is empty\n"],
      [['find-storage-pool-sources-as', ''], "error: Failed to get option 'type': Option argument is empty\n"],
      [['find-storage-pool-sources-as', 'logical', 'h', ''], "error: Failed to get option 'port': Option argument is empty\nerror: missing argument\n"],
      [['pool-event', '--event', '', '--timeout', '1'], "error: Failed to get option 'event': Option argument is empty\n"],
    ];
    for (const [argv, stderr] of cases) {
      const r = await run(api, argv);
      expect(r, argv.join(' ')).to.deep.equal({ code: 1, stdout: '\n', stderr });
    }
    expect(api.callsOf('createVolume'), 'nothing was created').to.deep.equal([]);
    const r = await run(api, ['vol-create-as', 'default', 'n', '1M', '--allocation', '']);
    expect([r.code, r.stderr]).to.deep.equal([0, '']);
    expect((api.callsOf('createVolume')[0] as CreateVolumeRequest).definition?.allocation).to.equal(undefined);
  });

  it('a pool reference no pool can have is virsh\'s "failed to get pool", not a resource-name error', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'default')];
    // virsh 9.0 prints these two lines (then the blank line on stdout) for any name it cannot find
    for (const text of ['/x/y', 'a/b/c', 'default/', '/default', 'hosts/a/pools/b/c']) {
      for (const argv of [['pool-info', text], ['vol-info', 'v1', text]]) {
        const r = await run(api, argv);
        expect(r, argv.join(' ')).to.deep.equal({
          code: 1,
          stdout: '\n',
          stderr: `error: failed to get pool '${text}'\nerror: Storage pool not found: no storage pool with matching name '${text}'; ` +
            'a pool is POOL, HOST/POOL, hosts/HOST/pools/POOL or its UUID\n',
        });
      }
    }
  });

  it('vol-name and vol-pool, which have no --pool, do not suggest one when the volume is not found (virsh 9.0)', async () => {
    const api = new FakeApi(['a']);
    for (const cmd of ['vol-name', 'vol-pool']) {
      const r = await run(api, [cmd, 'nosuch']);
      expect(r.stderr, cmd).to.equal("error: failed to get vol 'nosuch'\nerror: Storage volume not found: no storage vol with matching path 'nosuch'\n");
    }
    const path = await run(api, ['vol-path', 'nosuch']);
    expect(path.stderr).to.equal("error: failed to get vol 'nosuch', specifying --pool might help\nerror: Storage volume not found: no storage vol with matching path 'nosuch'\n");
    // a --host that names no host says so, not that --pool might help
    const host = await run(api, ['vol-info', '/p/nosuch', '--host', 'nope']);
    expect(host.code).to.equal(1);
    expect(host.stderr).to.equal("error: failed to get vol '/p/nosuch'\nerror: host 'nope' is not known: no agent with this host id has ever reported\n");
  });

  it('a volume name not in --pool is virsh\'s "no storage vol with matching path", not the server\'s message', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'default')];
    // stderr captured from virsh 9.0: vol-info nosuch --pool default, vol-delete nosuch default,
    // vol-create-as default pm 1G --backing-vol nosuch
    const expected = "error: failed to get vol 'nosuch'\nerror: Storage volume not found: no storage vol with matching path 'nosuch'\n";
    for (const argv of [['vol-info', 'nosuch', '--pool', 'default'], ['vol-delete', 'nosuch', 'default'], ['vol-create-as', 'default', 'pm', '1G', '--backing-vol', 'nosuch']]) {
      const r = await run(api, argv);
      expect(r, argv.join(' ')).to.deep.equal({ code: 1, stdout: '\n', stderr: expected });
    }
  });

  it('help words of vol-key, vol-path, vol-info --bytes and vol-create-from --vol are virsh 9.0\'s', async () => {
    const api = new FakeApi(['a']);
    const help = async (cmd: string) => (await run(api, ['help', cmd])).stdout;
    expect(await help('vol-key')).to.contain('    [--vol] <string>  volume name or path\n');
    expect(await help('vol-path')).to.contain('    [--vol] <string>  volume name or key\n');
    expect(await help('vol-info')).to.contain('    --bytes          sizes are represented in bytes rather than pretty units\n');
    expect(await help('vol-create-from')).to.contain('    [--vol] <string>  vol name, key or path\n');
  });

  it('a key or path with an inactive --pool is virsh\'s "pool \'P\' is not active", before "not in pool" or "not found"', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'default'), pool('a', 'off', { state: PoolState.POOL_STATE_INACTIVE })];
    api.volumes = [volume('a', 'default', 'v1', 1024n, 1024n)];
    // stderr captured from virsh 9.0 (vol-key PATH --pool INACTIVE, vol-info PATH --pool INACTIVE)
    for (const argv of [['vol-key', '/var/lib/default/v1', '--pool', 'off'], ['vol-info', '/var/lib/off/nosuch', 'off']]) {
      const r = await run(api, argv);
      expect(r, argv.join(' ')).to.deep.equal({ code: 1, stdout: '\n', stderr: "error: pool 'off' is not active\n" });
    }
    // an active pool still says where the volume is not
    const other = await run(api, ['vol-key', '/var/lib/default/v1', '--pool', 'default']);
    expect([other.code, other.stdout]).to.deep.equal([0, '/var/lib/default/v1\n\n']);
  });

  it('a volume name with an inactive --pool is virsh\'s "pool \'P\' is not active" too, not the server\'s refusal', async () => {
    const api = new FakeApi(['a', 'b']);
    api.pools = [pool('a', 'off', { state: PoolState.POOL_STATE_INACTIVE }), pool('b', 'on')];
    // stderr captured from virsh 9.0 with an inactive dir pool 'inact': vol-info x inact,
    // vol-path x --pool inact, vol-clone odd x inact, vol-upload x FILE inact,
    // vol-create-from inact FILE odd --inputpool inact
    const file = join(dir, 'inactive-pool-volume.xml');
    await writeFile(file, '<volume><name>n</name><capacity>1</capacity></volume>');
    for (const argv of [
      ['vol-info', 'x', 'off'], ['vol-path', 'x', '--pool', 'a/off'], ['vol-clone', 'x', 'y', 'off'],
      ['vol-upload', 'x', file, 'off'], ['vol-create-from', 'on', file, 'x', '--inputpool', 'off'],
    ]) {
      const r = await run(api, argv);
      const given = argv.includes('a/off') ? 'a/off' : 'off';
      expect(r, argv.join(' ')).to.deep.equal({ code: 1, stdout: '\n', stderr: `error: pool '${given}' is not active\n` });
    }
  });

  it('an unknown pool type in pool-define-as, pool-create-as and find-storage-pool-sources comes under virsh\'s context line', async () => {
    const api = new FakeApi(['a']);
    const allowed = "error: Invalid pool type 'bogus'; allowed: dir, fs, netfs, logical, disk, iscsi, iscsi-direct, scsi, mpath\n";
    // virsh 9.0 prints its context line first, then libvirt's reason (ours names what is allowed)
    const cases: Array<[string[], string]> = [
      [['pool-define-as', 'p', 'bogus', '--target', '/x'], 'error: Failed to define pool p\n'],
      [['pool-create-as', 'p', 'bogus', '--target', '/x'], 'error: Failed to create pool p\n'],
      [['find-storage-pool-sources', 'bogus'], 'error: Failed to find any bogus pool sources\n'],
      [['find-storage-pool-sources-as', 'bogus'], 'error: Failed to find any bogus pool sources\n'],
    ];
    for (const [argv, context] of cases) {
      const r = await run(api, argv);
      expect(r, argv.join(' ')).to.deep.equal({ code: 1, stdout: '\n', stderr: context + allowed });
    }
    expect(api.calls.filter((c) => c.method !== 'listHosts'), 'nothing defined or queried').to.deep.equal([]);
  });

  it('names every missing required option, one line each, as virsh 9.0 does', async () => {
    // stderr captured from `virsh -c test:///default ...`; stdout is empty (nothing ran)
    const cases: Array<[string[], string[]]> = [
      [['vol-create-as', 'default'], ['name', 'capacity']],
      [['vol-create-as'], ['pool', 'name', 'capacity']],
      [['vol-create-from'], ['pool', 'file', 'vol']],
      [['pool-define-as'], ['name', 'type']],
      [['pool-create-as', 'p'], ['type']],
      [['vol-resize'], ['vol', 'capacity']],
      [['vol-upload', 'v'], ['file']],
    ];
    for (const [argv, missing] of cases) {
      const r = await run(new FakeApi(), argv);
      const stderr = missing.map((o) => `error: command '${argv[0]}' requires <${o}> option\n`).join('');
      expect(r, argv.join(' ')).to.deep.equal({ code: 1, stdout: '', stderr });
    }
  });

  it('--version prints the version alone, as virsh -v prints 9.0.0: no blank line; -V the long form', async () => {
    for (const argv of [['--version'], ['-v'], ['--version=short'], ['-q', '--version'], ['--version', 'pool-list', '--bogus']]) {
      expect(await run(new FakeApi(), argv), argv.join(' ')).to.deep.equal({ code: 0, stdout: '0.1.0\n', stderr: '' });
    }
    for (const argv of [['-V'], ['--version=long']]) {
      const r = await run(new FakeApi(), argv);
      expect(r.code).to.equal(0);
      expect(r.stdout).to.match(/^Cisternctl command line tool of Cistern 0\.1\.0\n/);
      expect(r.stdout).not.to.match(/\n\n$/);
    }
    // virsh reads its options in order and stops at the first -h or -v
    expect((await run(new FakeApi(), ['--bogus', '--version'])).code).to.equal(1);
  });

  it('help COMMAND is laid out as virsh 9.0 lays it out (vshCmddefHelp), then virsh\'s blank line', async () => {
    // `virsh help pool-info`, with Cistern's own --json and pool naming
    expect(await run(new FakeApi(), ['help', 'pool-info'])).to.deep.equal({
      code: 0,
      stderr: '',
      stdout:
        '  NAME\n' +
        '    pool-info - storage pool information\n' +
        '\n' +
        '  SYNOPSIS\n' +
        '    pool-info <pool> [--bytes] [--json]\n' +
        '\n' +
        '  DESCRIPTION\n' +
        '    Returns basic information about the storage pool.\n' +
        '\n' +
        '  OPTIONS\n' +
        '    [--pool] <string>  pool name (POOL or HOST/POOL) or uuid\n' +
        '    --bytes          Return pool info in bytes\n' +
        '    --json           print JSON instead of a table\n' +
        '\n' +
        '\n',
    });
    // value options not filled positionally first: [--opt <string>], <number> for virsh's integers;
    // no DESCRIPTION when virsh has none (vol-key)
    const upload = (await run(new FakeApi(), ['vol-upload', '--help'])).stdout;
    expect(upload).to.contain('    vol-upload <vol> <file> [--pool <string>] [--offset <number>] [--length <number>] [--sparse] [--host <string>]\n');
    expect(upload).to.contain('\n    [--file] <string>  file\n    --pool <string>  pool name');
    expect(upload).to.contain('\n    --offset <number>  volume offset to upload to\n');
    const key = (await run(new FakeApi(), ['-q', 'help', 'vol-key'])).stdout;
    expect(key).not.to.contain('DESCRIPTION');
    expect(key.endsWith('(default: every host)\n\n')).to.equal(true); // -q: no blank line after the help's own
  });

  it('unknown commands and --help', async () => {
    const r = await run(new FakeApi(), ['pool-frobnicate']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal("error: unknown command: 'pool-frobnicate'\n");
    const h = await run(new FakeApi(), ['vol-resize', '--help']);
    expect(h.code).to.equal(0);
    expect(h.stdout).to.contain('vol-resize - resize a vol');
    expect(h.stdout).to.contain('--shrink');
  });
});
