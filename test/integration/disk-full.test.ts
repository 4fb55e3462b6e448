// A dir pool on a small filesystem that runs out (a 64 MiB ext4 on a loop device), with the real
// agent: each operation that needs more than is free fails RESOURCE_EXHAUSTED naming the pool,
// its host and the space it has; what libvirt 9.0 leaves in the same case is what is left (checked
// with a private libvirtd: nothing of a failed create, clone or allocating resize; an upload's
// data up to the point it ran out), with no create left open in the journal, and the pool's
// sizes those of the filesystem after. And an agent whose own root (its journal) is on a
// filesystem that fills up: a create it answered as done is not taken for an interrupted one.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { attachLoop, loopDevicesAvailable, registerCleanup, upload, useStack, useTempDir, type LoopDevice } from '../support/index.js';
import { createVolume, dirPool, expectCode, startDirPool } from './reliability-helpers.js';
import { parseOpenRecords } from '../../services/agent/journal-file.js';

const MiB = 1024 * 1024;
const POOL = 'hosts/a/pools/full';
/** What every failure says first: which pool of which host, and the space it has now. */
const NAMES_POOL = /^storage pool 'full' on host 'a' has \d+ of \d+ bytes available: /;

describe('a dir pool on a full filesystem (64 MiB ext4 on a loop device)', function () {
  this.timeout(180_000);
  let loop: LoopDevice | undefined;
  let unmount: (() => Promise<void>) | undefined;
  let path = '';
  // registered before the stack's and the temp dir's hooks, so it runs before them: the
  // pool is stopped while its agent runs, and the mount goes before its directory
  after(async function () {
    if (!loop) return;
    await ctx.stack.api.stopPool({ name: POOL, requestId: '' }).catch(() => undefined);
    await unmount?.();
    await loop.detach();
  });
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-disk-full-it-');

  before(async function () {
    if (!loopDevicesAvailable()) this.skip();
    loop = attachLoop(64 * MiB, 'full');
    const mnt = join(scratch.path, 'mnt');
    mkdirSync(mnt, { recursive: true });
    execFileSync('mkfs.ext4', ['-q', '-F', '--', loop.device], { stdio: 'pipe' });
    execFileSync('mount', ['-t', 'ext4', '--', loop.device, mnt], { stdio: 'pipe' });
    unmount = registerCleanup(`mount ${mnt}`, async () => {
      execFileSync('umount', ['--', mnt], { stdio: 'pipe' });
      rmSync(mnt, { recursive: true, force: true });
    });
    path = join(mnt, 'pool');
    await ctx.stack.api.createPool({ host: 'a', definition: dirPool('full', path), xml: '', build: true, buildFlags: undefined, requestId: '' });
  });

  /** The pool's files, the creates its agent has open, and its sizes against the filesystem's. */
  async function expectLeft(files: string[]): Promise<void> {
    expect(readdirSync(path).sort()).to.deep.equal(files);
    const journal = join(ctx.stack.roots.a!, 'journal', 'creates.log');
    expect(existsSync(journal) ? parseOpenRecords(readFileSync(journal, 'utf8')) : []).to.deep.equal([]);
    const volumes = (await ctx.stack.api.listVolumes({ parent: POOL, pageSize: 0, pageToken: '' })).volumes.map((v) => v.definition?.name);
    expect(volumes.sort()).to.deep.equal(files);
    const pool = await ctx.stack.api.getPool({ name: POOL });
    const fs = statfsSync(path, { bigint: true });
    // libvirt's dir pool: capacity f_blocks, available f_bfree (nothing else writes here)
    expect([pool.capacity, pool.available]).to.deep.equal([fs.blocks * fs.bsize, fs.bfree * fs.bsize]);
  }

  const createXml = (xml: string, preallocMetadata = false) =>
    ctx.stack.api.createVolume({ parent: POOL, definition: undefined, xml, preallocMetadata, requestId: '', validate: false });

  it('a raw create allocated beyond the free space: RESOURCE_EXHAUSTED naming the pool, nothing left', async () => {
    const err = await expectCode(createVolume(ctx.stack, POOL, 'big.raw', String(100 * MiB), { allocation: String(100 * MiB) }), status.RESOURCE_EXHAUSTED, /no space/i);
    expect(err).to.match(NAMES_POOL);
    await expectLeft([]);
  });

  it('a qcow2 create with full preallocation (prealloc_metadata, allocation = capacity: qemu-img falloc): the same', async () => {
    const xml = `<volume><name>q.qcow2</name><capacity unit='M'>100</capacity><allocation unit='M'>100</allocation><target><format type='qcow2'/></target></volume>`;
    const err = await expectCode(createXml(xml, true), status.RESOURCE_EXHAUSTED, /No space left on device/);
    expect(err).to.match(NAMES_POOL);
    // not qemu-img's failure to delete /dev/fd/3: the agent removes the reserved file itself
    expect(err).to.not.match(/Error when deleting/);
    await expectLeft([]);
  });

  it('an upload that runs out: RESOURCE_EXHAUSTED naming the pool; the volume keeps what was written, as with libvirt, and the sizes show it', async () => {
    await createVolume(ctx.stack, POOL, 'up.img', String(100 * MiB), { allocation: '0' });
    const err = await expectCode(upload(ctx.stack, `${POOL}/volumes/up.img`, randomBytes(90 * MiB)), status.RESOURCE_EXHAUSTED, /no space left/i);
    expect(err).to.match(NAMES_POOL);
    const vol = await ctx.stack.api.getVolume({ name: `${POOL}/volumes/up.img`, refresh: false });
    expect(vol.definition?.allocation).to.equal(BigInt(statSync(join(path, 'up.img')).blocks * 512));
    await expectLeft(['up.img']);
    await ctx.stack.api.deleteVolume({ name: `${POOL}/volumes/up.img`, requestId: '' });
    await expectLeft([]);
  });

  it('a clone that does not fit, and an allocating resize beyond the free space: RESOURCE_EXHAUSTED naming the pool, the source and the volume unchanged', async () => {
    await createVolume(ctx.stack, POOL, 'src.img', String(40 * MiB), { allocation: String(40 * MiB) });
    const clone = await expectCode(
      ctx.stack.api.cloneVolume({ parent: POOL, source: `${POOL}/volumes/src.img`, definition: undefined, xml: '<volume><name>copy.img</name><capacity>0</capacity></volume>', preallocMetadata: false, reflink: false, requestId: '', validate: false }),
      status.RESOURCE_EXHAUSTED,
      /no space/i,
    );
    expect(clone).to.match(NAMES_POOL);
    await expectLeft(['src.img']);
    const resize = await expectCode(
      ctx.stack.api.resizeVolume({ name: `${POOL}/volumes/src.img`, capacity: BigInt(100 * MiB), allocate: true, delta: false, shrink: false, requestId: '' }),
      status.RESOURCE_EXHAUSTED,
      /not enough space left in storage pool: the resize would allocate \d+ more bytes$/,
    );
    expect(resize).to.match(NAMES_POOL);
    // the space available said once, where the pool is named
    expect(resize.match(/\d+ of \d+ bytes available|\d+ available/g)).to.have.length(1);
    const vol = await ctx.stack.api.getVolume({ name: `${POOL}/volumes/src.img`, refresh: false });
    expect([vol.definition?.capacity, statSync(join(path, 'src.img')).size]).to.deep.equal([BigInt(40 * MiB), 40 * MiB]);
    await expectLeft(['src.img']);
    // once there is room the pool works
    await ctx.stack.api.deleteVolume({ name: `${POOL}/volumes/src.img`, requestId: '' });
    await createVolume(ctx.stack, POOL, 'fits.img', String(8 * MiB), { allocation: String(8 * MiB) });
    await expectLeft(['fits.img']);
  });
});

