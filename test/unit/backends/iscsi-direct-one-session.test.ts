// An iscsi-direct refresh asks every LUN's INQUIRY and READ CAPACITY in the session that asked
// REPORT LUNS, as libvirt 9.0's backend does with one libiscsi context: before, it ran
// iscsi-inq and iscsi-readcapacity16 for each LUN, two processes and two logins per LUN, so a
// target of hundreds of LUNs made a slow refresh under the pool lock. Against a scripted
// target: one connection, no process, READ CAPACITY(10) when (16) is refused, and malformed
// or refused answers FAILED_PRECONDITION naming the target, its portal and the LUN.
import { expect } from 'chai';
import { IscsiDirectBackend } from '../../../libs/backends/iscsi-direct.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { PoolType, WipeAlgorithm, type PoolDefinition, type VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import {
  fixedSense,
  inquiryData,
  readCapacity10Data,
  readCapacity16Data,
  reportLunsData,
  startFakeIscsiTarget,
  type FakeIscsiTarget,
  type ScsiAnswer,
} from '../../support/fake-iscsi-target.js';
import { rejects } from '../../support/rejects.js';

const TARGET = 'iqn.2026-11.test:t';
const MiB = 1024n * 1024n;
const ILLEGAL_REQUEST = 0x05;
const NOT_READY = 0x02;
const CHECK_CONDITION = 0x02;

function pool(port: number): PoolDefinition {
  return {
    type: PoolType.POOL_TYPE_ISCSI_DIRECT,
    name: 'direct',
    uuid: '',
    source: {
      hosts: [{ name: '127.0.0.1', port }],
      devices: [{ path: TARGET, partSeparator: 0, freeExtents: [] }],
      dir: '',
      adapter: undefined,
      name: '',
      format: '',
      protocolVersion: '',
      initiatorIqn: 'iqn.2026-11.test:i',
      auth: undefined,
      vendor: '',
      product: '',
    },
    target: undefined,
    features: undefined,
    mountOptions: [],
  };
}

const refused = (key: number, asc = 0x20): ScsiAnswer => ({ status: CHECK_CONDITION, sense: fixedSense(key, asc) });

/** What a LUN answers to INQUIRY (0x12), READ CAPACITY(16) (0x9e/0x10) and READ CAPACITY(10) (0x25). */
interface Lun {
  inquiry: ScsiAnswer;
  rc16?: ScsiAnswer;
  rc10?: ScsiAnswer;
}

