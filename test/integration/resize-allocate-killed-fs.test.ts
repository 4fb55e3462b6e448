// An allocating grow of a raw volume in an fs pool, interrupted by the agent's death. As in a
// dir pool (resize-allocate-killed.test.ts), the grow allocates past the file's end first and
// sets the new size last, so a kill -9 in between leaves the old capacity with the new blocks
// past it: the pool's filesystem short of that space, the volume showing an allocation above
// its capacity, a later grow below it refused as a shrink. The grow journal undid that for dir
// pools only, at the agent's start, before pools start: an fs pool's filesystem is mounted by
// the pool's start, so its grows must be undone when the pool is taken back (still mounted
// over the restart) or started again (mounted anew, as after a reboot).
//
// The moment is made deterministic with a fallocate stand-in on the agent's PATH: it allocates
// for real, then holds (the agent is between the allocation and setting the size) until the
// agent is killed.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { attachLoop, loopDevicesAvailable, makeTempDir, registerCleanup, startStack, waitFor, type LoopDevice, type Stack } from '../support/index.js';
import { hasTool } from '../support/tools.js';
import { EventKind, PoolDefinition, PoolState, PoolType } from '../../libs/proto/cistern/v1/storage.js';
import { createVolume, grpcCode, watch } from './reliability-helpers.js';

const MiB = 1024 * 1024;

function mounted(target: string): boolean {
  try {
    return execFileSync('findmnt', ['-n', '-o', 'SOURCE', '--mountpoint', target], { encoding: 'utf8' }).trim() !== '';
  } catch {
    return false;
  }
}

const skipReason = !loopDevicesAvailable()
  ? 'needs root and loop devices'
  : !hasTool('fallocate') || !hasTool('mkfs.ext4') || !hasTool('findmnt')
    ? 'needs util-linux fallocate and findmnt, and e2fsprogs'
    : undefined;