/** Fills the filesystem holding `path` to its last block (as root: the reserved blocks too) with the file `path`. */
function fillFilesystem(path: string): void {
  const fd = openSync(path, 'w');
  try {
    for (const size of [1024 * 1024, 64 * 1024, 1024]) {
      const block = Buffer.alloc(size);
      try {
        for (;;) writeSync(fd, block);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
}

describe("an agent whose root filesystem fills up (its create journal on a 16 MiB ext4)", function () {
  this.timeout(180_000);
  let loop: LoopDevice | undefined;
  let unmount: (() => Promise<void>) | undefined;
  after(async function () {
    if (!loop) return;
    if (ctx.stack.agents.has('c')) await ctx.stack.stopAgent('c');
    await unmount?.();
    await loop.detach();
  });
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-root-full-it-');

  it('a create whose end record finds no space is still done: no open journal entry, and the volume survives the next start', async function () {
    if (!loopDevicesAvailable()) this.skip();
    loop = attachLoop(16 * MiB, 'agent-root');
    const mnt = join(scratch.path, 'mnt');
    mkdirSync(mnt, { recursive: true });
    execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', '--', loop.device], { stdio: 'pipe' });
    execFileSync('mount', ['-t', 'ext4', '--', loop.device, mnt], { stdio: 'pipe' });
    unmount = registerCleanup(`mount ${mnt}`, async () => {
      execFileSync('umount', ['--', mnt], { stdio: 'pipe' });
      rmSync(mnt, { recursive: true, force: true });
    });
    const root = join(mnt, 'root');
    await ctx.stack.addAgent('c', root);
    const pool = 'hosts/c/pools/p';
    const poolPath = join(scratch.path, 'p'); // the pool itself has room
    await startDirPool(ctx.stack, 'c', 'p', poolPath);
    const log = join(root, 'journal', 'creates.log');
    // a create like the real one shows how long its records are
    await createVolume(ctx.stack, pool, 'trial1.img', '4096');
    const lines = readFileSync(log, 'utf8').split('\n');
    const beginLength = lines.find((l) => l.includes('trial1.img'))!.length + 1;
    const endLength = lines.find((l) => l.startsWith('{"end"'))!.length + 1;
    await ctx.stack.api.deleteVolume({ name: `${pool}/volumes/trial1.img`, requestId: '' });
    // the journal is padded (with a record a reader ignores) so that the next begin record still
    // fits in its last block and the end record after it does not: it needs a block there is none of
    const block = statfsSync(mnt).bsize;
    const used = statSync(log).size;
    let pad = block - ((used + beginLength + Math.floor(endLength / 2)) % block);
    if (pad < 16) pad += block;
    appendFileSync(log, `{"end":"${'-'.repeat(pad - 11)}"}\n`);
    fillFilesystem(join(mnt, 'filler'));

    await createVolume(ctx.stack, pool, 'kept.img', '4096');
    const text = readFileSync(log, 'utf8');
    expect(parseOpenRecords(text), 'creates left open in the journal').to.deep.equal([]);
    // no torn line either: a record after it would be glued to it and lost
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) expect(() => JSON.parse(line), line).to.not.throw();

    // space is freed, the agent restarts: the volume it created is still there
    rmSync(join(mnt, 'filler'));
    const restarted = await ctx.stack.restartAgent('c', { kill: true });
    await ctx.stack.waitForHosts(['c']);
    expect(existsSync(join(poolPath, 'kept.img'))).to.equal(true);
    expect(restarted.process.logs()).to.not.match(/removed what an interrupted volume create left/);
    const names = (await ctx.stack.api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' })).volumes.map((v) => v.definition?.name);
    expect(names).to.deep.equal(['kept.img']);
  });

  it('restarted while its root filesystem is full, the agent starts and serves: its pools are back, a volume can be deleted to make room', async function () {
    if (!loop) this.skip();
    const mnt = join(scratch.path, 'mnt');
    const pool = 'hosts/c/pools/p';
    fillFilesystem(join(mnt, 'filler'));
    await ctx.stack.restartAgent('c', { kill: true });
    await ctx.stack.waitForHosts(['c']);
    expect((await ctx.stack.api.getPool({ name: pool })).state).to.equal(3 /* RUNNING */);
    // a create cannot be journalled: it says the agent's root is full, not the pool, and does nothing
    const refused = await expectCode(createVolume(ctx.stack, pool, 'more.img', '4096'), status.RESOURCE_EXHAUSTED, /^cannot record the create in the agent's journal \(.*\): the filesystem of the agent's root \(--root\) has no space left; nothing was done$/);
    expect(refused).to.not.match(NAMES_POOL);
    expect(existsSync(join(scratch.path, 'p', 'more.img'))).to.equal(false);
    await ctx.stack.api.deleteVolume({ name: `${pool}/volumes/kept.img`, requestId: '' });
    expect((await ctx.stack.api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' })).volumes).to.deep.equal([]);
    rmSync(join(mnt, 'filler'));
    await ctx.stack.api.stopPool({ name: pool, requestId: '' });
  });
});
