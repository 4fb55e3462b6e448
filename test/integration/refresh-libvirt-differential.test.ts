// A dir pool's refresh against libvirt 9.0's, on one directory: images of every format
// qemu-img writes (backing chains, qcow2 features, preallocation), hand-made headers and the
// files a refresh must skip or take as they are (links inside and outside the pool, a fifo,
// a socket, a directory, odd names, a file nobody may read, relative backing names with '.',
// with '..' after a link out of the pool, with a ':' before any '/'). A private libvirtd (storage
// driver only, its own sockets, a transient pool) refreshes it; so does the dir backend.
// Both must list the same volumes and print the same vol-dumpxml for each, timestamps aside.
// Left out, with the reason: LUKS images (the private libvirtd has no secret driver to print
// them), a parallels image (both type it ploop; libvirt 9.0 prints the file size as its
// capacity, since its per-volume refresh reads the header of 'file' volumes only, where Cistern
// keeps the header's size, test/unit/backends/dir.test.ts), a name
// with a control character (issue 2: skipped, where libvirt 9.0 lists it), and a qcow2 header
// cut short or a missing backing file (libvirt 9.0 then fails to start the whole pool).
// The private libvirtd shares /run/libvirt/storage/driver.pid with any other privileged
// libvirtd storage driver on the machine: with one running, this test fails at its start.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { DirBackend } from '../../libs/backends/dir.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import { formatVolumeXml } from '../../libs/xml/index.js';
import { PoolType, type PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { startLibvirtd, type LibvirtDaemon } from '../../bench/libvirt.js';
import { hasTool } from '../support/tools.js';

const POOL = 'cistern-refresh-diff';

/** qemu-img create arguments for each image (name last but one, size last where needed). */
const IMAGES: [string, ...string[]][] = [
  ['raw-sparse.img', '-f', 'raw', '64M'],
  ['raw-full.img', '-f', 'raw', '-o', 'preallocation=full', '4M'],
  ['default.qcow2', '-f', 'qcow2', '1G'],
  ['v2.qcow2', '-f', 'qcow2', '-o', 'compat=0.10', '1G'],
  ['lazy.qcow2', '-f', 'qcow2', '-o', 'compat=1.1,lazy_refcounts=on', '1G'],
  ['cluster4k.qcow2', '-f', 'qcow2', '-o', 'cluster_size=4096', '100M'],
  ['extl2.qcow2', '-f', 'qcow2', '-o', 'extended_l2=on', '1G'],
  ['meta.qcow2', '-f', 'qcow2', '-o', 'preallocation=metadata', '32M'],
  ['on-raw.qcow2', '-f', 'qcow2', '-b', 'raw-sparse.img', '-F', 'raw'],
  ['on-qcow2.qcow2', '-f', 'qcow2', '-b', 'default.qcow2', '-F', 'qcow2'],
  ['chain.qcow2', '-f', 'qcow2', '-b', 'on-qcow2.qcow2', '-F', 'qcow2'],
  ['bigger-than-backing.qcow2', '-f', 'qcow2', '-b', 'raw-sparse.img', '-F', 'raw', '2G'],
  ['v1.qcow', '-f', 'qcow', '500M'],
  ['plain.qed', '-f', 'qed', '300M'],
  ['on-raw.qed', '-f', 'qed', '-b', 'raw-sparse.img', '-F', 'raw'],
  ['plain.vmdk', '-f', 'vmdk', '200M'],
  ['stream.vmdk', '-f', 'vmdk', '-o', 'subformat=streamOptimized', '200M'],
  ['dynamic.vhd', '-f', 'vpc', '100M'],
  ['fixed.vhd', '-f', 'vpc', '-o', 'subformat=fixed', '10M'],
  ['plain.vdi', '-f', 'vdi', '120M'],
  ['plain.vhdx', '-f', 'vhdx', '120M'],
];

function makeDirectory(dir: string): Server {
  for (const [name, ...args] of IMAGES) {
    const size = /^\d+[MG]$/.test(args[args.length - 1]!) ? [args.pop()!] : [];
    execFileSync('qemu-img', ['create', '-q', ...args, join(dir, name), ...size], { cwd: dir, stdio: 'ignore' });
  }
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', join(dir, 'raw-sparse.img'), '-F', 'raw', join(dir, 'absolute-backing.qcow2')], { stdio: 'ignore' });
  // relative backing names as stored: '.', '..' after a link to a directory outside the pool
  // (whose parent holds a base of another mode), a ':' before any '/' (no file to libvirt)
  mkdirSync(join(dir, '..', 'outside', 'deep'), { recursive: true });
  writeFileSync(join(dir, '..', 'outside', 'raw-sparse.img'), Buffer.alloc(4096));
  chmodSync(join(dir, '..', 'outside', 'raw-sparse.img'), 0o600);
  symlinkSync(join(dir, '..', 'outside', 'deep'), join(dir, 'link-out-dir'));
  for (const [name, backing] of [['dot-backing.qcow2', './raw-sparse.img'], ['link-dotdot-backing.qcow2', 'link-out-dir/../raw-sparse.img'], ['colon-backing.qcow2', 'x y:raw-sparse.img']]) {
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', backing!, '-F', 'raw', join(dir, name!), '1M'], { stdio: 'ignore' });
  }
  writeFileSync(join(dir, 'data.img'), Buffer.alloc(3 << 20, 7));
  const iso = Buffer.alloc(1 << 20);
  iso.write('CD001', 32769, 'latin1');
  writeFileSync(join(dir, 'iso.iso'), iso);
  const qcow2 = readFileSync(join(dir, 'default.qcow2'));
  writeFileSync(join(dir, 'truncated20.img'), qcow2.subarray(0, 20));
  const badVersion = Buffer.from(qcow2);
  badVersion.writeUInt32BE(7, 4);
  writeFileSync(join(dir, 'qcow2-version-7.img'), badVersion);
  writeFileSync(join(dir, 'empty.img'), '');
  writeFileSync(join(dir, 'one-byte.img'), 'x');
  writeFileSync(join(dir, 'with space.img'), '');
  writeFileSync(join(dir, 'ünï.img'), '');
  writeFileSync(join(dir, '.hidden.img'), '');
  mkdirSync(join(dir, 'subdir'));
  writeFileSync(join(dir, 'subdir', 'inner.img'), '');
  mkdirSync(join(dir, 'emptydir'));
  symlinkSync('raw-sparse.img', join(dir, 'link-inside.img'));
  symlinkSync('/etc/hostname', join(dir, 'link-outside.img'));
  symlinkSync('nowhere.img', join(dir, 'link-dangling.img'));
  symlinkSync('subdir', join(dir, 'link-to-dir'));
  execFileSync('mkfifo', [join(dir, 'fifo.img')]);
  writeFileSync(join(dir, 'unreadable.img'), Buffer.alloc(1 << 20, 1));
  chmodSync(join(dir, 'unreadable.img'), 0);
  linkSync(join(dir, 'data.img'), join(dir, 'hardlink.img'));
  chmodSync(join(dir, 'raw-sparse.img'), 0o640);
  writeFileSync(join(dir, 'sparse-5g.img'), '');
  truncateSync(join(dir, 'sparse-5g.img'), 5 * 2 ** 30);
  const socket = createServer();
  socket.listen(join(dir, 'socket.img'));
  return socket;
}

/** Timestamps move as both sides read the files (atime), and libvirt prints btime 0. */
function comparable(xml: string): string {
  return xml.replace(/<(atime|mtime|ctime|btime)>[^<]*</g, '<$1>T<').trim();
}

describe('dir pool refresh: differential against libvirt 9.0 on the same directory', function () {
  this.timeout(180_000);
  let root: string;
  let dir: string;
  let socket: Server | undefined;
  let daemon: LibvirtDaemon | undefined;
  const virsh = (...args: string[]) => spawnSync('virsh', ['-q', '-c', daemon!.uri, ...args], { encoding: 'utf8' });

  before(async function () {
    // skip reason: libvirtd (Debian libvirt-daemon) or qemu-img is not installed
    if (!hasTool('libvirtd') || !hasTool('virsh') || !hasTool('qemu-img')) this.skip();
    root = mkdtempSync(join(tmpdir(), 'cistern-refresh-diff-'));
    dir = join(root, 'pool');
    mkdirSync(dir);
    socket = makeDirectory(dir);
    daemon = await startLibvirtd();
    const started = virsh('pool-create-as', POOL, 'dir', '--target', dir);
    expect(started.status, started.stderr).to.equal(0);
  });
  after(async () => {
    if (daemon) {
      virsh('pool-destroy', POOL);
      await daemon.stop();
    }
    socket?.close();
    if (root && existsSync(root)) rmSync(root, { recursive: true, force: true });
  });

  it('lists the same volumes and prints the same vol-dumpxml for each', async () => {
    const pool: PoolDefinition = { type: PoolType.POOL_TYPE_DIR, name: POOL, uuid: '', source: undefined, target: { path: dir, permissions: undefined }, features: undefined, mountOptions: [] };
    const ours = (await new DirBackend().refreshPool({ runner: new ExecRunner(), pool })).volumes;
    const listing = virsh('vol-list', POOL);
    expect(listing.status, listing.stderr).to.equal(0);
    const theirNames = listing.stdout
      .split('\n')
      .map((line) => line.trim().split(/\s{2,}/)[0]!)
      .filter(Boolean)
      .sort();
    expect(ours.map((v) => v.name).sort()).to.deep.equal(theirNames);
    expect(theirNames).to.include.members(['extl2.qcow2', 'link-outside.img', 'subdir', 'unreadable.img']);
    expect(theirNames).to.not.include.members(['fifo.img', 'socket.img', 'link-dangling.img']);

    const differences: string[] = [];
    for (const volume of ours) {
      const theirs = virsh('vol-dumpxml', '--pool', POOL, volume.name);
      expect(theirs.status, `${volume.name}: ${theirs.stderr}`).to.equal(0);
      const expected = comparable(theirs.stdout);
      const actual = comparable(formatVolumeXml(volume, pool));
      if (expected !== actual) differences.push(`${volume.name}\n--- libvirt\n${expected}\n--- Cistern\n${actual}`);
    }
    expect(differences, differences.join('\n')).to.deep.equal([]);
  });
});
