// An fs pool on an image file whose image is moved aside while the pool runs, and the agent
// restarted meanwhile: the restarted agent must still know the pool's mount (its running-pools
// record keeps it) and take the pool back, and the stop must unmount it. Judged by the image's
// name only, the pool came back inactive with its filesystem still mounted, and its start was
// refused over that mount.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { useStack, makeTempDir, registerCleanup, loopDevicesAvailable } from '../support/index.js';
import { PoolDefinition, PoolState, PoolType } from '../../libs/proto/cistern/v1/storage.js';

const MiB = 1024 * 1024;

function mountedSources(target: string): string[] {
  try {
    return execFileSync('findmnt', ['-n', '-o', 'SOURCE', '--mountpoint', target], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

function loopsOf(file: string): string[] {
  return execFileSync('losetup', ['-j', file], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(0, l.indexOf(':')));
}

function hasTools(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v mkfs.ext4 && command -v findmnt'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skipReason = !loopDevicesAvailable() ? 'needs root and loop devices' : !hasTools() ? 'needs e2fsprogs and findmnt' : undefined;

describe('fs pool whose image is moved aside, across an agent restart', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  let image: string;
  let target: string;
  let teardown: (() => Promise<void>) | undefined;

  before(function () {
    if (skipReason) this.skip();
    const dir = makeTempDir('cistern-fs-restart-');
    image = join(dir.path, 'pool.img');
    target = join(dir.path, 'pool');
    const fd = openSync(image, 'w');
    ftruncateSync(fd, 64 * MiB);
    closeSync(fd);
    // what a failed test leaves: the mounts on this exact target, then the loop devices of these exact files
    const unmount = registerCleanup(`unmount ${target} and detach the loop devices of ${image}`, () => {
      for (let i = 0; i < 5 && mountedSources(target).length > 0; i++) execFileSync('umount', ['--', target], { stdio: 'pipe' });
      for (const file of [image, `${image}.old`]) for (const dev of loopsOf(file)) execFileSync('losetup', ['--detach', dev], { stdio: 'pipe' });
    });
    teardown = async () => {
      await unmount();
      await dir.remove();
    };
  });

  after(async () => {
    await teardown?.();
  });

  it('the restarted agent takes the pool back, and its stop unmounts the pool\'s filesystem', async () => {
    const { api } = ctx.stack;
    const definition = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_FS, name: 'fsr', source: { devices: [{ path: image }], format: 'ext4' }, target: { path: target } });
    await api.definePool({ host: 'a', definition, xml: '', requestId: '', validate: false });
    await api.startPool({ name: 'hosts/a/pools/fsr', build: true, buildFlags: { overwrite: true, noOverwrite: false }, requestId: '' });
    const [loop] = loopsOf(image);
    expect(mountedSources(target)).to.deep.equal([loop]);
    renameSync(image, `${image}.old`);
    await ctx.stack.restartAgent('a');
    await ctx.stack.waitForHosts(['a']);
    const pool = await api.getPool({ name: 'hosts/a/pools/fsr' });
    expect(PoolState[pool.state]).to.equal('POOL_STATE_RUNNING', 'the pool\'s filesystem is still mounted: it runs');
    await api.stopPool({ name: 'hosts/a/pools/fsr', requestId: '' });
    expect(mountedSources(target)).to.deep.equal([], 'the pool shows stopped with its filesystem still mounted');
    expect(loopsOf(`${image}.old`)).to.deep.equal([]);
    await api.undefinePool({ name: 'hosts/a/pools/fsr', requestId: '' });
  });
});
