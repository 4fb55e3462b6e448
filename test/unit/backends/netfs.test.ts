// The netfs backend with the recording runner: libvirt's mount command lines for each
// format (auto, nfs with nfsvers=, cifs //host/dir with guest, glusterfs with
// direct-io-mode=1, the pool's own mount options last), recognising a mounted export from
// mountinfo, umount, FindPoolSources with showmount and its parser on captured output.
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetfsBackend, netfsSourceSpec, parseShowmountExports } from '../../../libs/backends/netfs.js';
import { parseGlusterVolumes } from '../../../libs/backends/gluster-sources.js';
import { formatPoolSourcesXml } from '../../../libs/xml/index.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { findBackend } from '../../../libs/backends/registry.js';
import '../../../libs/backends/index.js';
import type { PoolContext } from '../../../libs/backends/backend.js';
import { CommandFailedError, DeadlineExceededError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../../libs/errors/errors.js';
import { PoolSource, PoolType, type PoolDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { rejects } from '../../support/rejects.js';

// Captured: `showmount --no-headers --exports 127.0.0.1` against nfs-ganesha 4.3 (Debian 12)
// exporting one directory to everyone and one, with a space in its path, to two networks.
// The shape of `gluster --xml volume info all` (gluster CLI 10; fields trimmed): volume
// names are direct <name> children of //volumes/volume, bricks carry <name>s of their own.
const GLUSTER_XML = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput>
  <opRet>0</opRet>
  <opErrno>0</opErrno>
  <opErrstr/>
  <volInfo>
    <volumes>
      <volume>
        <name>images</name>
        <id>5c1f7d0e-0d3a-4c55-9d4f-2f4f1a3b6a01</id>
        <status>1</status>
        <statusStr>Started</statusStr>
        <bricks>
          <brick uuid="0b8e">gl1:/bricks/images<name>gl1:/bricks/images</name><hostUuid>0b8e</hostUuid></brick>
        </bricks>
      </volume>
      <volume>
        <name>iso</name>
        <id>9a0c2b7e-51f2-4c8b-8f0e-6c3d2e1f0a02</id>
        <status>0</status>
        <statusStr>Created</statusStr>
      </volume>
      <count>2</count>
    </volumes>
  </volInfo>
</cliOutput>
`;
const GLUSTER_ARGV = ['gluster', '--xml', '--log-file=/dev/null', 'volume', 'info', 'all'];
const NO_GLUSTER = new CommandFailedError(['gluster'], undefined, 'spawn gluster ENOENT');

const GANESHA_SHOWMOUNT = `/tmp/fsnet-exp/ex1  (everyone)
/tmp/fsnet-exp/ex 2 127.0.0.1/32,10.0.0.0/8
`;

// The example in libvirt's storage_backend_fs.c comment (kernel nfsd style).
const LIBVIRT_EXAMPLE = `/tmp   *
/A dir demo1.foo.bar,demo2.foo.bar
`;

const BASE_MOUNTINFO = `27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
`;

function netfsPool(target: string, source: { host?: string | string[]; dir?: string; format?: string; ver?: string }, mountOptions: string[] = []): PoolDefinition {
  const hosts = source.host === undefined ? [] : (Array.isArray(source.host) ? source.host : [source.host]).map((name) => ({ name, port: 0 }));
  return {
    type: PoolType.POOL_TYPE_NETFS,
    name: 'nfsp',
    uuid: '',
    source: PoolSource.create({ hosts, dir: source.dir ?? '', format: source.format ?? '', protocolVersion: source.ver ?? '' }),
    target: { path: target, permissions: undefined },
    features: undefined,
    mountOptions,
  };
}

describe('netfs backend (recording runner)', () => {
  let root: string;
  let target: string;
  let runner: RecordingRunner;
  let mountinfo: string;
  let backend: NetfsBackend;
  let ctx: PoolContext;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cistern-netfs-unit-'));
    target = join(root, 'mnt');
    mkdirSync(target);
    runner = new RecordingRunner({ strict: true }).on(['mount'], {}).on(['umount'], {});
    mountinfo = BASE_MOUNTINFO;
    backend = new NetfsBackend({ mountTable: async () => mountinfo });
    ctx = { runner, pool: netfsPool(target, { host: 'nfs.example.com', dir: '/var/lib/libvirt/images', format: 'nfs' }) };
  });

  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('is registered for type netfs with formats auto, nfs, glusterfs, cifs and findPoolSources', () => {
    const b = findBackend(PoolType.POOL_TYPE_NETFS);
    expect(b).to.be.instanceOf(NetfsBackend);
    expect(b!.poolFormats).to.deep.equal(['auto', 'nfs', 'glusterfs', 'cifs']);
    expect(b!.defaultPoolFormat).to.equal('auto');
    expect(b!.operations.has('findPoolSources')).to.equal(true);
    expect(b!.operations.has('startPool') && b!.operations.has('createVol')).to.equal(true);
  });

  describe('mount command lines', () => {
    const cases: Array<[string, Parameters<typeof netfsPool>[1], string[], string[]]> = [
      ['nfs', { host: 'localhost', dir: '/var/lib/libvirt/images', format: 'nfs' }, [], ['-o', 'nodev,nosuid,noexec', '-t', 'nfs', '--', 'localhost:/var/lib/libvirt/images']],
      ['nfs with <protocol ver=4>', { host: 'localhost', dir: '/export', format: 'nfs', ver: '4' }, [], ['-o', 'nodev,nosuid,noexec,nfsvers=4', '-t', 'nfs', '--', 'localhost:/export']],
      ['auto (plain mount finds nfs itself)', { host: 'localhost', dir: '/export', format: 'auto' }, [], ['-o', 'nodev,nosuid,noexec', '--', 'localhost:/export']],
      ['no format given = auto', { host: 'localhost', dir: '/export' }, [], ['-o', 'nodev,nosuid,noexec', '--', 'localhost:/export']],
      ['auto with <protocol ver=3>', { host: 'localhost', dir: '/export', format: 'auto', ver: '3' }, [], ['-o', 'nodev,nosuid,noexec,nfsvers=3', '--', 'localhost:/export']],
      ['cifs', { host: 'example.com', dir: 'samba_share', format: 'cifs' }, [], ['-o', 'nodev,nosuid,noexec,guest', '-t', 'cifs', '--', '//example.com/samba_share']],
      ['cifs with a leading slash in dir', { host: 'example.com', dir: '/samba_share', format: 'cifs' }, [], ['-o', 'nodev,nosuid,noexec,guest', '-t', 'cifs', '--', '//example.com/samba_share']],
      ['glusterfs', { host: 'example.com', dir: '/volume', format: 'glusterfs' }, [], ['-o', 'nodev,nosuid,noexec,direct-io-mode=1', '-t', 'glusterfs', '--', 'example.com:/volume']],
      ['nfs with fs:mount_opts', { host: 'localhost', dir: '/export', format: 'nfs', ver: '4.1' }, ['sync', 'lookupcache=pos'], ['-o', 'nodev,nosuid,noexec,nfsvers=4.1,sync,lookupcache=pos', '-t', 'nfs', '--', 'localhost:/export']],
      ['an IPv6 address', { host: '::1', dir: '/export', format: 'nfs' }, [], ['-o', 'nodev,nosuid,noexec', '-t', 'nfs', '--', '[::1]:/export']],
    ];
    for (const [what, source, opts, args] of cases) {
      it(`start mounts ${what}`, async () => {
        ctx.pool = netfsPool(target, source, opts);
        await backend.startPool!(ctx);
        expect(runner.argvs).to.deep.equal([['mount', ...args, target]]);
      });
    }

    it('netfsSourceSpec', () => {
      expect(netfsSourceSpec('nfs', 'h', '/d')).to.equal('h:/d');
      expect(netfsSourceSpec('cifs', 'h', 'd')).to.equal('//h/d');
      expect(netfsSourceSpec('nfs', '[fe80::1]', '/d')).to.equal('[fe80::1]:/d');
    });
  });

  describe('start, check, stop', () => {
    it('an export already mounted on the target (NFS shows host:/dir) is active: start mounts nothing', async () => {
      ctx.pool = netfsPool(target, { host: '127.0.0.1', dir: '/srv/export/', format: 'nfs' });
      mountinfo = `${BASE_MOUNTINFO}60 27 0:45 / ${target} rw,nosuid,nodev,noexec,relatime shared:40 - nfs4 127.0.0.1:/srv/export rw,vers=4.2,addr=127.0.0.1\n`;
      expect(await backend.checkPool!(ctx)).to.equal(true);
      await backend.startPool!(ctx);
      expect(runner.argvs).to.deep.equal([]);
    });

    it('another export on the target: FAILED_PRECONDITION, nothing mounted', async () => {
      mountinfo = `${BASE_MOUNTINFO}60 27 0:45 / ${target} rw - nfs4 other.example.com:/x rw\n`;
      expect(await backend.checkPool!(ctx)).to.equal(false);
      const err = await rejects(backend.startPool!(ctx));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain("'other.example.com:/x' (nfs4)");
      expect(runner.argvs).to.deep.equal([]);
    });

    it('the same export mounted elsewhere is allowed (several clients of one export)', async () => {
      mountinfo = `${BASE_MOUNTINFO}60 27 0:45 / /srv/else rw - nfs nfs.example.com:/var/lib/libvirt/images rw\n`;
      await backend.startPool!(ctx);
      expect(runner.argvs).to.have.length(1);
    });

    it('stop unmounts a mounted export, and does nothing when it is not mounted', async () => {
      mountinfo = `${BASE_MOUNTINFO}60 27 0:45 / ${target} rw - nfs nfs.example.com:/var/lib/libvirt/images rw\n`;
      await backend.stopPool!(ctx);
      expect(runner.argvs).to.deep.equal([['umount', '--', target]]);
      runner.reset();
      mountinfo = BASE_MOUNTINFO;
      await backend.stopPool!(ctx);
      expect(runner.argvs).to.deep.equal([]);
    });

    it('build makes the target directory; overwrite / no_overwrite are refused (nothing to format)', async () => {
      rmSync(target, { recursive: true });
      await backend.buildPool!(ctx, { overwrite: false, noOverwrite: false });
      expect(existsSync(target)).to.equal(true);
      rmSync(target, { recursive: true });
      const err = await rejects(backend.buildPool!(ctx, { overwrite: false, noOverwrite: true }));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain('no source device');
      expect(existsSync(target)).to.equal(false);
      expect(runner.argvs).to.deep.equal([]);
    });

    it('delete removes the target directory', async () => {
      await backend.deletePool!(ctx);
      expect(existsSync(target)).to.equal(false);
    });

    const bad: Array<[string, PoolDefinition, RegExp]> = [];
    before(() => {
      const t = '/mnt/x';
      bad.push(
        ['no host', netfsPool(t, { dir: '/d', format: 'nfs' }), /exactly one source host/],
        ['two hosts', netfsPool(t, { host: ['a', 'b'], dir: '/d', format: 'nfs' }), /exactly one source host/],
        ['a host with a slash', netfsPool(t, { host: 'a/b', dir: '/d', format: 'nfs' }), /contains '\/'/],
        ['a host starting with -', netfsPool(t, { host: '-oexec', dir: '/d', format: 'nfs' }), /starts with '-'/],
        ['a host with a space', netfsPool(t, { host: 'a b', dir: '/d', format: 'nfs' }), /whitespace/],
        ['no dir', netfsPool(t, { host: 'a', format: 'nfs' }), /no source directory/],
        ['a dir with ..', netfsPool(t, { host: 'a', dir: '/d/../etc', format: 'nfs' }), /'\.\.'/],
        ['an unknown format', netfsPool(t, { host: 'a', dir: '/d', format: 'sshfs' }), /unknown pool format 'sshfs'/],
        ['protocol ver with cifs', netfsPool(t, { host: 'a', dir: 'd', format: 'cifs', ver: '4' }), /only supported for netfs pools with format nfs or auto/],
        ['a protocol ver that is not a number', netfsPool(t, { host: 'a', dir: '/d', format: 'nfs', ver: '4,exec' }), /is not an NFS version; expected a version such as 3, 4 or 4.1/],
        ['a mount option with a space', netfsPool(t, { host: 'a', dir: '/d', format: 'nfs' }, ['a b']), /whitespace/],
        // options naming a host file the mount helper, as root, writes (glusterfs's client log and
        // FUSE dump) or reads and sends to the server (cifs's credentials file)
        ['glusterfs log-file', netfsPool(t, { host: 'a', dir: '/v', format: 'glusterfs' }, ['log-file=/etc/cron.d/x']), /mount option 'log-file=\/etc\/cron.d\/x' names a file on the host/],
        ['glusterfs dump-fuse', netfsPool(t, { host: 'a', dir: '/v', format: 'glusterfs' }, ['dump-fuse=/root/.bashrc']), /mount option 'dump-fuse=\/root\/.bashrc' names a file on the host/],
        ['cifs credentials', netfsPool(t, { host: 'a', dir: 's', format: 'cifs' }, ['credentials=/etc/shadow']), /mount option 'credentials=\/etc\/shadow' names a file on the host/],
        ['cifs cred', netfsPool(t, { host: 'a', dir: 's', format: 'cifs' }, ['cred=/etc/shadow']), /mount option 'cred=\/etc\/shadow' names a file on the host/],
        ['auto with LOG-FILE', netfsPool(t, { host: 'a', dir: '/v', format: 'auto' }, ['LOG-FILE=/etc/x']), /names a file on the host.*allowed: /],
      );
    });
    it('bad definitions are INVALID_ARGUMENT and run nothing', async () => {
      for (const [what, pool, message] of bad) {
        const err = await rejects(backend.startPool!({ runner, pool }));
        expect(err, what).to.be.instanceOf(InvalidArgumentError);
        expect(err.message, what).to.match(message);
      }
      expect(runner.argvs).to.deep.equal([]);
    });
  });

  describe('FindPoolSources', () => {
    it('parses captured showmount output (ganesha, and libvirt\'s example)', () => {
      expect(parseShowmountExports(GANESHA_SHOWMOUNT)).to.deep.equal(['/tmp/fsnet-exp/ex1', '/tmp/fsnet-exp/ex 2']);
      expect(parseShowmountExports(LIBVIRT_EXAMPLE)).to.deep.equal(['/tmp', '/A dir']);
      expect(parseShowmountExports('')).to.deep.equal([]);
      expect(parseShowmountExports('Export list for x:\nnot-a-path *\n/ok host\r\n')).to.deep.equal(['/ok']);
    });

    it('runs showmount --no-headers --exports -- HOST and returns one nfs source per export', async () => {
      runner.on(['showmount'], { stdout: GANESHA_SHOWMOUNT }).on(['gluster'], NO_GLUSTER);
      const sources = await backend.findPoolSources!({ runner }, PoolSource.create({ hosts: [{ name: '127.0.0.1', port: 0 }] }));
      expect(runner.argvs).to.deep.equal([
        ['showmount', '--no-headers', '--exports', '--', '127.0.0.1'],
        [...GLUSTER_ARGV, '--remote-host=127.0.0.1'],
      ]);
      expect(sources).to.deep.equal([
        PoolSource.create({ hosts: [{ name: '127.0.0.1', port: 0 }], dir: '/tmp/fsnet-exp/ex1', format: 'nfs' }),
        PoolSource.create({ hosts: [{ name: '127.0.0.1', port: 0 }], dir: '/tmp/fsnet-exp/ex 2', format: 'nfs' }),
      ]);
    });

    it('a host that does not answer: NOT_FOUND with showmount\'s message', async () => {
      runner.on(['showmount'], new CommandFailedError(['showmount'], 1, 'clnt_create: RPC: Program not registered\n'));
      runner.on(['gluster'], new CommandFailedError(['gluster'], 1, 'Connection failed. Please check if gluster daemon is operational.\n'));
      const err = await rejects(backend.findPoolSources!({ runner }, PoolSource.create({ hosts: [{ name: 'nfs.example.com', port: 0 }] })));
      expect(err).to.be.instanceOf(NotFoundError);
      expect(err.message).to.equal("no storage pools were found on host 'nfs.example.com': clnt_create: RPC: Program not registered");
    });

    it('reads the gluster volumes of `gluster --xml volume info all` as glusterfs sources (libvirt virStorageUtilGlusterExtractPoolSources)', () => {
      const sources = parseGlusterVolumes('gl1.example.com', GLUSTER_XML);
      expect(sources).to.deep.equal([
        PoolSource.create({ hosts: [{ name: 'gl1.example.com', port: 0 }], dir: 'images', format: 'glusterfs' }),
        PoolSource.create({ hosts: [{ name: 'gl1.example.com', port: 0 }], dir: 'iso', format: 'glusterfs' }),
      ]);
      expect(formatPoolSourcesXml(sources, PoolType.POOL_TYPE_NETFS)).to.contain("<dir path='images'/>").and.contain("<format type='glusterfs'/>");
      expect(parseGlusterVolumes('h', '<cliOutput><opRet>0</opRet><volInfo><volumes><count>0</count></volumes></volInfo></cliOutput>')).to.deep.equal([]);
      expect(() => parseGlusterVolumes('h', '<cliOutput><volInfo><volumes><volume><id>x</id></volume></volumes></volInfo></cliOutput>')).to.throw(/gluster volume name/);
    });

    it('lists the host\'s gluster volumes after its NFS exports, as libvirt', async () => {
      runner.on(['showmount'], { stdout: GANESHA_SHOWMOUNT }).on(['gluster'], { stdout: GLUSTER_XML });
      const sources = await backend.findPoolSources!({ runner }, PoolSource.create({ hosts: [{ name: 'gl1.example.com', port: 0 }] }));
      expect(sources.map((x) => [x.dir, x.format])).to.deep.equal([
        ['/tmp/fsnet-exp/ex1', 'nfs'],
        ['/tmp/fsnet-exp/ex 2', 'nfs'],
        ['images', 'glusterfs'],
        ['iso', 'glusterfs'],
      ]);
      expect(runner.argvs[1]).to.deep.equal([...GLUSTER_ARGV, '--remote-host=gl1.example.com']);
    });

    it('a host with gluster volumes and no NFS server: the gluster volumes, no error', async () => {
      runner.on(['showmount'], new CommandFailedError(['showmount'], 1, 'clnt_create: RPC: Unable to receive\n')).on(['gluster'], { stdout: GLUSTER_XML });
      const sources = await backend.findPoolSources!({ runner }, PoolSource.create({ hosts: [{ name: 'gl1.example.com', port: 0 }] }));
      expect(sources.map((x) => [x.dir, x.format])).to.deep.equal([
        ['images', 'glusterfs'],
        ['iso', 'glusterfs'],
      ]);
    });

    it("a showmount that times out (a host that drops the packets) is a showmount failure: gluster is still asked, then NOT_FOUND naming the host", async () => {
      const argv = ['showmount', '--no-headers', '--exports', '--', '127.0.0.51'];
      runner.on(['showmount'], new DeadlineExceededError(`command timed out after 60000 ms: ${argv.join(' ')}`, { command: argv.join(' '), stderr: '' })).on(['gluster'], NO_GLUSTER);
      const err = await rejects(backend.findPoolSources!({ runner }, PoolSource.create({ hosts: [{ name: '127.0.0.51', port: 0 }] })));
      expect(err).to.be.instanceOf(NotFoundError);
      expect(err.message).to.equal("no storage pools were found on host '127.0.0.51': showmount got no answer within 60 s");
      expect(runner.argvs).to.deep.equal([argv, [...GLUSTER_ARGV, '--remote-host=127.0.0.51']]);
    });

    it('a gluster CLI that times out means no gluster volumes: the NFS exports are the answer', async () => {
      runner.on(['showmount'], { stdout: GANESHA_SHOWMOUNT }).on(['gluster'], new DeadlineExceededError('command timed out after 60000 ms: gluster ...'));
      const sources = await backend.findPoolSources!({ runner }, PoolSource.create({ hosts: [{ name: '127.0.0.1', port: 0 }] }));
      expect(sources.map((x) => [x.dir, x.format])).to.deep.equal([
        ['/tmp/fsnet-exp/ex1', 'nfs'],
        ['/tmp/fsnet-exp/ex 2', 'nfs'],
      ]);
    });

    it('needs exactly one valid host and runs nothing otherwise', async () => {
      expect(await rejects(backend.findPoolSources!({ runner }, undefined))).to.be.instanceOf(InvalidArgumentError);
      expect(await rejects(backend.findPoolSources!({ runner }, PoolSource.create({ hosts: [] })))).to.be.instanceOf(InvalidArgumentError);
      expect(await rejects(backend.findPoolSources!({ runner }, PoolSource.create({ hosts: [{ name: '-x', port: 0 }] })))).to.be.instanceOf(InvalidArgumentError);
      expect(runner.argvs).to.deep.equal([]);
    });

    it("refuses a spec whose <format> is no netfs format, as libvirt's parse of it, and runs nothing", async () => {
      const err = await rejects(backend.findPoolSources!({ runner }, PoolSource.create({ hosts: [{ name: '127.0.0.1', port: 0 }], format: 'bogus' })));
      expect(err).to.be.instanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).field).to.equal('source.format');
      expect(err.message).to.equal("source.format: unknown pool format type 'bogus' for netfs pools; allowed: auto, nfs, glusterfs, cifs");
      expect(runner.argvs).to.deep.equal([]);
    });

    it('a format the spec names (any netfs one) does not narrow the discovery: NFS exports and gluster volumes both', async () => {
      runner.on(['showmount'], { stdout: GANESHA_SHOWMOUNT }).on(['gluster'], { stdout: GLUSTER_XML });
      const sources = await backend.findPoolSources!({ runner }, PoolSource.create({ hosts: [{ name: 'gl1.example.com', port: 0 }], format: 'cifs' }));
      expect(sources.map((x) => x.format)).to.deep.equal(['nfs', 'nfs', 'glusterfs', 'glusterfs']);
    });
  });
});
