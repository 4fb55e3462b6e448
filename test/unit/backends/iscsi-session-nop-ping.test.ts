// A target may ping the initiator with a NOP-In carrying a target transfer tag; RFC 7143 11.19
// says the initiator MUST answer it with a NOP-Out (libiscsi does), and a target may fail a
// connection whose pings go unanswered (Linux LIO: nopin_timeout 15 s, nopin_response_timeout
// 30 s). Before, the initiator skipped every NOP-In, and a target that held its answer back
// until the NOP-Out came left the command unanswered until the time limit. Now that a refresh
// keeps one session for all the LUNs (minutes for tens of thousands), it sees such pings.
import { expect } from 'chai';
import { inquiry } from '../../../libs/backends/iscsi-lun-commands.js';
import { withTargetSession } from '../../../libs/backends/iscsi-report-luns.js';
import { inquiryData, reportLunsData, startFakeIscsiTarget, type FakeIscsiTarget } from '../../support/fake-iscsi-target.js';

describe('iSCSI session and a target that pings (NOP-In)', function () {
  this.timeout(20_000);
  let target: FakeIscsiTarget | undefined;
  after(async () => {
    await target?.close();
  });

  it('answers the ping with a NOP-Out carrying its tag, then gets the answer the target held back', async () => {
    target = await startFakeIscsiTarget((lun, cdb) => {
      if (cdb[0] === 0xa0) return { data: reportLunsData([1, 2]) };
      return { data: inquiryData(lun === 2 ? 5 : 0), ping: lun === 2 };
    });
    const t = target;
    const types = await withTargetSession({ host: '127.0.0.1', port: t.port, target: 'iqn.2026-11.test:t', initiator: 'iqn.2026-11.test:i', timeoutMs: 5_000 }, async (s) => {
      const out: number[] = [];
      for (const lun of await s.reportLuns()) out.push((await inquiry(s, lun)).deviceType);
      return out;
    });
    expect(types).to.deep.equal([0, 5]);
    expect(t.pongs).to.deep.equal([0x1234 + 3]);
  });
});