describe('iscsi-direct refresh in one session (scripted target)', function () {
  this.timeout(20_000);
  const targets: FakeIscsiTarget[] = [];
  after(async () => {
    for (const t of targets) await t.close();
  });

  async function target(luns: Record<number, Lun>): Promise<FakeIscsiTarget> {
    const t = await startFakeIscsiTarget((lun, cdb) => {
      if (cdb[0] === 0xa0) return { data: reportLunsData(Object.keys(luns).map(Number)) };
      const l = luns[lun];
      if (!l) return refused(ILLEGAL_REQUEST, 0x25);
      if (cdb[0] === 0x12) return l.inquiry;
      if (cdb[0] === 0x9e && (cdb[1]! & 0x1f) === 0x10) return l.rc16 ?? refused(ILLEGAL_REQUEST);
      if (cdb[0] === 0x25) return l.rc10 ?? refused(ILLEGAL_REQUEST);
      return refused(ILLEGAL_REQUEST);
    });
    targets.push(t);
    return t;
  }

  // strict: any iscsi-inq or iscsi-readcapacity16 run fails the test ("no scripted answer")
  const backend = new IscsiDirectBackend();
  const ctx = (t: FakeIscsiTarget) => ({ runner: new RecordingRunner({ strict: true }), pool: pool(t.port) });

  it('lists every LUN from one login, no process run; READ CAPACITY(10) where (16) is refused', async () => {
    const t = await target({
      0: { inquiry: { data: inquiryData(0x0c) } }, // the target's controller: not a volume
      1: { inquiry: { data: inquiryData(0x00) }, rc16: { data: readCapacity16Data(20479n, 512) } },
      2: { inquiry: { data: inquiryData(0x00) }, rc10: { data: readCapacity10Data(2047, 4096) } }, // an SBC-2 disk
      3: { inquiry: { data: inquiryData(0x05) }, rc10: refused(NOT_READY, 0x3a) }, // a CD drive without a disc
      4: { inquiry: { data: inquiryData(0x00, 3) } }, // qualifier 3: no LU can be here
    });
    const c = ctx(t);
    const r = await backend.refreshPool(c);
    const path = (lun: number): string => `ip-127.0.0.1:${t.port}-iscsi-${TARGET}-lun-${lun}`;
    expect(r.volumes.map((v) => [v.name, v.key, v.target?.path, v.capacity, v.allocation])).to.deep.equal([
      ['unit:0:0:1', path(1), path(1), 10n * MiB, 10n * MiB],
      ['unit:0:0:2', path(2), path(2), 8n * MiB, 8n * MiB],
      ['unit:0:0:3', path(3), path(3), 0n, 0n],
    ]);
    expect(r.runtime).to.deep.equal({ capacity: 18n * MiB, allocation: 18n * MiB, available: 0n });
    expect(c.runner.calls).to.have.length(0);
    expect(t.connections).to.equal(1);
    expect(t.seen.map((s) => [s.lun, s.opcode])).to.deep.equal([
      [0, 0xa0],
      [0, 0x12],
      [1, 0x12],
      [1, 0x9e],
      [2, 0x12],
      [2, 0x9e],
      [2, 0x25],
      [3, 0x12],
      [3, 0x9e],
      [3, 0x25],
      [4, 0x12],
    ]);
  });

  it('re-reads one LUN (GetVolume with refresh) through the same client: one login, no process', async () => {
    const t = await target({ 2: { inquiry: { data: inquiryData(0x00) }, rc10: { data: readCapacity10Data(2047, 4096) } } });
    const c = ctx(t);
    const v = await backend.refreshVol(c, { name: 'unit:0:0:2' } as VolumeDefinition);
    expect([v.name, v.capacity]).to.deep.equal(['unit:0:0:2', 8n * MiB]);
    expect(c.runner.calls).to.have.length(0);
    expect(t.connections).to.equal(1);
  });

  const malformed: Array<[string, Lun, RegExp]> = [
    ['INQUIRY without data', { inquiry: { data: Buffer.alloc(0) } }, /INQUIRY of LUN 1 returned 0 bytes/],
    ['INQUIRY refused', { inquiry: refused(ILLEGAL_REQUEST, 0x24) }, /INQUIRY of LUN 1 failed: SCSI status CHECK CONDITION, sense key ILLEGAL REQUEST/],
    ['INQUIRY busy', { inquiry: { status: 0x08 } }, /INQUIRY of LUN 1 failed: SCSI status 0x8/],
    [
      'READ CAPACITY(16) short',
      { inquiry: { data: inquiryData(0) }, rc16: { data: Buffer.alloc(8) } },
      /READ CAPACITY\(16\) of LUN 1 returned 8 bytes; at least 12 \(last LBA and block length\) expected/,
    ],
    ['READ CAPACITY(10) short', { inquiry: { data: inquiryData(0) }, rc10: { data: Buffer.alloc(6) } }, /READ CAPACITY\(10\) of LUN 1 returned 6 bytes; at least 8/],
    [
      'READ CAPACITY(10) past 2^32 blocks while (16) is refused',
      { inquiry: { data: inquiryData(0) }, rc10: { data: readCapacity10Data(0xffffffff, 512) } },
      /READ CAPACITY\(10\) of LUN 1 says the LUN has more blocks than it can count, and READ CAPACITY\(16\) was refused/,
    ],
    ['both READ CAPACITY refused', { inquiry: { data: inquiryData(0) } }, /READ CAPACITY\(10\) of LUN 1 failed: SCSI status CHECK CONDITION, sense key ILLEGAL REQUEST/],
    ['block size 0', { inquiry: { data: inquiryData(0) }, rc16: { data: readCapacity16Data(2047n, 0) } }, /LUN 1 of iqn\.2026-11\.test:t reports logical blocks of 0 bytes; from 512 to 65536/],
  ];
  for (const [what, lun, message] of malformed) {
    it(`${what}: FAILED_PRECONDITION naming the target, its portal and the LUN`, async () => {
      const t = await target({ 1: lun });
      const c = ctx(t);
      const err = await rejects(backend.refreshPool(c));
      expect(err.code, err.message).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.match(message);
      if (!/block size/.test(what)) expect(err.message).to.contain(`iSCSI target '${TARGET}' at 127.0.0.1:${t.port}`);
      expect(c.runner.calls).to.have.length(0);
    });
  }

  it('a wipe or an upload of a CD/DVD LUN: FAILED_PRECONDITION naming the LUN and its type, before qemu-img runs', async () => {
    // before: qemu-img wrote, the drive refused (tgtd: ILLEGAL REQUEST, CANNOT WRITE MEDIUM) and
    // the user got INTERNAL with qemu's "Input/output error"
    const t = await target({ 3: { inquiry: { data: inquiryData(0x05) }, rc10: { data: readCapacity10Data(99, 2048) } } });
    const vol = { name: 'unit:0:0:3' } as VolumeDefinition;
    const attempts: Array<[string, (c: ReturnType<typeof ctx>) => Promise<unknown>]> = [
      ['wipe', (c) => backend.wipeVol(c, vol, WipeAlgorithm.WIPE_ALGORITHM_ZERO)],
      [
        'upload',
        (c) =>
          backend.uploadVol(c, vol, 0n, 4n, (async function* () {
            yield Buffer.from('data');
          })()),
      ],
    ];
    for (const [what, attempt] of attempts) {
      const c = ctx(t);
      const err = await rejects(attempt(c));
      expect(err.code, `${what}: ${err.message}`).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.match(new RegExp(`LUN 3 of ${TARGET} is a CD/DVD drive \\(peripheral device type 5\\): only a disk LUN's data can be written`));
      expect(c.runner.calls, what).to.have.length(0);
    }
  });

  it('re-reads a LUN as the refresh lists it: a controller LUN is no volume (NOT_FOUND), a CD drive without a disc has capacity 0', async () => {
    // before: READ CAPACITY alone, so GetVolume with refresh of the CD volume the refresh
    // listed failed (NOT READY), and the controller LUN 0 was a FAILED_PRECONDITION
    const t = await target({
      0: { inquiry: { data: inquiryData(0x0c) } },
      3: { inquiry: { data: inquiryData(0x05) }, rc10: refused(NOT_READY, 0x3a) },
    });
    const cd = await backend.refreshVol(ctx(t), { name: 'unit:0:0:3' } as VolumeDefinition);
    expect([cd.name, cd.capacity, cd.allocation]).to.deep.equal(['unit:0:0:3', 0n, 0n]);
    const err = await rejects(backend.refreshVol(ctx(t), { name: 'unit:0:0:0' } as VolumeDefinition));
    expect(err.code, err.message).to.equal('NOT_FOUND');
    expect(err.message).to.equal(`LUN 0 of ${TARGET} is not a volume of this pool: its peripheral device type is 12 (volumes are the disk and CD/DVD LUNs)`);
  });
});
