// A disk pool on a loop device through the whole stack: gRPC -> coordinator -> NATS ->
// agent -> parted. Define from libvirt XML, build (no_overwrite) and start, create
// partitions, list them with their sizes and the pool's free extents, delete one, stop.
// The loop device's partitions are dropped (partx -d) and the device detached by name.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { PoolState } from '../../libs/proto/cistern/v1/storage.js';
import { attachLoop, type LoopDevice, loopDevicesAvailable, outcomeOf, registerCleanup, useStack, hasTool } from '../support/index.js';

const MiB = 1024n * 1024n;

function partedNumbers(device: string): number[] {
  return execFileSync('parted', ['-m', '-s', device, 'unit', 'B', 'print'], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } })
    .split('\n')
    .map((l) => /^(\d+):\d+B:/.exec(l))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => Number(m[1]));
}

const usable = loopDevicesAvailable() && hasTool('parted') && hasTool('partx');

describe('disk pool through coordinator, NATS and agent', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  let loop: LoopDevice | undefined;
  let dropPartitions: (() => Promise<void>) | undefined;

  before(function () {
    if (!usable) this.skip(); // needs root, loop devices, parted and partx
    loop = attachLoop(64 * 1024 * 1024, 'it-disk');
    const device = loop.device;
    dropPartitions = registerCleanup(`partitions of ${device}`, () => {
      try {
        execFileSync('partx', ['-d', '--', device], { stdio: 'pipe' });
      } catch {
        // none left
      }
    });
  });
  after(async () => {
    await dropPartitions?.();
    await loop?.detach();
  });

  it('define, build, start, create partitions, list with sizes, delete one, stop', async () => {
    const api = ctx.stack.api;
    const device = loop!.device;
    const base = device.slice('/dev/'.length);
    const pool = 'hosts/a/pools/parts';
    await api.definePool({
      host: 'a',
      definition: undefined,
      xml: `<pool type='disk'><name>parts</name><source><device path='${device}'/><format type='gpt'/></source><target><path>/dev</path></target></pool>`,
      requestId: '', validate: false,
    });
    const started = await api.startPool({ name: pool, build: true, buildFlags: { overwrite: false, noOverwrite: true }, requestId: '' });
    expect(started.state).to.equal(PoolState.POOL_STATE_RUNNING);
    // libvirt's capacity: the usable area, without the backup gpt header (33 sectors)
    expect(started.capacity).to.equal(64n * MiB - 33n * 512n);

    for (const [n, size] of [[1, 8n], [2, 4n], [3, 8n]] as const) {
      const v = await api.createVolume({
        parent: pool,
        definition: undefined,
        xml: `<volume><name>${base}p${n}</name><capacity unit='MiB'>${size}</capacity><target><format type='linux'/></target></volume>`,
        preallocMetadata: false,
        requestId: '', validate: false,
      });
      expect(v.definition?.key).to.equal(`${device}p${n}`);
      expect(statSync(`${device}p${n}`).isBlockDevice()).to.equal(true);
    }
    const listed = await api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' });
    expect(listed.volumes.map((v) => [v.name, v.definition?.capacity])).to.deep.equal([
      [`${pool}/volumes/${base}p1`, 8n * MiB],
      [`${pool}/volumes/${base}p2`, 4n * MiB],
      [`${pool}/volumes/${base}p3`, 8n * MiB],
    ]);
    // each create's event carries the pool's new sizes: no refresh needed to see them
    const afterCreates = await api.getPool({ name: pool });
    expect(afterCreates.volumeCount).to.equal(3);
    expect(afterCreates.allocation).to.equal(20n * MiB);
    // a refresh re-reads the table: sizes and free extents as parted sees them
    await api.refreshPool({ name: pool, requestId: '' });
    const got = await api.getPool({ name: pool });
    expect(got.volumeCount).to.equal(3);
    expect(got.allocation).to.equal(20n * MiB);
    const free = got.runtimeDevices[0]?.freeExtents ?? [];
    expect(free.length).to.be.greaterThan(0);
    expect(got.available).to.equal(free.reduce((s, e) => s + (e.end - e.start), 0n));

    // the wrong next name is refused with the expected one named
    const bad = await outcomeOf(
      api.createVolume({ parent: pool, definition: undefined, xml: `<volume><name>${base}p9</name><capacity unit='MiB'>1</capacity></volume>`, preallocMetadata: false, requestId: '', validate: false }),
    );
    expect(status[bad.code]).to.equal('INVALID_ARGUMENT');
    expect(bad.message).to.contain(`expected '${base}p4'`);

    await api.deleteVolume({ name: `${pool}/volumes/${base}p2`, requestId: '' });
    expect(partedNumbers(device)).to.deep.equal([1, 3]);
    // libvirt's disk deleteVol re-reads the table: the sizes are current without a refresh
    const afterDelete = await api.getPool({ name: pool });
    expect(afterDelete.allocation).to.equal(16n * MiB);
    expect(afterDelete.available).to.equal(got.available + 4n * MiB);
    expect(existsSync(`${device}p2`)).to.equal(false);
    const after = await api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' });
    expect(after.volumes.map((v) => v.name)).to.deep.equal([`${pool}/volumes/${base}p1`, `${pool}/volumes/${base}p3`]);

    const stopped = await api.stopPool({ name: pool, requestId: '' });
    expect(stopped.state).to.equal(PoolState.POOL_STATE_INACTIVE);
    await api.undefinePool({ name: pool, requestId: '' });
  });
  it('renames the logical partitions after the one deleted, as the table now numbers them', async () => {
    const api = ctx.stack.api;
    const device = loop!.device;
    const base = device.slice('/dev/'.length);
    const pool = 'hosts/a/pools/dosparts';
    await api.definePool({
      host: 'a',
      definition: undefined,
      xml: `<pool type='disk'><name>dosparts</name><source><device path='${device}'/><format type='dos'/></source><target><path>/dev</path></target></pool>`,
      requestId: '', validate: false,
    });
    await api.startPool({ name: pool, build: true, buildFlags: { overwrite: true, noOverwrite: false }, requestId: '' });
    const make = (n: number, mib: number, format: string) =>
      api.createVolume({
        parent: pool,
        definition: undefined,
        xml: `<volume><name>${base}p${n}</name><capacity unit='MiB'>${mib}</capacity><target><format type='${format}'/></target></volume>`,
        preallocMetadata: false,
        requestId: '', validate: false,
      });
    // dos: logical partitions come once the four primary slots are taken (libvirt's rule)
    await make(1, 8, 'linux');
    await make(2, 40, 'extended');
    await make(3, 4, 'linux');
    await make(4, 4, 'linux');
    await make(5, 4, 'linux');
    await make(6, 6, 'linux');
    await make(7, 5, 'linux');
    expect(partedNumbers(device).sort()).to.deep.equal([1, 2, 3, 4, 5, 6, 7]);

    await api.deleteVolume({ name: `${pool}/volumes/${base}p5`, requestId: '' });
    expect(partedNumbers(device).sort()).to.deep.equal([1, 2, 3, 4, 5, 6]);
    const listed = await api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' });
    const sizes = new Map(listed.volumes.map((v) => [v.name.split('/').pop(), v.definition?.capacity ?? 0n]));
    expect([...sizes.keys()]).to.deep.equal([1, 2, 3, 4, 5, 6].map((n) => `${base}p${n}`));
    // what was p6 (6 MiB) is p5 now, and what was p7 (5 MiB) is p6
    expect(Number(sizes.get(`${base}p5`)!) / 2 ** 20).to.be.within(5.9, 6.3);
    expect(Number(sizes.get(`${base}p6`)!) / 2 ** 20).to.be.within(4.9, 5.3);
    await api.stopPool({ name: pool, requestId: '' });
    await api.undefinePool({ name: pool, requestId: '' });
  });
  it('a new logical partition is counted in the listed extended partition at once, as libvirt re-reads the table after a create', async () => {
    const api = ctx.stack.api;
    const device = loop!.device;
    const base = device.slice('/dev/'.length);
    const pool = 'hosts/a/pools/dosext';
    await api.definePool({
      host: 'a',
      definition: undefined,
      xml: `<pool type='disk'><name>dosext</name><source><device path='${device}'/><format type='dos'/></source><target><path>/dev</path></target></pool>`,
      requestId: '', validate: false,
    });
    await api.startPool({ name: pool, build: true, buildFlags: { overwrite: true, noOverwrite: false }, requestId: '' });
    const make = (n: number, mib: number, format: string) =>
      api.createVolume({
        parent: pool,
        definition: undefined,
        xml: `<volume><name>${base}p${n}</name><capacity unit='MiB'>${mib}</capacity><target><format type='${format}'/></target></volume>`,
        preallocMetadata: false,
        requestId: '', validate: false,
      });
    await make(1, 4, 'linux');
    await make(2, 40, 'extended');
    await make(3, 4, 'linux');
    await make(4, 4, 'linux');
    const extendedAllocation = async (): Promise<bigint | undefined> => {
      const listed = await api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' });
      return listed.volumes.find((v) => v.name === `${pool}/volumes/${base}p2`)?.definition?.allocation;
    };
    // an extended partition's allocation is what its logical partitions take (virStorageBackendDiskMakeDataVol)
    expect(await extendedAllocation()).to.equal(0n);
    const p5 = await make(5, 4, 'linux');
    const p6 = await make(6, 6, 'linux');
    const logical = (p5.definition?.allocation ?? 0n) + (p6.definition?.allocation ?? 0n);
    expect(logical > 10n * MiB).to.equal(true);
    // read from the coordinator's cache, with no refresh in between
    expect(await extendedAllocation()).to.equal(logical);
    await api.refreshPool({ name: pool, requestId: '' });
    expect(await extendedAllocation()).to.equal(logical);
    await api.stopPool({ name: pool, requestId: '' });
    await api.undefinePool({ name: pool, requestId: '' });
  });
});