describe("an allocating grow in an fs pool interrupted by the agent's death", function () {
  this.timeout(240_000);
  let stack: Stack | undefined;
  let tmp: { path: string; remove: () => Promise<void> } | undefined;
  let loop: LoopDevice | undefined;
  let unmount: (() => Promise<void>) | undefined;
  let allocated = '';

  before(async function () {
    if (skipReason) this.skip();
    this.timeout(120_000);
    tmp = makeTempDir('cistern-resize-killed-fs-');
    const bin = join(tmp.path, 'bin');
    mkdirSync(bin);
    allocated = join(tmp.path, 'allocated');
    // the grow's fallocate --keep-size allocates, says so, and holds until the agent dies
    writeFileSync(
      join(bin, 'fallocate'),
      `#!/bin/sh\ncase "$*" in *--keep-size*) /usr/bin/fallocate "$@" || exit $?; : > '${allocated}'; exec sleep 600;; esac\nexec /usr/bin/fallocate "$@"\n`,
      { mode: 0o755 },
    );
    loop = attachLoop(256 * MiB, 'grow-fs');
    const target = join(tmp.path, 'pool');
    // what a failed test leaves mounted on this exact target
    unmount = registerCleanup(`unmount ${target}`, async () => {
      for (let i = 0; i < 5 && mounted(target); i++) execFileSync('umount', ['--', target], { stdio: 'pipe' });
    });
    stack = await startStack({ hosts: ['a'], agentArgs: ['--heartbeat-ms', '300'], env: { PATH: `${bin}:${process.env.PATH}` } });
    const definition = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_FS, name: 'gfs', source: { devices: [{ path: loop.device }], format: 'ext4' }, target: { path: target } });
    await stack.api.definePool({ host: 'a', definition, xml: '', requestId: '', validate: false });
    await stack.api.startPool({ name: 'hosts/a/pools/gfs', build: true, buildFlags: { overwrite: true, noOverwrite: false }, requestId: '' });
  });

  after(async function () {
    this.timeout(60_000);
    await stack?.stop();
    await unmount?.();
    await loop?.detach();
    await tmp?.remove();
  });

  /** Creates VOLUME (8 MiB, allocated), starts a grow to 88 MiB and kills the agent once it allocated past the end. */
  async function killMidGrow(volume: string, then: () => void = () => undefined): Promise<{ file: string; blocks: number }> {
    const s = stack!;
    rmSync(allocated, { force: true });
    await createVolume(s, 'hosts/a/pools/gfs', volume, String(8 * MiB), { allocation: String(8 * MiB) });
    const file = join(tmp!.path, 'pool', volume);
    const name = `hosts/a/pools/gfs/volumes/${volume}`;
    // what the file has before the grow (ext4's 1 KiB blocks of a small file system count an extent block too)
    const blocks = statSync(file).blocks;
    const resize = grpcCode(s.api.resizeVolume({ name, capacity: BigInt(88 * MiB), allocate: true, delta: false, shrink: false, requestId: `grow-${volume}` }, { deadlineMs: 120_000 }));
    await waitFor('the grow to have allocated', () => (existsSync(allocated) ? true : undefined), { timeoutMs: 60_000, intervalMs: 50 });
    // the state the test is about: the old size, the new blocks past it
    expect(statSync(file).size).to.equal(8 * MiB);
    expect(statSync(file).blocks * 512).to.be.at.least(88 * MiB);
    await s.stopAgent('a', { kill: true });
    then();
    await s.addAgent('a');
    const outcome = await resize;
    expect(outcome.code, outcome.message).to.not.equal(0);
    await s.waitForHosts(['a']);
    return { file, blocks };
  }

  async function expectAsBefore(volume: string, before: { file: string; blocks: number }): Promise<void> {
    const s = stack!;
    const st = statSync(before.file);
    expect(st.size).to.equal(8 * MiB);
    // the 80 MiB past the end given back; ext4 keeps the extent tree the grow deepened (one 1 KiB block here)
    expect(st.blocks * 512, 'bytes allocated to the file').to.be.within(before.blocks * 512, before.blocks * 512 + 64 * 1024);
    const name = `hosts/a/pools/gfs/volumes/${volume}`;
    const after = await s.api.getVolume({ name, refresh: false });
    expect([after.definition?.capacity, after.definition?.allocation]).to.deep.equal([BigInt(8 * MiB), BigInt(st.blocks * 512)]);
    // the volume can be grown to a size below what the interrupted grow had allocated
    await s.api.resizeVolume({ name, capacity: BigInt(16 * MiB), allocate: false, delta: false, shrink: false, requestId: '' });
    expect((await s.api.getVolume({ name, refresh: false })).definition?.capacity).to.equal(BigInt(16 * MiB));
  }

  it('the pool still mounted over the restart: the restarted agent takes it back with the volume as it was', async () => {
    const w = watch(stack!.client, { pools: ['hosts/a/pools/gfs'] });
    await w.ready;
    const before = await killMidGrow('kept.raw');
    const pool = await stack!.api.getPool({ name: 'hosts/a/pools/gfs' });
    expect(PoolState[pool.state]).to.equal('POOL_STATE_RUNNING');
    await expectAsBefore('kept.raw', before);
    w.cancel();
    // no grow was announced but the one that finished
    const resized = w.events.filter((e) => e.kind === EventKind.VOLUME_RESIZED).map((e) => e.volumeState?.definition?.capacity);
    expect(resized).to.deep.equal([BigInt(16 * MiB)]);
  });

  it('the pool unmounted meanwhile (a reboot): its next start gives the blocks back before it lists the volume', async () => {
    const target = join(tmp!.path, 'pool');
    const before = await killMidGrow('remounted.raw', () => execFileSync('umount', ['--', target], { stdio: 'pipe' }));
    // not mounted: the restarted agent finds the pool down, as after a reboot
    expect(PoolState[(await stack!.api.getPool({ name: 'hosts/a/pools/gfs' })).state]).to.equal('POOL_STATE_INACTIVE');
    await stack!.api.startPool({ name: 'hosts/a/pools/gfs', build: false, buildFlags: undefined, requestId: '' });
    await expectAsBefore('remounted.raw', before);
  });
});
