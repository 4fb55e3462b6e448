// A disk pool's table changed by hand (parted run by an operator) after the pool last read it:
// a delete, wipe, upload or download of a partition as the pool listed it acts on that
// partition only. Its number is no identity: the partition removed by hand and another made
// takes the free number (gpt), and removing a logical partition renumbers the ones after it
// (dos). The stored definition carries the bytes the partition covered when last read; a
// partition under that name that covers other bytes now is refused, with nothing changed
// (review h92: the other partition was removed, or wiped).
import { expect } from 'chai';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { DiskBackend } from '../../libs/backends/disk.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { PoolContext } from '../../libs/backends/backend.js';
import { PoolDefinition, PoolType, Tristate, VolumeDefinition, WipeAlgorithm } from '../../libs/proto/cistern/v1/storage.js';
import { hasTool, loopDevicesAvailable, type LoopDevice } from '../support/index.js';
import { diskWith, parted, partitions } from '../support/partition-table.js';
import { collect } from '../support/volume-data.js';
import { rejects } from '../support/rejects.js';

const MiB = 1024n * 1024n;

/** The first 4 KiB of a partition's node. */
function head(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4096);
    readSync(fd, b, 0, b.length, 0);
    return b;
  } finally {
    closeSync(fd);
  }
}

function fill(path: string, byte: number): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.alloc(4096, byte), 0, 4096, 0);
  } finally {
    closeSync(fd);
  }
}

describe('disk pool: a partition as the pool listed it, after the table was changed by hand', function () {
  const backend = new DiskBackend();
  let disk: LoopDevice;
  let ctx: PoolContext;
  /** partition 1 as the pool last read it */
  let listed: VolumeDefinition;
  let node: string;
  let operators: { n: number; start: bigint; size: bigint };

  before(function () {
    if (!loopDevicesAvailable() || !hasTool('parted') || !hasTool('partx')) this.skip();
  });

  beforeEach(async () => {
    disk = diskWith('gpt', 'changed');
    const pool = PoolDefinition.fromPartial({
      type: PoolType.POOL_TYPE_DISK,
      name: 'disk',
      source: { devices: [{ path: disk.device, partSeparator: Tristate.TRISTATE_ABSENT, freeExtents: [] }], format: 'gpt' },
      target: { path: '/dev' },
    });
    ctx = { runner: new ExecRunner(), pool };
    const name = `${disk.device.slice('/dev/'.length)}p1`;
    const planned = await backend.createVol(ctx, VolumeDefinition.fromPartial({ name, capacity: 8n * MiB, target: { format: 'none' } }));
    await backend.buildVol(ctx, planned, { preallocMetadata: false });
    listed = (await backend.refreshPool(ctx)).volumes.find((v) => v.name === name)!;
    node = `${disk.device}p1`;
    // the operator: removes partition 1 and makes another, elsewhere, with data of its own
    parted(disk.device, 'rm', '1');
    parted(disk.device, 'mkpart', 'data', '20MiB', '40MiB');
    fill(node, 0x5a);
    operators = partitions(disk.device)[0]!;
    expect(operators.n).to.equal(1);
    expect(operators.start).to.not.equal(listed.sourceDevices[0]!.extents[0]!.start);
  });

  afterEach(async () => disk && (await disk.detach()));

  it("a delete is refused naming the change, and the operator's partition stays", async () => {
    const err = await rejects(backend.deleteVol(ctx, listed));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.contain(listed.name).and.to.match(/refresh the pool/);
    expect(partitions(disk.device)).to.deep.equal([operators]);
  });

  it("a wipe is refused, and the operator's data stays", async () => {
    const err = await rejects(backend.wipeVol(ctx, listed, WipeAlgorithm.WIPE_ALGORITHM_ZERO));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(head(node).equals(Buffer.alloc(4096, 0x5a)), "the operator's data").to.equal(true);
  });

  it("an upload is refused, and a download reads nothing of the operator's partition", async () => {
    const up = await rejects(backend.uploadVol(ctx, listed, 0n, 4096n, (async function* () { yield Buffer.alloc(4096, 1); })()));
    expect(up.code).to.equal('FAILED_PRECONDITION');
    expect(head(node).equals(Buffer.alloc(4096, 0x5a)), "the operator's data").to.equal(true);
    const down = await rejects(collect(backend.downloadVol(ctx, listed, 0n, 4096n)));
    expect(down.code).to.equal('FAILED_PRECONDITION');
  });

  it('a definition without the extent (a caller that never read the table) still goes by name', async () => {
    const bare = VolumeDefinition.fromPartial({ name: listed.name });
    await backend.wipeVol(ctx, bare, WipeAlgorithm.WIPE_ALGORITHM_ZERO);
    expect(head(node).equals(Buffer.alloc(4096, 0)), 'wiped').to.equal(true);
  });
});
