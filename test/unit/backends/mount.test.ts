// Mount helpers shared by the fs and netfs pools: the mountinfo parser on captured
// output, recognising a pool's source on its target, and the mount / umount command lines.
import { expect } from 'chai';
import {
  DEFAULT_MOUNT_OPTIONS,
  entryMatches,
  mountArgv,
  mountOptionString,
  mountStateAt,
  mountedElsewhere,
  describeDevice,
  normaliseNetworkSource,
  parseMountinfo,
  readLoopBackings,
  runMount,
  runUnmount,
  splitDevT,
  umountArgv,
  unescapeMountField,
} from '../../../libs/backends/mount.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { linkSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandFailedError, FailedPreconditionError, InvalidArgumentError } from '../../../libs/errors/errors.js';

// Captured from /proc/self/mountinfo on the test machine (Debian 12) with an ext4 loop
// device mounted by `mount -o nodev,nosuid,noexec -t ext4 -- /dev/loop0 '/tmp/fsnet cap/pool'`,
// plus the /run/netns bind mount `ip netns add` makes (it has an optional field).
const CAPTURED_MOUNTINFO = `22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334432k,nr_inodes=3083608,mode=755
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
43 27 7:0 / /tmp/fsnet\\040cap/pool rw,nosuid,nodev,noexec,relatime - ext4 /dev/loop0 rw
`;

// An NFS mount line in the kernel's format (kernel NFS mounts are impossible on this
// machine, so this one is written by hand after proc(5) and a real nfs4 client).
const NFS_LINE = '60 27 0:45 / /var/lib/cistern/nfs rw,nosuid,nodev,noexec,relatime shared:40 - nfs4 127.0.0.1:/srv/export rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=127.0.0.1,local_lock=none,addr=127.0.0.1\n';

