// An fs pool on a loop device through the whole stack: gRPC -> coordinator -> NATS ->
// agent 'a' -> fs backend -> mkfs / mount. Define from libvirt XML, build (no_overwrite),
// start, create a volume, list, stop, delete, undefine; a second no_overwrite build and
// a pool on a device that does not exist are FAILED_PRECONDITION through gRPC.
import { expect } from 'chai';
import { status, type ServiceError } from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { useStack, makeTempDir, registerCleanup, attachLoop, loopDevicesAvailable, type LoopDevice } from '../support/index.js';
import { PoolState, PoolType } from '../../libs/proto/cistern/v1/storage.js';

const MiB = 1024 * 1024;

async function expectCode(p: Promise<unknown>, code: status, pattern?: RegExp): Promise<string> {
  try {
    await p;
  } catch (err) {
    const e = err as ServiceError;
    const message = e.details ?? e.message;
    expect(status[e.code], message).to.equal(status[code]);
    if (pattern) expect(message).to.match(pattern);
    return message;
  }
  throw new Error(`expected ${status[code]}, the call succeeded`);
}

function mountedSource(target: string): string | undefined {
  try {
    return execFileSync('findmnt', ['-n', '-o', 'SOURCE', '--mountpoint', target], { encoding: 'utf8' }).trim().split('\n').pop();
  } catch {
    return undefined;
  }
}

function firstMiB(device: string): Buffer {
  const buf = Buffer.alloc(MiB);
  const fd = openSync(device, 'r');
  try {
    readSync(fd, buf, 0, MiB, 0);
  } finally {
    closeSync(fd);
  }
  return buf;
}

function hasMkfsExt4(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v mkfs.ext4 && command -v findmnt'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skipReason = !loopDevicesAvailable() ? 'needs root and loop devices' : !hasMkfsExt4() ? 'needs e2fsprogs and findmnt' : undefined;

describe('fs pool through coordinator, NATS and agent (loop device)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a', 'b'] });
  let loop: LoopDevice | undefined;
  let target: string;
  let teardown: (() => Promise<void>) | undefined;

  before(function () {
    if (skipReason) this.skip();
    loop = attachLoop(64 * MiB, 'fs-it');
    const dir = makeTempDir('cistern-fs-it-');
    target = join(dir.path, 'pool');
    const unmount = registerCleanup(`unmount ${target}`, () => {
      for (let i = 0; i < 5 && mountedSource(target); i++) execFileSync('umount', ['--', target], { stdio: 'pipe' });
    });
    teardown = async () => {
      await unmount();
      await dir.remove();
      await loop?.detach();
    };
  });

  after(async () => {
    await teardown?.();
  });

  it('defines from XML, builds, starts (mounts), creates and lists a volume, stops, deletes', async () => {
    const api = ctx.stack.api;
    const xml = `<pool type='fs'>
  <name>fsit</name>
  <source>
    <device path='${loop!.device}'/>
    <format type='ext4'/>
  </source>
  <target>
    <path>${target}</path>
  </target>
</pool>`;
    const defined = await api.definePool({ host: 'a', definition: undefined, xml, requestId: '', validate: false });
    expect(defined.name).to.equal('hosts/a/pools/fsit');
    expect(defined.definition?.type).to.equal(PoolType.POOL_TYPE_FS);
    expect(defined.state).to.equal(PoolState.POOL_STATE_INACTIVE);

    await api.buildPool({ name: 'hosts/a/pools/fsit', flags: { overwrite: false, noOverwrite: true }, requestId: '' });
    expect(execFileSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', '--', loop!.device], { encoding: 'utf8' }).trim()).to.equal('ext4');
    expect(statSync(target).isDirectory()).to.equal(true);

    // a second no_overwrite build refuses the formatted device and leaves it as it was
    const before = firstMiB(loop!.device);
    await expectCode(
      api.buildPool({ name: 'hosts/a/pools/fsit', flags: { overwrite: false, noOverwrite: true }, requestId: '' }),
      status.FAILED_PRECONDITION,
      new RegExp(`${loop!.device}.*ext4`),
    );
    expect(firstMiB(loop!.device).equals(before)).to.equal(true);

    const started = await api.startPool({ name: 'hosts/a/pools/fsit', build: false, buildFlags: undefined, requestId: '' });
    expect(started.state).to.equal(PoolState.POOL_STATE_RUNNING);
    expect(mountedSource(target)).to.equal(loop!.device);
    // the sizes are those of the 64 MiB filesystem
    expect(started.capacity > 0n && started.capacity <= BigInt(64 * MiB)).to.equal(true);

    const vol = await api.createVolume({
      parent: 'hosts/a/pools/fsit',
      definition: undefined,
      xml: "<volume><name>disk1.img</name><capacity unit='M'>4</capacity><target><format type='raw'/></target></volume>",
      preallocMetadata: false,
      requestId: '', validate: false,
    });
    expect(vol.name).to.equal('hosts/a/pools/fsit/volumes/disk1.img');
    expect(vol.definition?.capacity).to.equal(4n * BigInt(MiB));
    expect(statSync(join(target, 'disk1.img')).size).to.equal(4 * MiB);

    const listed = await api.listVolumes({ parent: 'hosts/a/pools/fsit', pageSize: 0, pageToken: '' });
    expect(listed.volumes.map((v) => v.name)).to.include('hosts/a/pools/fsit/volumes/disk1.img');
    const poolXml = await api.getPoolXml({ name: 'hosts/a/pools/fsit', inactive: false });
    expect(poolXml.xml).to.match(/<pool type='fs'>/);
    expect(poolXml.xml).to.contain(`<device path='${loop!.device}'/>`);

    const stopped = await api.stopPool({ name: 'hosts/a/pools/fsit', requestId: '' });
    expect(stopped.state).to.equal(PoolState.POOL_STATE_INACTIVE);
    expect(mountedSource(target)).to.equal(undefined);
    expect(readdirSync(target)).to.deep.equal([]);

    await api.deletePool({ name: 'hosts/a/pools/fsit', requestId: '' });
    expect(existsSync(target)).to.equal(false);
    await api.undefinePool({ name: 'hosts/a/pools/fsit', requestId: '' });
  });

  it('a pool on a device that does not exist: FAILED_PRECONDITION naming it, the pool stays inactive', async () => {
    const api = ctx.stack.api;
    const dir = makeTempDir('cistern-fs-it-missing-');
    try {
      const xml = `<pool type='fs'><name>fsmissing</name><source><device path='/dev/cistern-no-such-disk'/><format type='ext4'/></source><target><path>${dir.path}</path></target></pool>`;
      await api.definePool({ host: 'a', definition: undefined, xml, requestId: '', validate: false });
      await expectCode(
        api.startPool({ name: 'hosts/a/pools/fsmissing', build: false, buildFlags: undefined, requestId: '' }),
        status.FAILED_PRECONDITION,
        /source device '\/dev\/cistern-no-such-disk' of pool 'fsmissing' does not exist/,
      );
      expect((await api.getPool({ name: 'hosts/a/pools/fsmissing' })).state).to.equal(PoolState.POOL_STATE_INACTIVE);
      await api.undefinePool({ name: 'hosts/a/pools/fsmissing', requestId: '' });
    } finally {
      await dir.remove();
    }
  });
});
