// A refresh's session has one time limit over the login and every command it sends: a target
// that lists its LUNs and then falls silent on one LUN's INQUIRY ends the session UNAVAILABLE
// naming the target, its portal and the command that got no answer, not after a limit per LUN.
import { expect } from 'chai';
import { inquiry } from '../../../libs/backends/iscsi-lun-commands.js';
import { withTargetSession } from '../../../libs/backends/iscsi-report-luns.js';
import { inquiryData, reportLunsData, startFakeIscsiTarget, type FakeIscsiTarget } from '../../support/fake-iscsi-target.js';
import { rejects } from '../../support/rejects.js';

describe('iSCSI session time limit over all its commands', function () {
  this.timeout(20_000);
  let target: FakeIscsiTarget | undefined;
  after(async () => {
    await target?.close();
  });

  it('a target silent on the INQUIRY of LUN 2: UNAVAILABLE naming target, portal and that INQUIRY', async () => {
    target = await startFakeIscsiTarget((lun, cdb) => {
      if (cdb[0] === 0xa0) return { data: reportLunsData([1, 2, 3]) };
      return lun === 2 ? { silent: true } : { data: inquiryData(0) };
    });
    const t = target;
    const asked: number[] = [];
    const err = await rejects(
      withTargetSession({ host: '127.0.0.1', port: t.port, target: 'iqn.2026-11.test:t', initiator: 'iqn.2026-11.test:i', timeoutMs: 500 }, async (s) => {
        for (const lun of await s.reportLuns()) {
          asked.push(lun);
          await inquiry(s, lun);
        }
      }),
    );
    expect(err.code).to.equal('UNAVAILABLE');
    expect(err.message).to.equal(`iSCSI target 'iqn.2026-11.test:t' at 127.0.0.1:${t.port} did not answer INQUIRY of LUN 2 within 500 ms`);
    expect(asked).to.deep.equal([1, 2]);
    expect(t.connections).to.equal(1);
  });
});