describe('mount helpers', () => {
  describe('parseMountinfo', () => {
    it('reads every field of captured mountinfo, decoding escaped spaces', () => {
      const entries = parseMountinfo(CAPTURED_MOUNTINFO);
      expect(entries).to.have.length(7);
      const loop = entries[6]!;
      expect(loop).to.deep.equal({
        mountId: 43,
        parentId: 27,
        major: 7,
        minor: 0,
        root: '/',
        mountPoint: '/tmp/fsnet cap/pool',
        mountOptions: 'rw,nosuid,nodev,noexec,relatime',
        optionalFields: [],
        fsType: 'ext4',
        source: '/dev/loop0',
        superOptions: 'rw',
      });
      const netns = entries[5]!;
      expect(netns.optionalFields).to.deep.equal(['shared:1']);
      expect(netns.root).to.equal('/run/netns');
      expect(netns.fsType).to.equal('ext4');
      expect(entries[3]!.major).to.equal(254);
    });

    it('reads an NFS line and skips malformed lines', () => {
      const entries = parseMountinfo(`garbage line\n\n${NFS_LINE}1 2 x:y / /a rw - ext4 /dev/x rw\n`);
      expect(entries).to.have.length(1);
      expect(entries[0]!.source).to.equal('127.0.0.1:/srv/export');
      expect(entries[0]!.fsType).to.equal('nfs4');
      expect(entries[0]!.mountPoint).to.equal('/var/lib/cistern/nfs');
    });

    it('decodes tab, newline and backslash escapes', () => {
      expect(unescapeMountField('/a\\011b\\012c\\134d\\040e')).to.equal('/a\tb\nc\\d e');
    });
  });

  describe('recognising mounts', () => {
    const entries = parseMountinfo(CAPTURED_MOUNTINFO + NFS_LINE);

    it('a device by its device number, whatever the path was called', () => {
      expect(entryMatches(entries[6]!, { kind: 'device', path: '/dev/disk/by-id/other-name', major: 7, minor: 0 })).to.equal(true);
      expect(entryMatches(entries[6]!, { kind: 'device', path: '/dev/loop1', major: 7, minor: 1 })).to.equal(false);
      expect(entryMatches(entries[6]!, { kind: 'device', path: '/dev/loop0' })).to.equal(true);
      expect(entryMatches(entries[6]!, { kind: 'device', path: '/dev/mapper/x', realPath: '/dev/loop0' })).to.equal(true);
    });

    it('a network export by its source text, with trailing or doubled slashes', () => {
      const nfs = entries[7]!;
      expect(entryMatches(nfs, { kind: 'network', spec: '127.0.0.1:/srv/export' })).to.equal(true);
      expect(entryMatches(nfs, { kind: 'network', spec: '127.0.0.1:/srv//export/' })).to.equal(true);
      expect(entryMatches(nfs, { kind: 'network', spec: '127.0.0.1:/srv/other' })).to.equal(false);
      expect(normaliseNetworkSource('h:/')).to.equal('h:/');
      expect(normaliseNetworkSource('//h//share/')).to.equal('//h/share');
    });

    it('the state of a target: mounted by the pool, by something else, or nothing', () => {
      const loop0 = { kind: 'device' as const, path: '/dev/loop0', major: 7, minor: 0 };
      const loop1 = { kind: 'device' as const, path: '/dev/loop1', major: 7, minor: 1 };
      expect(mountStateAt(entries, ['/tmp/fsnet cap/pool'], loop0).state).to.equal('mounted');
      const other = mountStateAt(entries, ['/tmp/fsnet cap/pool'], loop1);
      expect(other.state).to.equal('other');
      expect(other.state === 'other' && other.entry.source).to.equal('/dev/loop0');
      expect(mountStateAt(entries, ['/tmp/nothing'], loop0).state).to.equal('unmounted');
      expect(mountedElsewhere(entries, ['/tmp/nothing'], loop0).map((e) => e.mountPoint)).to.deep.equal(['/tmp/fsnet cap/pool']);
      expect(mountedElsewhere(entries, ['/tmp/fsnet cap/pool'], loop0)).to.deep.equal([]);
    });

    it('judges a target by the mount on top', () => {
      const stacked = parseMountinfo(`${CAPTURED_MOUNTINFO}50 43 7:1 / /tmp/fsnet\\040cap/pool rw - xfs /dev/loop1 rw\n`);
      expect(mountStateAt(stacked, ['/tmp/fsnet cap/pool'], { kind: 'device', path: '/dev/loop1', major: 7, minor: 1 }).state).to.equal('mounted');
      expect(mountStateAt(stacked, ['/tmp/fsnet cap/pool'], { kind: 'device', path: '/dev/loop0', major: 7, minor: 0 }).state).to.equal('other');
    });

    it('an image file by the backing file of the loop device mounted (same path, or same device and inode)', async () => {
      const root = mkdtempSync(join(tmpdir(), 'cistern-mount-unit-'));
      try {
        const image = join(root, 'pool.img');
        writeFileSync(image, Buffer.alloc(4096));
        linkSync(image, join(root, 'hardlink.img'));
        writeFileSync(join(root, 'other.img'), Buffer.alloc(4096));
        const sys = join(root, 'sys');
        const backing = (minor: number, file: string) => {
          mkdirSync(join(sys, 'dev', 'block', `7:${minor}`, 'loop'), { recursive: true });
          writeFileSync(join(sys, 'dev', 'block', `7:${minor}`, 'loop', 'backing_file'), `${file}\n`);
        };
        backing(0, image);
        backing(1, join(root, 'hardlink.img'));
        backing(2, join(root, 'other.img'));
        const table = parseMountinfo(
          [0, 1, 2, 3].map((n) => `${50 + n} 27 7:${n} / /mnt/p${n} rw - ext4 /dev/loop${n} rw`).join('\n') + '\n',
        );
        const source = (await describeDevice(image))!;
        expect(source.kind === 'device' && source.file !== undefined).to.equal(true);
        // without the backing files, /dev/loopN is no image
        expect(table.filter((e) => entryMatches(e, source))).to.deep.equal([]);
        await readLoopBackings(table, sys);
        expect(table.map((e) => e.loopBacking?.path)).to.deep.equal([image, join(root, 'hardlink.img'), join(root, 'other.img'), undefined]);
        expect(table.filter((e) => entryMatches(e, source)).map((e) => e.mountPoint)).to.deep.equal(['/mnt/p0', '/mnt/p1']);
        // a block device is never matched by a loop device's backing file
        expect(entryMatches(table[0]!, { kind: 'device', path: '/dev/sdz', major: 8, minor: 0 })).to.equal(false);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });

    it('splits a dev_t into major and minor as glibc does', () => {
      expect(splitDevT(1792n)).to.deep.equal({ major: 7, minor: 0 });
      expect(splitDevT((259n << 8n) | 3n)).to.deep.equal({ major: 259, minor: 3 });
      // minor above 255 uses the high bits
      expect(splitDevT((7n << 8n) | (1n << 20n) | 5n)).to.deep.equal({ major: 7, minor: 261 });
    });
  });

  describe('command lines', () => {
    it('mount with libvirt default options first, then type options, then the pool options', () => {
      expect(DEFAULT_MOUNT_OPTIONS).to.deep.equal(['nodev', 'nosuid', 'noexec']);
      expect(mountOptionString([], [])).to.equal('nodev,nosuid,noexec');
      expect(mountOptionString(['nfsvers=4'], ['sync', 'lookupcache=pos'])).to.equal('nodev,nosuid,noexec,nfsvers=4,sync,lookupcache=pos');
      expect(mountArgv({ fsType: 'ext4', source: '/dev/loop0', target: '/p', options: 'nodev,nosuid,noexec' })).to.deep.equal([
        'mount', '-o', 'nodev,nosuid,noexec', '-t', 'ext4', '--', '/dev/loop0', '/p',
      ]);
      expect(mountArgv({ source: '/dev/loop0', target: '/p', options: 'nodev,nosuid,noexec' })).to.deep.equal([
        'mount', '-o', 'nodev,nosuid,noexec', '--', '/dev/loop0', '/p',
      ]);
      expect(umountArgv('/p')).to.deep.equal(['umount', '--', '/p']);
    });

    it('refuses a pool mount option with whitespace or control characters', () => {
      expect(() => mountOptionString([], ['a b'])).to.throw(InvalidArgumentError, /whitespace/);
      expect(() => mountOptionString([], ['x\ny'])).to.throw(InvalidArgumentError);
      expect(() => mountOptionString([], [''])).to.throw(InvalidArgumentError, /empty/);
      // one option each: a comma carried a second one (bind) past the check of the first
      expect(() => mountOptionString([], ['noatime,bind'])).to.throw(InvalidArgumentError, /contains ','; give one option per <fs:option>/);
    });

    it('refuses pool mount options that undo nodev, nosuid, noexec: a device node in the pool\'s filesystem would be a volume', () => {
      for (const opt of ['dev', 'suid', 'exec', 'DEV']) {
        expect(() => mountOptionString([], [opt]), opt).to.throw(InvalidArgumentError, new RegExp(`mount option '${opt}' undoes nodev, nosuid, noexec`));
      }
      expect(mountOptionString([], ['nodev', 'noexec', 'noatime'])).to.equal('nodev,nosuid,noexec,nodev,noexec,noatime');
    });

    it('a failed mount is FAILED_PRECONDITION with mount\'s message; a busy umount too', async () => {
      const runner = new RecordingRunner()
        .on(['mount'], { exitCode: 32, stderr: 'mount: /p: wrong fs type, bad option, bad superblock on /dev/loop0.' })
        .on(['umount'], { exitCode: 32, stderr: 'umount: /p: target is busy.' });
      const spec = { fsType: 'ext4', source: '/dev/loop0', target: '/p', options: 'nodev,nosuid,noexec' };
      let err: unknown;
      await runMount(runner, spec).catch((e) => (err = e));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect((err as Error).message).to.match(/cannot mount '\/dev\/loop0' on '\/p': mount: \/p: wrong fs type/);
      err = undefined;
      await runUnmount(runner, '/p').catch((e) => (err = e));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect((err as Error).message).to.match(/busy/);
      expect(runner.argvs).to.deep.equal([mountArgv(spec), ['umount', '--', '/p']]);
    });

    it('other umount failures keep the command and its stderr', async () => {
      const runner = new RecordingRunner().on(['umount'], { exitCode: 1, stderr: 'umount: /p: not mounted.' });
      let err: unknown;
      await runUnmount(runner, '/p').catch((e) => (err = e));
      expect(err).to.be.instanceOf(CommandFailedError);
      expect((err as CommandFailedError).stderr).to.contain('not mounted');
    });
  });
});
