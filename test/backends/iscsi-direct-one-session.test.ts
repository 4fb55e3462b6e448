// An iscsi-direct refresh against tgtd lists the same volumes as before it asked INQUIRY and
// READ CAPACITY in its own session: the same names, keys, paths, capacities and allocations
// (each checked here against libiscsi's own iscsi-readcapacity16, which the refresh ran per
// LUN before), now without running a process. A CD-ROM LUN, which refuses READ CAPACITY(16),
// gets its size from READ CAPACITY(10), as qemu's iSCSI driver (the data path) reads it.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { IscsiDirectBackend } from '../../libs/backends/iscsi-direct.js';
import { RecordingRunner } from '../../libs/backends/recording-runner.js';
import { PoolType, WipeAlgorithm, type PoolDefinition, type VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { makeTempDir } from '../support/cleanup.js';
import { startTgtd, tgtdAvailable, type Tgtd } from '../support/tgtd.js';
import { collect } from '../support/volume-data.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import { rejects } from '../support/rejects.js';

const run = promisify(execFile);
const KiB = 1024;
const MiB = 1024 * KiB;
const INITIATOR = 'iqn.2024-01.io.cistern.test:initiator';
const TARGET = 'iqn.2024-01.io.cistern.test:one-session';
const SIZES: Record<number, number> = { 1: MiB, 2: 3 * MiB + 4096, 3: 64 * MiB, 7: 512 * KiB, 12: 17 * MiB + 512 };
const CD_LUN = 20;
const CD_BYTES = 100 * 2048;

function poolDef(tgt: Tgtd): PoolDefinition {
  return {
    type: PoolType.POOL_TYPE_ISCSI_DIRECT,
    name: 'one',
    uuid: '',
    source: {
      hosts: [{ name: tgt.host, port: tgt.port }],
      devices: [{ path: TARGET, partSeparator: 0, freeExtents: [] }],
      dir: '',
      adapter: undefined,
      name: '',
      format: '',
      protocolVersion: '',
      initiatorIqn: INITIATOR,
      auth: undefined,
      vendor: '',
      product: '',
    },
    target: undefined,
    features: undefined,
    mountOptions: [],
  };
}

/** libiscsi's answer for a LUN's size: what the refresh reported before. */
async function toolCapacity(tgt: Tgtd, lun: number): Promise<bigint> {
  const { stdout } = await run('iscsi-readcapacity16', ['-i', INITIATOR, '--', `iscsi://${tgt.host}:${tgt.port}/${TARGET}/${lun}`], { timeout: 30_000 });
  return BigInt(/^Total size:(\d+)$/m.exec(stdout)![1]!);
}

describe('iscsi-direct refresh in one session (real target)', function () {
  this.timeout(120_000);
  let tgt: Tgtd;
  let dir: { path: string; remove: () => Promise<void> } | undefined;
  let iso = '';
  const backend = new IscsiDirectBackend();

  before(async function () {
    if (!tgtdAvailable() || !existsSync('/usr/bin/iscsi-readcapacity16')) this.skip(); // Debian tgt, libiscsi-bin
    tgt = await startTgtd([{ iqn: TARGET, luns: Object.entries(SIZES).map(([lun, size]) => ({ lun: Number(lun), size })) }]);
    dir = makeTempDir('cistern-cd-');
    iso = join(dir.path, 'cd.iso');
    writeFileSync(iso, Buffer.alloc(CD_BYTES, 0x5a));
    await tgt.tgtadm(['--mode', 'logicalunit', '--op', 'new', '--tid', '1', '--lun', String(CD_LUN), '--device-type', 'cd', '--backing-store', iso]);
  });

  after(async () => {
    await tgt?.stop();
    await dir?.remove();
  });

  it('lists the LUNs as before (sizes as iscsi-readcapacity16 gives them), running no process', async () => {
    // strict: an iscsi-inq or iscsi-readcapacity16 run fails the refresh ("no scripted answer")
    const runner = new RecordingRunner({ strict: true });
    const r = await backend.refreshPool({ runner, pool: poolDef(tgt) });
    const path = (lun: number): string => `ip-127.0.0.1:${tgt.port}-iscsi-${TARGET}-lun-${lun}`;
    const expected: Array<[string, string, string, bigint, bigint]> = [];
    for (const lun of Object.keys(SIZES).map(Number)) {
      const size = await toolCapacity(tgt, lun);
      expect(size).to.equal(BigInt(SIZES[lun]!));
      expected.push([`unit:0:0:${lun}`, path(lun), path(lun), size, size]);
    }
    expected.push([`unit:0:0:${CD_LUN}`, path(CD_LUN), path(CD_LUN), BigInt(CD_BYTES), BigInt(CD_BYTES)]);
    expect(r.volumes.map((v) => [v.name, v.key, v.target?.path, v.capacity, v.allocation])).to.deep.equal(expected);
    const total = Object.values(SIZES).reduce((a, b) => a + b, 0) + CD_BYTES;
    expect(r.runtime).to.deep.equal({ capacity: BigInt(total), allocation: BigInt(total), available: 0n });
    expect(runner.calls).to.have.length(0);
  });

  it('re-reads one LUN without a process', async () => {
    const runner = new RecordingRunner({ strict: true });
    const v = await backend.refreshVol({ runner, pool: poolDef(tgt) }, { name: 'unit:0:0:12' } as VolumeDefinition);
    expect([v.name, v.capacity]).to.deep.equal(['unit:0:0:12', BigInt(SIZES[12]!)]);
    expect(runner.calls).to.have.length(0);
  });

  it('a CD-ROM LUN reads its disc; a wipe or an upload is FAILED_PRECONDITION naming it, the disc unchanged', async () => {
    // before: qemu-img tried to write, tgtd refused (CANNOT WRITE MEDIUM): INTERNAL, "Input/output error"
    const ctx = { runner: new ExecRunner(), pool: poolDef(tgt) };
    const vol = { name: `unit:0:0:${CD_LUN}` } as VolumeDefinition;
    expect(await collect(backend.downloadVol(ctx, vol, 0n, 4096n))).to.deep.equal(Buffer.alloc(4096, 0x5a));
    const wipe = await rejects(backend.wipeVol(ctx, vol, WipeAlgorithm.WIPE_ALGORITHM_ZERO));
    const upload = await rejects(
      backend.uploadVol(ctx, vol, 0n, 4n, (async function* () {
        yield Buffer.from('data');
      })()),
    );
    for (const err of [wipe, upload]) {
      expect(err.code, err.message).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.contain(`LUN ${CD_LUN} of ${TARGET} is a CD/DVD drive (peripheral device type 5)`);
    }
    expect(readFileSync(iso).equals(Buffer.alloc(CD_BYTES, 0x5a))).to.equal(true);
  });

  it('a LUN the target does not have: NOT_FOUND naming it, for a re-read and for its data, as when iscsi-readcapacity16 said LOGICAL_UNIT_NOT_SUPPORTED', async () => {
    const ctx = { runner: new ExecRunner(), pool: poolDef(tgt) };
    const vol = { name: 'unit:0:0:99' } as VolumeDefinition;
    const attempts = [backend.refreshVol(ctx, vol), collect(backend.downloadVol(ctx, vol, 0n, 512n)), backend.wipeVol(ctx, vol, WipeAlgorithm.WIPE_ALGORITHM_ZERO)];
    for (const attempt of attempts) {
      const err = await rejects(attempt);
      expect(err.code, err.message).to.equal('NOT_FOUND');
      expect(err.message).to.contain(`iSCSI target '${TARGET}' at 127.0.0.1:${tgt.port} has no LUN 99`);
    }
  });
});
