// iscsi-direct against a tgtd target whose LUNs are not the plain 1..255 with media: a LUN
// numbered past 255 (REPORT LUNS gives it flat space addressing, 0x41 0x2C for LUN 300) and
// a LUN of 0 bytes (READ CAPACITY(16) answers last LBA 0xffffffffffffffff). One such LUN
// must not keep the pool from listing the others. libvirt 9.0 lists LUN 300 as
// unit:0:0:16684, the number libiscsi and the Linux kernel give it (the address method
// bits kept), and that number is also what reaches the LUN through libiscsi.
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { IscsiDirectBackend } from '../../libs/backends/iscsi-direct.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { PoolContext } from '../../libs/backends/backend.js';
import { PoolType, WipeAlgorithm, type PoolDefinition, type VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { startTgtd, tgtdAvailable, type Tgtd } from '../support/tgtd.js';
import { chunks, collect } from '../support/volume-data.js';

const MiB = 1024 * 1024;
const INITIATOR = 'iqn.2024-01.io.cistern.test:initiator';
const TARGET = 'iqn.2024-01.io.cistern.test:odd-luns';
/** LUN 300 as REPORT LUNS carries it (flat space addressing: 0x4000 | 300). */
const LUN_300 = 0x4000 | 300;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function poolDef(tgt: Tgtd): PoolDefinition {
  return {
    type: PoolType.POOL_TYPE_ISCSI_DIRECT,
    name: 'odd',
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

const toolsThere = tgtdAvailable() && ['/usr/bin/iscsi-inq', '/usr/bin/iscsi-readcapacity16', '/usr/bin/qemu-img'].every((p) => existsSync(p));

describe('iscsi-direct backend: a LUN past 255 and a LUN of 0 bytes (real target)', function () {
  this.timeout(120_000);
  let tgt: Tgtd;
  const backend = new IscsiDirectBackend();
  const runner = new ExecRunner();
  const ctx = (): PoolContext => ({ runner, pool: poolDef(tgt) });

  before(async function () {
    if (!toolsThere) this.skip(); // needs Debian tgt, libiscsi-bin, qemu-utils + qemu-block-extra
    tgt = await startTgtd([
      {
        iqn: TARGET,
        luns: [
          { lun: 1, size: MiB },
          { lun: 5, size: 0 },
          { lun: 300, size: 2 * MiB, content: randomBytes(4096) },
        ],
      },
    ]);
  });

  after(async () => {
    await tgt?.stop();
  });

  it('lists every disk LUN: the 0-byte one with capacity 0, LUN 300 under the number libvirt gives it', async () => {
    const r = await backend.refreshPool(ctx());
    const portal = `127.0.0.1:${tgt.port}`;
    expect(r.volumes.map((v) => [v.name, v.key, v.capacity, v.allocation])).to.deep.equal([
      ['unit:0:0:1', `ip-${portal}-iscsi-${TARGET}-lun-1`, BigInt(MiB), BigInt(MiB)],
      ['unit:0:0:5', `ip-${portal}-iscsi-${TARGET}-lun-5`, 0n, 0n],
      [`unit:0:0:${LUN_300}`, `ip-${portal}-iscsi-${TARGET}-lun-${LUN_300}`, BigInt(2 * MiB), BigInt(2 * MiB)],
    ]);
    expect(r.runtime.capacity).to.equal(BigInt(3 * MiB));
  });

  it('reads and writes LUN 300 through its listed name: the bytes are those of its backing file', async () => {
    const vol = { name: `unit:0:0:${LUN_300}` } as VolumeDefinition;
    const file = tgt.targets[0]!.files.get(300)!;
    expect(sha256(await collect(backend.downloadVol!(ctx(), vol, 0n, 4096n)))).to.equal(sha256(readFileSync(file).subarray(0, 4096)));
    const data = randomBytes(10_000);
    expect(await backend.uploadVol!(ctx(), vol, 512n, 0n, chunks(data, 4096))).to.equal(BigInt(data.length));
    expect(sha256(readFileSync(file).subarray(512, 512 + data.length))).to.equal(sha256(data));
    const again = await backend.refreshVol!(ctx(), { name: '', key: `ip-127.0.0.1:${tgt.port}-iscsi-${TARGET}-lun-${LUN_300}` } as VolumeDefinition);
    expect([again.name, again.capacity]).to.deep.equal([`unit:0:0:${LUN_300}`, BigInt(2 * MiB)]);
  });

  it('a 0-byte LUN downloads nothing, refuses an upload past its end, and a zero wipe has nothing to do', async () => {
    const vol = { name: 'unit:0:0:5' } as VolumeDefinition;
    expect((await collect(backend.downloadVol!(ctx(), vol, 0n, 0n))).length).to.equal(0);
    const err = await backend.uploadVol!(ctx(), vol, 0n, 1n, chunks(Buffer.alloc(1), 1)).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message: string },
    );
    expect(err?.code).to.equal('INVALID_ARGUMENT');
    expect(err?.message).to.match(/end of LUN 5 \(0 bytes\)/);
    await backend.wipeVol!(ctx(), vol, WipeAlgorithm.WIPE_ALGORITHM_ZERO);
  });
});
