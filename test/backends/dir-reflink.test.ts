// The dir backend's reflink clone on a filesystem that shares extents (XFS on a loop device):
// the clone shares the source's extents (no data copied) and is flushed to disk before the
// clone is answered, as libvirt's createRawFile fsyncs the new file after its reflink: an
// answered clone must survive a power cut as an answered create does.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirBackend } from '../../libs/backends/dir.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { PoolContext } from '../../libs/backends/backend.js';
import { PoolType } from '../../libs/proto/cistern/v1/storage.js';
import { fileVolume } from '../support/volume-definitions.js';
import { attachLoop, hasTool, loopDevicesAvailable, registerCleanup, writeSparseFile, type LoopDevice } from '../support/index.js';

const MiB = 1024 * 1024;

const vol = (name: string) => fileVolume(name, 'raw');

describe('dir backend reflink clone (XFS on a loop device)', function () {
  this.timeout(120_000);
  let loop: LoopDevice | undefined;
  let mountPoint = '';
  let unmount: (() => Promise<void>) | undefined;
  let ctx: PoolContext;
  const backend = new DirBackend();

  before(async function () {
    if (!loopDevicesAvailable() || !hasTool('mkfs.xfs')) this.skip(); // skip reason: needs root, loop devices and mkfs.xfs (xfsprogs)
    loop = attachLoop(320 * MiB, 'reflink'); // XFS's smallest filesystem is 300 MiB
    execFileSync('mkfs.xfs', ['-q', '-m', 'reflink=1', '--', loop.device]);
    mountPoint = mkdtempSync(join(tmpdir(), 'cistern-reflink-mnt-'));
    execFileSync('mount', ['-t', 'xfs', '--', loop.device, mountPoint]);
    const mounted = mountPoint;
    unmount = registerCleanup(`mount ${mounted}`, async () => {
      execFileSync('umount', ['--', mounted]);
      rmdirSync(mounted);
    });
    const target = join(mountPoint, 'pool');
    mkdirSync(target);
    ctx = { runner: new ExecRunner(), pool: { type: PoolType.POOL_TYPE_DIR, name: 'p', uuid: '', source: undefined, target: { path: target, permissions: undefined }, features: undefined, mountOptions: [] } };
  });

  after(async () => {
    await unmount?.();
    await loop?.detach();
  });

  it('shares the source\'s extents and flushes the clone before it is answered (libvirt fsyncs after its reflink)', async () => {
    const target = ctx.pool.target!.path;
    writeSparseFile(join(target, 'base.img'), 8 * MiB, [[0, Buffer.alloc(4 * MiB, 0x6b)]]);
    // which files were flushed through a handle during the clone
    const handle = await open(join(target, 'base.img'), 'r');
    const proto = Object.getPrototypeOf(handle) as { sync(): Promise<void>; datasync(): Promise<void> };
    await handle.close();
    const flushed: string[] = [];
    const { sync, datasync } = proto;
    const record = function (this: { fd: number }): void {
      try {
        flushed.push(readlinkSync(`/proc/self/fd/${this.fd}`));
      } catch {
        /* closed meanwhile */
      }
    };
    proto.sync = function (this: { fd: number }) {
      record.call(this);
      return sync.call(this);
    };
    proto.datasync = function (this: { fd: number }) {
      record.call(this);
      return datasync.call(this);
    };
    try {
      const def = await backend.createVol(ctx, vol('copy.img'));
      await backend.buildVolFrom(ctx, def, { pool: ctx.pool, volume: vol('base.img') }, { preallocMetadata: false, reflink: true });
    } finally {
      proto.sync = sync;
      proto.datasync = datasync;
    }
    expect(readFileSync(join(target, 'copy.img')).equals(readFileSync(join(target, 'base.img')))).to.equal(true);
    // shared, not copied: xfs_io's fiemap flags the clone's extents as shared
    const map = execFileSync('xfs_io', ['-r', '-c', 'fiemap -v', '--', join(target, 'copy.img')], { encoding: 'utf8' });
    expect(map).to.match(/0x2[0-9a-f]{3}\b|shared/i);
    expect(flushed, 'the clone was flushed').to.include(join(target, 'copy.img'));
  });
});
